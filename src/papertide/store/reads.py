"""What every backend does alike: change feeds for the indexes, stats, embedding work lists, key/value state.

Written in SQLite's SQL; PostgresStore runs it through its translating connection (store/postgres.py),
as it does the community and digest mixins. Each backend gives `_size_bytes()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

from papertide.models import Paper
from papertide.store.base import DocMeta, StoreStats, TextRow

_PAPER_COLS = (
    "arxiv_id, version, title, abstract, authors, categories, primary_category, submitted, updated, listed, "
    "comments, journal_ref, doi, submitter, license, code_urls, has_code, source, hf_upvotes, featured_on, "
    "content_hash, text_hash, seq"
)
_AFTER_ALL_IDS = 2**62  # a (seq, id) cursor starting at (s, this) yields exactly the rows with seq > s
_MISSING = (  # papers whose embedding for a model is absent or stale
    "FROM papers p LEFT JOIN embeddings e ON e.paper_id = p.id "
    "WHERE e.paper_id IS NULL OR e.model != ? OR e.text_hash != p.text_hash"
)


class PaperReadsMixin:
    def count_papers(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM papers").fetchone()[0])

    def paper_ids(self) -> list[int]:
        """Every paper's doc id, ascending (8 bytes each: 22 MB at arXiv's 2.7M)."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM papers ORDER BY id").fetchall()]

    def category_names(self) -> list[str]:
        """Every arXiv category any paper has, sorted: the columns of the "for you" category rows."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT categories FROM papers").fetchall()
        return sorted({c for (cats,) in rows for c in cats.split()})

    def iter_changed(self, since_seq: int, batch: int = 5000) -> Iterator[list[tuple[DocMeta, Paper]]]:
        """Papers changed after `since_seq`, in (seq, id) order, in batches."""
        last = (since_seq, _AFTER_ALL_IDS)  # everything with seq > since_seq
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT id, {_PAPER_COLS} FROM papers WHERE (seq, id) > (?, ?) ORDER BY seq, id LIMIT ?",
                    (*last, batch),
                ).fetchall()
            if not rows:
                return
            out = []
            for row in rows:
                p = _row_paper(row)
                out.append((_meta(row[0], row[-1], p.listed or p.submitted, p.categories, p.has_code), p))
            last = (rows[-1][-1], rows[-1][0])
            yield out

    def iter_doc_meta(self, since_seq: int, batch: int = 20000) -> Iterator[list[DocMeta]]:
        last = (since_seq, _AFTER_ALL_IDS)  # everything with seq > since_seq
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, seq, coalesce(listed, submitted), categories, has_code FROM papers "
                    "WHERE (seq, id) > (?, ?) ORDER BY seq, id LIMIT ?",
                    (*last, batch),
                ).fetchall()
            if not rows:
                return
            yield [DocMeta(r[0], r[1], r[2], r[3].split(), bool(r[4])) for r in rows]
            last = (rows[-1][1], rows[-1][0])

    def stats(self) -> StoreStats:
        with self._lock:
            db = self._db
            n, with_code, first, last = db.execute(
                "SELECT count(*), sum(has_code), min(coalesce(listed, submitted)), "
                "max(coalesce(listed, submitted)) FROM papers"
            ).fetchone()
            embedded = db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
            cats = db.execute(
                "SELECT primary_category, count(*) c FROM papers WHERE primary_category IS NOT NULL "
                "GROUP BY 1 ORDER BY c DESC LIMIT 15"
            ).fetchall()
            srcs = db.execute("SELECT source, count(*) c FROM paper_sources GROUP BY 1 ORDER BY c DESC").fetchall()
            size = self._size_bytes()
        return StoreStats(int(n), int(with_code or 0), int(embedded), first, last, [tuple(c) for c in cats],
                          [tuple(s) for s in srcs], self.schema_version(), int(size))

    def count_missing_embeddings(self, model: str) -> int:
        with self._lock:
            return int(self._db.execute(f"SELECT count(*) {_MISSING}", (model,)).fetchone()[0])

    def missing_embeddings(self, model: str, limit: int) -> list[TextRow]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT p.id, p.text_hash, p.title, p.abstract {_MISSING} ORDER BY p.id LIMIT ?", (model, limit)
            ).fetchall()
        return [TextRow(*r) for r in rows]

    # -- key/value state (checkpoints, watermarks) ----------------------------------------------------
    def get_state(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM state WHERE key = ?", (key,))
            else:
                self._db.execute(
                    "INSERT INTO state VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )


def _date(s: str | None) -> date | None:
    return date.fromisoformat(s) if s else None


def _row_paper(r: tuple) -> Paper:
    # r = (id, *_PAPER_COLS)
    return Paper(
        arxiv_id=r[1], version=r[2], title=r[3], abstract=r[4], authors=json.loads(r[5]),
        categories=r[6].split(), submitted=_date(r[8]), updated=_date(r[9]), listed=_date(r[10]),
        comments=r[11], journal_ref=r[12], doi=r[13], submitter=r[14], license=r[15],
        code_urls=json.loads(r[16]), source=r[18], hf_upvotes=r[19], featured_on=_date(r[20]),
    )


def _meta(doc_id: int, seq: int, day: date | None, cats: list[str], has_code: bool) -> DocMeta:
    return DocMeta(doc_id, seq, day.isoformat() if day else None, cats, has_code)
