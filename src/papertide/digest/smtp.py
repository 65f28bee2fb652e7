"""Sending one message over SMTP with the configured host, port, TLS mode and credentials."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from papertide.config import Settings


class MailError(Exception):
    """The message could not be handed to the SMTP server."""


def send_message(settings: Settings, msg: EmailMessage, timeout: float = 30.0) -> None:
    if "From" not in msg:
        msg["From"] = settings.mail_from
    mode = settings.smtp_security.lower()
    try:
        if mode == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        with smtp:
            if mode == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as e:
        raise MailError(f"could not send e-mail through {settings.smtp_host}:{settings.smtp_port}: {e}") from e
