"""The digest through the site: subscribe from the footer, confirm from the e-mail a real SMTP server received,
get a digest, change preferences and unsubscribe in one click - following the links in the messages."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime

import digestutil
import pytest
from digestutil import DAY, add_subscribers, settings_for
from fastapi.testclient import TestClient
from webutil import csrf_of, html, post, signup

from papertide.digest.deliver import run_digest

digest_template, dhome, smtp = digestutil.digest_template, digestutil.dhome, digestutil.smtp
D = date.fromisoformat(DAY)


@pytest.fixture
def services(dhome, smtp):
    from papertide.web.services import build_services

    svc = build_services(settings_for(dhome, smtp.port), load_engine=False)
    yield svc
    svc.close()


@pytest.fixture
def client(services):
    from papertide.web import create_app

    with TestClient(create_app(services=services), base_url="http://testserver") as c:
        yield c


def _path(url: str) -> str:
    assert url.startswith("http://testserver/"), url
    return url[len("http://testserver"):]


def _links(msg) -> list[str]:
    return re.findall(r"http://testserver/\S+", msg.get_body(("plain",)).get_content())


def _subscribe(client, email="ada@example.org"):
    page = client.get("/").text
    form = html(page).find("form", action="/digest/subscribe")
    assert form is not None, "no subscribe form in the footer"
    return client.post("/digest/subscribe", data={"email": email, "csrf": csrf_of(page)})


def _confirm(client, msg):
    link = next(u for u in _links(msg) if "/digest/confirm/" in u)
    page = client.get(_path(link))
    assert page.status_code == 200 and "Yes, subscribe me" in page.text
    return client.post(_path(link), data={"csrf": csrf_of(page.text)}, follow_redirects=False)


def test_subscribe_confirm_digest_preferences_unsubscribe(client, services, smtp):
    store, box = services.store, smtp.box
    r = _subscribe(client, "Ada@Example.org")
    assert r.status_code == 200 and "Check your inbox" in r.text
    box.wait(1)
    confirm_msg = box.messages[0]
    assert confirm_msg["To"] == "ada@example.org" and "Confirm" in confirm_msg["Subject"]
    assert confirm_msg.get_content_type() == "multipart/alternative"
    assert "List-Unsubscribe" not in confirm_msg  # nothing to unsubscribe from yet
    assert store.get_subscriber_by_email("ada@example.org").status == "pending"
    # Unconfirmed: a digest run sends nothing, and asking again sends no second confirmation.
    assert run_digest(store, services.settings, "daily", D).sent == 0
    assert _subscribe(client, "ada@example.org").status_code == 200
    time.sleep(0.2)
    assert len(box.messages) == 1

    r = _confirm(client, confirm_msg)
    assert r.status_code == 303 and "/digest/preferences/" in r.headers["location"]
    box.wait(2)
    welcome = box.messages[1]
    assert welcome["Subject"].startswith("Welcome") and welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert store.get_subscriber_by_email("ada@example.org").status == "confirmed"

    # Preferences, from the link in the e-mail, without signing in.
    prefs_url = next(u for u in _links(welcome) if "/digest/preferences/" in u)
    page = client.get(_path(prefs_url))
    assert page.status_code == 200
    for_you = html(page.text).find("input", name="for_you")
    assert for_you is not None and "disabled" in for_you.attrs
    r = client.post(_path(prefs_url), data={"csrf": csrf_of(page.text), "frequency": "daily",
                                            "categories": "cs.CL", "keywords": "", "max_papers": "2"},
                    follow_redirects=False)
    assert r.status_code == 303
    prefs = store.get_subscriber_by_email("ada@example.org").prefs
    assert (prefs.categories, prefs.max_papers) == (("cs.CL",), 2)

    rep = run_digest(store, services.settings, "daily", D)
    assert rep.sent == 1
    box.wait(3)
    digest = box.messages[2]
    _check_digest_mime(digest)
    body = digest.get_body(("html",)).get_content()
    papers = re.findall(r'href="http://testserver(/papers/[^"]+)"', body)
    assert len(dict.fromkeys(papers)) == 2
    for p in dict.fromkeys(papers):  # the links work, and the papers are the subscriber's category
        r = client.get(p)
        assert r.status_code == 200, p
        arxiv_id = p.removeprefix("/papers/")
        assert "cs.CL" in store.get_paper(arxiv_id).categories

    # One-click unsubscribe: GET changes nothing; the RFC 8058 POST (no CSRF token, no cookies) does.
    unsub = re.match(r"<([^>]+)>", digest["List-Unsubscribe"]).group(1)
    assert f'href="{unsub}"' in body  # the visible link is the same one-click link
    page = client.get(_path(unsub))
    assert page.status_code == 200 and store.get_subscriber_by_email("ada@example.org").status == "confirmed"
    stranger = TestClient(client.app, base_url="http://testserver")
    r = stranger.post(_path(unsub), content=b"List-Unsubscribe=One-Click",
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    assert store.get_subscriber_by_email("ada@example.org").status == "unsubscribed"
    # Unsubscribed: nothing more, not even from a later edition.
    rep = run_digest(store, services.settings, "weekly", D)
    assert rep.sent == 0 and len(box.messages) == 3


def _check_digest_mime(msg) -> None:
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["List-Unsubscribe"].startswith("<http://testserver/digest/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["From"] == "papertide <digest@example.org>" and msg["Message-ID"].startswith("<digest.daily.")
    body = msg.get_body(("html",)).get_content()
    assert "<script" not in body.lower() and "<img" not in body.lower()  # no scripts, no tracking pixels
    assert 'max-width:600px' in body and "<table" in body
    text = msg.get_body(("plain",)).get_content()
    assert "Unsubscribe (one click): http://testserver/digest/unsubscribe/" in text


def test_digest_papers_have_title_authors_abstract_and_code(dhome, smtp):
    from papertide.store import SqliteStore

    store = SqliteStore(dhome / "papertide.db")
    try:
        add_subscribers(store, 1, max_papers=20)
        run_digest(store, settings_for(dhome, smtp.port), "daily", D)
        msg = smtp.box.messages[0]
        ids = [a.removeprefix("/papers/") for a in dict.fromkeys(
            re.findall(r'href="http://testserver(/papers/[^"]+)"', msg.get_body(("html",)).get_content()))]
        assert len(ids) == 17  # every paper of the day, in trending order
        text = msg.get_body(("plain",)).get_content()
        with_code = [i for i in ids if store.get_paper(i).code_urls]
        assert with_code, "the sample day has papers with code"
        for i in ids[:5]:
            p = store.get_paper(i)
            assert " ".join(p.title.split()) in text and p.authors[0] in text
        assert f"Code: {store.get_paper(with_code[0]).code_urls[0]}" in text
    finally:
        store.close()


def test_posts_need_csrf_except_one_click_unsubscribe(client, services):
    assert client.post("/digest/subscribe", data={"email": "a@example.org"}).status_code == 403
    sub = services.store.create_subscriber("b@example.org", "k")
    from papertide.digest.subscriptions import DigestLinks

    links = DigestLinks(services.settings).links(sub)
    r = client.post(_path(links.preferences), data={"frequency": "weekly", "max_papers": "5"})
    assert r.status_code == 403 and services.store.get_subscriber(sub.id).prefs.frequency == "daily"
    forged = _path(links.unsubscribe)[:-3] + "xyz"
    assert client.post(forged, content=b"List-Unsubscribe=One-Click").status_code == 403
    assert services.store.get_subscriber(sub.id).status == "pending"


def test_bad_preferences_are_refused_with_the_form_kept(client, services):
    from papertide.digest.subscriptions import DigestLinks

    sub = services.store.create_subscriber("c@example.org", "k")
    url = _path(DigestLinks(services.settings).links(sub).preferences)
    page = client.get(url).text
    r = client.post(url, data={"csrf": csrf_of(page), "frequency": "daily", "categories": "not a/category",
                               "max_papers": "3"})
    assert r.status_code == 400 and "not an arXiv category" in r.text
    r = client.post(url, data={"csrf": csrf_of(page), "frequency": "daily", "max_papers": "500"})
    assert r.status_code == 400 and "between 1 and 50" in r.text


def test_subscribe_is_rate_limited(dhome, smtp):
    from papertide.web import create_app
    from papertide.web.services import build_services

    svc = build_services(settings_for(dhome, smtp.port, digest_subscribe_rate="2/3600"), load_engine=False)
    try:
        with TestClient(create_app(services=svc), base_url="http://testserver") as c:
            codes = [_subscribe(c, f"r{i}@example.org").status_code for i in range(3)]
        assert codes == [200, 200, 429]
    finally:
        svc.close()


def test_expired_confirmation_link_is_refused(client, services, smtp, monkeypatch):
    from itsdangerous import TimestampSigner

    from papertide.digest.subscriptions import DigestLinks

    sub = services.store.create_subscriber("late@example.org", "k")
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 3 * 86400)
    url = DigestLinks(services.settings).confirm_url(sub)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    r = client.get(_path(url))
    assert r.status_code == 403 and "expired" in r.text


def test_signed_in_profile_offers_the_digest(client):
    signup(client, "ada@example.org", "Ada")
    me = html(client.get("/").text).find("a", cls="me").attrs["href"]
    page = html(client.get(me).text)
    form = page.find("form", action="/digest/subscribe")
    assert form is not None
    box = page.find("input", id="digest-profile-email")
    assert box is not None and box.attrs["value"] == "ada@example.org"
    r = post(client, "/digest/subscribe", {"email": "ada@example.org"})
    assert r.status_code == 200


def test_serve_runs_the_schedule(dhome, smtp):
    from papertide.web import create_app
    from papertide.web.digest import due_runs, run_schedule
    from papertide.web.services import build_services

    s = settings_for(dhome, smtp.port, digest_schedule_hour=6, digest_weekly_day=0)
    monday_7 = datetime(2025, 5, 26, 7, tzinfo=UTC)
    assert due_runs(s, datetime(2025, 5, 26, 5, tzinfo=UTC), None) == []
    assert due_runs(s, monday_7, None) == ["daily", "weekly"]
    assert due_runs(s, datetime(2025, 5, 27, 7, tzinfo=UTC), "2025-05-26") == ["daily"]
    assert due_runs(s, monday_7, "2025-05-26") == []
    svc = build_services(s, load_engine=False)
    try:
        add_subscribers(svc.store, 2)
        reports = run_schedule(svc, monday_7)
        assert [r.frequency for r in reports] == ["daily", "weekly"] and reports[0].sent == 2
        assert run_schedule(svc, monday_7) == []  # once a day
        # And the app's lifespan runs it by itself: a new subscriber, a schedule hour that has passed.
        svc.store.set_state("digest:scheduled", None)
        add_subscribers(svc.store, 1, prefix="new")
        now = datetime.now(UTC)
        svc.settings = s.model_copy(update={"digest_schedule_hour": 0})
        with TestClient(create_app(services=svc), base_url="http://testserver"):
            deadline = time.monotonic() + 10
            while not smtp.box.to("new0@example.org") and time.monotonic() < deadline:
                time.sleep(0.05)
        assert len(smtp.box.to("new0@example.org")) == 1
        assert svc.store.get_state("digest:scheduled") == now.date().isoformat()
    finally:
        svc.close()


def test_one_worker_of_a_host_runs_the_schedule(dhome, smtp):
    """Each `serve` worker has the schedule loop; only the one holding the home's lock runs it, and when
    that one goes another takes over."""
    from papertide.web import create_app
    from papertide.web.digest import scheduler_lock
    from papertide.web.services import build_services

    s = settings_for(dhome, smtp.port, digest_schedule_hour=0)
    held = scheduler_lock(s.home)  # another worker of this host holds the lock
    assert held is not None and scheduler_lock(s.home) is None
    svc = build_services(s, load_engine=False)
    try:
        add_subscribers(svc.store, 1, prefix="w")
        with TestClient(create_app(services=svc), base_url="http://testserver"):
            time.sleep(1.5)  # its loop has checked: the lock is taken, so it sends nothing
            assert smtp.box.to("w0@example.org") == []
            assert svc.store.get_state("digest:scheduled") is None
        held.close()  # that worker exits: the next to check takes over
        with TestClient(create_app(services=svc), base_url="http://testserver"):
            deadline = time.monotonic() + 10
            while not smtp.box.to("w0@example.org") and time.monotonic() < deadline:
                time.sleep(0.05)
        assert len(smtp.box.to("w0@example.org")) == 1
    finally:
        svc.close()
