"""The e-mail digest half of the SQLite store: subscribers, editions and the durable delivery job.

Mixed into SqliteStore, so one connection and one lock own all persistence (see store/sqlite.py). A
digest run is a job over `digest_deliveries`: one row per (subscriber, edition), claimed with a lease in
an IMMEDIATE transaction so that concurrent runs never take the same row, and a killed run's rows come
back once its lease expires.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from papertide.store.base import StoreError

FREQUENCIES = ("daily", "weekly")
SUBSCRIBER_COLS = (
    "id, email, status, frequency, categories, keywords, max_papers, for_you, user_id, link_key, created_at, "
    "confirm_sent_at, confirmed_at, unsubscribed_at"
)


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a subscriber wants; hashable, so that subscribers with equal preferences share one composition."""

    frequency: str = "daily"
    categories: tuple[str, ...] = ()  # () = every category
    keywords: tuple[str, ...] = ()  # lower-cased phrases; () = no keyword filter
    max_papers: int = 10
    for_you: bool = False

    @property
    def filter_key(self) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        """The part of the preferences that decides which papers qualify (the count only cuts the list)."""
        return (self.frequency, self.categories, self.keywords)


@dataclass(slots=True)
class Subscriber:
    id: int
    email: str
    status: str
    prefs: Preferences
    user_id: int | None
    link_key: str
    created_at: str
    confirm_sent_at: str | None = None
    confirmed_at: str | None = None
    unsubscribed_at: str | None = None


@dataclass(slots=True)
class Claim:
    """A delivery this run holds: the subscriber as of the claim, and the lease's end (unix seconds)."""

    subscriber: Subscriber
    edition_id: int
    attempts: int
    lease_until: float


@dataclass(slots=True)
class Edition:
    id: int
    frequency: str
    day: date


@dataclass(slots=True)
class DeliveryCounts:
    pending: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _subscriber(r: Sequence) -> Subscriber:
    prefs = Preferences(r[3], tuple(r[4].split()), tuple(json.loads(r[5])), int(r[6]), bool(r[7]))
    return Subscriber(r[0], r[1], r[2], prefs, r[8], r[9], r[10], r[11], r[12], r[13])


