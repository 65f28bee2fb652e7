"""The site's defences over HTTP: CSRF on every POST, no state change on GET, escaped output, session
cookies, rate limits, no open redirects, refused reset links."""

from __future__ import annotations

from datetime import date
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient
from webutil import (
    PASSWORD,
    csrf,
    error_page,
    free_port,
    html,
    login,
    post,
    second_client,
    signed_in_as,
    signup,
)

from papertide.config import Settings
from papertide.models import Paper
from papertide.web import create_app

P1, P2, P3 = "2503.11792", "2503.11979", "2503.11995"
HOSTILE = r"<script>alert(1)</script> & $\alpha<\beta$"
HOSTILE_ID = "2611.06666"


def _snapshot(site) -> dict[str, list]:
    """Everything a request could change: the community tables and the papers' community columns."""
    db = site.store._db
    tables = ["users", "votes", "collections", "collection_items", "submissions", "rate_limits"]
    snap = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    snap["papers"] = db.execute(
        "SELECT id, arxiv_id, votes, hidden, merged_into, featured_on, seq FROM papers ORDER BY id").fetchall()
    return snap


@pytest.fixture
def world(client, site):
    """An administrator signed in on `client`, with a collection holding a paper and a reset token."""
    from papertide.web.security import hash_password

    site.store.create_user("mod@example.org", "Mod", hash_password(PASSWORD), is_admin=True)
    assert login(client, "mod@example.org").status_code == 303
    user = site.store.get_user_by_email("mod@example.org")
    c = site.store.create_collection(user.id, "Mine")
    site.store.set_saved(c.id, site.store.doc_ids_for([P1])[P1], True)
    return {"collection": c.id, "token": site.links.reset_token(user)}


def _post_cases(world) -> dict[str, tuple[str, dict]]:
    """A valid request for every POST route of the site's pages, in an order where each can succeed."""
    cid, token = world["collection"], world["token"]
    return {
        "/papers/{arxiv_id:path}/upvote": (f"/papers/{P1}/upvote", {}),
        "/papers/{arxiv_id:path}/save": (f"/papers/{P2}/save", {"saved": "1"}),
        "/submit": ("/submit", {"arxiv_id": P2}),
        "/library": ("/library", {"name": "New"}),
        "/library/{collection_id}/delete": (f"/library/{cid}/delete", {}),
        "/account/token": ("/account/token", {}),
        "/admin/papers/{arxiv_id:path}/hide": (f"/admin/papers/{P3}/hide", {"hidden": "1"}),
        "/admin/papers/{arxiv_id:path}/merge": (f"/admin/papers/{P2}/merge", {"into": P1}),
        "/reset": ("/reset", {"email": "someone@example.org"}),
        "/reset/{token}": (f"/reset/{token}", {"password": "a new password!"}),
        "/login": ("/login", {"email": "mod@example.org", "password": "a new password!"}),
        "/signup": ("/signup", {"email": "new@example.org", "name": "New", "password": PASSWORD}),
        "/logout": ("/logout", {}),
    }


def _site_routes(client, method: str) -> set[str]:
    """Path templates of the page routes (feed, paper, search, accounts, library, moderation) taking `method`.

    The digest, API and feed routes have their own tests (the one-click unsubscribe POST, RFC 8058, and
    bearer-token API calls are meant to work without a CSRF token).
    """
    from papertide.web import account, admin, library, pages

    return {r.path for m in (pages, account, library, admin) for r in m.router.routes if method in r.methods}


def test_every_post_needs_the_csrf_token(client, site, world):
    cases = _post_cases(world)
    assert _site_routes(client, "POST") == set(cases), "a POST route without a CSRF test case"
    other_token = csrf(second_client(client))  # a real token, but of another browser session
    for template, (path, data) in cases.items():
        before, who = _snapshot(site), signed_in_as(client)
        attempts = [
            {"data": data},
            {"data": {**data, "csrf": ""}},
            {"data": {**data, "csrf": "not-the-token"}},
            {"data": {**data, "csrf": other_token}},
            {"data": data, "headers": {"x-csrf-token": other_token}},
            {"json": data, "headers": {"accept": "application/json"}},
        ]
        for kw in attempts:
            r = client.post(path, follow_redirects=False, **kw)
            assert r.status_code == 403, (template, kw, r.status_code)
            if "json" in kw:
                assert r.json()["error"] == "Form expired"
            else:
                title, message = error_page(r.text)
                assert title == "Form expired" and "did not come from this site" in message
        assert _snapshot(site) == before, template
        assert signed_in_as(client) == who, template
        # The same request with the session's token goes through: the case is a real one.
        r = post(client, path, data)
        assert r.status_code != 403, (template, r.status_code, r.text[:300])
    assert signed_in_as(client) is None  # the last case signed out


