"""The site in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright; nothing is downloaded).

One uvicorn server per module over a copy of the fixture site; a fresh browser context (no cookies) per test.
Every page a test opens is watched: a console error, an uncaught exception, a failed request or a same-origin
asset answered with >= 400 fails the test. Screenshots land in test-output/screenshots/.
"""

from __future__ import annotations

import itertools
import pathlib
import re
import shutil
import socket
import threading
import time
from typing import Self

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS = pathlib.Path(__file__).resolve().parents[1] / "test-output" / "screenshots"
MATH_PAPER = "2504.12021"  # its abstract has mAP@$\delta$ and mAP@$\infty$
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery"
_emails = itertools.count(1)
expect.set_options(timeout=10_000)  # a loaded 2-core CI machine is slow to embed the first query


# -- the server ---------------------------------------------------------------------------------------
class LiveServer:
    """The real app under uvicorn, in a background thread, on a free loopback port."""

    def __init__(self, app, sock: socket.socket, services):
        self.sock, self.services = sock, services
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory, site_template, embedder):
    """The site over its own copy of the fixture data, served for the whole module."""
    from papertide.config import Settings
    from papertide.web import create_app
    from papertide.web.services import build_services

    home = tmp_path_factory.mktemp("browser") / "home"
    shutil.copytree(site_template, home)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(home=home, secret_key="browser-test-key", base_url=f"http://127.0.0.1:{port}",
                        smtp_host="127.0.0.1", smtp_port=1, signup_rate="1000/60", vote_rate="1000/60")
    services = build_services(settings, embedder=embedder)
    try:
        with LiveServer(create_app(services=services), sock, services) as server:
            yield server
    finally:
        services.close()


