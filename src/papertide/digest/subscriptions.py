"""Subscriptions: double opt-in, signed links for confirming, managing preferences and unsubscribing.

Links carry the subscriber id and its `link_key`, signed with the site's secret (itsdangerous). The
confirmation link expires (digest_confirm_hours); the preferences and unsubscribe links in digests do not
(an old digest's unsubscribe link must keep working), but die when the address is deleted or re-subscribes.
An address that never confirms receives exactly one e-mail: the confirmation.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from enum import Enum

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from papertide.config import Settings
from papertide.digest.compose import Links, Renderer
from papertide.digest.smtp import send_message
from papertide.store.digest import Preferences, Subscriber


class LinkError(Exception):
    """A digest link that is forged, expired, or for an address no longer subscribed."""


class Outcome(str, Enum):
    confirmation_sent = "confirmation_sent"
    already_pending = "already_pending"  # a confirmation was sent recently: nothing more is sent
    already_confirmed = "already_confirmed"


class DigestLinks:
    def __init__(self, settings: Settings):
        self._s = URLSafeTimedSerializer(settings.signing_key(), salt="papertide-digest")
        self.base = settings.base_url.rstrip("/")
        self.confirm_max_age = int(settings.digest_confirm_hours * 3600)

    def token(self, sub: Subscriber, purpose: str) -> str:
        return self._s.dumps({"s": sub.id, "k": sub.link_key}, salt=purpose)

    def read(self, store, token: str, purpose: str) -> Subscriber:
        max_age = self.confirm_max_age if purpose == "confirm" else None
        try:
            data = self._s.loads(token, salt=purpose, max_age=max_age)
        except SignatureExpired as e:
            raise LinkError("This confirmation link has expired. Subscribe again to get a new one.") from e
        except BadSignature as e:
            raise LinkError("This link is not valid. Copy the whole link from the e-mail.") from e
        sub = store.get_subscriber(int(data["s"]))
        if sub is None or not secrets.compare_digest(sub.link_key, str(data["k"])):
            raise LinkError("This link is no longer valid: the address was removed or subscribed again since.")
        return sub

    def confirm_url(self, sub: Subscriber) -> str:
        return f"{self.base}/digest/confirm/{self.token(sub, 'confirm')}"

    def links(self, sub: Subscriber) -> Links:
        t = self.token(sub, "manage")
        return Links(f"{self.base}/digest/preferences/{t}", f"{self.base}/digest/unsubscribe/{t}")


def new_link_key() -> str:
    return secrets.token_urlsafe(12)


def subscribe(store, settings: Settings, email: str, user_id: int | None = None) -> Outcome:
    """Start (or restart) a double opt-in for `email`, sending the one confirmation e-mail if due.

    Raises MailError if the confirmation could not be sent (the next request may then try again).
    """
    from papertide.store.community import Conflict

    sub = store.get_subscriber_by_email(email)
    if sub is None:
        try:
            sub = store.create_subscriber(email, new_link_key(), user_id, Preferences(max_papers=settings.digest_papers))
        except Conflict:  # a simultaneous request created it
            sub = store.get_subscriber_by_email(email)
    elif sub.status == "unsubscribed":
        store.restart_opt_in(sub.id, new_link_key())
        sub = store.get_subscriber(sub.id)
    if sub.status == "confirmed":
        return Outcome.already_confirmed
    cutoff = datetime.now(UTC) - timedelta(hours=settings.digest_confirm_hours)
    if not store.take_confirmation_slot(sub.id, cutoff.isoformat(timespec="seconds")):
        return Outcome.already_pending
    links, renderer = DigestLinks(settings), Renderer(settings)
    text, html = renderer.render("confirm", email=sub.email, confirm_url=links.confirm_url(sub),
                                 hours=int(settings.digest_confirm_hours))
    msg = renderer.message(sub.email, f"Confirm your {settings.site_name} digest subscription", text, html, None)
    try:
        send_message(settings, msg)
    except Exception:
        store.release_confirmation_slot(sub.id)
        raise
    return Outcome.confirmation_sent


def confirm(store, settings: Settings, sub: Subscriber) -> bool:
    """pending -> confirmed, and the welcome e-mail. False (and no e-mail) if it was already confirmed.

    The welcome is best effort: the subscription stands even if the SMTP server is down (MailError is raised
    after the state change, for the caller to report).
    """
    if not store.confirm_subscriber(sub.id):
        return False
    sub = store.get_subscriber(sub.id)
    links, renderer = DigestLinks(settings), Renderer(settings)
    own = links.links(sub)
    text, html = renderer.render("welcome", email=sub.email, prefs=sub.prefs, preferences_url=own.preferences,
                                 unsubscribe_url=own.unsubscribe)
    send_message(settings, renderer.message(sub.email, f"Welcome to the {settings.site_name} digest", text, html, own))
    return True