def test_csrf_header_is_accepted_for_scripts(client, site):
    signup(client)
    token = csrf(client)
    r = client.post(f"/papers/{P1}/upvote", headers={"x-csrf-token": token, "accept": "application/json"})
    assert r.status_code == 200 and r.json()["voted"] is True


def _get_paths(world) -> dict[str, str]:
    cid, token = world["collection"], world["token"]
    return {
        "/": "/?view=all&period=week", "/search": "/search?q=neural&sort=votes", "/submit": "/submit",
        "/papers/{arxiv_id:path}": f"/papers/{P1}?since=year", "/papers/{arxiv_id:path}/bibtex": f"/papers/{P1}/bibtex",
        "/library": "/library", "/library/{collection_id}": f"/library/{cid}",
        "/library/{collection_id}/bibtex": f"/library/{cid}/bibtex", "/users/{user_id}": "/users/1",
        "/login": "/login?next=/library", "/signup": "/signup", "/reset": "/reset", "/reset/{token}": f"/reset/{token}",
    }


def test_get_never_changes_state(client, site, world):
    paths = _get_paths(world)
    assert _site_routes(client, "GET") == set(paths), "a GET route without a test case"
    before = _snapshot(site)
    for path in paths.values():
        assert client.get(path).status_code == 200, path
    # GETs at the addresses of the POST routes do nothing either.
    for path, _ in _post_cases(world).values():
        assert client.get(path).status_code in (200, 404, 405), path
    assert _snapshot(site) == before
    assert signed_in_as(client) == "Mod"  # GET /logout did not sign out
    assert client.get(f"/reset/{world['token']}").status_code == 200  # nor did GET use up the reset link
    r = client.get("/logout")
    assert r.status_code == 405 and error_page(r.text)[0] == "Method not allowed"


# -- escaping -----------------------------------------------------------------------------------------
@pytest.fixture
def hostile(site):
    site.store.upsert_papers([Paper(
        HOSTILE_ID, HOSTILE, f"We study {HOSTILE} and <b>bold</b> claims & more.", ["<img src=x onerror=alert(2)>"],
        ["cs.CR"], listed=date(2026, 7, 30), featured_on=date(2026, 8, 3), comments="<i>10 pages</i>",
        hf_upvotes=100,
    )])
    site.index_new_papers()
    return HOSTILE_ID


def _assert_inert(page: str) -> None:
    """No markup from the paper's data got through: no inline script, no injected elements."""
    doc = html(page)
    assert all(s.attrs.get("src", "").startswith("/static/") for s in doc.find_all("script"))
    assert doc.find("img") is None and doc.find("b") is None and doc.find("i") is None
    assert "<script>alert" not in page and "<img" not in page


def test_hostile_title_is_escaped_on_the_feed(client, hostile):
    page = client.get("/").text
    _assert_inert(page)
    card = html(page).find("article", data_arxiv_id=hostile)
    assert card.find("h2", cls="card-title").text == HOSTILE  # shown as text, LaTeX intact for KaTeX
    assert card.find("p", cls="authors").text == "<img src=x onerror=alert(2)>"


def test_hostile_title_is_escaped_on_the_paper_page(client, hostile):
    page = client.get(f"/papers/{hostile}").text
    _assert_inert(page)
    doc = html(page)
    assert doc.find("article", cls="paper").find("h1").text == HOSTILE
    assert doc.find("title").text.startswith(HOSTILE)
    assert doc.find("meta", name="description").attrs["content"].startswith(f"We study {HOSTILE}")
    assert HOSTILE in doc.find("pre", id="bibtex").text or "alert(1)" in doc.find("pre", id="bibtex").text


