"""Copy a SQLite instance into PostgreSQL (`papertide migrate-db`): every table, verified, resumable.

The source is opened read-only. Each table is copied in primary-key order, in batches; a batch and the
key it reached are committed together in the target (state key `migrate:<table>`), so a killed copy
resumes after the last committed batch, and rows already there are skipped (ON CONFLICT DO NOTHING).
At the end every table's row count and a checksum over all its copied columns are compared.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from papertide.store.base import StoreError
from papertide.store.postgres import PostgresStore

# Parents before children (foreign keys), each with its primary key.
TABLES: list[tuple[str, tuple[str, ...]]] = [
    ("papers", ("id",)),
    ("paper_versions", ("paper_id", "version")),
    ("paper_sources", ("paper_id", "source")),
    ("embeddings", ("paper_id",)),
    ("state", ("key",)),
    ("users", ("id",)),
    ("votes", ("user_id", "paper_id")),
    ("collections", ("id",)),
    ("collection_items", ("collection_id", "paper_id")),
    ("submissions", ("paper_id", "user_id")),
    ("rate_limits", ("key", "window")),
    ("not_interested", ("user_id", "paper_id")),
    ("subscribers", ("id",)),
    ("digest_editions", ("id",)),
    ("digest_deliveries", ("subscriber_id", "edition_id")),
    ("digest_received", ("subscriber_id", "paper_id")),
]
IDENTITY_TABLES = ("papers", "users", "collections", "subscribers", "digest_editions")
BATCH = 5000

Progress = Callable[[str, int, int], None]


@dataclass(slots=True)
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


@dataclass(slots=True)
class MigrateReport:
    copied: dict[str, int] = field(default_factory=dict)
    checks: list[TableCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _q(col: str) -> str:
    return f'"{col}"'


def open_source(path: str) -> sqlite3.Connection:
    """The SQLite database, read-only (a migration never writes its source)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        con.execute("SELECT count(*) FROM papers").fetchone()
    except sqlite3.Error as e:
        raise StoreError(f"cannot read the SQLite database {path}: {e}") from e
    return con


def _columns(src: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in src.execute(f"PRAGMA table_info({table})")]


def _source_rows(src: sqlite3.Connection, table: str, cols: list[str], key: tuple[str, ...],
                 after: list | None) -> Iterator[list[tuple]]:
    order = ", ".join(_q(k) for k in key)
    while True:
        where, args = "", []
        if after is not None:
            where = f"WHERE ({order}) > ({','.join('?' * len(key))})"
            args = list(after)
        rows = src.execute(
            f"SELECT {', '.join(_q(c) for c in cols)} FROM {table} {where} ORDER BY {order} LIMIT {BATCH}", args
        ).fetchall()
        if not rows:
            return
        yield rows
        idx = [cols.index(k) for k in key]
        after = [rows[-1][i] for i in idx]


def migrate(source_path: str, target: PostgresStore, progress: Progress | None = None,
            verify: bool = True) -> MigrateReport:
    """Copy every table of the SQLite database at `source_path` into `target`; resumable; verified."""
    src = open_source(source_path)
    report = MigrateReport()
    try:
        present = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        conn = target._conn
        vec_oid = target._vec_oid
        for table, key in TABLES:
            if table not in present:
                continue
            cols = _columns(src, table)
            total = src.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            mark = target.get_state(f"migrate:{table}")
            if mark == "done":
                report.copied[table] = 0
                continue
            after = json.loads(mark) if mark else None
            done = 0
            stage = f"stage_migrate_{table}"
            for rows in _source_rows(src, table, cols, key, after):
                with target._lock, conn.transaction(), conn.cursor() as cur:
                    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} AS "
                                f"SELECT {', '.join(_q(c) for c in cols)} FROM {table} WITH NO DATA")
                    cur.execute(f"TRUNCATE {stage}")
                    collist = ", ".join(_q(c) for c in cols)
                    if table == "embeddings":
                        vi = cols.index("vector")
                        with cur.copy(f"COPY {stage} ({collist}) FROM STDIN (FORMAT BINARY)") as cp:
                            cp.set_types([_pg_type(c, vec_oid) for c in cols])
                            for r in rows:
                                r = list(r)
                                r[vi] = np.frombuffer(r[vi], dtype="<f4")
                                cp.write_row(r)
                    else:
                        with cur.copy(f"COPY {stage} ({collist}) FROM STDIN") as cp:
                            for r in rows:
                                cp.write_row(r)
                    cur.execute(f"INSERT INTO {table} ({collist}) SELECT {collist} FROM {stage} ON CONFLICT DO NOTHING")
                    last = [rows[-1][cols.index(k)] for k in key]
                    cur.execute("INSERT INTO state VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                (f"migrate:{table}", json.dumps(last)))
                done += len(rows)
                if progress:
                    progress(table, done, total)
            target.set_state(f"migrate:{table}", "done")
            report.copied[table] = done
        with target._lock, conn.transaction():
            for table in IDENTITY_TABLES:
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"greatest((SELECT max(id) FROM {table}), 1))")
            seq = src.execute("SELECT value FROM state WHERE key = 'seq'").fetchone()
            if seq:
                conn.execute("SELECT setval('change_seq', greatest(%s, (SELECT last_value FROM change_seq)))",
                             (int(seq[0]),))
        target.execute("REFRESH MATERIALIZED VIEW lexical_terms")
        if verify:
            report.checks = [check_table(src, target, t, k) for t, k in TABLES if t in present]
    finally:
        src.close()
    return report


def _pg_type(col: str, vec_oid: int) -> str | int:
    return {"paper_id": "int8", "model": "text", "text_hash": "text", "seq": "int8", "vector": vec_oid}[col]


def _norm(v) -> bytes:
    if v is None:
        return b"\x00N"
    if isinstance(v, (bytes, memoryview)):
        return bytes(v)
    if isinstance(v, np.ndarray):
        return np.asarray(v, dtype="<f4").tobytes()
    if isinstance(v, float):
        return repr(v).encode()
    return str(v).encode()


def _digest(rows) -> tuple[int, str]:
    h = hashlib.blake2b(digest_size=16)
    n = 0
    for r in rows:
        n += 1
        for v in r:
            h.update(_norm(v))
            h.update(b"\x1f")
        h.update(b"\x1e")
    return n, h.hexdigest()


def check_table(src: sqlite3.Connection, target: PostgresStore, table: str, key: tuple[str, ...]) -> TableCheck:
    """Row counts and a checksum over every column of the source, in key order, on both sides."""
    cols = _columns(src, table)
    sel = ", ".join(_q(c) for c in cols)
    order = ", ".join(_q(k) for k in key)
    # Both sides order text keys by code point (SQLite's BINARY collation; COLLATE "C" in PostgreSQL).
    n_src, sum_src = _digest(src.execute(f"SELECT {sel} FROM {table} ORDER BY {order}"))
    pg_order = ", ".join(f'{_q(k)} COLLATE "C"' if k in ("key", "source", "arxiv_id") else _q(k) for k in key)

    def target_rows():
        with target._lock, target._conn.cursor(binary=True) as cur:
            where = " WHERE key NOT LIKE 'migrate:%%'" if table == "state" else ""  # this copy's own marks
            cur.execute(f"SELECT {sel} FROM {table}{where} ORDER BY {pg_order}")
            while batch := cur.fetchmany(BATCH):
                yield from batch

    n_dst, sum_dst = _digest(target_rows())
    return TableCheck(table, n_src, n_dst, sum_src, sum_dst)