# -- the browser --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"The browser tests need Debian's Chromium at {CHROMIUM}, which is missing. "
                    "Run `make install` (it installs it) or `sudo apt-get install -y chromium chromium-driver`.")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watch:
    """What went wrong on the pages of one browser context."""

    def __init__(self, origin: str):
        self.origin = origin
        self.problems: list[str] = []
        self.error_pages: set[str] = set()  # pages a test opened that answered 4xx on purpose

    def attach(self, page: Page) -> None:
        page.on("console", lambda m: self._console(page, m))
        page.on("pageerror", lambda e: self.problems.append(f"uncaught exception on {page.url}: {e}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, page: Page, message) -> None:
        where = message.location.get("url", "")
        # Chromium logs every 4xx page it shows as "Failed to load resource"; those pages are checked by status.
        if message.type == "error" and not (message.text.startswith("Failed to load resource")
                                            and where in self.error_pages):
            self.problems.append(f"console error on {page.url}: {message.text} ({where})")

    def _failed(self, request) -> None:
        # ERR_ABORTED is the browser dropping a load because the page moved on (e.g. the favicon), not a failure.
        if request.url.startswith(self.origin) and request.failure != "net::ERR_ABORTED":
            self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response) -> None:
        # Pages answered with an error are the tests' business (the 404 page is one); assets and fetches are not.
        if not response.url.startswith(self.origin) or response.status < 400:
            return
        if response.request.resource_type == "document":
            self.error_pages.add(response.url)
        else:
            self.problems.append(f"{response.status} for {response.request.resource_type} {response.url}")


@pytest.fixture
def ctx(browser: Browser, live: LiveServer):
    """A fresh browser context at desktop width, watched; fails the test if anything went wrong on its pages."""
    yield from _context(browser, live, DESKTOP)


def _context(browser: Browser, live: LiveServer, viewport, **kw):
    context = browser.new_context(base_url=live.url, viewport=viewport, **kw)
    context.set_default_timeout(10_000)
    watch = Watch(live.url)
    context.on("page", watch.attach)
    context.watch = watch  # type: ignore[attr-defined]
    yield context
    context.close()
    assert not watch.problems, "\n".join(watch.problems)


@pytest.fixture
def page(ctx: BrowserContext) -> Page:
    return ctx.new_page()


def sign_up(page: Page, name: str = "Ada Reader") -> str:
    email = f"reader{next(_emails)}-{time.monotonic_ns()}@example.org"
    page.goto("/signup")
    form = page.locator("main form")  # the footer has an e-mail field too (digest sign-up)
    form.get_by_label("E-mail").fill(email)
    form.get_by_label("Name").fill(name)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign up").click()
    page.wait_for_url(re.compile(r"/$"))
    return email


def count_of(button) -> int:
    return int(button.locator(".count").inner_text())


# -- flows --------------------------------------------------------------------------------------------
def test_sign_up_through_the_form(page: Page):
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    sign_up(page, "Grace Hopper")
    expect(page.locator(".flash-success")).to_contain_text("Welcome, Grace Hopper")
    expect(page.locator(".header-nav .me")).to_have_text("Grace Hopper")


def test_sign_up_errors_are_shown_by_the_form(page: Page):
    page.goto("/signup")
    form = page.locator("main form")
    form.get_by_label("E-mail").fill("someone@example.org")
    form.get_by_label("Name").fill("Someone")
    # The browser's own check (minlength) would stop the post; remove it to see the server's message.
    page.eval_on_selector("#password", "el => el.removeAttribute('minlength')")
    form.get_by_label("Password").fill("short")
    form.get_by_role("button", name="Sign up").click()
    expect(page.locator("#form-error")).to_contain_text("at least 10 characters")


def test_upvote_from_home_without_reload_and_it_persists(page: Page):
    sign_up(page)
    page.goto("/")
    card = page.locator("article.card").first
    arxiv_id = card.get_attribute("data-arxiv-id")
    button = card.locator(".vote-button")
    before = count_of(button)
    expect(button).to_have_attribute("aria-pressed", "false")
    title = card.locator(".card-title").inner_text()
    expect(page.get_by_role("button", name=f"Upvote {title[:40]}")).to_have_count(1)  # named for screen readers
    page.evaluate("window.__sameDocument = true")
    button.click()
    expect(button.locator(".count")).to_have_text(str(before + 1))
    expect(button).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.__sameDocument === true"), "the vote reloaded the page"

    page.reload()
    button = page.locator(f'article.card[data-arxiv-id="{arxiv_id}"] .vote-button')
    expect(button.locator(".count")).to_have_text(str(before + 1))
    expect(button).to_have_attribute("aria-pressed", "true")

    button.click()  # and it can be taken back
    expect(button.locator(".count")).to_have_text(str(before))
    expect(button).to_have_attribute("aria-pressed", "false")


def test_upvote_signed_out_goes_to_sign_in(page: Page):
    page.goto("/")
    page.locator("article.card .vote-button").first.click()
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_search_as_you_type(page: Page):
    page.goto("/search")
    page.evaluate("window.__sameDocument = true")
    box = page.get_by_label("Search query")
    expect(box).to_be_focused()  # autofocus
    box.press_sequentially("video diffusion", delay=30)  # typed, never submitted
    expect(page.locator("#results article.card").first).to_be_visible()
    marks = page.locator("#results mark")
    expect(marks.first).to_be_visible()
    words = {w.lower() for w in marks.all_inner_texts()}
    assert any(w.startswith(("video", "diffus")) for w in words), words
    expect(page).to_have_url(re.compile(r"/search\?q=video\+diffusion"))
    assert page.evaluate("window.__sameDocument === true"), "searching reloaded the page"

    page.get_by_label("Sort").select_option("new")  # a filter change searches again; the URL follows
    expect(page).to_have_url(re.compile(r"sort=new"))
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"/search"))  # replaceState: typing does not fill the history


def test_arxiv_id_typed_in_the_header_goes_to_the_paper(page: Page):
    page.goto("/")
    page.get_by_label("Search papers").fill(MATH_PAPER)
    page.get_by_label("Search papers").press("Enter")
    expect(page).to_have_url(re.compile(rf"/papers/{MATH_PAPER}$"))
    page.goto("/search")
    page.get_by_label("Search query").press_sequentially(f"arXiv:{MATH_PAPER}v1", delay=20)
    page.get_by_label("Search query").press("Enter")
    expect(page).to_have_url(re.compile(rf"/papers/{MATH_PAPER}$"))


