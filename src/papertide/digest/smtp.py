"""Sending over SMTP with the configured host, port, TLS mode and credentials: one message, or a connection."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from papertide.config import Settings


class MailError(Exception):
    """The message could not be handed to the SMTP server."""


def connect(settings: Settings, timeout: float = 30.0) -> smtplib.SMTP:
    """An open, greeted (and if configured: encrypted, authenticated) SMTP connection. Raises smtplib/OS errors."""
    mode = settings.smtp_security.lower()
    if mode == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    try:
        if mode == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def send_message(settings: Settings, msg: EmailMessage, timeout: float = 30.0) -> None:
    if "From" not in msg:
        msg["From"] = settings.mail_from
    try:
        with connect(settings, timeout) as smtp:
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as e:
        raise MailError(f"could not send e-mail through {settings.smtp_host}:{settings.smtp_port}: {e}") from e
