"""PostgreSQL backend of the store (psycopg 3 + pgvector): the same protocol and semantics as SqliteStore.

Several processes on several hosts may write at once: upserts lock the rows they change in arxiv_id order
and insert with ON CONFLICT, so concurrent ingests converge without duplicates; digest deliveries are
claimed with SELECT ... FOR UPDATE SKIP LOCKED. The community and digest methods are shared with SQLite
(store/community.py, store/digest.py) through `_PgConnection`, which turns their SQL into PostgreSQL's;
the few that need PostgreSQL's own SQL are overridden here. Dialect details stay in this module.
"""

from __future__ import annotations

import re
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources

import numpy as np

try:
    import psycopg
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format
except ImportError as e:  # pragma: no cover - exercised by open_store's message
    raise ImportError("the PostgreSQL backend needs psycopg: pip install 'papertide[postgres]'") from e

from papertide.models import Paper, Version
from papertide.store.base import StoreError, TextRow, UpsertResult
from papertide.store.community import CommunityMixin
from papertide.store.digest import SUBSCRIBER_COLS, Claim, DigestMixin, Edition, _subscriber
from papertide.store.reads import PaperReadsMixin
from papertide.store.sqlite import (
    _AFTER_ALL_IDS,
    _PAPER_COLS,
    _SET,
    PreparedPapers,
    _row_paper,
    prepare_papers,
    triage_stored,
)

INSTALL_HINT = "pip install 'papertide[postgres]'"
_COLS = [c.strip() for c in _PAPER_COLS.split(",")]
_ROW_COLS = _COLS[:-1]  # a prepared row: every column but seq
_RETRIES = 5  # a transaction that lost a deadlock or a serialisation race is re-run this many times
BULK_ROWS = 1000  # papers in one upsert from which it commits without waiting for the WAL flush


def migrations() -> list[tuple[int, str]]:
    """The numbered PostgreSQL migrations shipped with the package, in order (same numbers as SQLite's)."""
    out = []
    for entry in resources.files("papertide.store.migrations_pg").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(out)


# -- pgvector's binary wire format: uint16 dim, uint16 unused, dim x float4 big-endian -----------------------
class _VectorDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj) -> bytes:
        a = np.asarray(obj, dtype=">f4").ravel()
        return struct.pack(">HH", len(a), 0) + a.tobytes()


class _VectorLoader(Loader):
    format = Format.BINARY

    def load(self, data) -> np.ndarray:
        return np.frombuffer(bytes(data)[4:], dtype=">f4").astype("<f4")


# -- SQLite's SQL (as the shared mixins write it) into PostgreSQL's --------------------------------------------
_RETURNING_ID = re.compile(r"^\s*INSERT INTO (users|collections|subscribers)\b", re.IGNORECASE)


def _translate(sql: str) -> tuple[str, bool]:
    """(PostgreSQL SQL, whether it returns the new row id) for one statement of the shared mixins."""
    q = sql.replace("%", "%%").replace("?", "%s")
    q = re.sub(r"IN \(\)", "IN (NULL)", q)
    q = re.sub(r"([\w.]+) COLLATE NOCASE", r"lower(\1)", q)
    q = re.sub(r'(?<!")\bwindow\b(?!")', '"window"', q)  # a reserved word in PostgreSQL (rate_limits)
    if re.match(r"\s*INSERT OR IGNORE INTO", q, re.IGNORECASE):
        q = re.sub(r"INSERT OR IGNORE INTO", "INSERT INTO", q, count=1, flags=re.IGNORECASE)
        q = re.sub(r"(\s+RETURNING\s+.*)?$", r" ON CONFLICT DO NOTHING\1", q, count=1, flags=re.DOTALL | re.IGNORECASE)
    returning_id = bool(_RETURNING_ID.match(q)) and "RETURNING" not in q.upper()
    if returning_id:
        q += " RETURNING id"
    return q, returning_id