def test_hostile_title_is_escaped_in_search(client, hostile):
    r = client.get("/search", params={"q": "script alert beta"})
    _assert_inert(r.text)
    card = html(r.text).find("article", data_arxiv_id=hostile)
    assert card is not None
    title = card.find("h2", cls="card-title")
    assert title.text == HOSTILE
    assert {m.text.lower() for m in title.find_all("mark")} >= {"script", "alert"}
    # The query itself is echoed as text too.
    r = client.get("/search", params={"q": "<script>alert(3)</script>"})
    assert "<script>alert(3)" not in r.text
    assert html(r.text).find("input", id="q").attrs["value"] == "<script>alert(3)</script>"


def test_hostile_names_are_escaped(client, site):
    signup(client, name="<script>alert(4)</script>")
    uid = site.store.get_user_by_email("ada@example.org").id
    post(client, "/library", {"name": "<img src=x onerror=alert(5)>"})
    for path in ("/", f"/users/{uid}", "/library"):
        page = client.get(path).text
        _assert_inert(page)
    r = client.get("/papers/<script>alert(6)</script>")
    assert r.status_code == 404 and "<script>alert(6)" not in r.text


# -- cookies ------------------------------------------------------------------------------------------
def _session_cookie(response) -> str:
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith("papertide_session=")]
    assert cookies, response.headers
    return cookies[0].lower()


def test_session_cookie_flags(client):
    cookie = _session_cookie(client.get("/login"))
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in [part.strip() for part in cookie.split(";")]


def test_session_cookie_is_secure_over_https(site):
    settings = site.settings.model_copy(update={"base_url": "https://papers.example.org"})
    with TestClient(create_app(settings, services=site), base_url="https://papers.example.org") as c:
        cookie = _session_cookie(c.get("/login"))
    assert "; secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_security_headers(client):
    r = client.get("/")
    assert r.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in r.headers["content-security-policy"]


# -- rate limits --------------------------------------------------------------------------------------
@pytest.fixture
def strict(site):
    """The site with low rate limits, made from Settings like the `site` fixture's."""
    site.settings = Settings(home=site.settings.home, secret_key="test-secret-key", base_url="http://testserver",
                             smtp_host="127.0.0.1", smtp_port=1, login_rate="2/300", login_account_rate="4/3600",
                             signup_rate="1/3600",
                             vote_rate="2/60", submit_rate="1/3600", reset_rate="1/3600")
    return site


def _assert_429(r, what: str) -> None:
    assert r.status_code == 429, r.status_code
    title, message = error_page(r.text)
    assert title == "Slow down"
    assert message.startswith(f"Too many {what}.") and "Please wait" in message
    assert 1 <= int(r.headers["retry-after"]) <= 3600  # seconds left in the counter's window


def test_sign_in_rate_limit(client, strict):
    from papertide.web.security import hash_password

    strict.store.create_user("ada@example.org", "Ada", hash_password(PASSWORD))
    for _ in range(2):
        assert login(client, password="wrong password").status_code == 400
    _assert_429(login(client), "sign-in attempts")  # even the right password, until the window ends
    assert signed_in_as(client) is None
    _assert_429(login(client, "other@example.org"), "sign-in attempts")  # the same address (IP) is limited


def test_a_stranger_cannot_lock_a_member_out_for_long(client, strict):
    """Failed sign-ins from one IP limit that IP; the account's own limit is looser (and shared by all IPs)."""
    from fastapi.testclient import TestClient

    from papertide.web.security import hash_password

    strict.store.create_user("ada@example.org", "Ada", hash_password(PASSWORD))
    for _ in range(2):
        assert login(client, password="wrong password").status_code == 400
    _assert_429(login(client, password="wrong password"), "sign-in attempts")  # the stranger's IP: stopped
    ada = TestClient(client.app, base_url="http://testserver", client=("203.0.113.7", 50000))
    login(ada)  # Ada, from her own address, still gets in (3rd counted attempt on the account; limit 4)
    assert signed_in_as(ada) == "Ada"
    third = TestClient(client.app, base_url="http://testserver", client=("198.51.100.9", 50000))
    assert login(third, password="wrong password").status_code == 400  # 4th on the account
    _assert_429(login(third, password="wrong password"), "sign-in attempts")  # 5th: the account's own limit


def test_sign_up_rate_limit(client, strict):
    signup(client, "a@example.org")
    other = second_client(client)
    _assert_429(post(other, "/signup", {"email": "b@example.org", "name": "B", "password": PASSWORD}), "sign-ups")
    assert strict.store.get_user_by_email("b@example.org") is None


