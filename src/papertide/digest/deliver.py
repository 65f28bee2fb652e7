"""Delivering an edition: a resumable job over the store's (subscriber, edition) rows, sent over SMTP.

Each run claims a few pending rows at a time with a lease (an IMMEDIATE transaction, so two runs never
hold the same row), sends each message, and records the outcome at once:

* accepted (250 to DATA)            -> sent, with the papers it carried (they are never sent to that address again)
* 4xx, lost or refused connection   -> pending again after a backoff (digest_retry_seconds, doubling), up to
                                       digest_max_attempts tries; then failed, and the next run tries afresh
* 5xx to the recipient or the data  -> failed for good (permanent); the run goes on with the others
* what only the settings can fix    -> MailSetupError (untrusted certificate, login refused, 530 STARTTLS
                                       required...): the run stops at once, leaving its rows pending and their
                                       attempts untouched, rather than failing every message and login in turn

A killed run's claims come back when their lease (digest_lease_seconds) runs out; the next run sends them.

Exactly once, honestly: SMTP has no idempotency key. A message is recorded as sent right after the server
accepts it (one commit, nothing else in between), so a crash can only duplicate the one message whose
acceptance arrived in that window of well under a millisecond. Every attempt at a (subscriber, edition)
carries the same Message-ID, which lets mail systems that drop duplicate Message-IDs hide even that copy.
A crash anywhere else - before DATA is accepted, or between messages - loses nothing and duplicates nothing.
"""

from __future__ import annotations

import logging
import smtplib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage

from papertide.config import Settings
from papertide.digest.compose import (
    Composer,
    EditionPeriod,
    Renderer,
    default_day,
    edition_period,
    envelope_address,
)
from papertide.digest.smtp import MailSetupError, connect, setup_problem
from papertide.digest.subscriptions import DigestLinks
from papertide.store.digest import Claim, DeliveryCounts

log = logging.getLogger(__name__)

CLAIM_BATCH = 10  # rows claimed per transaction: few enough that a killed run strands little
POLL_SECONDS = 0.5  # how often a run waiting on backoffs or another run's leases looks again
MAX_BACKOFF_SECONDS = 3600.0
SMTP_TIMEOUT = 30.0


class TemporaryFailure(Exception):
    """Worth trying again later: a 4xx reply, a refused or dropped connection, a timeout."""


class PermanentFailure(Exception):
    """The server refused this message or recipient for good (5xx)."""


class Mailer:
    """One SMTP connection reused across messages, reopened after any error."""

    def __init__(self, settings: Settings, timeout: float = SMTP_TIMEOUT):
        self.settings = settings
        self.timeout = timeout
        self.sender = envelope_address(settings.mail_from)
        self._smtp: smtplib.SMTP | None = None

    def send(self, msg: EmailMessage, to: str) -> None:
        """Raises PermanentFailure or TemporaryFailure for this message, MailSetupError when no message can go."""
        try:
            if self._smtp is None:
                self._smtp = connect(self.settings, self.timeout)
            self._smtp.send_message(msg, self.sender, [to])
        except MailSetupError:
            self.close()
            raise
        except smtplib.SMTPRecipientsRefused as e:
            self.close()
            code, reply = next(iter(e.recipients.values()))
            raise _classify(code, reply, "recipient refused") from e
        except smtplib.SMTPDataError as e:
            self.close()
            raise _classify(e.smtp_code, e.smtp_error, "message refused") from e
        except smtplib.SMTPResponseException as e:  # greeting, MAIL FROM, AUTH: the server's problem, not theirs
            self.close()
            setup = setup_problem(self.settings, e)
            if setup is not None:
                raise setup from e
            raise TemporaryFailure(f"{e.smtp_code} {_text(e.smtp_error)}") from e
        except (smtplib.SMTPException, OSError) as e:
            self.close()
            raise TemporaryFailure(f"connection: {e}") from e

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _classify(code: int, reply: bytes | str, what: str) -> Exception:
    reason = f"{what}: {code} {_text(reply)}"
    return PermanentFailure(reason) if 500 <= code < 600 else TemporaryFailure(reason)


