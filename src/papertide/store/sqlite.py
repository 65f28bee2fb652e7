"""SQLite backend of the store: WAL mode, numbered migrations, batched idempotent upserts."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from json.encoder import encode_basestring as _json_str
from pathlib import Path

import numpy as np

from papertide.models import Paper, Version
from papertide.store.base import (
    StoreError,
    TextRow,
    UpsertResult,
    content_hash,
    text_hash,
)
from papertide.store.community import CommunityMixin
from papertide.store.digest import DigestMixin
from papertide.store.reads import _AFTER_ALL_IDS, _PAPER_COLS, PaperReadsMixin, _meta, _row_paper  # noqa: F401

_N_COLS = _PAPER_COLS.count(",") + 1
# Community signals come from their own source; an arXiv record (which has none) must not erase them.
_SET = {"hf_upvotes": "hf_upvotes = coalesce(?, hf_upvotes)", "featured_on": "featured_on = coalesce(featured_on, ?)"}


def migrations() -> list[tuple[int, str]]:
    """The numbered SQL migrations shipped with the package, in order."""
    out = []
    for entry in resources.files("papertide.store.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(out)


class SqliteStore(PaperReadsMixin, CommunityMixin, DigestMixin):
    """The embedded default store. One connection, serialised by a lock; safe to share across threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute("PRAGMA cache_size=-65536")
            self._migrate()
        except sqlite3.Error as e:  # not a database, a directory where the file should be, read-only ...
            raise StoreError(f"cannot open database {path}: {e}") from e

    # -- schema -------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
            )
            done = {r[0] for r in self._db.execute("SELECT version FROM schema_migrations")}
            known = migrations()
            newest = max((v for v, _ in known), default=0)
            if done and max(done) > newest:
                self._db.close()
                raise StoreError(
                    f"database {self.path} has schema v{max(done)}, newer than this papertide (v{newest}); "
                    "upgrade papertide"
                )
            for version, sql in known:
                if version in done:
                    continue
                # executescript commits first; wrap the migration and its record in one transaction.
                self._db.executescript(
                    "BEGIN;\n" + sql + f"\nINSERT INTO schema_migrations VALUES ({version}, datetime('now'));\nCOMMIT;"
                )

    def schema_version(self) -> int:
        row = self._db.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- papers -------------------------------------------------------------------------------------
    def upsert_papers(self, papers: Sequence[Paper] | PreparedPapers) -> UpsertResult:
        """Insert new papers, update ones that changed, leave identical ones alone - in one transaction.

        A record of an older version than the stored one only adds to the version history. Records
        from Hugging Face daily papers carry partial metadata: for a paper already known they only
        update the community signals. `papers` may come already turned into rows by `prepare_papers`
        (the bulk importer does that in its parser process, so that this one only runs SQL).
        """
        batch = papers if isinstance(papers, PreparedPapers) else prepare_papers(papers)
        rows = batch.rows
        res = UpsertResult(unchanged=batch.records - len(rows))  # repeats of an id within the batch
        if not rows:
            return res
        with self._lock, self._tx():
            db = self._db
            existing = self._existing([r[0] for r in rows])
            seq = self._next_seq()
            first = (db.execute("SELECT max(id) FROM papers").fetchone()[0] or 0) + 1
            # The row id of each row of the batch whose versions are to be written (None: leave them).
            doc_ids: list[int | None] | range
            sources: list[tuple[int, str]] = []
            signals: list[tuple[int | None, str | None, int]] = []
            if not existing:  # a batch of new papers (a fresh import): no Python loop over the rows
                inserts, doc_ids = rows, range(first, first + len(rows))
            else:
                inserts, updates, doc_ids = [], [], []
                for row in rows:
                    known = existing.get(row[0])
                    if known is None:
                        doc_ids.append(first + len(inserts))
                        inserts.append(row)
                        continue
                    updated, doc_id = triage_stored(row, known, seq, signals, sources, updates)
                    doc_ids.append(doc_id)
                    res.updated += updated
                    res.unchanged += not updated
                if updates:
                    sets = ", ".join(_SET.get(c.strip(), f"{c.strip()} = ?") for c in _PAPER_COLS.split(",")[1:])
                    db.executemany(f"UPDATE papers SET {sets} WHERE id = ?", updates)
            if inserts:
                # SQLite gives a row without an id the largest id so far + 1 (this transaction holds the
                # write lock): the new rows get first, first + 1, ... in order, with no Python per row.
                db.executemany(
                    f"INSERT INTO papers ({_PAPER_COLS}) VALUES ({','.join('?' * (_N_COLS - 1))}, {int(seq)})",
                    inserts,
                )
                db.execute("INSERT INTO paper_sources SELECT id, source FROM papers WHERE id >= ?", (first,))
                res.inserted += len(inserts)
            if batch.versions:
                versions = [(doc_ids[i], v, c, z) for i, v, c, z in batch.versions if doc_ids[i] is not None]
                # A version's date, once known, is kept; a later record may fill a missing one.
                db.executemany(
                    "INSERT INTO paper_versions (paper_id, version, created, size) VALUES (?,?,?,?) "
                    "ON CONFLICT (paper_id, version) DO UPDATE SET "
                    "created = coalesce(paper_versions.created, excluded.created), "
                    "size = coalesce(paper_versions.size, excluded.size)",
                    versions,
                )
            if sources:
                db.executemany("INSERT OR IGNORE INTO paper_sources VALUES (?, ?)", sources)
            if signals:
                db.executemany(
                    "UPDATE papers SET hf_upvotes = coalesce(?, hf_upvotes), "
                    "featured_on = coalesce(featured_on, ?) WHERE id = ?",
                    signals,
                )
        return res

    def _existing(self, arxiv_ids: list[str]) -> dict[str, tuple[int, int, str, str]]:
        out: dict[str, tuple[int, int, str, str]] = {}
        for i in range(0, len(arxiv_ids), 900):
            chunk = arxiv_ids[i : i + 900]
            q = (
                "SELECT arxiv_id, id, version, content_hash, source FROM papers "
                f"WHERE arxiv_id IN ({','.join('?' * len(chunk))})"
            )
            for aid, doc_id, ver, h, src in self._db.execute(q, chunk):
                out[aid] = (doc_id, ver, h, src)
        return out

    def _next_seq(self) -> int:
        row = self._db.execute("SELECT value FROM state WHERE key = 'seq'").fetchone()
        seq = int(row[0]) + 1 if row else 1
        self._db.execute("INSERT OR REPLACE INTO state VALUES ('seq', ?)", (str(seq),))
        return seq

    def max_seq(self) -> int:
        row = self._db.execute("SELECT value FROM state WHERE key = 'seq'").fetchone()
        return int(row[0]) if row else 0

    def get_paper(self, arxiv_id: str) -> Paper | None:
        with self._lock:
            row = self._db.execute(f"SELECT id, {_PAPER_COLS} FROM papers WHERE arxiv_id = ?", (arxiv_id,)).fetchone()
            if row is None:
                return None
            return self._with_versions({row[0]: _row_paper(row)})[row[0]]

    def get_papers(self, doc_ids: Sequence[int]) -> dict[int, Paper]:
        out: dict[int, Paper] = {}
        ids = list(doc_ids)
        with self._lock:
            for i in range(0, len(ids), 900):
                chunk = ids[i : i + 900]
                q = f"SELECT id, {_PAPER_COLS} FROM papers WHERE id IN ({','.join('?' * len(chunk))})"
                for row in self._db.execute(q, chunk):
                    out[row[0]] = _row_paper(row)
            return self._with_versions(out)

    def _with_versions(self, papers: dict[int, Paper]) -> dict[int, Paper]:
        ids = list(papers)
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            q = (
                "SELECT paper_id, version, created, size FROM paper_versions "
                f"WHERE paper_id IN ({','.join('?' * len(chunk))}) ORDER BY paper_id, version"
            )
            for pid, v, created, size in self._db.execute(q, chunk):
                papers[pid].versions.append(Version(v, created, size))
        return papers

    def doc_ids_for(self, arxiv_ids: Sequence[str]) -> dict[str, int]:
        with self._lock:
            return {aid: r[0] for aid, r in self._existing(list(arxiv_ids)).items()}

    def arxiv_ids_for(self, doc_ids: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        ids = list(doc_ids)
        with self._lock:
            for i in range(0, len(ids), 900):
                chunk = ids[i : i + 900]
                q = f"SELECT id, arxiv_id FROM papers WHERE id IN ({','.join('?' * len(chunk))})"
                out.update(self._db.execute(q, chunk).fetchall())
        return out

    def _size_bytes(self) -> int:
        size = 0
        for suffix in ("", "-wal"):
            f = Path(str(self.path) + suffix)
            if f.exists():
                size += f.stat().st_size
        return size

    # -- embeddings ---------------------------------------------------------------------------------

    def put_embeddings(self, model: str, rows: Sequence[TextRow], vectors: np.ndarray) -> None:
        vecs = np.ascontiguousarray(vectors, dtype="<f4")
        with self._lock, self._tx():
            seq = self._next_seq()
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (paper_id, model, text_hash, seq, vector) VALUES (?,?,?,?,?)",
                [(r.doc_id, model, r.text_hash, seq, vecs[i].tobytes()) for i, r in enumerate(rows)],
            )

    def iter_embeddings(
        self, model: str, since_seq: int, batch: int = 20000
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(doc_ids, seqs, vectors) of embeddings written after `since_seq`, in batches."""
        last = (since_seq, _AFTER_ALL_IDS)  # everything with seq > since_seq
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT paper_id, seq, vector FROM embeddings WHERE model = ? AND (seq, paper_id) > (?, ?) "
                    "ORDER BY seq, paper_id LIMIT ?",
                    (model, *last, batch),
                ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            seqs = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), -1)
            last = (rows[-1][1], rows[-1][0])
            yield ids, seqs, vecs

    # -- helpers ------------------------------------------------------------------------------------
    def _tx(self):
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


@dataclass(slots=True)
class PreparedPapers:
    """A batch of papers as the rows `upsert_papers` writes: plain tuples, cheap to send to another process.

    `rows` are `_paper_row`s (every column but seq), one per arXiv id: the last record of an id wins, as
    in a snapshot that repeats ids. `versions` are (index into rows, version, created, size).
    """

    rows: list[tuple]
    versions: list[tuple[int, int, str | None, str | None]]
    records: int  # records in the batch, repeats included


def prepare_papers(papers: Sequence[Paper]) -> PreparedPapers:
    """Hash and flatten papers for `upsert_papers`; pure, so it can run in a parser process."""
    by_id: dict[str, Paper] = {}
    for p in papers:
        prev = by_id.get(p.arxiv_id)
        if prev is None or p.version >= prev.version:
            by_id[p.arxiv_id] = p
    rows = [_paper_row(p) for p in by_id.values()]
    versions = [(i, v.version, v.created, v.size) for i, p in enumerate(by_id.values()) if p.versions
                for v in p.versions]
    return PreparedPapers(rows, versions, len(papers))


def triage_stored(
    row: tuple, known: tuple, seq: int, signals: list, sources: list, updates: list,
) -> tuple[bool, int | None]:
    """A prepared row (`_paper_row`) of a paper the store already holds as `known` (doc id, version,
    content hash, source), for both backends' upserts. Records its Hugging Face signals and its source,
    and queues an UPDATE (row columns, seq, doc id) when it brings newer or changed content. Returns
    (updated, the doc id whose versions to write: the paper's when updated or when the row is an older
    version - its history still counts - else None)."""
    doc_id, stored_version, stored_hash, stored_source = known
    version, source, upvotes, featured = row[1], row[17], row[18], row[19]
    if upvotes is not None or featured is not None:
        signals.append((upvotes, featured, doc_id))
    sources.append((doc_id, source))
    # An HF record only adds signals to a paper arXiv gave us; same content or an older version: no update.
    partial = source == "hf-daily" and stored_source != "hf-daily"
    if partial or version < stored_version or row[20] == stored_hash:
        return False, (doc_id if version < stored_version else None)
    updates.append((*row[1:], seq, doc_id))
    return True, doc_id


def _json_strs(xs: list[str]) -> str:
    """`json.dumps(xs, ensure_ascii=False)` for a list of strings, without building an encoder per call."""
    return "[" + ", ".join(map(_json_str, xs)) + "]" if xs else "[]"


def _paper_row(p: Paper) -> tuple:
    """The columns of _PAPER_COLS but seq (given at write time), with the content and text hashes."""
    return (
        p.arxiv_id, p.version, p.title, p.abstract, _json_strs(p.authors),
        " ".join(p.categories), p.categories[0] if p.categories else None,
        p.submitted.isoformat() if p.submitted else None, p.updated.isoformat() if p.updated else None,
        p.listed.isoformat() if p.listed else None,
        p.comments, p.journal_ref, p.doi, p.submitter, p.license,
        _json_strs(p.code_urls), 1 if p.code_urls else 0, p.source, p.hf_upvotes, _iso(p.featured_on),
        content_hash(p), text_hash(p.title, p.abstract),
    )
