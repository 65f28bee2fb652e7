"""SMTP over TLS, for real: an aiosmtpd server on loopback speaking STARTTLS or implicit TLS, with AUTH LOGIN /
PLAIN, and certificates from a CA made at test time (trustme), which papertide trusts through
PAPERTIDE_SMTP_CA_FILE - never by turning verification off. Covered: digests and single messages delivered over
each TLS mode, logins, and the settings mistakes that must stop a run with one clear line (exit code 2) instead of
failing every message: a wrong password, an untrusted certificate, a server that requires STARTTLS."""

from __future__ import annotations

import subprocess
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import digestutil
import pytest
import trustme
from digestutil import (
    DAY,
    Authenticator,
    SmtpServer,
    TlsSmtpServer,
    add_subscribers,
    settings_for,
    smtp_env_for,
)

from papertide.digest.deliver import run_digest
from papertide.digest.smtp import MailSetupError, connect, send_message

digest_template, dhome, dstore = digestutil.digest_template, digestutil.dhome, digestutil.dstore
CLI = str(Path(__import__("sys").executable).parent / "papertide")
D = date.fromisoformat(DAY)
USER, PASSWORD = "digest@example.org", "correct horse battery staple"


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def _cli(s) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "digest", "send", "--frequency", "daily", "--date", DAY], check=False,
                          env=smtp_env_for(s), capture_output=True, text=True, timeout=120)


def _one_clear_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 2 ("could not run") with the reason on stderr as a one-line error, and no traceback anywhere."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    text = " ".join(r.stderr.split())  # rich wraps long lines
    assert text.startswith("error: "), r.stderr
    for needle in needles:
        assert needle in text, (needle, r.stderr)
    return text