def test_vote_rate_limit(client, strict):
    signup(client)
    assert post(client, f"/papers/{P1}/upvote").status_code == 303
    assert post(client, f"/papers/{P2}/upvote").status_code == 303
    before = _snapshot(strict)["votes"]
    _assert_429(post(client, f"/papers/{P3}/upvote"), "votes")
    assert _snapshot(strict)["votes"] == before
    r = client.post(f"/papers/{P3}/upvote", headers={"accept": "application/json", "x-csrf-token": csrf(client)})
    assert r.status_code == 429 and r.json()["error"] == "Slow down"


def test_submission_rate_limit(client, strict):
    signup(client)
    assert post(client, "/submit", {"arxiv_id": P1}).status_code == 303
    _assert_429(post(client, "/submit", {"arxiv_id": P2}), "submissions")
    assert strict.store.get_paper(P2).featured_on is None


def test_reset_rate_limit(client, strict):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    server = Controller(Sink(), hostname="127.0.0.1", port=free_port())  # a real mail server to reach
    server.start()
    strict.settings = strict.settings.model_copy(update={"smtp_port": server.port})
    try:
        assert post(client, "/reset", {"email": "nobody@example.org"}).status_code == 200
    finally:
        server.stop()
    _assert_429(post(client, "/reset", {"email": "nobody@example.org"}), "reset requests")


def test_rate_limit_window_passes(client, strict, monkeypatch):
    import time as time_mod

    signup(client)
    post(client, f"/papers/{P1}/upvote")
    post(client, f"/papers/{P1}/upvote")
    _assert_429(post(client, f"/papers/{P1}/upvote"), "votes")
    real = time_mod.time
    monkeypatch.setattr(time_mod, "time", lambda: real() + 61)
    assert post(client, f"/papers/{P1}/upvote").status_code == 303


# -- redirects and reset links ------------------------------------------------------------------------
HOSTILE_NEXT = ["//evil.example", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
                "/\t/evil.example", "/%09/evil.example", "javascript:alert(1)", "http:/evil.example", " //evil.example"]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_no_open_redirect_after_sign_in(client, site, target):
    signup(client)
    post(client, "/logout")
    r = login(client, next=target)
    assert r.status_code == 303
    _assert_on_site(r.headers["location"])
    form = html(client.get("/login", params={"next": target}).text)
    _assert_on_site(form.find("input", name="next").attrs["value"])


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_no_open_redirect_after_sign_up(client, target):
    r = post(client, "/signup", {"email": "x@example.org", "name": "X", "password": PASSWORD, "next": target})
    _assert_on_site(r.headers["location"])
    _assert_on_site(html(client.get("/signup", params={"next": target}).text).find("input", name="next").attrs["value"])


def _assert_on_site(location: str) -> None:
    """Where a browser would go from this Location stays on this site (read the way browsers read it)."""
    assert location.startswith("/") and not any(ord(ch) < 33 for ch in location), repr(location)
    browser_view = location.replace("\\", "/")
    assert urlsplit(urljoin("http://testserver/now", browser_view)).netloc == "testserver", location


def test_safe_next_is_kept(client):
    signup(client)
    post(client, "/logout")
    assert login(client, next="/search?q=graph+neural").headers["location"] == "/search?q=graph+neural"


def test_back_redirect_ignores_other_sites(client):
    signup(client)
    r = post(client, f"/papers/{P1}/upvote", headers={"referer": "https://evil.example/papers/x"})
    assert r.headers["location"] == f"/papers/{P1}"


def test_reset_with_used_or_tampered_token_changes_nothing(client, site):
    signup(client)
    user = site.store.get_user_by_email("ada@example.org")
    token = site.links.reset_token(user)
    before = _snapshot(site)
    for bad in (token[:-3] + "xyz", token.replace(".", "", 1), "e30.e30.e30"):
        r = post(client, f"/reset/{bad}", {"password": "a new password!"})
        assert r.status_code == 403
        assert error_page(r.text)[1] == "This reset link is not valid. Ask for a new one."
    assert _snapshot(site) == before
    assert post(client, f"/reset/{token}", {"password": "a new password!"}).status_code == 303
    after = _snapshot(site)
    r = post(client, f"/reset/{token}", {"password": "another password"})
    assert r.status_code == 403 and "already used" in error_page(r.text)[1]
    assert _snapshot(site) == after
