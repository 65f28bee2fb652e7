"""Helpers of the e-mail digest tests: a real SMTP server on loopback with fault injection, a small site."""

from __future__ import annotations

import email
import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from email import policy
from pathlib import Path

from aiosmtpd.controller import Controller
from webutil import free_port

from papertide.config import Settings

DAY = "2025-05-26"  # a day of the bundled sample with 17 papers among the first 300
SECRET = "digest-test-secret"


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts, and can answer with faults.

    `faults` maps a hook ("mail", "rcpt", "data") to a function (n, address) -> reply or None, where n counts
    that command from 1 over the server's life. A message counts as delivered only when DATA gets 250.
    """

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.rcpts: list[str] = []
        self.faults: dict[str, Callable[[int, str], str | None]] = {}
        self.n = Counter()
        self.lock = threading.Lock()

    def _fault(self, hook: str, address: str) -> str | None:
        with self.lock:
            self.n[hook] += 1
            n = self.n[hook]
        f = self.faults.get(hook)
        return f(n, address) if f else None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self._fault("mail", address)
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._fault("rcpt", address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self._fault("data", ",".join(envelope.rcpt_tos))
        if reply:
            return reply
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(msg)
            self.rcpts.extend(envelope.rcpt_tos)
        return "250 OK"

    def per_address(self) -> Counter:
        with self.lock:
            return Counter(a.lower() for a in self.rcpts)

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"].lower() == address.lower()]

    def wait(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.messages) >= n, f"expected {n} message(s), got {len(self.messages)}"


class SmtpServer:
    def __init__(self, port: int | None = None):
        self.box = Mailbox()
        self.port = port or free_port()
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


class TlsMailbox(Mailbox):
    """A Mailbox that also notes, for each message it accepts, the session's TLS version (None: clear text) and
    the user it logged in as (None: no login)."""

    def __init__(self):
        super().__init__()
        self.sessions: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            auth = session.auth_data if session.authenticated else None
            login = auth.login.decode() if getattr(auth, "login", None) else None
            with self.lock:
                self.sessions.append({"tls": ssl_object.version() if ssl_object else None, "login": login})
        return reply


class Authenticator:
    """An aiosmtpd authenticator that accepts one user name and password and notes every attempt."""

    def __init__(self, user: str, password: str):
        self.user, self.password = user, password
        self.attempts: list[tuple[str, str, bool]] = []  # (mechanism, user name, accepted)

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.user.encode()
              and auth_data.password == self.password.encode())
        login = auth_data.login.decode("utf-8", "replace") if isinstance(auth_data, LoginPassword) else "?"
        self.attempts.append((mechanism, login, ok))
        # Not handled: aiosmtpd answers 235 or 535 itself, and keeps auth_data in the session.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def server_tls_context(ca, *names: str):
    """A server-side SSLContext with a certificate for `names` (default: 127.0.0.1) issued by a trustme CA."""
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(names or ("127.0.0.1",))).configure_cert(ctx)
    return ctx


class TlsSmtpServer(SmtpServer):
    """A real SMTP server on 127.0.0.1 that speaks TLS: mode "starttls" (offered, or required with
    require_starttls) or "tls" (implicit TLS from the first byte); `ca` is a trustme.CA, `cert_names` the names
    in its certificate. With `auth` (an Authenticator) it offers AUTH LOGIN and PLAIN - only over TLS unless
    auth_require_tls=False (aiosmtpd counts only STARTTLS as TLS there, so implicit TLS needs False)."""

    def __init__(self, ca, mode: str = "starttls", *, require_starttls: bool = False,
                 auth: Authenticator | None = None, auth_require_tls: bool = True, auth_exclude: tuple[str, ...] = (),
                 cert_names: tuple[str, ...] = ("127.0.0.1",), port: int | None = None):
        self.box = TlsMailbox()
        self.port = port or free_port()
        ctx = server_tls_context(ca, *cert_names)
        kw: dict = {}
        if auth is not None:
            kw.update(authenticator=auth, auth_require_tls=auth_require_tls,
                      auth_exclude_mechanism=list(auth_exclude))
        if mode == "starttls":
            kw.update(tls_context=ctx, require_starttls=require_starttls)
        elif mode == "tls":
            kw.update(ssl_context=ctx)
        else:
            raise ValueError(mode)
        self.controller = Controller(self.box, hostname="127.0.0.1", port=self.port, **kw)


def settings_for(home: Path, port: int, **kw) -> Settings:
    base = {"home": home, "secret_key": SECRET, "base_url": "http://testserver", "smtp_host": "127.0.0.1",
            "smtp_port": port, "mail_from": "papertide <digest@example.org>", "digest_rate": 0,
            "digest_retry_seconds": 0.02, "digest_lease_seconds": 1.5, "digest_max_attempts": 4, "digest_papers": 3}
    return Settings(**{**base, **kw})


def env_for(s: Settings) -> dict[str, str]:
    """The environment that makes a `papertide` subprocess use these settings."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for name in ("home", "secret_key", "base_url", "smtp_host", "smtp_port", "mail_from", "digest_rate",
                 "digest_retry_seconds", "digest_lease_seconds", "digest_max_attempts"):
        env[f"PAPERTIDE_{name.upper()}"] = str(getattr(s, name))
    return env


def smtp_env_for(s: Settings) -> dict[str, str]:
    """env_for, plus the SMTP security, login and CA file settings (those that are set)."""
    env = env_for(s)
    for name in ("smtp_security", "smtp_user", "smtp_password", "smtp_ca_file"):
        value = getattr(s, name)
        if value is not None:
            env[f"PAPERTIDE_{name.upper()}"] = str(value)
    return env


def add_subscribers(store, n: int, prefix: str = "reader", confirmed: bool = True, **prefs) -> list[str]:
    from papertide.store.digest import Preferences

    out = []
    for i in range(n):
        addr = f"{prefix}{i}@example.org"
        sub = store.create_subscriber(addr, f"key{i}", prefs=Preferences(**{"max_papers": 3, **prefs}))
        if confirmed:
            store.confirm_subscriber(sub.id)
        out.append(addr)
    return out


def copy_home(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- fixtures (imported by the test_digest_* modules) --------------------------------------------------
import pytest


@pytest.fixture(scope="session")
def digest_template(tmp_path_factory, sample_papers):
    """A home with a store of the first 300 sample papers (no index: digests need none)."""
    from papertide.store import SqliteStore

    root = tmp_path_factory.mktemp("digest-template")
    store = SqliteStore(root / "papertide.db")
    store.upsert_papers(sample_papers[:300])
    store.close()
    return root


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def dhome(tmp_path, digest_template):
    return copy_home(digest_template, tmp_path / "home")


@pytest.fixture
def dstore(dhome):
    from papertide.store import SqliteStore

    store = SqliteStore(dhome / "papertide.db")
    yield store
    store.close()
