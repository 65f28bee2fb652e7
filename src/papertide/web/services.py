"""What the site runs on, wired once per app: the store, the search engine, e-mail links, the arXiv fetcher."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import numpy as np

from papertide.config import Settings
from papertide.models import Paper, SearchFilters
from papertide.rank.search import FusionConfig, SearchEngine
from papertide.rank.similar import similar_papers
from papertide.store import open_store
from papertide.store.sqlite import SqliteStore
from papertide.web.security import Links

if TYPE_CHECKING:
    from papertide.rank.foryou import ForYou

log = logging.getLogger(__name__)
RANKED_CACHE = 20_000  # similar-paper lists kept per process (~1 KB each)
SEARCH_CACHE = 4_096  # search rankings kept per process (<= 300 ids and scores: <= 3.6 KB each)


@dataclass(frozen=True, slots=True)
class Ranking:
    """A search's ranked doc ids and their scores, best first (compact: kept in the search cache)."""

    ids: np.ndarray  # int64
    scores: np.ndarray  # float32


class ArxivUnavailable(Exception):
    """arXiv could not be reached (offline, or it kept failing)."""


def arxiv_fetcher(settings: Settings) -> Callable[[str], Paper | None]:
    """Fetch one paper by arXiv id through the arXiv API: the paper, or None if arXiv does not know it."""
    from papertide.sources import SourceError
    from papertide.sources.harvest import Harvester

    def fetch(arxiv_id: str) -> Paper | None:
        try:
            with httpx.Client() as client:
                h = Harvester(client, api_url=settings.arxiv_api_url, min_interval=0, max_retries=1, timeout=10.0,
                              contact=settings.contact_email or "papertide")
                res = h.fetch_ids([arxiv_id])
        except (SourceError, httpx.HTTPError, OSError) as e:
            raise ArxivUnavailable(str(e)) from e
        return res.papers[0] if res.papers else None

    return fetch


class QueryCache:
    """The embedder, remembering query vectors: paging, re-sorting, filtering and typing-then-deleting
    all repeat a query, and its embedding is a third of a search's time."""

    def __init__(self, embedder, size: int = 4096):
        self._embedder = embedder
        self._size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode_query(self, query: str) -> np.ndarray:
        return self.encode_queries([query])[0]

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Vectors of the queries, those not remembered embedded in one batch. Rows are read-only: shared."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for q in queries:
                if (v := self._vectors.get(q)) is not None:
                    self._vectors.move_to_end(q)
                    found[q] = v
        missing = list(dict.fromkeys(q for q in queries if q not in found))
        if missing:
            vecs = self._embedder.encode_queries(missing)
            vecs.setflags(write=False)
            new = dict(zip(missing, vecs, strict=True))
            found.update(new)
            with self._lock:
                self._vectors.update(new)
                while len(self._vectors) > self._size:
                    self._vectors.popitem(last=False)
        return np.stack([found[q] for q in queries]) if len(queries) > 1 else found[queries[0]][None, :]

    def __getattr__(self, name):
        return getattr(self._embedder, name)


