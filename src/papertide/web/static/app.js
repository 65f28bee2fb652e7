// papertide: progressive enhancement only. Every form and link works without this file.
(function () {
  "use strict";
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const signedIn = () => document.body.hasAttribute("data-signed-in");
  const toLogin = () => { window.location = "/login?next=" + encodeURIComponent(location.pathname + location.search); };

  function renderMath(root) {
    if (!window.renderMathInElement) return;
    root.querySelectorAll(".math").forEach((el) => {
      try {
        window.renderMathInElement(el, {
          delimiters: [
            { left: "$$", right: "$$", display: true },
            { left: "$", right: "$", display: false },
            { left: "\\(", right: "\\)", display: false },
            { left: "\\[", right: "\\]", display: true },
          ],
          throwOnError: false,
          ignoredTags: ["script", "noscript", "style", "textarea", "pre", "code", "mark"],
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
