"""Keep the indexes in step with the store: embed what is missing, then catch up the lexical and dense indexes.

Every step is incremental and restartable. Embeddings are written to the store batch by batch (a kill
loses one batch); the lexical index records, after each commit, the store sequence number it has
reached (a kill replays from there, and replaying a paper replaces it); the dense cache does the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from papertide.index.dense import DenseIndex, DocFilter
from papertide.index.lexical import LexDoc, LexicalIndex
from papertide.models import SearchFilters
from papertide.store.base import Store, embed_text

if TYPE_CHECKING:
    from papertide.index.embedder import Embedder

Progress = Callable[[str, int, int], None]  # (stage, done, total)

EMBED_CHUNK = 512  # texts read from the store and committed back per step
LEX_COMMIT_EVERY = 50_000
# The lexical index's folder carries its layout version: a new layout is built beside the old one.
LEXICAL_DIR = "lexical-v2"


@dataclass(slots=True)
class Indexes:
    lexical: LexicalIndex
    dense: DenseIndex
    filters: DocFilter

    def refresh(self, store: Store) -> None:
        """Pick up what another process committed (lexical segments, embeddings, metadata)."""
        self.lexical.reload()
        self.dense.refresh(store)
        self.filters.refresh(store)

    def dense_search(self, q, k: int, filters: SearchFilters | None) -> list[tuple[int, float]]:
        """Top-k (doc_id, cosine) among the papers that pass the filters."""
        return self.dense.search(q, k, self._allowed(filters))

    def dense_search_many(self, qs, asks: list[tuple[int, SearchFilters | None]]) -> list[list[tuple[int, float]]]:
        """`dense_search` for each row of `qs` with its (k, filters): one scan for them all where it can."""
        return self.dense.search_many(qs, [k for k, _ in asks], [self._allowed(f) for _, f in asks])

    def _allowed(self, filters: SearchFilters | None):
        if filters is None or filters.is_empty():
            return None
        return self.filters.mask(self.dense.ids, filters)


@dataclass(slots=True)
class IndexReport:
    embedded: int = 0
    lexical: int = 0
    dense_rows: int = 0


def open_indexes(
    store: Store, index_dir: Path | None, model_id: str, dim: int, refresh: bool = True, read_only: bool = False,
) -> Indexes:
    """Open (or create) the indexes in `index_dir` (in memory when None), caught up with the store.

    `read_only` is for readers such as the web server: the dense cache catches up in memory only.
    A PostgreSQL store searches inside the database (index/pg.py): nothing to open in `index_dir`.
    """
    if getattr(store, "dialect", "sqlite") == "postgresql":
        from papertide.index.pg import PgIndexes

        return PgIndexes.open(store, model_id, dim)  # type: ignore[return-value]
    lex = LexicalIndex(index_dir / LEXICAL_DIR if index_dir else None)
    dense = DenseIndex(index_dir / "dense" if index_dir else None, dim, model_id, read_only=read_only)
    filters = DocFilter()
    if refresh:
        dense.refresh(store)
        filters.refresh(store)
    return Indexes(lex, dense, filters)


def embed_missing(store: Store, embedder: Embedder, progress: Progress | None = None) -> int:
    """Embed papers that have no embedding (or a stale one) for this model; resumable at any point."""
    total = store.count_missing_embeddings(embedder.model_id)
    done = 0
    if progress:
        progress("embed", 0, total)
    while True:
        rows = store.missing_embeddings(embedder.model_id, EMBED_CHUNK)
        if not rows:
            break
        vectors = embedder.encode([embed_text(r.title, r.abstract) for r in rows])
        store.put_embeddings(embedder.model_id, rows, vectors)
        done += len(rows)
        if progress:
            progress("embed", done, max(total, done))
    return done


def update_lexical(store: Store, lex: LexicalIndex, index_dir: Path | None, progress: Progress | None = None) -> int:
    mark_file = index_dir / f"{LEXICAL_DIR}.json" if index_dir else None
    since = 0
    if mark_file and mark_file.exists() and len(lex) > 0:
        since = int(json.loads(mark_file.read_text())["seq"])
    total = store.count_papers() if since == 0 else 0
    done = pending = 0
    reached = since
    for batch in store.iter_changed(since):
        lex.upsert(LexDoc.from_paper(m.doc_id, p) for m, p in batch)
        done += len(batch)
        pending += len(batch)
        reached = batch[-1][0].seq
        if progress:
            progress("lexical", done, max(total, done))
        if pending >= LEX_COMMIT_EVERY:
            _commit_lexical(lex, mark_file, reached)
            pending = 0
    _commit_lexical(lex, mark_file, reached)
    return done


def _commit_lexical(lex: LexicalIndex, mark_file: Path | None, seq: int) -> None:
    lex.commit()
    if mark_file is not None:
        tmp = mark_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seq": seq}))
        os.replace(tmp, mark_file)


def update_index(
    store: Store, index_dir: Path | None, embedder: Embedder, progress: Progress | None = None,
    indexes: Indexes | None = None,
) -> tuple[Indexes, IndexReport]:
    """Embed, then update the lexical index and the dense cache. Returns the up-to-date indexes."""
    report = IndexReport()
    report.embedded = embed_missing(store, embedder, progress)
    if indexes is None:
        indexes = open_indexes(store, index_dir, embedder.model_id, embedder.dim, refresh=False)
    if not isinstance(indexes, Indexes):  # PostgreSQL: the database maintains its own search structures
        indexes.update()
        return indexes, report
    report.lexical = update_lexical(store, indexes.lexical, index_dir, progress)
    report.dense_rows = indexes.dense.refresh(store)
    indexes.filters.refresh(store)
    return indexes, report