def _mail(to: str = "reader@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = "hello over TLS"
    msg.set_content("a test message\n")
    return msg


# -- delivered -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_digest_over_starttls_with_login(dhome, dstore, ca, ca_file, mechanism):
    auth = Authenticator(USER, PASSWORD)
    other = "PLAIN" if mechanism == "LOGIN" else "LOGIN"
    with TlsSmtpServer(ca, "starttls", require_starttls=True, auth=auth, auth_exclude=(other,)) as server:
        s = settings_for(dhome, server.port, smtp_security="starttls", smtp_user=USER, smtp_password=PASSWORD,
                         smtp_ca_file=ca_file)
        due = add_subscribers(dstore, 3)
        rep = run_digest(dstore, s, "daily", D)
        assert (rep.sent, rep.failed, rep.exit_code) == (3, 0, 0)
        assert server.box.per_address() == {a: 1 for a in due}
        # Every message went over TLS, logged in as USER, and one connection (one login) carried them all.
        assert all(x["tls"] in ("TLSv1.2", "TLSv1.3") for x in server.box.sessions), server.box.sessions
        assert [x["login"] for x in server.box.sessions] == [USER] * 3
        assert auth.attempts == [(mechanism, USER, True)]


@pytest.mark.parametrize("login", [False, True])
def test_digest_over_implicit_tls(dhome, dstore, ca, ca_file, login):
    auth = Authenticator(USER, PASSWORD) if login else None
    # aiosmtpd's auth_require_tls only knows STARTTLS; this connection is TLS from its first byte.
    with TlsSmtpServer(ca, "tls", auth=auth, auth_require_tls=False) as server:
        creds = {"smtp_user": USER, "smtp_password": PASSWORD} if login else {}
        s = settings_for(dhome, server.port, smtp_security="tls", smtp_ca_file=ca_file, **creds)
        due = add_subscribers(dstore, 2)
        rep = run_digest(dstore, s, "daily", D)
        assert (rep.sent, rep.exit_code) == (2, 0)
        assert server.box.per_address() == {a: 1 for a in due}
        assert all(x["tls"] in ("TLSv1.2", "TLSv1.3") for x in server.box.sessions), server.box.sessions
        assert [x["login"] for x in server.box.sessions] == ([USER] * 2 if login else [None] * 2)


def test_cli_sends_over_starttls_with_login(dhome, dstore, ca, ca_file):
    auth = Authenticator(USER, PASSWORD)
    with TlsSmtpServer(ca, "starttls", require_starttls=True, auth=auth) as server:
        s = settings_for(dhome, server.port, smtp_security="STARTTLS", smtp_user=USER, smtp_password=PASSWORD,
                         smtp_ca_file=ca_file)  # the mode is case-insensitive
        add_subscribers(dstore, 2)
        r = _cli(s)
        assert r.returncode == 0, r.stderr
        assert "sent 2, failed 0" in r.stdout
        assert len(server.box.sessions) == 2 and all(x["tls"] and x["login"] == USER for x in server.box.sessions)


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_single_message_over_tls(tmp_path, ca, ca_file, mode):
    """send_message: the path of confirmation, welcome and password-reset e-mails."""
    auth = Authenticator(USER, PASSWORD)
    with TlsSmtpServer(ca, mode, require_starttls=mode == "starttls", auth=auth,
                       auth_require_tls=mode == "starttls") as server:
        s = settings_for(tmp_path, server.port, smtp_security=mode, smtp_user=USER, smtp_password=PASSWORD,
                         smtp_ca_file=ca_file)
        send_message(s, _mail())
        server.box.wait(1)
        msg = server.box.messages[0]
        assert msg["Subject"] == "hello over TLS" and msg["From"] == "papertide <digest@example.org>"
        assert server.box.sessions[0]["tls"] and server.box.sessions[0]["login"] == USER


def test_password_reset_mail_over_starttls_with_login(client, site, ca, ca_file):
    from webutil import post, signup

    auth = Authenticator(USER, PASSWORD)
    with TlsSmtpServer(ca, "starttls", require_starttls=True, auth=auth) as server:
        site.settings = site.settings.model_copy(update={
            "smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_security": "starttls", "smtp_user": USER,
            "smtp_password": PASSWORD, "smtp_ca_file": ca_file, "mail_from": "papertide <noreply@example.org>"})
        signup(client)
        assert post(client, "/reset", {"email": "ada@example.org"}).status_code == 200
        server.box.wait(1)
        assert server.box.messages[0]["To"] == "ada@example.org"
        assert server.box.sessions[0]["tls"] and server.box.sessions[0]["login"] == USER
        # A wrong password: the member gets the polite 503, not an error page with a trace.
        site.settings = site.settings.model_copy(update={"smtp_password": "wrong"})
        r = post(client, "/reset", {"email": "ada@example.org"})
        assert r.status_code == 503 and "could not send the e-mail" in r.text
        assert len(server.box.messages) == 1


# -- refused, clearly ----------------------------------------------------------------------------------------
def test_wrong_password_stops_the_run_with_one_clear_error(dhome, dstore, ca, ca_file):
    auth = Authenticator(USER, PASSWORD)
    with TlsSmtpServer(ca, "starttls", require_starttls=True, auth=auth) as server:
        s = settings_for(dhome, server.port, smtp_security="starttls", smtp_user=USER, smtp_password="wrong",
                         smtp_ca_file=ca_file)
        add_subscribers(dstore, 4)
        r = _cli(s)
        _one_clear_error(r, f"refused the login of '{USER}'", "535", "PAPERTIDE_SMTP_PASSWORD",
                         "nothing was marked failed")
        assert server.box.messages == []
        # One connection's login (smtplib tries each mechanism once), not one per message and retry.
        assert 1 <= len(auth.attempts) <= 2 and not any(ok for _, _, ok in auth.attempts), auth.attempts
        # The edition is untouched: all four are still pending, with no attempt spent ...
        rep_counts = dstore.delivery_counts(dstore.ensure_edition("daily", D))
        assert (rep_counts.pending, rep_counts.failed, rep_counts.sent) == (4, 0, 0)
        # ... so once the password is fixed, the next run sends them all.
        r = _cli(s.model_copy(update={"smtp_password": PASSWORD}))
        assert r.returncode == 0, r.stderr
        assert "sent 4, failed 0" in r.stdout
        assert len(server.box.messages) == 4


def test_wrong_password_raises_a_setup_error(tmp_path, ca, ca_file):
    auth = Authenticator(USER, PASSWORD)
    with TlsSmtpServer(ca, "tls", auth=auth, auth_require_tls=False) as server:
        s = settings_for(tmp_path, server.port, smtp_security="tls", smtp_user="someone@example.org",
                         smtp_password=PASSWORD, smtp_ca_file=ca_file)
        with pytest.raises(MailSetupError, match="refused the login of 'someone@example.org': 535"):
            send_message(s, _mail())
        assert server.box.messages == []


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_untrusted_certificate_is_refused(dhome, dstore, ca_file, mode):
    stranger = trustme.CA()  # the server's certificate comes from a CA that PAPERTIDE_SMTP_CA_FILE does not name
    auth = Authenticator(USER, PASSWORD)
    with TlsSmtpServer(stranger, mode, auth=auth, auth_require_tls=mode == "starttls") as server:
        s = settings_for(dhome, server.port, smtp_security=mode, smtp_user=USER, smtp_password=PASSWORD,
                         smtp_ca_file=ca_file)
        add_subscribers(dstore, 2)
        _one_clear_error(_cli(s), f"certificate of the SMTP server 127.0.0.1:{server.port} is not trusted",
                         "unable to get local issuer certificate", "PAPERTIDE_SMTP_CA_FILE")
        assert server.box.messages == [] and auth.attempts == []  # the password never left
        # Without a CA file the system's CAs decide, and they do not know a test CA either.
        with pytest.raises(MailSetupError, match="not trusted.*PAPERTIDE_SMTP_CA_FILE"):
            connect(s.model_copy(update={"smtp_ca_file": None}))
        assert auth.attempts == []


def test_certificate_for_another_host_is_refused(tmp_path, ca, ca_file):
    with TlsSmtpServer(ca, "starttls", cert_names=("mail.example.org",)) as server:
        s = settings_for(tmp_path, server.port, smtp_security="starttls", smtp_ca_file=ca_file)
        with pytest.raises(MailSetupError, match="not trusted.*(mismatch|match)"):
            send_message(s, _mail())
        assert server.box.messages == []


def test_starttls_required_and_security_none_sends_nothing_in_clear(dhome, dstore, ca):
    with TlsSmtpServer(ca, "starttls", require_starttls=True) as server:
        s = settings_for(dhome, server.port)  # smtp_security none, the default
        add_subscribers(dstore, 3)
        _one_clear_error(_cli(s), "530", "STARTTLS", "PAPERTIDE_SMTP_SECURITY")
        assert server.box.messages == []
        counts = dstore.delivery_counts(dstore.ensure_edition("daily", D))
        assert (counts.pending, counts.failed) == (3, 0)
        with pytest.raises(MailSetupError, match="530"):
            send_message(s, _mail())


def test_login_with_security_none_and_auth_only_over_tls(tmp_path, ca):
    auth = Authenticator(USER, PASSWORD)
    with TlsSmtpServer(ca, "starttls", auth=auth) as server:  # offers AUTH only after STARTTLS
        s = settings_for(tmp_path, server.port, smtp_user=USER, smtp_password=PASSWORD)
        with pytest.raises(MailSetupError, match="does not offer AUTH.*starttls or tls"):
            send_message(s, _mail())
        assert auth.attempts == [] and server.box.messages == []


def test_password_is_never_sent_in_clear_to_another_host(tmp_path):
    s = settings_for(tmp_path, 25, smtp_host="mail.example.org", smtp_user=USER, smtp_password=PASSWORD)
    with pytest.raises(MailSetupError, match="clear text"):
        connect(s)  # refused before any connection is made


def test_starttls_setting_against_a_server_without_starttls(tmp_path, ca_file):
    with SmtpServer() as server:  # a plain server that never offers STARTTLS
        s = settings_for(tmp_path, server.port, smtp_security="starttls", smtp_ca_file=ca_file)
        with pytest.raises(MailSetupError, match="does not offer STARTTLS"):
            send_message(s, _mail())
        assert server.box.messages == []


def test_implicit_tls_setting_against_a_plain_server(tmp_path, ca_file):
    with SmtpServer() as server:
        s = settings_for(tmp_path, server.port, smtp_security="tls", smtp_ca_file=ca_file)
        with pytest.raises(MailSetupError, match="does not speak implicit TLS"):
            send_message(s, _mail())
        assert server.box.messages == []


def test_bad_settings_are_named(tmp_path):
    with pytest.raises(MailSetupError, match="PAPERTIDE_SMTP_SECURITY is 'ssl'; use none, starttls or tls"):
        connect(settings_for(tmp_path, 1, smtp_security="ssl"))
    with pytest.raises(MailSetupError, match="cannot load PAPERTIDE_SMTP_CA_FILE"):
        connect(settings_for(tmp_path, 1, smtp_security="tls", smtp_ca_file=tmp_path / "missing.pem"))
