"""Search: lexical (BM25), dense (MiniLM cosine) or hybrid (both, fused), with filters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from papertide.index import fusion
from papertide.index.build import Indexes
from papertide.models import SearchFilters, SearchHit
from papertide.store.base import Store

if TYPE_CHECKING:
    from papertide.index.embedder import Embedder


class Mode(str, Enum):
    lexical = "lexical"
    dense = "dense"
    hybrid = "hybrid"


@dataclass(slots=True)
class SearchResult:
    query: str
    mode: Mode
    hits: list[SearchHit]
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class FusionConfig:
    method: str = "convex"  # or "rrf"
    alpha: float = fusion.CONVEX_ALPHA
    depth: int = 100  # candidates per ranker


class SearchEngine:
    def __init__(self, store: Store, indexes: Indexes, embedder: Embedder, fusion_config: FusionConfig | None = None):
        self.store = store
        self.indexes = indexes
        self.embedder = embedder
        self.fusion = fusion_config or FusionConfig()

    def rank(
        self, query: str, k: int = 10, filters: SearchFilters | None = None, mode: Mode = Mode.hybrid,
        timings: dict[str, float] | None = None,
    ) -> list[SearchHit]:
        """Ranked doc ids with scores (no paper data): the retrieval core, used by search and evaluation."""
        t = timings if timings is not None else {}
        depth = max(k, self.fusion.depth) if mode is Mode.hybrid else k
        lex: list[tuple[int, float]] = []
        den: list[tuple[int, float]] = []
        if mode in (Mode.lexical, Mode.hybrid):
            t0 = time.perf_counter()
            lex = self.indexes.lexical.search(query, depth, filters)
            t["lexical"] = (time.perf_counter() - t0) * 1e3
        if mode in (Mode.dense, Mode.hybrid):
            t0 = time.perf_counter()
            q = self.embedder.encode_query(query)
            t1 = time.perf_counter()
            den = self.indexes.dense_search(q, depth, filters)
            t2 = time.perf_counter()
            t["embed"], t["dense"] = (t1 - t0) * 1e3, (t2 - t1) * 1e3
        if mode is Mode.lexical:
            return _hits(lex[:k], lex, [])
        if mode is Mode.dense:
            return _hits(den[:k], [], den)
        fused = (
            fusion.rrf([lex, den]) if self.fusion.method == "rrf" else fusion.convex(lex, den, self.fusion.alpha)
        )
        return _hits(fused[:k], lex, den)

    def search(
        self, query: str, k: int = 10, filters: SearchFilters | None = None, mode: Mode = Mode.hybrid,
        offset: int = 0,
    ) -> SearchResult:
        """Ranked papers for a query, with the stored paper attached to each hit."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        hits = self.rank(query, k + offset, filters, mode, timings)[offset:]
        t1 = time.perf_counter()
        papers = self.store.get_papers([h.doc_id for h in hits])
        for h in hits:
            h.paper = papers.get(h.doc_id)
            h.arxiv_id = h.paper.arxiv_id if h.paper else ""
        hits = [h for h in hits if h.paper is not None]
        timings["fetch"] = (time.perf_counter() - t1) * 1e3
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return SearchResult(query, mode, hits, timings)


def _hits(ranked, lex, den) -> list[SearchHit]:
    lex_rank = {d: i for i, (d, _) in enumerate(lex, 1)}
    den_rank = {d: i for i, (d, _) in enumerate(den, 1)}
    return [SearchHit("", s, lex_rank.get(d), den_rank.get(d), doc_id=d) for d, s in ranked]
