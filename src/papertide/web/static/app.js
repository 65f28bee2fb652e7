// papertide: progressive enhancement only. Every form and link works without this file.
(function () {
  "use strict";
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const signedIn = () => document.body.hasAttribute("data-signed-in");
  const toLogin = () => { window.location = "/login?next=" + encodeURIComponent(location.pathname + location.search); };

  // Abstracts also use "$" for money ("costs $250 and $1M", "\$10"). As in pandoc's tex_math_dollars, a
  // single "$" opens math only before a non-space, and the next "$" closes it only after a non-space and
  // before a non-digit; any other "$" is wrapped in a .no-math span, which auto-render skips.
  function dollarsAsText(s) {
    const literal = [];  // [start, length] of each "$" (or "\$") that is plain text
    const next = (from) => { let k = s.indexOf("$", from); while (k > 0 && s[k - 1] === "\\") k = s.indexOf("$", k + 1); return k; };
    for (let i = 0; i < s.length; i++) {
      if (s[i] !== "$") continue;
      if (s[i - 1] === "\\") { literal.push([i - 1, 2]); continue; }
      if (s[i + 1] === "$") {  // display math: $$...$$
        const end = s.indexOf("$$", i + 2);
        if (end < 0) { literal.push([i, 2]); i += 1; } else i = end + 1;
        continue;
      }
      const close = s[i + 1] && !/\s/.test(s[i + 1]) ? next(i + 1) : -1;
      if (close > 0 && !/\s/.test(s[close - 1]) && !/\d/.test(s[close + 1] || "")) i = close;
      else literal.push([i, 1]);
    }
    return literal;
  }

  function shieldDollars(el) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const nodes = [];
    while (walker.nextNode()) if (walker.currentNode.nodeValue.includes("$")) nodes.push(walker.currentNode);
    for (const node of nodes) {
      const s = node.nodeValue, literal = dollarsAsText(s);
      if (!literal.length) continue;
      const frag = document.createDocumentFragment();
      let at = 0;
      for (const [start, len] of literal) {
        frag.append(s.slice(at, start));
        const span = document.createElement("span");
        span.className = "no-math";
        span.textContent = "$".repeat(len === 2 && s[start] === "$" ? 2 : 1);
        frag.append(span);
        at = start + len;
      }
      frag.append(s.slice(at));
      node.replaceWith(frag);
    }
  }

  function renderMath(root) {
    if (!window.renderMathInElement) return;
    root.querySelectorAll(".math").forEach((el) => {
      try {
        shieldDollars(el);
        window.renderMathInElement(el, {
          delimiters: [
            { left: "$$", right: "$$", display: true },
            { left: "$", right: "$", display: false },
            { left: "\\(", right: "\\)", display: false },
            { left: "\\[", right: "\\]", display: true },
          ],
          throwOnError: false,
          ignoredTags: ["script", "noscript", "style", "textarea", "pre", "code", "mark"],
          ignoredClasses: ["no-math"],
        });
      } catch (e) { /* leave the LaTeX source readable */ }
    });
  }

  async function post(form) {
    const res = await fetch(form.action, {
      method: "POST",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf() },
      body: new FormData(form),
      credentials: "same-origin",
    });
    if (res.status === 401) { toLogin(); return null; }  // the session ended in another tab
    if (!res.ok) {
      let msg = "Something went wrong.";
      try { msg = (await res.json()).detail || msg; } catch (e) { /* not JSON */ }
      toast(msg);
      return null;
    }
    return res.json();
  }

  function toast(text) {
    let el = document.getElementById("toast");
    if (!el) {
      el = document.createElement("div");
      el.id = "toast";
      el.className = "toast";
      el.setAttribute("role", "status");
      document.body.appendChild(el);
    }
    el.textContent = text;
    el.classList.add("show");
    clearTimeout(el._t);
    el._t = setTimeout(() => el.classList.remove("show"), 3500);
  }

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (form.matches("[data-confirm]") && !window.confirm(form.dataset.confirm)) { ev.preventDefault(); return; }
    if (form.matches(".vote-form, .save-form") && !signedIn()) { ev.preventDefault(); toLogin(); return; }
    if (form.matches(".vote-form")) {
      ev.preventDefault();
      const data = await post(form);
      if (!data) return;
      document.querySelectorAll(`[data-arxiv-id="${CSS.escape(data.arxiv_id)}"] .vote-button`).forEach((b) => {
        const was = b.classList.contains("voted");
        b.classList.toggle("voted", data.voted);
        b.setAttribute("aria-pressed", String(data.voted));
        b.title = data.voted ? "Remove your upvote" : "Upvote";
        const count = b.querySelector(".count");
        if (count && was !== data.voted) count.textContent = String(Number(count.textContent) + (data.voted ? 1 : -1));
      });
    } else if (form.matches(".not-interested-form")) {
      ev.preventDefault();
      const data = await post(form);
      if (!data) return;
      form.closest(".card")?.remove();
      toast("Got it: fewer papers like this.");
    } else if (form.matches(".save-form")) {
      ev.preventDefault();
      const data = await post(form);
      if (!data) return;
      const b = form.querySelector(".save-button");
      b.classList.toggle("saved", data.saved);
      b.setAttribute("aria-pressed", String(data.saved));
      (b.querySelector(".label") || b).textContent = data.saved ? "Saved" : "Save";
      toast((data.saved ? "Saved to " : "Removed from ") + data.collection);
    }
  });

  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    const text = document.querySelector(btn.dataset.copy)?.textContent || "";
    try {
      await navigator.clipboard.writeText(text);
      toast("Copied");
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents(document.querySelector(btn.dataset.copy));
      const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
      toast("Press Ctrl+C to copy");
    }
  });

  // Search as you type: fetch the results fragment, debounced; the URL follows so back/share work.
  const live = document.querySelector("[data-live-search]");
  if (live) {
    const form = live.form;
    const results = document.getElementById("results");
    let timer = null, seq = 0;
    const run = async () => {
      const params = new URLSearchParams(new FormData(form));
      for (const [k, v] of [...params]) if (!v) params.delete(k);
      const q = params.get("q") || "";
      if (/^(arxiv:)?\d{4}\.\d{4,5}(v\d+)?$/i.test(q.trim()) || /arxiv\.org\//i.test(q)) return; // submit goes to the paper
      const mine = ++seq;
      params.set("partial", "1");
      let res;
      try {
        res = await fetch("/search?" + params.toString(), { headers: { "Accept": "text/html" } });
      } catch (e) { return; }  // offline or the page is going away: the form still works by submitting
      if (mine !== seq || !res.ok) return;
      results.innerHTML = await res.text();
      params.delete("partial");
      history.replaceState(null, "", "/search?" + params.toString());
      renderMath(results);
    };
    const schedule = () => { clearTimeout(timer); timer = setTimeout(run, 250); };
    live.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => renderMath(document));
  else renderMath(document);
})();
