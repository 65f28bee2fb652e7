"""Passwords (argon2id), CSRF tokens, signed e-mail links, API tokens and rate limits for the site."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from papertide.config import parse_rate
from papertide.store.community import User

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory defaults

MIN_PASSWORD = 10
RESET_MAX_AGE_S = 3600


class WebError(Exception):
    """A refusal with an HTTP status and a message fit to show the user."""

    status = 400
    title = "Bad request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(WebError):
    status, title = 404, "Not found"


class Forbidden(WebError):
    status, title = 403, "Forbidden"


class Unauthorized(WebError):
    status, title = 401, "Sign in required"


class RateLimited(WebError):
    status, title = 429, "Slow down"

    def __init__(self, message: str, retry_after: int = 60):
        super().__init__(message)
        self.retry_after = retry_after


class CsrfError(Forbidden):
    title = "Form expired"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY_HASH = hash_password("papertide: equalises time for unknown e-mail addresses")


def burn_verify() -> None:
    """Spend the time of one verification, so a sign-in for an unknown address takes as long as a wrong password."""
    verify_password(_DUMMY_HASH, "x")


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"Use at least {MIN_PASSWORD} characters."
    if len(password) > 1024:
        return "That password is too long."
    return None


def session_fingerprint(user: User) -> str:
    """Changes when the password does, which signs out every other session after a reset."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected and given and hmac.compare_digest(expected, given))


def new_api_token() -> tuple[str, str]:
    """A fresh API token and the hash that is stored (the token is shown to the user once)."""
    token = "pt_" + secrets.token_urlsafe(32)
    return token, hash_api_token(token)


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Links:
    """Signed, expiring tokens for links sent by e-mail (password reset)."""

    def __init__(self, secret: str):
        self._s = URLSafeTimedSerializer(secret, salt="papertide-email-link")

    def reset_token(self, user: User) -> str:
        # Binding the password fingerprint makes the link single-use: it dies once the password changes.
        return self._s.dumps({"u": user.id, "p": session_fingerprint(user)}, salt="reset")

    def read_reset(self, token: str, max_age: int = RESET_MAX_AGE_S) -> tuple[int, str]:
        try:
            data = self._s.loads(token, salt="reset", max_age=max_age)
        except SignatureExpired as e:
            raise Forbidden("This reset link has expired. Ask for a new one.") from e
        except BadSignature as e:
            raise Forbidden("This reset link is not valid. Ask for a new one.") from e
        return int(data["u"]), str(data["p"])


def check_rate(store, key: str, rate: str, what: str) -> None:
    """Count one attempt at `what` under `key`; refuse with 429 beyond the configured rate."""
    hits, seconds = parse_rate(rate)
    if not store.hit_rate_limit(key, hits, seconds):
        retry = max(1, int(seconds - time.time() % seconds))  # the counters use fixed windows
        minutes = max(1, -(-retry // 60))
        raise RateLimited(f"Too many {what}. Please wait {minutes} minute{'s' * (minutes > 1)} and try again.", retry)