def test_paper_page_renders_math_and_copies_bibtex(ctx: BrowserContext, page: Page, live: LiveServer):
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.goto(f"/papers/{MATH_PAPER}")
    expect(page.locator("h1")).to_contain_text("Action Anticipation")
    abstract = page.locator(".abstract-full")
    expect(abstract.locator(".katex").first).to_be_visible()
    assert abstract.locator(".katex").count() >= 2
    assert "$" not in abstract.inner_text().replace("$\\", ""), "LaTeX left unrendered"
    expect(abstract.locator(".katex-error")).to_have_count(0)

    page.get_by_role("button", name="Copy BibTeX").click()
    expect(page.locator("#toast")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.lstrip().startswith("@") and MATH_PAPER in copied, copied


def test_every_abstract_with_dollars(page: Page, live: LiveServer):
    """Every fixture paper whose abstract has a "$": real math is rendered, money stays text, no errors."""
    papers = {p.arxiv_id: p.abstract for batch in live.services.store.iter_changed(0) for _, p in batch
              if "$" in p.abstract}
    assert len(papers) >= 10, papers
    rendered = {}
    for arxiv_id in papers:
        page.goto(f"/papers/{arxiv_id}")
        abstract = page.locator(".abstract-full")
        rendered[arxiv_id] = (abstract.locator(".katex").count(), abstract.inner_text())
    for arxiv_id in (MATH_PAPER, "2505.00315", "2504.14337", "2505.11497", "2504.06982"):  # $O(T^2)$, $^2$, $\Phi$...
        assert rendered[arxiv_id][0] >= 1, (arxiv_id, rendered[arxiv_id][1][:300])
    money = {"2505.13511": "$250", "2505.15216": "from $10 to $30,485", "2504.15777": "$"}
    for arxiv_id, text in money.items():  # "$250 ... $1M": not a formula
        count, shown = rendered[arxiv_id]
        assert count == 0 and text in shown, (arxiv_id, count, shown[:300])


def test_copy_bibtex_without_clipboard_permission_does_not_error(page: Page):
    page.goto(f"/papers/{MATH_PAPER}")
    page.get_by_role("button", name="Copy BibTeX").click()
    expect(page.locator("#toast")).to_be_visible()


def test_open_a_paper_from_home_and_save_it_to_the_library(page: Page):
    sign_up(page)
    page.goto("/")
    title_link = page.locator("article.card .card-title a").first
    title = title_link.inner_text()
    title_link.click()
    expect(page).to_have_url(re.compile(r"/papers/\d{4}\.\d{4,5}$"))
    expect(page.locator("h1")).to_have_text(title)
    page.get_by_text("Save to my library").click()
    page.locator(".save-box").get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_contain_text("Saved to Reading list")
    expect(page.locator(".save-box summary")).to_have_text("Saved in your library")

    page.get_by_role("link", name="Library").click()
    expect(page).to_have_url(re.compile(r"/library$"))
    entry = page.locator(".collections li", has_text="Reading list")
    expect(entry).to_contain_text("1 paper")
    entry.get_by_role("link").click()
    expect(page.locator("article.card .card-title")).to_have_text(title)


def test_save_from_a_card_without_reload(page: Page):
    sign_up(page)
    page.goto("/")
    page.evaluate("window.__sameDocument = true")
    button = page.locator("article.card .save-button").first
    expect(button.locator(".label")).to_have_text("Save")
    button.click()
    expect(button.locator(".label")).to_have_text("Saved")
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#toast")).to_contain_text("Saved to")
    assert page.evaluate("window.__sameDocument === true")


def _tab_to(page: Page, selector: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def _focus_ring(page: Page) -> str:
    return page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 ? s.outlineStyle : ''; }""")


def test_keyboard_reaches_search_and_vote_with_visible_focus(page: Page):
    sign_up(page)
    page.goto("/")
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    expect(page.locator(".skip")).to_be_in_viewport()
    _tab_to(page, "#header-q")
    assert _focus_ring(page), "no visible focus on the search box"
    _tab_to(page, ".vote-button")
    assert _focus_ring(page), "no visible focus on the vote button"
    before = count_of(page.locator(":focus"))
    page.keyboard.press("Enter")  # votes with the keyboard, and keeps focus
    expect(page.locator(":focus .count")).to_have_text(str(before + 1))


def test_skip_link_moves_focus_to_the_content(page: Page):
    page.goto("/")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))


# -- screenshots and page-wide checks -----------------------------------------------------------------
# Colour contrast of every visible text element against its effective background (WCAG 2.1: 4.5:1, or 3:1
# for large text), every visible form control has a label, and nothing is wider than the viewport.
AUDIT_JS = """() => {
  const parse = (c) => { const m = c.match(/[\\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; };
  const alpha = (c) => { const v = parse(c); return v.length > 3 ? v[3] : 1; };
  const lum = ([r, g, b]) => { const f = (x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bgOf = (el) => { for (let e = el; e; e = e.parentElement) { const b = getComputedStyle(e).backgroundColor;
      if (alpha(b) > 0.5) return parse(b); } return parse(getComputedStyle(document.body).backgroundColor); };
  const out = { contrast: [], unlabeled: [], overflow: [] };
  const seen = new Set();
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.katex, .visually-hidden, .skip, .toast, script, style')) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const r = el.getBoundingClientRect();
    if (!own || r.width === 0 || r.height === 0) continue;
    const s = getComputedStyle(el);
    if (s.visibility === 'hidden' || parseFloat(s.opacity) < 0.5) continue;
    const fg = parse(s.color), bg = bgOf(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const key = el.tagName + '.' + el.className + ':' + s.color + '/' + bg;
    if (ratio < need && !seen.has(key)) { seen.add(key);
      out.contrast.push(`${ratio.toFixed(2)} < ${need}: <${el.tagName.toLowerCase()} class="${el.className}"> "${el.textContent.trim().slice(0, 40)}" ${s.color} on rgb(${bg.slice(0, 3)})`); }
  }
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
      out.unlabeled.push(el.outerHTML.slice(0, 80));
  }
  const w = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > w) {
    for (const el of document.querySelectorAll('body *')) { const r = el.getBoundingClientRect();
      if (r.right > w + 1 && r.width > 0 && !el.closest('pre')) out.overflow.push(`<${el.tagName.toLowerCase()} class="${el.className}"> right=${Math.round(r.right)}`); }
    out.overflow = out.overflow.slice(0, 8);
  }
  return out;
}"""

PAGES = [("home", "/", False), ("paper", f"/papers/{MATH_PAPER}", True), ("search", "/search?q=video+diffusion", False),
         ("library", "/library", True), ("login", "/login", False), ("404", "/no/such/page", False)]
MODES = [("desktop", DESKTOP, "light"), ("phone", PHONE, "light"), ("desktop-dark", DESKTOP, "dark"),
         ("phone-dark", PHONE, "dark")]


@pytest.mark.parametrize("mode,viewport,scheme", MODES, ids=[m[0] for m in MODES])
def test_screenshots_and_page_audit(browser: Browser, live: LiveServer, mode: str, viewport, scheme: str):
    """Screenshots of the main pages; each page is checked for contrast, labels and horizontal overflow."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    gen = _context(browser, live, viewport, color_scheme=scheme, device_scale_factor=1,
                   is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    context = next(gen)
    page = context.new_page()
    signed_in = False
    findings = []
    for name, path, needs_user in PAGES:
        if scheme == "dark" and name not in ("home", "paper", "search"):
            continue
        if needs_user and not signed_in:
            sign_up(page)
            signed_in = True
        if name == "login" and signed_in:
            context.clear_cookies()
        if name == "library":  # a library with something in it
            page.goto(f"/papers/{MATH_PAPER}")
            page.get_by_text("Save to my library").click()
            page.locator(".save-box").get_by_role("button", name="Save").click()
            page.wait_for_url(re.compile(MATH_PAPER))
        response = page.goto(path)
        assert response is not None and response.status == (404 if name == "404" else 200), (path, response)
        page.wait_for_load_state("networkidle")
        page.evaluate("document.fonts.ready")
        page.screenshot(path=SHOTS / f"{name}-{mode}.png", full_page=True)
        audit = page.evaluate(AUDIT_JS)
        for kind, items in audit.items():
            findings += [f"{name} ({mode}) {kind}: {item}" for item in items]
        if scheme == "dark":
            bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert sum(map(int, re.findall(r"\d+", bg)[:3])) < 3 * 60, f"not dark: {bg}"
    try:
        assert not findings, "\n".join(findings)
    finally:
        next(gen, None)


# -- for you ------------------------------------------------------------------------------------------
SPEECH = ["2503.14928", "2504.01519", "2504.02604"]  # fixture papers on speech (as tests/test_foryou_web.py)


@pytest.mark.parametrize("mode,viewport", [("desktop", DESKTOP), ("phone", PHONE)], ids=["desktop", "phone"])
def test_for_you_from_an_import_with_reasons_and_not_interested(browser: Browser, live: LiveServer, mode: str,
                                                                 viewport):
    """The cold start in the browser: a new member pastes three arXiv ids into the import form, opens For
    you, and every card says why (saved papers linked, shared terms); "Not interested" takes a card away
    in place and it stays away. Screenshots, and the page audit (contrast, labels, overflow)."""
    fy = live.services.for_you()
    assert fy is not None and fy.wait(300), fy.state if fy else "no index"
    SHOTS.mkdir(parents=True, exist_ok=True)
    gen = _context(browser, live, viewport, device_scale_factor=1, is_mobile=viewport is PHONE,
                   has_touch=viewport is PHONE)
    context = next(gen)
    page = context.new_page()
    sign_up(page)
    page.goto("/for-you")
    expect(page.locator(".cold-start")).to_contain_text("library is empty")
    page.locator(".cold-start").get_by_role("link", name="Import a BibTeX or RIS file").click()
    page.get_by_label("and/or arXiv ids or URLs, one per line").fill(
        "\n".join(f"https://arxiv.org/abs/{a}" if i == 0 else a for i, a in enumerate(SPEECH)))
    page.locator("form.import-form").get_by_role("button", name="Import").click()
    expect(page.locator("#report-h")).to_have_text("Found 3 of 3 references")
    page.get_by_role("link", name="See your feed →").click()
    page.wait_for_url(re.compile(r"/for-you$"))
    cards = page.locator(".cards.foryou article.card")
    expect(cards.first).to_be_visible()
    ids = [c.get_attribute("data-arxiv-id") for c in cards.all()]
    assert ids and not set(ids) & set(SPEECH)  # what you saved is not recommended back
    first = cards.first
    because = first.locator(".why .because a")
    expect(because.first).to_be_visible()
    assert all(a.get_attribute("href").removeprefix("/papers/") in SPEECH for a in because.all())
    expect(first.locator(".why .terms")).to_be_visible()
    page.evaluate("document.fonts.ready")
    page.screenshot(path=SHOTS / f"foryou-{mode}.png", full_page=False)
    audit = page.evaluate(AUDIT_JS)
    findings = [f"for-you ({mode}) {kind}: {item}" for kind, items in audit.items() for item in items]
    gone = ids[0]
    first.get_by_role("button", name=re.compile("Not interested")).click()
    expect(page.locator(f'.cards.foryou [data-arxiv-id="{gone}"]')).to_have_count(0)
    expect(page.locator("#toast")).to_contain_text("fewer papers like this")
    page.reload()
    expect(cards.first).to_be_visible()
    assert gone not in [c.get_attribute("data-arxiv-id") for c in cards.all()]
    try:
        assert not findings, "\n".join(findings)
    finally:
        next(gen, None)
