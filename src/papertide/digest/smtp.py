"""Sending over SMTP with the configured host, port, TLS mode and credentials: one message, or a connection.

Certificates are always verified, against the system's trusted CAs or, if PAPERTIDE_SMTP_CA_FILE is set, against
that PEM bundle instead (a server with a certificate from your own CA). A password is never sent in clear text to
another machine: with PAPERTIDE_SMTP_SECURITY=none, a user name is only accepted for a loopback server.

Errors that no retry can cure - an untrusted certificate, a rejected login, a server that wants TLS the settings do
not give it - raise MailSetupError, which says which setting to look at; the digest run stops at the first one
instead of trying (and failing) every message, and every login, again.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from email.message import EmailMessage

from papertide.config import Settings

SECURITY_MODES = ("none", "starttls", "tls")


class MailError(Exception):
    """The message could not be handed to the SMTP server."""


class MailSetupError(MailError):
    """The SMTP settings do not work with this server (TLS, certificate, login): nothing can be sent until fixed."""


def _where(settings: Settings) -> str:
    return f"{settings.smtp_host}:{settings.smtp_port}"


def _loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def security_mode(settings: Settings) -> str:
    mode = settings.smtp_security.strip().lower()
    if mode not in SECURITY_MODES:
        raise MailSetupError(f"PAPERTIDE_SMTP_SECURITY is {settings.smtp_security!r}; use none, starttls or tls")
    return mode


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificate and host name checked, against smtp_ca_file if set (instead of the system's CAs)."""
    cafile = settings.smtp_ca_file
    try:
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as e:
        raise MailSetupError(f"cannot load PAPERTIDE_SMTP_CA_FILE {cafile}: {e}") from e


def connect(settings: Settings, timeout: float = 30.0) -> smtplib.SMTP:
    """An open, greeted (and if configured: encrypted, authenticated) SMTP connection.

    Raises MailSetupError for what only the settings can fix, smtplib/OS errors for the rest (worth a retry).
    """
    mode = security_mode(settings)
    where = _where(settings)
    if mode == "none" and settings.smtp_user and not _loopback(settings.smtp_host):
        raise MailSetupError(
            f"PAPERTIDE_SMTP_USER is set but PAPERTIDE_SMTP_SECURITY is none: the password would cross the network "
            f"to {where} in clear text; use starttls (port 587) or tls (port 465)"
        )
    context = tls_context(settings) if mode != "none" else None
    try:
        if mode == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                                  context=context)
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    except ssl.SSLCertVerificationError as e:
        raise _untrusted(settings, e) from e
    except ssl.SSLError as e:
        if e.reason == "WRONG_VERSION_NUMBER":  # a plain-text server answered the TLS handshake
            raise MailSetupError(
                f"{where} does not speak implicit TLS (PAPERTIDE_SMTP_SECURITY=tls, usually port 465); "
                f"for a server that offers STARTTLS (usually port 587) use starttls"
            ) from e
        raise
    try:
        if mode == "starttls":
            try:
                smtp.starttls(context=context)
            except smtplib.SMTPNotSupportedError as e:
                raise MailSetupError(
                    f"the SMTP server {where} does not offer STARTTLS (PAPERTIDE_SMTP_SECURITY=starttls); "
                    f"nothing was sent in clear text"
                ) from e
        if settings.smtp_user:
            _login(smtp, settings, mode)
    except ssl.SSLCertVerificationError as e:
        smtp.close()
        raise _untrusted(settings, e) from e
    except BaseException:
        smtp.close()
        raise
    return smtp


def _untrusted(settings: Settings, e: ssl.SSLCertVerificationError) -> MailSetupError:
    ca = (f"the CAs in PAPERTIDE_SMTP_CA_FILE ({settings.smtp_ca_file})" if settings.smtp_ca_file
          else "this machine's trusted CAs (if your own CA signed it, point PAPERTIDE_SMTP_CA_FILE at its certificate)")
    return MailSetupError(
        f"the certificate of the SMTP server {_where(settings)} is not trusted: "
        f"{e.verify_message or e.reason or e}; checked against {ca}"
    )


def _login(smtp: smtplib.SMTP, settings: Settings, mode: str) -> None:
    where = _where(settings)
    try:
        smtp.login(settings.smtp_user, settings.smtp_password or "")
    except smtplib.SMTPAuthenticationError as e:
        if not 500 <= e.smtp_code < 600:
            raise  # 4xx: a temporary failure of the server's, worth a retry
        reply = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        raise MailSetupError(
            f"the SMTP server {where} refused the login of {settings.smtp_user!r}: {e.smtp_code} {reply}; "
            f"check PAPERTIDE_SMTP_USER and PAPERTIDE_SMTP_PASSWORD"
        ) from e
    except smtplib.SMTPNotSupportedError as e:
        hint = "; it may offer it only over TLS: set PAPERTIDE_SMTP_SECURITY to starttls or tls" if mode == "none" else ""
        raise MailSetupError(f"the SMTP server {where} does not offer AUTH, but PAPERTIDE_SMTP_USER is set{hint}") from e
    except smtplib.SMTPException as e:
        if isinstance(e, smtplib.SMTPResponseException):
            raise
        raise MailSetupError(f"cannot log in to the SMTP server {where}: {e}") from e  # no common mechanism


def setup_problem(settings: Settings, e: BaseException) -> MailSetupError | None:
    """A reply to MAIL FROM that every message would get: 530, the server wants STARTTLS or a login first."""
    if isinstance(e, smtplib.SMTPSenderRefused) and e.smtp_code == 530:
        reply = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        return MailSetupError(
            f"the SMTP server {_where(settings)} will not take mail on this connection: 530 {reply}; "
            f"check PAPERTIDE_SMTP_SECURITY (now {settings.smtp_security}) and PAPERTIDE_SMTP_USER"
        )
    return None


def send_message(settings: Settings, msg: EmailMessage, timeout: float = 30.0) -> None:
    if "From" not in msg:
        msg["From"] = settings.mail_from
    try:
        with connect(settings, timeout) as smtp:
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as e:
        setup = setup_problem(settings, e)
        if setup is not None:
            raise setup from e
        raise MailError(f"could not send e-mail through {_where(settings)}: {e}") from e