@dataclass
class Services:
    settings: Settings
    store: SqliteStore
    links: Links
    engine: SearchEngine | None = None
    fetch_arxiv: Callable[[str], Paper | None] | None = None
    _index_lock: threading.Lock = field(default_factory=threading.Lock)
    _ranked_lock: threading.Lock = field(default_factory=threading.Lock)

    _seen: tuple = ()
    _search_limiter: Any = None
    _ranked: dict[str, OrderedDict] = field(default_factory=dict)  # per kind: "similar", "search"

    def similar(self, doc_id: int, k: int, since: date | None = None) -> list[tuple[int, float]]:
        """Similar papers, remembered until the indexes change: a paper's list is the same for every visitor,
        and computing it is most of a paper page's cost (a dense scan of every vector)."""
        assert self.engine is not None
        engine = self.engine
        return self._remembered(("similar", doc_id, k, since), lambda: similar_papers(engine, doc_id, k, since))

    def search_hits(self, query: str, k: int, filters: SearchFilters) -> Ranking:
        """A query's ranked doc ids and scores, remembered until the indexes change: the next page, another
        sort order, a query typed again or asked by someone else rank nothing (hidden papers are dropped by
        the caller, after the lookup, so moderation takes effect at once)."""
        assert self.engine is not None
        engine = self.engine
        key = ("search", query, k, filters.date_from, filters.date_to, tuple(filters.categories or ()),
               filters.has_code)

        def rank() -> Ranking:
            hits = engine.rank(query, k, filters)
            return Ranking(np.array([h.doc_id for h in hits], dtype=np.int64),
                           np.array([h.score for h in hits], dtype=np.float32))

        return self._remembered(key, rank, SEARCH_CACHE)

    async def search_hits_pooled(self, query: str, k: int, filters: SearchFilters) -> Ranking:
        """`search_hits` in a thread of the search pool (`search_threads` at once), not the page pool: a query
        waiting for its batch's dense pass (rank/search.py) holds no thread that a page could use."""
        if self._search_limiter is None:  # made here: it belongs to the running event loop
            self._search_limiter = anyio.CapacityLimiter(self.settings.search_threads)
        return await anyio.to_thread.run_sync(self.search_hits, query, k, filters, limiter=self._search_limiter)

    def _remembered(self, key: tuple, compute: Callable[[], Any], limit: int = RANKED_CACHE) -> Any:
        with self._ranked_lock:
            cache = self._ranked.setdefault(key[0], OrderedDict())
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
                return hit
        value = compute()
        with self._ranked_lock:
            cache[key] = value
            while len(cache) > limit:
                cache.popitem(last=False)
        return value
    _foryou: ForYou | None = None
    _foryou_lock: threading.Lock = field(default_factory=threading.Lock)

    def for_you(self) -> ForYou | None:
        """The "for you" feed of this process (None without an index), created on first use, built lazily."""
        if self.engine is None:
            return None
        with self._foryou_lock:
            if self._foryou is None:
                from papertide.rank.foryou import TERMS_DIR, ForYou

                self._foryou = ForYou(self.store, self.engine.embedder.model_id, self._vector_of,
                                      space_dir=self.settings.index_dir / TERMS_DIR)
            return self._foryou

    def _vector_of(self, doc_id: int):
        assert self.engine is not None
        return self.engine.indexes.dense.vector_of(doc_id)  # the current indexes, also after a refresh

    def index_new_papers(self) -> None:
        """Index a paper submitted through the site right away (embeds only what is new).

        Best effort: if another process holds the index (a running `papertide index`, another worker),
        the paper is stored and the next indexing run picks it up.
        """
        if self.engine is None:
            return
        from papertide.index.build import update_index

        with self._index_lock:
            try:
                update_index(self.store, self.settings.index_dir, self.engine.embedder,
                             indexes=self.engine.indexes)
                self._seen = self._signature()
                with self._ranked_lock:
                    self._ranked.clear()
            except Exception as e:  # noqa: BLE001 - the page must answer; the indexing job catches up
                log.warning("could not index the new paper now (%s); `papertide index` will", e)

    def refresh_indexes(self) -> bool:
        """Swap in indexes caught up with the store, if it changed (papers ingested and indexed meanwhile).

        The new indexes are built aside and swapped in one assignment, so searches never see half of them.
        """
        if self.engine is None:
            return False
        sig = self._signature()
        if sig == self._seen:
            return False
        from papertide.index.build import open_indexes

        with self._index_lock:
            emb = self.engine.embedder
            self.engine.indexes = open_indexes(self.store, self.settings.index_dir, emb.model_id, emb.dim,
                                               read_only=True)
            self._seen = sig
            with self._ranked_lock:
                self._ranked.clear()
        return True

    def _signature(self) -> tuple:
        """Changes when the store changes (new papers, new embeddings) or the lexical index commits."""
        from papertide.index.build import LEXICAL_DIR

        mark = self.settings.index_dir / f"{LEXICAL_DIR}.json"
        return (self.store.max_seq(), mark.stat().st_mtime_ns if mark.exists() else 0)

    def close(self) -> None:
        self.store.close()


def build_services(settings: Settings, load_engine: bool = True, embedder=None) -> Services:
    """Open the store (and the indexes and embedder, if an index was built) for the site.

    `embedder` lets several apps in one process (tests) share one loaded model.
    """
    store = open_store(settings.db_url)
    engine = None
    in_database = getattr(store, "dialect", "sqlite") == "postgresql"  # PostgreSQL searches in the database
    if load_engine and (in_database or settings.index_dir.exists()):
        from papertide.index.build import open_indexes
        from papertide.index.embedder import Embedder

        embedder = embedder or Embedder(precision=settings.embed_precision, batch_size=settings.embed_batch_size)
        indexes = open_indexes(store, settings.index_dir, embedder.model_id, embedder.dim, read_only=True)
        engine = SearchEngine(store, indexes, QueryCache(embedder),
                              FusionConfig(settings.fusion, settings.fusion_alpha, settings.fusion_depth))
    elif load_engine:
        log.warning("no index in %s: search is off until `papertide index` runs", settings.index_dir)
    services = Services(settings, store, Links(settings.signing_key()), engine, arxiv_fetcher(settings))
    services._seen = services._signature()
    return services
