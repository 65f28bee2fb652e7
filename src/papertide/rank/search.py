"""Search: lexical (BM25), dense (MiniLM cosine) or hybrid (both, fused), with filters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from papertide.index import fusion
from papertide.index.build import Indexes
from papertide.index.coalesce import Coalescer
from papertide.models import SearchFilters, SearchHit
from papertide.store.base import Store

if TYPE_CHECKING:
    from papertide.index.embedder import Embedder


# At most this many concurrent queries share a dense pass: a batch of 8 scans 74.7k vectors in 5 ms, one
# query in 3.5 ms (index/dense.py HalfScan); a web worker runs only a few requests at once anyway.
MAX_DENSE_BATCH = 8


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
        # concurrent searches share one forward pass and one scan of the vectors (index/coalesce.py)
        self._dense_stage: Coalescer[tuple[str, int, SearchFilters | None], tuple[list, float, float]] = (
            Coalescer(self._dense_batch, MAX_DENSE_BATCH))
        self._vector_stage: Coalescer[tuple[np.ndarray, int, SearchFilters | None], list] = Coalescer(
            lambda asks: self.indexes.dense_search_many(np.stack([v for v, _, _ in asks]), [(k, f) for _, k, f in asks]),
            MAX_DENSE_BATCH)

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
            den, t["embed"], t["dense"] = self._dense_stage((query, depth, filters))
        if mode is Mode.lexical:
            return _hits(lex[:k], lex, [])
        if mode is Mode.dense:
            return _hits(den[:k], [], den)
        fused = (
            fusion.rrf([lex, den]) if self.fusion.method == "rrf" else fusion.convex(lex, den, self.fusion.alpha)
        )
        return _hits(fused[:k], lex, den)

    def vector_search(self, vector: np.ndarray, k: int, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        """Top-k (doc_id, cosine) to a vector (a paper's own, for similar papers), among the papers that pass
        the filters; concurrent calls share one scan."""
        return self._vector_stage((np.asarray(vector, dtype=np.float32), k, filters))

    def _dense_batch(self, asks: list[tuple[str, int, SearchFilters | None]]) -> list[tuple[list, float, float]]:
        """The dense rankings of concurrent queries: their embeddings in one forward pass, then one scan of
        the vectors for all of them. Each gets the batch's times (ms) to embed and to search."""
        t0 = time.perf_counter()
        vecs = self.embedder.encode_queries([q for q, _, _ in asks])
        t1 = time.perf_counter()
        found = self.indexes.dense_search_many(vecs, [(k, f) for _, k, f in asks])
        t2 = time.perf_counter()
        return [(hits, (t1 - t0) * 1e3, (t2 - t1) * 1e3) for hits in found]

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
