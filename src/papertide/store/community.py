"""The community half of the SQLite store: accounts, votes, libraries, submissions, curation, rate limits.

Mixed into SqliteStore, so one connection and one lock own all persistence (see store/sqlite.py).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from papertide.store.base import StoreError

_DAY = "coalesce(listed, submitted)"  # a paper's day on the "all" feed; matches the papers_day index


class Conflict(StoreError):
    """A unique thing already exists (an e-mail address, a collection name)."""


@dataclass(slots=True)
class User:
    id: int
    email: str
    name: str
    password_hash: str
    is_admin: bool
    created_at: str


@dataclass(slots=True)
class Collection:
    id: int
    user_id: int
    name: str
    count: int = 0


@dataclass(slots=True)
class FeedRow:
    """What the trending score needs about one paper of a feed."""

    doc_id: int
    day: str | None
    votes: int
    hf_upvotes: int
    featured_on: str | None


def _now() -> str:
    # Microseconds: "first submitter" and "latest upvotes" order by this, and a second is too coarse.
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _qmarks(n: int) -> str:
    return ",".join("?" * n)


class CommunityMixin:
    _db: sqlite3.Connection
    # What a unique constraint raises; the PostgreSQL store (store/postgres.py) names psycopg's.
    _IntegrityError: type[Exception] = sqlite3.IntegrityError

    # -- users --------------------------------------------------------------------------------------
    def create_user(self, email: str, name: str, password_hash: str, is_admin: bool = False) -> User:
        email = email.strip().lower()
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO users (email, name, password_hash, is_admin, created_at) VALUES (?,?,?,?,?)",
                    (email, name, password_hash, int(is_admin), _now()),
                )
            except self._IntegrityError as e:
                raise Conflict(f"an account for {email} already exists") from e
            return self.get_user(cur.lastrowid)  # type: ignore[return-value]

    def _user_where(self, where: str, arg) -> User | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT id, email, name, password_hash, is_admin, created_at FROM users WHERE {where}", (arg,)
            ).fetchone()
        return User(row[0], row[1], row[2], row[3], bool(row[4]), row[5]) if row else None

    def get_user(self, user_id: int) -> User | None:
        return self._user_where("id = ?", user_id)

    def get_user_by_email(self, email: str) -> User | None:
        return self._user_where("email = ?", email.strip().lower())

    def get_user_by_token_hash(self, token_hash: str) -> User | None:
        return self._user_where("api_token_hash = ?", token_hash)

    def set_password(self, user_id: int, password_hash: str) -> None:
        with self._lock:
            self._db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    def set_api_token_hash(self, user_id: int, token_hash: str | None) -> None:
        with self._lock:
            self._db.execute("UPDATE users SET api_token_hash = ? WHERE id = ?", (token_hash, user_id))

    def has_api_token(self, user_id: int) -> bool:
        with self._lock:
            row = self._db.execute("SELECT api_token_hash FROM users WHERE id = ?", (user_id,)).fetchone()
        return bool(row and row[0])

    def set_admin(self, user_id: int, is_admin: bool) -> None:
        with self._lock:
            self._db.execute("UPDATE users SET is_admin = ? WHERE id = ?", (int(is_admin), user_id))

    # -- votes --------------------------------------------------------------------------------------
    def toggle_vote(self, user_id: int, paper_id: int) -> tuple[bool, int]:
        """Add the user's upvote, or take it back if there is one. Returns (voted now, paper's vote count)."""
        with self._lock, self._tx() as db:
            gone = db.execute("DELETE FROM votes WHERE user_id = ? AND paper_id = ?", (user_id, paper_id)).rowcount
            if not gone:
                db.execute("INSERT INTO votes VALUES (?, ?, ?)", (user_id, paper_id, _now()))
            db.execute("UPDATE papers SET votes = votes + ? WHERE id = ?", (-1 if gone else 1, paper_id))
            count = db.execute("SELECT votes FROM papers WHERE id = ?", (paper_id,)).fetchone()[0]
        return (not gone, int(count))

    def vote_counts(self, paper_ids: Sequence[int]) -> dict[int, int]:
        ids = list(paper_ids)
        with self._lock:
            rows = self._db.execute(f"SELECT id, votes FROM papers WHERE id IN ({_qmarks(len(ids))})", ids)
            return dict(rows.fetchall())

    def voted_among(self, user_id: int, paper_ids: Sequence[int]) -> set[int]:
        ids = list(paper_ids)
        with self._lock:
            rows = self._db.execute(
                f"SELECT paper_id FROM votes WHERE user_id = ? AND paper_id IN ({_qmarks(len(ids))})", [user_id, *ids]
            )
            return {r[0] for r in rows}

    def voted_papers(self, user_id: int, limit: int = 100) -> list[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT paper_id FROM votes WHERE user_id = ? ORDER BY created_at DESC LIMIT ?", (user_id, limit)
            )
            return [r[0] for r in rows]

    # -- library ------------------------------------------------------------------------------------
    def collections(self, user_id: int) -> list[Collection]:
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.user_id, c.name, count(i.paper_id) FROM collections c "
                "LEFT JOIN collection_items i ON i.collection_id = c.id WHERE c.user_id = ? "
                "GROUP BY c.id ORDER BY c.name COLLATE NOCASE",
                (user_id,),
            )
            return [Collection(*r) for r in rows]

    def get_collection(self, collection_id: int) -> Collection | None:
        with self._lock:
            row = self._db.execute(
                "SELECT c.id, c.user_id, c.name, (SELECT count(*) FROM collection_items WHERE collection_id = c.id) "
                "FROM collections c WHERE c.id = ?",
                (collection_id,),
            ).fetchone()
        return Collection(*row) if row else None

    def create_collection(self, user_id: int, name: str) -> Collection:
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO collections (user_id, name, created_at) VALUES (?, ?, ?)", (user_id, name, _now())
                )
            except self._IntegrityError as e:
                raise Conflict(f"you already have a collection named {name!r}") from e
            return Collection(cur.lastrowid, user_id, name, 0)  # type: ignore[arg-type]

    def default_collection(self, user_id: int, name: str = "Reading list") -> Collection:
        """The collection that "Save" uses: the user's oldest, created on first use."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM collections WHERE user_id = ? ORDER BY id LIMIT 1", (user_id,)
            ).fetchone()
            if row:
                return self.get_collection(row[0])  # type: ignore[return-value]
            return self.create_collection(user_id, name)

    def delete_collection(self, collection_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM collections WHERE id = ?", (collection_id,))

    def set_saved(self, collection_id: int, paper_id: int, saved: bool) -> None:
        with self._lock:
            if saved:
                self._db.execute(
                    "INSERT OR IGNORE INTO collection_items VALUES (?, ?, ?)", (collection_id, paper_id, _now())
                )
            else:
                self._db.execute(
                    "DELETE FROM collection_items WHERE collection_id = ? AND paper_id = ?", (collection_id, paper_id)
                )

    def collection_papers(self, collection_id: int) -> list[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT paper_id FROM collection_items WHERE collection_id = ? ORDER BY added_at DESC, paper_id",
                (collection_id,),
            )
            return [r[0] for r in rows]

    def saved_among(self, user_id: int, paper_ids: Sequence[int]) -> set[int]:
        ids = list(paper_ids)
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT i.paper_id FROM collection_items i JOIN collections c ON c.id = i.collection_id "
                f"WHERE c.user_id = ? AND i.paper_id IN ({_qmarks(len(ids))})",
                [user_id, *ids],
            )
            return {r[0] for r in rows}

    def collections_with(self, user_id: int, paper_id: int) -> set[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT i.collection_id FROM collection_items i JOIN collections c ON c.id = i.collection_id "
                "WHERE c.user_id = ? AND i.paper_id = ?",
                (user_id, paper_id),
            )
            return {r[0] for r in rows}

    # -- for you ------------------------------------------------------------------------------------
    def foryou_positives(self, user_id: int) -> list[int]:
        """What the user's "for you" model learns from: papers saved in any collection, and upvotes, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT paper_id, max(at) FROM ("
                " SELECT i.paper_id AS paper_id, i.added_at AS at FROM collection_items i"
                " JOIN collections c ON c.id = i.collection_id WHERE c.user_id = ?"
                " UNION ALL SELECT paper_id, created_at FROM votes WHERE user_id = ?"
                ") AS acts GROUP BY paper_id ORDER BY max(at) DESC, paper_id",
                (user_id, user_id),
            )
            return [r[0] for r in rows]

    def set_not_interested(self, user_id: int, paper_id: int, on: bool = True) -> None:
        with self._lock:
            if on:
                self._db.execute("INSERT OR IGNORE INTO not_interested VALUES (?, ?, ?)", (user_id, paper_id, _now()))
            else:
                self._db.execute("DELETE FROM not_interested WHERE user_id = ? AND paper_id = ?", (user_id, paper_id))

    def not_interested_papers(self, user_id: int) -> list[int]:
        """The user's explicit negatives, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT paper_id FROM not_interested WHERE user_id = ? ORDER BY created_at DESC, paper_id", (user_id,)
            )
            return [r[0] for r in rows]

    def foryou_trending(self, user_id: int) -> float:
        """The user's blend: 0 = pure "for you" order, 1 = pure trending order."""
        with self._lock:
            row = self._db.execute("SELECT foryou_trending FROM users WHERE id = ?", (user_id,)).fetchone()
        return float(row[0]) if row else 0.0

    def set_foryou_trending(self, user_id: int, weight: float) -> None:
        with self._lock:
            self._db.execute("UPDATE users SET foryou_trending = ? WHERE id = ?", (float(weight), user_id))

    def recent_papers(self, since: date, limit: int) -> list[tuple[int, str]]:
        """(doc id, day) of visible papers listed on or after `since`, newest first, at most `limit`."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, {_DAY} FROM papers WHERE {_DAY} >= ? AND hidden = 0 ORDER BY {_DAY} DESC, id DESC LIMIT ?",
                (since.isoformat(), limit),
            )
            return [(r[0], r[1]) for r in rows]

    def title_abstracts(self, paper_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """(title, abstract) of papers: what the term space reads, without building whole Papers."""
        ids = list(paper_ids)
        out: dict[int, tuple[str, str]] = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            with self._lock:
                rows = self._db.execute(
                    f"SELECT id, title, abstract FROM papers WHERE id IN ({_qmarks(len(chunk))})", chunk
                ).fetchall()
            out.update((r[0], (r[1], r[2])) for r in rows)
        return out

    def iter_paper_texts(self, batch: int = 5000) -> Iterator[list[tuple[int, str, str]]]:
        """(doc id, title, abstract) of every paper, in id order and batches: the corpus of the term space."""
        last = -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, title, abstract FROM papers WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(r[0], r[1], r[2]) for r in rows]

    def ids_for_dois(self, dois: Sequence[str]) -> dict[str, int]:
        """Doc ids of papers by DOI (compared lower-cased)."""
        wanted = list({d.strip().lower() for d in dois if d.strip()})
        if not wanted:
            return {}
        with self._lock:
            rows = self._db.execute(
                f"SELECT lower(doi), id FROM papers WHERE doi IS NOT NULL AND lower(doi) IN ({_qmarks(len(wanted))})",
                wanted,
            )
            return dict(rows.fetchall())

    def iter_titles(self, batch: int = 20000) -> Iterator[list[tuple[int, str]]]:
        """(doc id, title) of every visible paper, in batches (matching imported references by title)."""
        last = -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, title FROM papers WHERE id > ? AND hidden = 0 ORDER BY id LIMIT ?", (last, batch)
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [(r[0], r[1]) for r in rows]

    def papers_by_author(self, name: str, limit: int = 200) -> list[int]:
        """Visible papers with an author named exactly `name` (case-insensitive), newest first."""
        name = " ".join(name.split())
        if not name:
            return []
        # The JSON list holds each name in quotes: LIKE narrows in SQL, the exact test is done here.
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, authors FROM papers WHERE hidden = 0 AND lower(authors) LIKE ? ORDER BY {_DAY} DESC, id",
                ('%"' + name.lower() + '"%',),  # "%" and "_" in a name only widen the LIKE
            ).fetchall()
        want = name.lower()
        return [r[0] for r in rows if any(a.lower() == want for a in json.loads(r[1]))][:limit]

    # -- submissions --------------------------------------------------------------------------------
    def submit_paper(self, user_id: int, paper_id: int, day: date) -> bool:
        """Record a member's submission; the first one features the paper on `day`. False if already theirs."""
        with self._lock, self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO submissions VALUES (?, ?, ?, ?)", (paper_id, user_id, day.isoformat(), _now())
            )
            db.execute(
                "UPDATE papers SET featured_on = coalesce(featured_on, ?) WHERE id = ?", (day.isoformat(), paper_id)
            )
        return cur.rowcount == 1

    def submitted_papers(self, user_id: int, limit: int = 100) -> list[int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT paper_id FROM submissions WHERE user_id = ? ORDER BY created_at DESC LIMIT ?", (user_id, limit)
            )
            return [r[0] for r in rows]

    def submitters(self, paper_ids: Sequence[int]) -> dict[int, str]:
        """The member who first submitted each paper, by name."""
        ids = list(paper_ids)
        with self._lock:
            rows = self._db.execute(
                "SELECT s.paper_id, u.name FROM submissions s JOIN users u ON u.id = s.user_id "
                f"WHERE s.paper_id IN ({_qmarks(len(ids))}) ORDER BY s.created_at, s.user_id",
                ids,
            )
            first: dict[int, str] = {}
            for paper_id, name in rows:
                first.setdefault(paper_id, name)
            return first

    # -- curation -----------------------------------------------------------------------------------
    def set_hidden(self, paper_id: int, hidden: bool) -> None:
        with self._lock:
            self._db.execute("UPDATE papers SET hidden = ? WHERE id = ?", (int(hidden), paper_id))

    def merge_papers(self, duplicate_id: int, into_id: int) -> None:
        """Fold a duplicate into another paper: its votes, saves and submissions move, and it is hidden."""
        if duplicate_id == into_id:
            raise StoreError("a paper cannot be merged into itself")
        with self._lock, self._tx() as db:
            target = db.execute("SELECT arxiv_id FROM papers WHERE id = ?", (into_id,)).fetchone()[0]
            for table in ("votes", "collection_items", "submissions"):
                db.execute(f"UPDATE OR IGNORE {table} SET paper_id = ? WHERE paper_id = ?", (into_id, duplicate_id))
                db.execute(f"DELETE FROM {table} WHERE paper_id = ?", (duplicate_id,))
            for pid in (into_id, duplicate_id):
                db.execute("UPDATE papers SET votes = (SELECT count(*) FROM votes WHERE paper_id = ?) WHERE id = ?",
                           (pid, pid))
            db.execute("UPDATE papers SET hidden = 1, merged_into = ? WHERE id = ?", (target, duplicate_id))

    def curation(self, paper_id: int) -> tuple[bool, str | None]:
        """(hidden, merged into arxiv_id) of a paper."""
        with self._lock:
            row = self._db.execute("SELECT hidden, merged_into FROM papers WHERE id = ?", (paper_id,)).fetchone()
        return (bool(row[0]), row[1]) if row else (False, None)

    def hidden_among(self, paper_ids: Sequence[int]) -> set[int]:
        ids = list(paper_ids)
        with self._lock:
            rows = self._db.execute(f"SELECT id FROM papers WHERE hidden = 1 AND id IN ({_qmarks(len(ids))})", ids)
            return {r[0] for r in rows}

    # -- feeds --------------------------------------------------------------------------------------
    def feed_rows(self, date_from: date, date_to: date, featured: bool) -> list[FeedRow]:
        """Papers of a period, not hidden: listed in it, or (featured=True) featured in it."""
        col = "featured_on" if featured else _DAY
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, {_DAY}, votes, coalesce(hf_upvotes, 0), featured_on FROM papers "
                f"WHERE {col} BETWEEN ? AND ? AND hidden = 0",
                (date_from.isoformat(), date_to.isoformat()),
            )
            return [FeedRow(*r) for r in rows]

    def adjacent_day(self, day: date, featured: bool, before: bool) -> date | None:
        """The nearest day before (or after) `day` that has papers, or None."""
        col = "featured_on" if featured else _DAY
        op, order = ("<", "DESC") if before else (">", "ASC")
        return self._first_day(f"{col} {op} ?", (day.isoformat(),), col, order)

    def latest_day(self, featured: bool) -> date | None:
        col = "featured_on" if featured else _DAY
        return self._first_day(f"{col} IS NOT NULL", (), col, "DESC")

    def _first_day(self, where: str, args: tuple, col: str, order: str) -> date | None:
        # ORDER BY ... LIMIT 1 walks the day index and stops at the first visible paper; max()/min() with
        # the hidden = 0 condition would scan the whole table (117 ms at 75k papers, measured).
        with self._lock:
            row = self._db.execute(
                f"SELECT {col} FROM papers WHERE {where} AND hidden = 0 ORDER BY {col} {order} LIMIT 1", args
            ).fetchone()
        return date.fromisoformat(row[0]) if row and row[0] else None

    # -- rate limits --------------------------------------------------------------------------------
    def hit_rate_limit(self, key: str, limit: int, window_s: int, now: float | None = None) -> bool:
        """Count one hit on `key` in the current fixed window; False once the window holds more than `limit`."""
        now = time.time() if now is None else now
        window = int(now // window_s * window_s)
        with self._lock, self._tx() as db:
            db.execute(
                "INSERT INTO rate_limits VALUES (?, ?, 1) ON CONFLICT (key, window) DO UPDATE SET hits = hits + 1",
                (key, window),
            )
            hits = db.execute("SELECT hits FROM rate_limits WHERE key = ? AND window = ?", (key, window)).fetchone()[0]
            if hits == 1:  # first hit of a window: a good moment to drop old windows
                db.execute("DELETE FROM rate_limits WHERE window < ?", (window - 86400,))
        return hits <= limit