class DigestMixin:
    _db: sqlite3.Connection
    # What a unique constraint raises; the PostgreSQL store (store/postgres.py) names psycopg's.
    _IntegrityError: type[Exception] = sqlite3.IntegrityError

    # -- subscribers ---------------------------------------------------------------------------------
    def create_subscriber(self, email: str, link_key: str, user_id: int | None = None,
                          prefs: Preferences | None = None) -> Subscriber:
        from papertide.store.community import Conflict

        email, p = email.strip().lower(), prefs or Preferences()
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO subscribers (email, frequency, categories, keywords, max_papers, for_you, user_id, "
                    "link_key, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (email, p.frequency, " ".join(p.categories), json.dumps(list(p.keywords)), p.max_papers,
                     int(p.for_you), user_id, link_key, _now()),
                )
            except self._IntegrityError as e:
                raise Conflict(f"{email} is already subscribed") from e
            return self.get_subscriber(cur.lastrowid)  # type: ignore[arg-type,return-value]

    def get_subscriber(self, subscriber_id: int) -> Subscriber | None:
        with self._lock:
            row = self._db.execute(f"SELECT {SUBSCRIBER_COLS} FROM subscribers WHERE id = ?",
                                   (subscriber_id,)).fetchone()
        return _subscriber(row) if row else None

    def get_subscriber_by_email(self, email: str) -> Subscriber | None:
        with self._lock:
            row = self._db.execute(f"SELECT {SUBSCRIBER_COLS} FROM subscribers WHERE email = ?",
                                   (email.strip().lower(),)).fetchone()
        return _subscriber(row) if row else None

    def restart_opt_in(self, subscriber_id: int, link_key: str) -> None:
        """An unsubscribed address asks again: back to pending, with new links (the old ones die)."""
        with self._lock:
            self._db.execute(
                "UPDATE subscribers SET status = 'pending', link_key = ?, confirm_sent_at = NULL, "
                "unsubscribed_at = NULL WHERE id = ? AND status = 'unsubscribed'",
                (link_key, subscriber_id),
            )

    def take_confirmation_slot(self, subscriber_id: int, not_since: str) -> bool:
        """Reserve the one confirmation e-mail of a pending subscriber: False if one was sent after `not_since`.

        One conditional UPDATE, so two simultaneous sign-ups of the same address send one e-mail.
        """
        with self._lock:
            cur = self._db.execute(
                "UPDATE subscribers SET confirm_sent_at = ? WHERE id = ? AND status = 'pending' "
                "AND (confirm_sent_at IS NULL OR confirm_sent_at < ?)",
                (_now(), subscriber_id, not_since),
            )
        return cur.rowcount == 1

    def release_confirmation_slot(self, subscriber_id: int) -> None:
        """The confirmation could not be sent: let the next request try again."""
        with self._lock:
            self._db.execute("UPDATE subscribers SET confirm_sent_at = NULL WHERE id = ?", (subscriber_id,))

    def confirm_subscriber(self, subscriber_id: int) -> bool:
        """pending -> confirmed. False if it was not pending (already confirmed, or unsubscribed since)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE subscribers SET status = 'confirmed', confirmed_at = ? WHERE id = ? AND status = 'pending'",
                (_now(), subscriber_id),
            )
        return cur.rowcount == 1

    def set_preferences(self, subscriber_id: int, p: Preferences) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE subscribers SET frequency = ?, categories = ?, keywords = ?, max_papers = ?, for_you = ? "
                "WHERE id = ?",
                (p.frequency, " ".join(p.categories), json.dumps(list(p.keywords)), p.max_papers, int(p.for_you),
                 subscriber_id),
            )

    def unsubscribe(self, subscriber_id: int) -> bool:
        """Stop every e-mail to this address at once; pending deliveries are dropped in the same transaction."""
        with self._lock, self._tx() as db:
            cur = db.execute(
                "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ? "
                "WHERE id = ? AND status != 'unsubscribed'",
                (_now(), subscriber_id),
            )
            db.execute(
                "UPDATE digest_deliveries SET status = 'skipped', reason = 'unsubscribed', claimed_by = NULL "
                "WHERE subscriber_id = ? AND status = 'pending'",
                (subscriber_id,),
            )
        return cur.rowcount == 1

    def delete_subscriber(self, email: str) -> bool:
        """Erase an address and everything kept about it (deliveries, received papers cascade)."""
        with self._lock:
            cur = self._db.execute("DELETE FROM subscribers WHERE email = ?", (email.strip().lower(),))
        return cur.rowcount == 1

    def export_subscriber(self, email: str) -> dict | None:
        """Everything stored about an address, as plain JSON-able data."""
        sub = self.get_subscriber_by_email(email)
        if sub is None:
            return None
        with self._lock:
            deliveries = self._db.execute(
                "SELECT e.frequency, e.day, d.status, d.attempts, d.reason, d.sent_at, d.papers "
                "FROM digest_deliveries d JOIN digest_editions e ON e.id = d.edition_id "
                "WHERE d.subscriber_id = ? ORDER BY e.day, e.frequency",
                (sub.id,),
            ).fetchall()
        p = sub.prefs
        return {
            "email": sub.email, "status": sub.status, "created_at": sub.created_at,
            "confirmation_sent_at": sub.confirm_sent_at, "confirmed_at": sub.confirmed_at,
            "unsubscribed_at": sub.unsubscribed_at, "account_id": sub.user_id,
            "preferences": {"frequency": p.frequency, "categories": list(p.categories),
                            "keywords": list(p.keywords), "max_papers": p.max_papers, "for_you": p.for_you},
            "deliveries": [
                {"frequency": f, "edition": d, "status": s, "attempts": a, "reason": r, "sent_at": t,
                 "papers": json.loads(ps) if ps else []}
                for f, d, s, a, r, t, ps in deliveries
            ],
        }

    def count_subscribers(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT status, count(*) FROM subscribers GROUP BY status").fetchall())

    # -- editions and deliveries -------------------------------------------------------------------
    def ensure_edition(self, frequency: str, day: date) -> Edition:
        if frequency not in FREQUENCIES:
            raise StoreError(f"unknown digest frequency {frequency!r}")
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO digest_editions (frequency, day, created_at) VALUES (?, ?, ?)",
                (frequency, day.isoformat(), _now()),
            )
            row = self._db.execute("SELECT id FROM digest_editions WHERE frequency = ? AND day = ?",
                                   (frequency, day.isoformat())).fetchone()
        return Edition(int(row[0]), frequency, day)

    def plan_deliveries(self, edition: Edition) -> int:
        """Make a pending delivery for every confirmed subscriber of the edition's frequency who has none.

        Idempotent: a re-run adds only subscribers confirmed since. Temporary failures that ran out of
        attempts in an earlier run are given a fresh set of attempts; permanent ones are not.
        """
        with self._lock, self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO digest_deliveries (subscriber_id, edition_id) "
                "SELECT id, ? FROM subscribers WHERE status = 'confirmed' AND frequency = ?",
                (edition.id, edition.frequency),
            )
            db.execute(
                "UPDATE digest_deliveries SET status = 'pending', attempts = 0, next_attempt = 0 "
                "WHERE edition_id = ? AND status = 'failed' AND permanent = 0",
                (edition.id,),
            )
        return cur.rowcount

    def claim_deliveries(self, edition: Edition, run_id: str, limit: int, lease_s: float, now: float) -> list[Claim]:
        """Take up to `limit` due deliveries for this run: pending, not held by a live lease, past their backoff."""
        with self._lock, self._tx() as db:
            # Whoever unsubscribed or changed frequency since planning gets nothing from this edition.
            db.execute(
                "UPDATE digest_deliveries SET status = 'skipped', reason = 'no longer subscribed', claimed_by = NULL "
                "WHERE edition_id = ? AND status = 'pending' AND subscriber_id IN (SELECT id FROM subscribers "
                "WHERE status != 'confirmed' OR frequency != ?)",
                (edition.id, edition.frequency),
            )
            cols = ", ".join(f"s.{c.strip()}" for c in SUBSCRIBER_COLS.split(","))
            rows = db.execute(
                f"SELECT {cols}, d.attempts FROM digest_deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
                "WHERE d.edition_id = ? AND d.status = 'pending' AND d.next_attempt <= ? "
                "AND (d.claimed_by IS NULL OR d.lease_until < ?) ORDER BY d.subscriber_id LIMIT ?",
                (edition.id, now, now, limit),
            ).fetchall()
            until = now + lease_s
            db.executemany(
                "UPDATE digest_deliveries SET claimed_by = ?, lease_until = ? WHERE subscriber_id = ? AND edition_id = ?",
                [(run_id, until, r[0], edition.id) for r in rows],
            )
        return [Claim(_subscriber(r), edition.id, int(r[-1]), until) for r in rows]

    def mark_sent(self, claim: Claim, run_id: str, paper_ids: Sequence[int], arxiv_ids: Sequence[str]) -> bool:
        """Record an accepted message and the papers it carried, in one transaction. False if not our claim."""
        sid = claim.subscriber.id
        with self._lock, self._tx() as db:
            cur = db.execute(
                "UPDATE digest_deliveries SET status = 'sent', sent_at = ?, papers = ?, attempts = attempts + 1, "
                "claimed_by = NULL, reason = NULL WHERE subscriber_id = ? AND edition_id = ? AND claimed_by = ?",
                (_now(), json.dumps(list(arxiv_ids)), sid, claim.edition_id, run_id),
            )
            db.executemany("INSERT OR IGNORE INTO digest_received VALUES (?, ?, ?)",
                           [(sid, pid, claim.edition_id) for pid in paper_ids])
        return cur.rowcount == 1

    def mark_retry(self, claim: Claim, run_id: str, reason: str, next_attempt: float, max_attempts: int) -> str:
        """A temporary failure: back to pending after `next_attempt`, or failed once attempts run out."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE digest_deliveries SET attempts = attempts + 1, reason = ?, next_attempt = ?, claimed_by = NULL, "
                "status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'pending' END "
                "WHERE subscriber_id = ? AND edition_id = ? AND claimed_by = ? RETURNING status",
                (reason, next_attempt, max_attempts, claim.subscriber.id, claim.edition_id, run_id),
            ).fetchone()
        return cur[0] if cur else "lost"

    def mark_done(self, claim: Claim, run_id: str, status: str, reason: str, permanent: bool = False) -> None:
        """A final state other than sent: failed (permanent) or skipped (nothing to send)."""
        with self._lock:
            self._db.execute(
                "UPDATE digest_deliveries SET status = ?, reason = ?, permanent = ?, claimed_by = NULL, "
                "attempts = attempts + ? WHERE subscriber_id = ? AND edition_id = ? AND claimed_by = ?",
                (status, reason, int(permanent), int(status == "failed"), claim.subscriber.id, claim.edition_id,
                 run_id),
            )

    def release_claims(self, run_id: str, claims: Iterable[Claim] = ()) -> None:
        """Hand back claims this run will not work on (all of them when `claims` is empty)."""
        with self._lock:
            keys = [(run_id, c.subscriber.id, c.edition_id) for c in claims]
            if keys:
                self._db.executemany(
                    "UPDATE digest_deliveries SET claimed_by = NULL WHERE claimed_by = ? AND subscriber_id = ? "
                    "AND edition_id = ?", keys)
            else:
                self._db.execute("UPDATE digest_deliveries SET claimed_by = NULL WHERE claimed_by = ?", (run_id,))

    def next_pending(self, edition: Edition) -> float | None:
        """When the earliest pending delivery of the edition can be tried (its backoff or its lease), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT min(max(next_attempt, CASE WHEN claimed_by IS NULL THEN 0 ELSE lease_until END)) "
                "FROM digest_deliveries WHERE edition_id = ? AND status = 'pending'",
                (edition.id,),
            ).fetchone()
        return row[0]

    def delivery_counts(self, edition: Edition) -> DeliveryCounts:
        out = DeliveryCounts()
        with self._lock:
            for status, reason, n in self._db.execute(
                "SELECT status, reason, count(*) FROM digest_deliveries WHERE edition_id = ? GROUP BY 1, 2",
                (edition.id,),
            ):
                setattr(out, status, getattr(out, status) + n)
                if status == "failed" and reason:
                    out.reasons[reason] = out.reasons.get(reason, 0) + n
        return out

    def received_among(self, subscriber_id: int, paper_ids: Sequence[int]) -> set[int]:
        """Which of these papers the subscriber already received in an earlier digest."""
        ids = list(paper_ids)
        out: set[int] = set()
        with self._lock:
            for i in range(0, len(ids), 900):
                chunk = ids[i : i + 900]
                rows = self._db.execute(
                    f"SELECT paper_id FROM digest_received WHERE subscriber_id = ? AND paper_id IN "
                    f"({','.join('?' * len(chunk))})",
                    [subscriber_id, *chunk],
                )
                out.update(r[0] for r in rows)
        return out

    def paper_texts(self, paper_ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        """(categories, title, abstract) of papers: what the digest filters on, without building Papers."""
        ids = list(paper_ids)
        out: dict[int, tuple[str, str, str]] = {}
        with self._lock:
            for i in range(0, len(ids), 900):
                chunk = ids[i : i + 900]
                q = f"SELECT id, categories, title, abstract FROM papers WHERE id IN ({','.join('?' * len(chunk))})"
                out.update((r[0], (r[1], r[2], r[3])) for r in self._db.execute(q, chunk))
        return out