class _Result:
    """What the mixins read from sqlite3's cursor: rows, rowcount, lastrowid."""

    def __init__(self, cur: psycopg.Cursor, returning_id: bool):
        self._cur = cur
        self.rowcount = cur.rowcount
        self.lastrowid = None
        self._rows: list | None = None
        if returning_id:
            self._rows = []
            row = cur.fetchone()
            self.lastrowid = row[0] if row else None

    def fetchone(self):
        if self._rows is not None:
            return None
        return self._cur.fetchone() if self._cur.description else None

    def fetchall(self) -> list:
        if self._rows is not None:
            return []
        return self._cur.fetchall() if self._cur.description else []

    def __iter__(self):
        return iter(self.fetchall())


class _PgConnection:
    """A psycopg connection that speaks to the mixins like sqlite3 does (execute/executemany)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self._cache: dict[str, tuple[str, bool]] = {}

    def _q(self, sql: str) -> tuple[str, bool]:
        got = self._cache.get(sql)
        if got is None:
            got = self._cache[sql] = _translate(sql)
        return got

    def execute(self, sql: str, args: Sequence = ()) -> _Result:
        q, returning_id = self._q(sql)
        cur = self.conn.cursor()
        cur.execute(q, list(args))
        return _Result(cur, returning_id)

    def executemany(self, sql: str, rows: Sequence[Sequence]) -> None:
        rows = list(rows)
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(self._q(sql)[0], rows)


class PostgresStore(PaperReadsMixin, CommunityMixin, DigestMixin):
    """The store on a PostgreSQL server with pgvector. One connection per store, serialised by a lock."""

    dialect = "postgresql"
    _IntegrityError = psycopg.errors.IntegrityError

    def __init__(self, url: str):
        self.url = url
        self.path = None
        self._lock = threading.RLock()
        try:
            self._conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to {_redact(url)}: {e}") from e
        self._db = _PgConnection(self._conn)
        self._migrate()
        self._register_vector()

    # -- schema -------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        known = migrations()
        newest = max(v for v, _ in known)
        with self._lock, self._conn.transaction():
            # One migrator at a time across every process that opens this database.
            self._conn.execute("SELECT pg_advisory_xact_lock(7170001)")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
            )
            done = {r[0] for r in self._conn.execute("SELECT version FROM schema_migrations")}
            if done and max(done) > newest:
                raise StoreError(
                    f"database {_redact(self.url)} has schema v{max(done)}, newer than this papertide "
                    f"(v{newest}); upgrade papertide"
                )
            for version, sql in known:
                if version not in done:
                    self._conn.execute(sql.encode())  # several statements: simple query protocol
                    self._conn.execute(
                        "INSERT INTO schema_migrations VALUES (%s, to_char(now() at time zone 'utc', "
                        "'YYYY-MM-DD HH24:MI:SS'))", (version,)
                    )
            # A layout change of schema v1 made after v1 shipped (migrations_pg/0001_init.sql): it has no
            # number of its own, as SQLite has no counterpart and both backends share one schema version.
            # Only rows written from now on move in line; VACUUM FULL papers moves the older ones.
            storage = self._conn.execute(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = 'papers'::regclass AND attname = 'tsv'"
            ).fetchone()
            if storage and storage[0] != "m":
                self._conn.execute("ALTER TABLE papers ALTER COLUMN tsv SET STORAGE MAIN")

    def _register_vector(self) -> None:
        oid = self._vec_oid = self._conn.execute("SELECT 'vector'::regtype::oid").fetchone()[0]
        self._conn.adapters.register_loader(oid, _VectorLoader)
        dumper = type("_VecDumper", (_VectorDumper,), {"oid": oid})
        self._conn.adapters.register_dumper(np.ndarray, dumper)

    def schema_version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self):
        with self._conn.transaction():
            yield self._db

    def _retrying(self, fn):
        """Run fn() in a transaction, again if PostgreSQL aborted it for a deadlock or serialisation race."""
        for attempt in range(_RETRIES):
            try:
                with self._lock, self._conn.transaction():
                    return fn()
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- papers -------------------------------------------------------------------------------------
    def upsert_papers(self, papers: Sequence[Paper] | PreparedPapers) -> UpsertResult:
        """Insert new papers, update changed ones, leave identical ones alone - in one transaction.

        The same rules as SqliteStore.upsert_papers (older versions only add history, Hugging Face records
        of known papers only update the signals). Safe with concurrent writers: existing rows are locked in
        arxiv_id order, new rows are COPYed and inserted with ON CONFLICT DO NOTHING, and a row another
        writer inserted meanwhile is taken through the update path in a second round.
        """
        batch = papers if isinstance(papers, PreparedPapers) else prepare_papers(papers)
        if not batch.rows:
            return UpsertResult(unchanged=batch.records)
        return self._retrying(lambda: self._upsert(batch))

    def _upsert(self, batch: PreparedPapers) -> UpsertResult:
        rows = batch.rows
        res = UpsertResult(unchanged=batch.records - len(rows))
        c = self._conn
        if len(rows) >= BULK_ROWS:
            # A bulk batch does not wait for its WAL flush. A crash may lose the last such batches (never
            # half of one), which a re-run of the import writes again; any later synchronous commit - the
            # importer's resume point in `state`, say - flushes them first, so the point never runs ahead.
            c.execute("SET LOCAL synchronous_commit = off")
        seq = c.execute("SELECT nextval('change_seq')").fetchone()[0]
        doc_ids: list[int | None] = [None] * len(rows)
        sources: list[tuple[int, str]] = []
        signals: list[tuple] = []
        updates: list[tuple] = []
        todo = sorted(range(len(rows)), key=lambda i: rows[i][0])
        for _round in range(2):
            existing = self._existing_for_update([rows[i][0] for i in todo])
            inserts: list[int] = []
            for i in todo:
                row = rows[i]
                known = existing.get(row[0])
                if known is None:
                    inserts.append(i)
                    continue
                updated, doc_ids[i] = triage_stored(row, known, seq, signals, sources, updates)
                res.updated += updated
                res.unchanged += not updated
            if not inserts:
                break
            got = self._insert_new([rows[i] for i in inserts], seq)
            lost = []
            for i in inserts:
                new_id = got.get(rows[i][0])
                if new_id is None:  # another writer inserted it since we looked: update it instead
                    lost.append(i)
                else:
                    doc_ids[i] = new_id
                    res.inserted += 1
            todo = lost
            if not todo:
                break
        if updates:
            sets = ", ".join(_SET.get(col, f"{col} = %s").replace("?", "%s") for col in _COLS[1:])
            with c.cursor() as cur:
                cur.executemany(f"UPDATE papers SET {sets} WHERE id = %s", updates)
        if batch.versions:
            vrows = [(doc_ids[i], v, cr, z) for i, v, cr, z in batch.versions if doc_ids[i] is not None]
            self._copy_upsert_versions(vrows)
        if sources:
            with c.cursor() as cur:
                cur.executemany("INSERT INTO paper_sources VALUES (%s, %s) ON CONFLICT DO NOTHING", sources)
        if signals:
            with c.cursor() as cur:
                cur.executemany(
                    "UPDATE papers SET hf_upvotes = coalesce(%s, hf_upvotes), "
                    "featured_on = coalesce(featured_on, %s) WHERE id = %s",
                    signals,
                )
        return res

    def _existing_for_update(self, arxiv_ids: list[str]) -> dict[str, tuple[int, int, str, str]]:
        if not arxiv_ids:
            return {}
        rows = self._conn.execute(
            "SELECT arxiv_id, id, version, content_hash, source FROM papers WHERE arxiv_id = ANY(%s) "
            "ORDER BY arxiv_id FOR UPDATE",
            (arxiv_ids,),
        ).fetchall()
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    def _insert_new(self, rows: list[tuple], seq: int) -> dict[str, int]:
        """COPY rows into a staging table, insert those still new; returns arxiv_id -> new id.

        Ids are drawn in batch order (as SQLite gives them), rows are inserted in arxiv_id order (so two
        writers inserting overlapping batches wait on each other in one order instead of deadlocking).
        """
        c = self._conn
        c.execute(f"CREATE TEMP TABLE IF NOT EXISTS stage_papers AS SELECT id, {_PAPER_COLS} FROM papers WITH NO DATA")
        ids = [r[0] for r in c.execute(
            "SELECT nextval(pg_get_serial_sequence('papers', 'id')) FROM generate_series(1, %s)", (len(rows),)
        )]
        ids.sort()
        cols = ", ".join(_ROW_COLS)
        with c.cursor() as cur:
            cur.execute("TRUNCATE stage_papers")
            with cur.copy(f"COPY stage_papers (id, {cols}) FROM STDIN") as cp:
                for doc_id, r in zip(ids, rows):
                    cp.write_row((doc_id, *r))
            got = cur.execute(
                f"INSERT INTO papers (id, {cols}, seq) SELECT id, {cols}, %s FROM stage_papers ORDER BY arxiv_id "
                "ON CONFLICT (arxiv_id) DO NOTHING RETURNING arxiv_id, id, source",
                (seq,),
            ).fetchall()
            cur.execute("TRUNCATE stage_papers")
            if got:
                with cur.copy("COPY paper_sources (paper_id, source) FROM STDIN") as cp:
                    for _aid, doc_id, source in got:
                        cp.write_row((doc_id, source))
        return {aid: doc_id for aid, doc_id, _ in got}

    def _copy_upsert_versions(self, vrows: list[tuple]) -> None:
        if not vrows:
            return
        c = self._conn
        c.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage_versions (paper_id BIGINT, version INTEGER, created TEXT, "
            "size TEXT, ord SERIAL) ON COMMIT DELETE ROWS"
        )
        with c.cursor() as cur:
            with cur.copy("COPY stage_versions (paper_id, version, created, size) FROM STDIN") as cp:
                for r in vrows:
                    cp.write_row(r)
            # A version's date, once known, is kept; a later record may fill a missing one. Within one
            # batch the first row of a (paper, version) wins, as executemany's sequence of upserts would.
            cur.execute(
                "INSERT INTO paper_versions (paper_id, version, created, size) "
                "SELECT paper_id, version, created, size FROM ("
                "  SELECT paper_id, version, "
                "    (array_remove(array_agg(created) OVER w, NULL))[1] AS created, "
                "    (array_remove(array_agg(size) OVER w, NULL))[1] AS size, "
                "    row_number() OVER w AS n FROM stage_versions "
                "  WINDOW w AS (PARTITION BY paper_id, version ORDER BY ord "
                "               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
                ") s WHERE n = 1 ORDER BY paper_id, version "
                "ON CONFLICT (paper_id, version) DO UPDATE SET "
                "created = coalesce(paper_versions.created, excluded.created), "
                "size = coalesce(paper_versions.size, excluded.size)"
            )
            cur.execute("TRUNCATE stage_versions")

    def max_seq(self) -> int:
        with self._lock:
            last, called = self._conn.execute("SELECT last_value, is_called FROM change_seq").fetchone()
        return int(last) if called else 0

    def get_paper(self, arxiv_id: str) -> Paper | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT id, {_PAPER_COLS} FROM papers WHERE arxiv_id = %s", (arxiv_id,)
            ).fetchone()
            if row is None:
                return None
            return self._with_versions({row[0]: _row_paper(row)})[row[0]]

    def get_papers(self, doc_ids: Sequence[int]) -> dict[int, Paper]:
        ids = [int(i) for i in doc_ids]
        with self._lock:
            rows = self._conn.execute(f"SELECT id, {_PAPER_COLS} FROM papers WHERE id = ANY(%s)", (ids,))
            return self._with_versions({r[0]: _row_paper(r) for r in rows})

    def _with_versions(self, papers: dict[int, Paper]) -> dict[int, Paper]:
        if papers:
            rows = self._conn.execute(
                "SELECT paper_id, version, created, size FROM paper_versions WHERE paper_id = ANY(%s) "
                "ORDER BY paper_id, version",
                (list(papers),),
            )
            for pid, v, created, size in rows:
                papers[pid].versions.append(Version(v, created, size))
        return papers

    def doc_ids_for(self, arxiv_ids: Sequence[str]) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT arxiv_id, id FROM papers WHERE arxiv_id = ANY(%s)", (list(arxiv_ids),)
            )
            return dict(rows.fetchall())

    def arxiv_ids_for(self, doc_ids: Sequence[int]) -> dict[int, str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, arxiv_id FROM papers WHERE id = ANY(%s)", ([int(i) for i in doc_ids],)
            )
            return dict(rows.fetchall())

    def _size_bytes(self) -> int:
        return int(self._conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    # -- embeddings ---------------------------------------------------------------------------------

    def put_embeddings(self, model: str, rows: Sequence[TextRow], vectors: np.ndarray) -> None:
        vecs = np.asarray(vectors, dtype=np.float32)

        def write() -> None:
            c = self._conn
            seq = c.execute("SELECT nextval('change_seq')").fetchone()[0]
            c.execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage_embeddings (paper_id BIGINT, text_hash TEXT, vector vector) "
                "ON COMMIT DELETE ROWS"
            )
            with c.cursor() as cur:
                with cur.copy("COPY stage_embeddings FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["int8", "text", self._vec_oid])
                    for i, r in enumerate(rows):
                        cp.write_row((r.doc_id, r.text_hash, vecs[i]))
                cur.execute(
                    "INSERT INTO embeddings (paper_id, model, text_hash, seq, vector) "
                    "SELECT paper_id, %s, text_hash, %s, vector FROM stage_embeddings ORDER BY paper_id "
                    "ON CONFLICT (paper_id) DO UPDATE SET model = excluded.model, text_hash = excluded.text_hash, "
                    "seq = excluded.seq, vector = excluded.vector",
                    (model, seq),
                )
                cur.execute("TRUNCATE stage_embeddings")

        if len(rows):
            self._retrying(write)

    def iter_embeddings(
        self, model: str, since_seq: int, batch: int = 20000
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(doc_ids, seqs, vectors) of embeddings written after `since_seq`, in batches."""
        last = (since_seq, _AFTER_ALL_IDS)
        while True:
            with self._lock, self._conn.cursor(binary=True) as cur:
                rows = cur.execute(
                    "SELECT paper_id, seq, vector FROM embeddings WHERE model = %s AND (seq, paper_id) > (%s, %s) "
                    "ORDER BY seq, paper_id LIMIT %s",
                    (model, *last, batch),
                ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            seqs = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.stack([r[2] for r in rows]).astype(np.float32, copy=False)
            last = (rows[-1][1], rows[-1][0])
            yield ids, seqs, vecs

    # -- the mixins' methods that need PostgreSQL's own SQL -----------------------------------------
    def merge_papers(self, duplicate_id: int, into_id: int) -> None:
        """Fold a duplicate into another paper: its votes, saves and submissions move, and it is hidden."""
        if duplicate_id == into_id:
            raise StoreError("a paper cannot be merged into itself")
        keys = {"votes": "user_id", "collection_items": "collection_id", "submissions": "user_id"}
        with self._lock, self._conn.transaction():
            c = self._conn
            target = c.execute("SELECT arxiv_id FROM papers WHERE id = %s", (into_id,)).fetchone()[0]
            for table, key in keys.items():
                # UPDATE OR IGNORE: move the rows the target does not already have; drop the rest.
                c.execute(
                    f"UPDATE {table} t SET paper_id = %s WHERE paper_id = %s AND NOT EXISTS "
                    f"(SELECT 1 FROM {table} o WHERE o.paper_id = %s AND o.{key} = t.{key})",
                    (into_id, duplicate_id, into_id),
                )
                c.execute(f"DELETE FROM {table} WHERE paper_id = %s", (duplicate_id,))
            for pid in (into_id, duplicate_id):
                c.execute("UPDATE papers SET votes = (SELECT count(*) FROM votes WHERE paper_id = %s) WHERE id = %s",
                          (pid, pid))
            c.execute("UPDATE papers SET hidden = 1, merged_into = %s WHERE id = %s", (target, duplicate_id))

    def hit_rate_limit(self, key: str, limit: int, window_s: int, now: float | None = None) -> bool:
        """Count one hit on `key` in the current fixed window; False once the window holds more than `limit`."""
        now = time.time() if now is None else now
        window = int(now // window_s * window_s)
        with self._lock, self._conn.transaction():
            hits = self._conn.execute(
                'INSERT INTO rate_limits VALUES (%s, %s, 1) ON CONFLICT (key, "window") '
                "DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits",
                (key, window),
            ).fetchone()[0]
            if hits == 1:
                self._conn.execute('DELETE FROM rate_limits WHERE "window" < %s', (window - 86400,))
        return hits <= limit

    def claim_deliveries(self, edition: Edition, run_id: str, limit: int, lease_s: float, now: float) -> list[Claim]:
        """Take up to `limit` due deliveries: a work queue over rows locked with FOR UPDATE SKIP LOCKED.

        Concurrent runs (other processes, other hosts) skip each other's locked rows instead of waiting,
        and a row stays claimed (claimed_by + lease) after the transaction, as in the SQLite backend.
        """
        until = now + lease_s
        with self._lock, self._conn.transaction():
            c = self._conn
            c.execute(
                "UPDATE digest_deliveries SET status = 'skipped', reason = 'no longer subscribed', claimed_by = NULL "
                "WHERE edition_id = %s AND status = 'pending' AND subscriber_id IN (SELECT id FROM subscribers "
                "WHERE status != 'confirmed' OR frequency != %s)",
                (edition.id, edition.frequency),
            )
            cols = ", ".join(f"s.{col.strip()}" for col in SUBSCRIBER_COLS.split(","))
            rows = c.execute(
                "WITH due AS (SELECT subscriber_id, attempts FROM digest_deliveries "
                "  WHERE edition_id = %s AND status = 'pending' AND next_attempt <= %s "
                "  AND (claimed_by IS NULL OR lease_until < %s) ORDER BY subscriber_id LIMIT %s "
                "  FOR UPDATE SKIP LOCKED), "
                "claimed AS (UPDATE digest_deliveries d SET claimed_by = %s, lease_until = %s FROM due "
                "  WHERE d.subscriber_id = due.subscriber_id AND d.edition_id = %s RETURNING d.subscriber_id) "
                f"SELECT {cols}, due.attempts FROM due JOIN subscribers s ON s.id = due.subscriber_id "
                "ORDER BY s.id",
                (edition.id, now, now, limit, run_id, until, edition.id),
            ).fetchall()
        return [Claim(_subscriber(r), edition.id, int(r[-1]), until) for r in rows]

    def next_pending(self, edition: Edition) -> float | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT min(greatest(next_attempt, CASE WHEN claimed_by IS NULL THEN 0 ELSE lease_until END)) "
                "FROM digest_deliveries WHERE edition_id = %s AND status = 'pending'",
                (edition.id,),
            ).fetchone()
        return row[0]

    # -- search (index/pg.py builds on these) -------------------------------------------------------
    def execute(self, sql: str, args: Sequence | dict = (), binary: bool = False) -> list[tuple]:
        """Run one read query of the PostgreSQL search layer (index/pg.py); rows as tuples."""
        with self._lock, self._conn.cursor(binary=binary) as cur:
            cur.execute(sql, args or None)
            return cur.fetchall() if cur.description else []

    def search_query(self, sql: str, args: Sequence, settings: dict[str, str] | None = None) -> list[tuple]:
        """One search query in its own transaction, with SET LOCAL settings (e.g. hnsw.ef_search)."""
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            for key, value in (settings or {}).items():
                cur.execute("SELECT set_config(%s, %s, true)", (key, value))
            cur.execute(sql, args)
            return cur.fetchall()


@contextmanager
def temporary_database(url: str, prefix: str = "papertide_tmp") -> Iterator[str]:
    """A new empty database on the server of `url` (needs CREATEDB), dropped on exit; yields its URL."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(url)._replace(path="/" + name))
    finally:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
