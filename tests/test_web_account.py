"""Accounts over HTTP: sign-up, sign-in, sign-out, password reset through a real SMTP server, profiles, API tokens."""

from __future__ import annotations

import email
import hashlib
import re
import time
from email import policy

import pytest
from aiosmtpd.controller import Controller
from webutil import (
    PASSWORD,
    error_page,
    flashes,
    free_port,
    html,
    login,
    post,
    second_client,
    signed_in_as,
    signup,
)

from papertide.web.security import verify_password


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def wait(self, n: int = 1, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.messages) >= n, f"expected {n} message(s), got {len(self.messages)}"
        return self.messages[n - 1]


@pytest.fixture
def mailbox(site):
    """A real SMTP server on loopback, and the site's settings pointing at it."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    site.settings = site.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": controller.port,
                                                    "mail_from": "papertide <noreply@example.org>"})
    yield box
    controller.stop()


def _reset_link(msg) -> str:
    body = msg.get_content()
    links = re.findall(r"http://testserver(/reset/\S+)", body)
    assert len(links) == 1, body
    return links[0]


# -- sign-up, sign-in, sign-out -----------------------------------------------------------------------
def test_signup_signs_in_and_stores_an_argon2_hash(client, site):
    r = signup(client, "Ada@Example.org", "  Ada   Lovelace ")
    assert r.headers["location"] == "/"
    page = client.get("/").text
    assert "Welcome, Ada Lovelace!" in flashes(page)
    assert signed_in_as(client) == "Ada Lovelace"
    user = site.store.get_user_by_email("ada@example.org")
    assert user.email == "ada@example.org" and user.name == "Ada Lovelace"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert verify_password(user.password_hash, PASSWORD)


@pytest.mark.parametrize(("form", "message"), [
    ({"email": "not-an-address", "name": "A", "password": PASSWORD}, "Enter a valid e-mail address."),
    ({"email": "a@example.org", "name": "  ", "password": PASSWORD}, "Enter a name to show beside your submissions."),
    ({"email": "a@example.org", "name": "A", "password": "short"}, "Use at least 10 characters."),
])
def test_signup_refusals_keep_the_form(client, site, form, message):
    r = post(client, "/signup", form)
    assert r.status_code == 400
    doc = html(r.text)
    assert doc.find(id="form-error").text == message
    assert doc.find("input", id="email").attrs["value"] == form["email"]
    assert doc.find("input", id="password").attrs.get("value") is None  # never echoed
    assert site.store.get_user_by_email(form["email"]) is None


def test_signup_with_a_taken_address(client):
    signup(client)
    other = second_client(client)
    r = post(other, "/signup", {"email": "ADA@example.org", "name": "Eve", "password": PASSWORD})
    assert r.status_code == 400
    assert "already exists" in html(r.text).find(id="form-error").text
    assert signed_in_as(other) is None


def test_signin_signout(client):
    signup(client)
    post(client, "/logout")
    assert signed_in_as(client) is None
    r = login(client, "ada@example.org", "wrong password!")
    assert r.status_code == 400
    assert html(r.text).find(id="form-error").text == "That e-mail address and password do not match an account."
    r = login(client, "nobody@example.org")
    assert r.status_code == 400  # the same answer for an unknown address
    assert html(r.text).find(id="form-error").text == "That e-mail address and password do not match an account."
    r = login(client, " ADA@example.org ", next="/library")
    assert (r.status_code, r.headers["location"]) == (303, "/library")
    assert signed_in_as(client) == "Ada"
    r = post(client, "/logout")
    assert (r.status_code, r.headers["location"]) == (303, "/")
    assert "You are signed out." in flashes(client.get("/").text)
    assert signed_in_as(client) is None


def test_signin_starts_a_new_session(client):
    client.get("/login")
    before = client.cookies.get("papertide_session")
    signup(client)
    assert client.cookies.get("papertide_session") != before


def test_pages_for_members_send_visitors_to_sign_in(client):
    for path in ("/submit", "/library"):
        r = client.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, f"/login?next={path}")
    page = client.get("/login?next=/library").text
    assert html(page).find("input", name="next").attrs["value"] == "/library"
    assert "Sign in to do that." in flashes(page)


# -- password reset through real e-mail ---------------------------------------------------------------
def test_password_reset_by_email(client, site, mailbox):
    signup(client)
    old_session = second_client(client)
    login(old_session)
    post(client, "/logout")
    r = post(client, "/reset", {"email": "ADA@example.org"})
    assert r.status_code == 200
    assert "a link to reset its password is on its way" in flashes(r.text)[0]
    msg = mailbox.wait()
    assert msg["To"] == "ada@example.org"
    assert msg["From"] == "papertide <noreply@example.org>"
    assert msg["Subject"] == "Reset your papertide password"
    link = _reset_link(msg)
    form = client.get(link)
    assert form.status_code == 200
    assert html(form.text).find("form", action=link) is not None
    r = post(client, link, {"password": "too short"})
    assert r.status_code == 400 and html(r.text).find(id="form-error").text == "Use at least 10 characters."
    r = post(client, link, {"password": "a brand new secret"})
    assert (r.status_code, r.headers["location"]) == (303, "/")
    assert signed_in_as(client) == "Ada"
    # The new password works, the old one does not, and sessions from before the reset are signed out.
    assert signed_in_as(old_session) is None
    assert login(second_client(client), password=PASSWORD).status_code == 400
    assert login(second_client(client), password="a brand new secret").status_code == 303
    # The link is single-use.
    r = client.get(link)
    assert r.status_code == 403
    assert error_page(r.text)[1] == "This reset link was already used. Ask for a new one if you need it."
    r = post(client, link, {"password": "yet another secret"})
    assert r.status_code == 403
    assert verify_password(site.store.get_user_by_email("ada@example.org").password_hash, "a brand new secret")


def test_password_reset_link_expires(client, mailbox, monkeypatch):
    import itsdangerous.timed

    signup(client)
    post(client, "/reset", {"email": "ada@example.org"})
    link = _reset_link(mailbox.wait())
    assert client.get(link).status_code == 200
    real = time.time

    class Later:  # an hour and a minute later, as itsdangerous sees it
        @staticmethod
        def time():
            return real() + 3660

    monkeypatch.setattr(itsdangerous.timed, "time", Later)
    r = client.get(link)
    assert r.status_code == 403
    assert error_page(r.text)[1] == "This reset link has expired. Ask for a new one."
    r = post(client, link, {"password": "a brand new secret"})
    assert r.status_code == 403


def test_password_reset_for_an_unknown_address_sends_nothing(client, mailbox):
    r = post(client, "/reset", {"email": "nobody@example.org"})
    assert r.status_code == 200
    assert "If nobody@example.org has an account" in flashes(r.text)[0]  # the same answer: no account discovery
    time.sleep(0.2)
    assert mailbox.messages == []


def test_password_reset_when_mail_cannot_be_sent(client, site):
    site.settings = site.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": free_port()})
    signup(client)
    r = post(client, "/reset", {"email": "ada@example.org"})
    assert r.status_code == 503
    assert "could not send the e-mail" in html(r.text).find(id="form-error").text
    # An address without an account gets the very same answer: an outage does not tell who has one.
    r = post(client, "/reset", {"email": "nobody@example.org"})
    assert r.status_code == 503
    assert "could not send the e-mail" in html(r.text).find(id="form-error").text


def test_tampered_reset_link_is_refused(client, site):
    signup(client)
    user = site.store.get_user_by_email("ada@example.org")
    token = site.links.reset_token(user)
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "garbage", token + "x"):
        r = client.get(f"/reset/{bad}")
        assert r.status_code == 403
        assert error_page(r.text)[1] == "This reset link is not valid. Ask for a new one."
    # A link signed with another key is not valid either.
    from papertide.web.security import Links

    forged = Links("another-key").reset_token(user)
    assert client.get(f"/reset/{forged}").status_code == 403


# -- profiles and API tokens --------------------------------------------------------------------------
def test_profile_lists_submissions_and_upvotes(client, site):
    signup(client)
    uid = site.store.get_user_by_email("ada@example.org").id
    post(client, "/submit", {"arxiv_id": "2503.11792"})
    post(client, "/papers/2503.11979/upvote")
    visitor = second_client(client)
    doc = html(visitor.get(f"/users/{uid}").text)
    assert doc.find("h1").text == "Ada"
    sections = {s.find("h2").text: s for s in doc.find_all("section") if s.find("h2")}
    assert [a.attrs["data-arxiv-id"] for a in sections["Submitted"].find_all("article")] == ["2503.11792"]
    assert [a.attrs["data-arxiv-id"] for a in sections["Upvoted"].find_all("article")] == ["2503.11979"]
    assert "API token" not in sections  # only the owner sees the token section
    assert visitor.get("/users/999").status_code == 404


def test_profile_leaves_out_hidden_papers(client, site):
    signup(client)
    uid = site.store.get_user_by_email("ada@example.org").id
    post(client, "/submit", {"arxiv_id": "2503.11792"})
    post(client, "/papers/2503.11979/upvote")
    for pid in ("2503.11792", "2503.11979"):
        site.store.set_hidden(site.store.doc_ids_for([pid])[pid], True)
    doc = html(second_client(client).get(f"/users/{uid}").text)
    assert doc.find_all("article") == []


def test_api_token_is_shown_once(client, site):
    signup(client)
    uid = site.store.get_user_by_email("ada@example.org").id
    profile = html(client.get(f"/users/{uid}").text)
    assert profile.find("section", id="api").find("button").text == "Create an API token"
    r = post(client, "/account/token")
    assert (r.status_code, r.headers["location"]) == (303, f"/users/{uid}#api")
    page = html(client.get(f"/users/{uid}").text)
    token = page.find("code", id="new-token").text
    assert token.startswith("pt_") and len(token) > 30
    assert page.find("section", id="api").find("button").text == "Replace my API token"
    # Stored only as a hash, and never shown again.
    assert site.store.get_user_by_token_hash(hashlib.sha256(token.encode()).hexdigest()).id == uid
    again = client.get(f"/users/{uid}").text
    assert token not in again and html(again).find("code", id="new-token") is None
    # A new token replaces the old one.
    post(client, "/account/token")
    token2 = html(client.get(f"/users/{uid}").text).find("code", id="new-token").text
    assert token2 != token
    from papertide.web.security import hash_api_token

    assert site.store.get_user_by_token_hash(hash_api_token(token)) is None
