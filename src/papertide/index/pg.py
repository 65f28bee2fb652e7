"""Search inside PostgreSQL: full-text (tsvector + GIN) for the lexical ranker, pgvector HNSW for the dense one.

`PgIndexes` has the shape of `index.build.Indexes` (lexical, dense, filters, with the same search
signatures), so SearchEngine, similar papers, the web app and the CLI run unchanged on either backend;
filters are SQL conditions instead of in-memory masks. Nothing is cached in the process: every web
worker on every host reads the same database.

Lexical scoring is BM25's shape over PostgreSQL's text search: score(d) = sum over query terms t of
idf(t) * ts_rank(weights, d, t, 1), with idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)) (Robertson & Zaragoza
2009) from the `lexical_terms` document frequencies; ts_rank's per-term weight grows with the term's
frequency and normalisation 1 divides by 1 + ln(document length). The tsvector marks title lexemes 'A' and
abstract lexemes 'B' (schema v5), and `RANK_WEIGHTS` counts a title occurrence 1.25x an abstract one.
Lexical nDCG@10 on SciFact train: 0.700 (against 0.699 for tantivy's BM25; 0.691 unweighted, before v5,
and 0.663 with ts_rank's default weights, title 2.5x); normalisation 0 / 2 / 32 scored 0.688 / 0.520 /
0.685 unweighted, and ts_rank_cd over the OR of the terms (no IDF) 0.414 (measured with
benchmarks/bench_pg.py's PostgreSQL server).

Ranking every paper that matches any query term costs a ts_rank per match (a common word matches most of
the corpus: 278 ms p50 at 74,728 papers), so the ranker scores only candidates chosen by document
frequency (`candidates`, at most a few thousand papers whatever the corpus size), read through the GIN
index; the tsvector is stored inline in the row (STORAGE MAIN) so scoring one reads no TOAST. When more
papers may match than are scored (a query of common words only, one very common word), the papers holding
a query term in their title ('term:A', a tsquery weight restriction) are scored first and the rest fill
up the same budget: "model" (61,000 papers, 16,689 with it in the title) ranks among all its titled papers
instead of whichever 20,000 papers the index returns first (top-10 agreement with the exhaustive ranking
1.0 for 7 common words, 0.3-1.0 before). GIN keeps no weights, so the titled papers are read through a
second GIN index, of the titles' own vectors (schema v6, papers_title_tsv, 7 MB at 74,728 papers): seven
one-word queries 51 ms p50 / 61 ms p95, against 79 / 103 ms with 'term:A' checked on every match read
(schema v5) and 36 ms for the first 20,000 matches found, whatever they were (benchmarks/README.md).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from papertide.models import SearchFilters

_WORD = re.compile(r"\w+", re.UNICODE)
# HNSW candidate list per query (pgvector's hnsw.ef_search, default 40): at least twice k, and at least
# EF_SEARCH, growing with the table: EF_PER_ROWS rows per candidate, up to EF_SEARCH_MAX. A fixed 100 gave
# recall@10 0.995 at 74,728 papers, 0.944 at 300k and 0.847 at 1M (bench_scale.py, replicated corpus with
# near-duplicate clusters, so pessimistic); at 1M, 800 gave 0.965 (25.6 ms a dense search against 7.0 ms),
# at 300k 200-400 gave 0.979-0.992. So: 100 up to 125k rows, 240 at 300k, 800 at 1M, 1,000 from 1.25M.
EF_SEARCH = 100
EF_PER_ROWS = 1250
EF_SEARCH_MAX = 1000
ROW_COUNT_TTL_S = 300.0  # the table's size, re-read from pg_class this often
RANK_NORMALIZATION = 1  # ts_rank: divide by 1 + ln(document length)
# ts_rank's weights of the lexeme classes {D, C, B, A} (each at most 1); the tsvector marks title lexemes A
# and abstract lexemes B (schema v5). A title occurrence counts 1.25x an abstract one: SciFact train lexical
# nDCG@10 by abstract weight (title 1.0): 1.0 (unweighted, as before v5) 0.691, 0.9 0.695, 0.85 0.699,
# 0.8 0.700, 0.75 0.699, 0.67 0.696, 0.5 0.682, PostgreSQL's default 0.4 0.663. D and C do not occur.
RANK_WEIGHTS = (0.8, 0.8, 0.8, 1.0)
# Lexical candidates scored per query (`candidates`): at 74,728 papers 5,000 keep 0.99 of the exhaustive
# ranking's top 10 (2,000: 0.92; 10,000: 0.998) at a fifth of the latency (benchmarks/README.md).
CANDIDATE_CAP = 5000


def filter_sql(f: SearchFilters | None, alias: str = "p") -> tuple[str, list]:
    """SQL conditions (joined by AND, leading ' AND ') and their arguments for search filters."""
    if f is None or f.is_empty():
        return "", []
    conds, args = [], []
    day = f"coalesce({alias}.listed, {alias}.submitted)"
    if f.date_from is not None:
        conds.append(f"{day} >= %s")
        args.append(f.date_from.isoformat())
    if f.date_to is not None:
        conds.append(f"{day} <= %s")
        args.append(f.date_to.isoformat())
    if f.categories:
        conds.append(f"{alias}.cats && %s::text[]")
        args.append(list(f.categories))
    if f.has_code is not None:
        conds.append(f"{alias}.has_code = %s")
        args.append(int(f.has_code))
    return "".join(f" AND {c}" for c in conds), args


class PgLexical:
    """Full-text search over title + abstract, ranked BM25-style (module docstring).

    Two stages, so a query costs about the same at 75k papers as at millions: the GIN index gives the
    candidates (`candidates`), and only those are scored with the full formula. `cap=None` ranks every
    paper matching any term (the reference the pruning is measured against).
    """

    def __init__(self, store, cap: int | None = CANDIDATE_CAP):
        if cap is not None and cap < 1:
            raise ValueError(f"the candidate cap must be a positive number of papers, not {cap}")
        self.store, self.cap = store, cap

    def terms(self, query: str) -> tuple[list[tuple[str, int]], int]:
        """The query's stemmed terms (stop words gone) with their document frequencies, and N."""
        words = _WORD.findall(query.lower())
        if not words:
            return [], 0
        rows = self.store.execute(
            "SELECT t.lexeme, coalesce(s.ndoc, 1), (SELECT greatest(ndoc, 1) FROM lexical_terms WHERE word = '') "
            "FROM unnest(to_tsvector('english', %s)) t LEFT JOIN lexical_terms s ON s.word = t.lexeme",
            (" ".join(words),),
        )
        if not rows:
            return [], 0
        return [(t, int(df)) for t, df, _ in rows], int(rows[0][2] or 1)

    def search(self, query: str, k: int = 100, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        if k < 1:
            return []
        terms, n = self.terms(query)
        if not terms:
            return []
        weights = {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t, df in terms}
        plan = candidates(terms, n, self.cap)
        where, fargs = filter_sql(filters)
        limit = max(plan.limit, k) if plan.limit else None
        if plan.title_first and limit:
            hits = self._titles_first(weights, plan.tsquery, k, where, fargs, limit)
        else:
            hits, scored = self._rank(weights, plan.tsquery, k, where, fargs, limit)
            if plan.may_overflow and limit and scored >= limit:
                hits = self._titles_first(weights, plan.tsquery, k, where, fargs, limit)
        if plan.pruned and len(hits) < k:
            # Fewer than k candidates (rare terms, or a narrow filter): top up from the papers the pruning
            # left out, a bounded number of them, so the list still reaches k when enough papers match.
            every = " | ".join(_quote_lexeme(t) for t, _ in terms)
            rest, _ = self._rank(weights, every, k - len(hits), f" AND NOT (p.tsv @@ %s::tsquery){where}",
                                 [plan.tsquery, *fargs], limit)
            hits = sorted(hits + rest, key=lambda h: (-h[1], h[0]))[:k]
        return hits

    def _titles_first(self, weights: dict[str, float], tsquery: str, k: int, where: str, wargs: list,
                      limit: int) -> list[tuple[int, float]]:
        """More papers match `tsquery` than `limit`: the ones holding a query term in their title ('term:A')
        are scored first, then the rest fill up the same budget, so a title match is never left out by the
        order the index happens to return papers in."""
        # The titled papers are read through the index of the titles' own vectors (schema v6,
        # papers_title_tsv: the expression below must stay the index's); the rest are told apart by the
        # weighted tsvector ('term:A'), a check on each row read, and only until the budget is full.
        in_title = " | ".join(_quote_lexeme(t) for t in weights)
        titled = " | ".join(_quote_lexeme(t) + ":A" for t in weights)
        hits, scored = self._rank(weights, tsquery, k, f" AND to_tsvector('english'::regconfig, p.title) @@ "
                                  f"%s::tsquery{where}", [in_title, *wargs], limit)
        if scored < limit:
            rest, _ = self._rank(weights, tsquery, k, f" AND NOT (p.tsv @@ %s::tsquery){where}", [titled, *wargs],
                                 max(limit - scored, k))
            hits = sorted(hits + rest, key=lambda h: (-h[1], h[0]))[:k]
        return hits

    def _rank(self, weights: dict[str, float], tsquery: str, k: int, where: str, wargs: list,
              limit: int | None) -> tuple[list[tuple[int, float]], int]:
        """The top k of the papers matching `tsquery` and `where` (at most `limit` of them scored), and how
        many papers were scored."""
        # ts_rank per term: one IDF weight each. The candidates come from a bitmap scan of the GIN index
        # (never a sequential scan of every paper); `limit` bounds how many are scored.
        score = " + ".join(f"%s * ts_rank(%s::float4[], p.tsv, %s::tsquery, {RANK_NORMALIZATION})" for _ in weights)
        score_args: list = []
        for t, w in weights.items():
            score_args += [w, list(RANK_WEIGHTS), _quote_lexeme(t)]
        cap = " LIMIT %s" if limit else ""
        # OFFSET 0 keeps the scores below the count: counted after, the rows would carry their tsvectors.
        sql = (f"SELECT id, s, count(*) OVER () FROM (SELECT p.id, {score} AS s FROM (SELECT p.id, p.tsv "
               f"FROM papers p WHERE p.tsv @@ %s::tsquery{where}{cap}) p OFFSET 0) p ORDER BY s DESC, id LIMIT %s")
        args = [*score_args, tsquery, *wargs, *([limit] if limit else []), k]
        rows = self.store.search_query(sql, args, settings={"enable_seqscan": "off"})
        return [(int(d), float(s)) for d, s, _ in rows], int(rows[0][2]) if rows else 0

    def __len__(self) -> int:
        return self.store.count_papers()

    # The tsvector is a generated column: PostgreSQL keeps it current on every write.
    def reload(self) -> None: ...
    def commit(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CandidatePlan:
    """Which papers the lexical ranker scores: those matching `tsquery`, at most `limit` of them."""

    tsquery: str
    pruned: bool  # False: every paper matching any query term (exhaustive ranking)
    limit: int | None = None
    # More than `limit` papers may match (common words only): if they do, the papers with a query term in
    # their title are scored first (PgLexical.search); `title_first` when they are expected to.
    may_overflow: bool = False
    title_first: bool = False


def candidates(terms: Sequence[tuple[str, int]], n: int, cap: int | None) -> CandidatePlan:
    """Document-frequency-aware candidate generation (the idea of MaxScore, Turtle & Flood 1995).

    Terms are taken rarest first while their summed document frequency stays within `cap`: a paper that
    matches none of them holds only the common terms, whose IDF weights are the smallest, and rarely
    reaches the top. When even the rarest term is more common than `cap` (a query of common words only,
    "large language model reasoning"), the candidates are the papers holding the rarest terms together,
    as many as it takes for an expected count (terms independent) within `cap`. Either way at most
    4 x `cap` papers are scored. In the second case more may match (correlated words; one very common
    word): then the papers with a query term in their title are scored first, and the first found of the
    rest after them (`may_overflow`; `title_first` when the expected count is over the limit, so the
    ranker goes there directly). With `cap=None`, or all terms within it, nothing is pruned.
    """
    if not terms:
        raise ValueError("no query terms to choose candidates from")
    order = sorted(terms, key=lambda t: (t[1], t[0]))
    every = " | ".join(_quote_lexeme(t) for t, _ in order)
    if cap is None or sum(df for _, df in order) <= cap:
        return CandidatePlan(every, pruned=False)
    rare: list[str] = []
    total = 0
    for t, df in order:
        if total + df > cap:
            break
        rare.append(t)
        total += df
    if rare:
        return CandidatePlan(" | ".join(_quote_lexeme(t) for t in rare), pruned=True, limit=4 * cap)
    together: list[str] = []
    expected = float(max(n, 1))
    for t, df in order:
        together.append(t)
        expected *= min(df, n) / max(n, 1)
        if expected <= cap:
            break
    # The expected count assumes independent terms; common words are not ("large", "language"): the limit
    # may cut the matches short even when the estimate is within it. A single word's count is exact.
    return CandidatePlan(" & ".join(_quote_lexeme(t) for t in together), pruned=True, limit=4 * cap,
                         may_overflow=True, title_first=expected > 4 * cap)


def _quote_lexeme(t: str) -> str:
    return "'" + t.replace("'", "''") + "'"


class PgDense:
    """Cosine nearest neighbours through pgvector's HNSW index (vector_cosine_ops) on `vector::vector(dim)`."""

    def __init__(self, store, model: str, dim: int):
        self.store, self.model, self.dim = store, model, dim
        self._rows: tuple[int, float] | None = None  # (estimated rows of embeddings, when read)

    def _ann_sql(self, k: int, extra: str = "", join: str = "", exact: bool = False) -> str:
        v = f"e.vector::vector({self.dim})"
        dist = f"({v} <=> %s::vector({self.dim}))"
        order = "(e.vector <=> %s::vector)" if exact else dist  # not the indexed expression: a full scan
        return (
            f"SELECT e.paper_id, 1 - {dist} FROM embeddings e {join} "
            f"WHERE e.model = %s AND vector_dims(e.vector) = {self.dim}{extra} ORDER BY {order} LIMIT %s"
        )

    def ef_search(self, k: int) -> int:
        """The HNSW candidate list for a top-k search at the table's current size."""
        now = time.monotonic()
        if self._rows is None or now - self._rows[1] > ROW_COUNT_TTL_S:
            # the embeddings table this connection's search_path resolves to (not another schema's)
            got = self.store.execute("SELECT reltuples FROM pg_class WHERE oid = 'embeddings'::regclass")
            self._rows = (max(0, int(got[0][0])) if got else 0, now)  # -1 before the first ANALYZE
        by_size = min(EF_SEARCH_MAX, self._rows[0] // EF_PER_ROWS)
        return max(EF_SEARCH, by_size, 2 * k)

    def _run(self, sql: str, args: list, k: int) -> list[tuple[int, float]]:
        ef = self.ef_search(k)
        rows = self.store.search_query(sql, args, settings={"hnsw.ef_search": str(ef),
                                                           "hnsw.iterative_scan": "relaxed_order"})
        # relaxed_order may return neighbours slightly out of order: sort by the exact cosine.
        return sorted(((int(d), float(s)) for d, s in rows), key=lambda r: (-r[1], r[0]))

    def search(self, query: np.ndarray, k: int = 100, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (doc_id, cosine); `allowed` is a mask over `ids` (from PgFilters.mask), as DenseIndex takes."""
        q = np.asarray(query, dtype=np.float32)
        if allowed is None:
            return self._run(self._ann_sql(k), [q, self.model, q, k], k)
        ids = [int(i) for i in self.ids[allowed]]
        if not ids:
            return []
        return self._run(self._ann_sql(k, " AND e.paper_id = ANY(%s)"), [q, self.model, ids, q, k], k)

    def search_filtered(self, query: np.ndarray, k: int, filters: SearchFilters | None) -> list[tuple[int, float]]:
        q = np.asarray(query, dtype=np.float32)
        where, fargs = filter_sql(filters)
        if not where:
            return self.search(q, k)
        sql = self._ann_sql(k, where, join="JOIN papers p ON p.id = e.paper_id")
        return self._run(sql, [q, self.model, *fargs, q, k], k)

    def exact(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Exact top-k by a full scan (the reference for HNSW recall)."""
        q = np.asarray(query, dtype=np.float32)
        return self._run(self._ann_sql(k, exact=True), [q, self.model, q, k], k)

    @property
    def ids(self) -> np.ndarray:
        rows = self.store.execute("SELECT paper_id FROM embeddings WHERE model = %s ORDER BY paper_id", (self.model,))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def vector_of(self, doc_id: int) -> np.ndarray | None:
        rows = self.store.execute(
            "SELECT vector FROM embeddings WHERE paper_id = %s AND model = %s", (int(doc_id), self.model), binary=True
        )
        return rows[0][0] if rows else None

    def refresh(self, store) -> int:
        return 0  # PostgreSQL maintains the HNSW graph on every write

    def __len__(self) -> int:
        return int(self.store.execute("SELECT count(*) FROM embeddings WHERE model = %s", (self.model,))[0][0])


class PgFilters:
    def __init__(self, store):
        self.store = store

    def mask(self, ids: np.ndarray, f: SearchFilters) -> np.ndarray:
        """Boolean mask over `ids` of the papers that pass the filters (as DocFilter.mask)."""
        where, args = filter_sql(f)
        ids = np.asarray(ids, dtype=np.int64)
        rows = self.store.execute(f"SELECT p.id FROM papers p WHERE p.id = ANY(%s){where}", ([int(i) for i in ids], *args))
        return np.isin(ids, np.array([r[0] for r in rows], dtype=np.int64))

    def refresh(self, store) -> None: ...


@dataclass(slots=True)
class PgIndexes:
    """The search structures of a PostgreSQL store (they live in the database, not in this process)."""

    lexical: PgLexical
    dense: PgDense
    filters: PgFilters
    store: object = field(repr=False, default=None)

    @classmethod
    def open(cls, store, model_id: str, dim: int) -> PgIndexes:
        return cls(PgLexical(store), PgDense(store, model_id, dim), PgFilters(store), store)

    def dense_search(self, q: np.ndarray, k: int, filters: SearchFilters | None) -> list[tuple[int, float]]:
        return self.dense.search_filtered(q, k, filters)

    def dense_search_many(self, qs: np.ndarray, asks: list[tuple[int, SearchFilters | None]],
                          ) -> list[list[tuple[int, float]]]:
        """One query at a time: the database runs concurrent queries side by side anyway."""
        return [self.dense.search_filtered(q, k, f) for q, (k, f) in zip(qs, asks, strict=True)]

    def refresh(self, store) -> None: ...

    def update(self) -> None:
        """After a write batch (`papertide index`): an HNSW index for this dimension, fresh term statistics."""
        dim = int(self.dense.dim)
        self.store.execute(
            f"CREATE INDEX IF NOT EXISTS embeddings_hnsw_{dim} ON embeddings USING hnsw "
            f"((vector::vector({dim})) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
            f"WHERE vector_dims(vector) = {dim}"
        )
        self.store.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY lexical_terms")