class Pacer:
    """At most `rate` messages per second (0: no limit), spaced evenly."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if self._next > now:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


@dataclass
class RunReport:
    frequency: str
    edition: date
    planned: int = 0  # deliveries this run added to the edition
    sent: int = 0  # by this run
    failed: int = 0  # by this run, for good or out of attempts
    skipped: int = 0  # nothing new for them, or no longer subscribed
    retried: int = 0  # temporary failures this run retried
    compositions: int = 0  # distinct paper filters composed
    seconds: float = 0.0
    edition_counts: DeliveryCounts = field(default_factory=DeliveryCounts)

    @property
    def exit_code(self) -> int:
        """0: sent and nothing failed; 1: some failed; 3: nothing was due (the cron-friendly contract)."""
        if self.failed:
            return 1
        return 0 if self.sent else 3


def backoff(settings: Settings, attempts: int) -> float:
    return min(settings.digest_retry_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def run_digest(store, settings: Settings, frequency: str, day: date | None = None, *,
               mailer: Mailer | None = None, run_id: str | None = None,
               clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
               personal: Callable[[int], Sequence[int]] | None = None) -> RunReport:
    """Send the (frequency, day) edition to every due subscriber; safe to re-run and to run twice at once."""
    started = time.monotonic()
    if day is None:
        day = default_day(frequency, store.latest_day(False), date.today())
    period = edition_period(frequency, day)
    edition = store.ensure_edition(frequency, period.key)
    report = RunReport(frequency, period.key)
    report.planned = store.plan_deliveries(edition)
    run_id = run_id or uuid.uuid4().hex
    own_mailer = mailer is None
    mailer = mailer or Mailer(settings)
    sender = _Sender(store, settings, period, mailer, run_id, report, clock, personal)
    lease = settings.digest_lease_seconds
    try:
        while True:
            claims = store.claim_deliveries(edition, run_id, CLAIM_BATCH, lease, clock())
            if not claims:
                nxt = store.next_pending(edition)
                if nxt is None:
                    break
                # Backoffs of ours, or rows another (live or killed) run holds: look again shortly.
                sleep(min(max(nxt - clock(), 0.01), POLL_SECONDS))
                continue
            for i, claim in enumerate(claims):
                if clock() > claim.lease_until - lease / 2:  # never work on a row whose lease could lapse meanwhile
                    store.release_claims(run_id, claims[i:])
                    break
                sender.handle(claim)
    finally:
        if own_mailer:
            mailer.close()
        store.release_claims(run_id)
    report.compositions = sender.compositions
    report.seconds = time.monotonic() - started
    report.edition_counts = store.delivery_counts(edition)
    return report


class _Sender:
    def __init__(self, store, settings: Settings, period: EditionPeriod, mailer: Mailer, run_id: str,
                 report: RunReport, clock: Callable[[], float], personal=None):
        self.store, self.settings, self.period, self.mailer = store, settings, period, mailer
        self.personal = personal
        self.run_id, self.report, self.clock = run_id, report, clock
        self.links = DigestLinks(settings)
        self.renderer = Renderer(settings)
        self.pacer = Pacer(settings.digest_rate)
        self._composer: Composer | None = None

    @property
    def compositions(self) -> int:
        return self._composer.compositions if self._composer else 0

    def handle(self, claim: Claim) -> None:
        store, sub = self.store, claim.subscriber
        if self._composer is None:  # built on the first due message: a run with nothing due reads no papers
            self._composer = Composer(store, self.period, personal=self.personal)
        ids = self._composer.papers_for(sub)
        if not ids:
            store.mark_done(claim, self.run_id, "skipped", "nothing new")
            self.report.skipped += 1
            return
        papers = store.get_papers(ids)
        chosen = [papers[d] for d in ids if d in papers]
        msg = self.renderer.digest(sub, self.period, chosen, self.links.links(sub))
        self.pacer.wait()
        try:
            self.mailer.send(msg, sub.email)
        except PermanentFailure as e:
            log.warning("digest to %s failed for good: %s", sub.email, e)
            store.mark_done(claim, self.run_id, "failed", str(e), permanent=True)
            self.report.failed += 1
            return
        except TemporaryFailure as e:
            status = store.mark_retry(claim, self.run_id, str(e), self.clock() + backoff(self.settings, claim.attempts + 1),
                                      self.settings.digest_max_attempts)
            if status == "failed":
                log.warning("digest to %s failed after %d attempts: %s", sub.email, claim.attempts + 1, e)
                self.report.failed += 1
            else:
                self.report.retried += 1
            return
        # Accepted: record it before anything else (see the module docstring on the crash window).
        if store.mark_sent(claim, self.run_id, ids, [p.arxiv_id for p in chosen]):
            self.report.sent += 1
        else:
            log.error("digest to %s was sent but its claim had passed to another run", sub.email)
            self.report.sent += 1
