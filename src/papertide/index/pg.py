"""Search inside PostgreSQL: full-text (tsvector + GIN) for the lexical ranker, pgvector HNSW for the dense one.

`PgIndexes` has the shape of `index.build.Indexes` (lexical, dense, filters, with the same search
signatures), so SearchEngine, similar papers, the web app and the CLI run unchanged on either backend;
filters are SQL conditions instead of in-memory masks. Nothing is cached in the process: every web
worker on every host reads the same database.

Lexical scoring is BM25's shape over PostgreSQL's text search: score(d) = sum over query terms t of
idf(t) * ts_rank(d, t, 1), with idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)) (Robertson & Zaragoza 2009)
from the `lexical_terms` document frequencies; ts_rank's per-term weight grows with the term's frequency
and normalisation 1 divides by 1 + ln(document length). Lexical nDCG@10 on SciFact train: 0.691 (against
0.699 for tantivy's BM25); normalisation 0 / 2 / 32 score 0.688 / 0.520 / 0.685, and ts_rank_cd over the
OR of the terms (no IDF) 0.414 (measured with benchmarks/bench_pg.py's PostgreSQL server).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from papertide.models import SearchFilters

_WORD = re.compile(r"\w+", re.UNICODE)
# HNSW candidate list per query (pgvector's hnsw.ef_search, default 40): at least this, and twice k.
EF_SEARCH = 100
RANK_NORMALIZATION = 1  # ts_rank: divide by 1 + ln(document length)


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
    """Full-text search over title + abstract, ranked BM25-style (module docstring)."""

    def __init__(self, store):
        self.store = store

    def search(self, query: str, k: int = 100, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        words = _WORD.findall(query.lower())
        if not words:
            return []
        # The query's stemmed terms, stop words gone, with their document frequencies (1 if unseen).
        terms = self.store.execute(
            "SELECT t.lexeme, coalesce(s.ndoc, 1), (SELECT greatest(ndoc, 1) FROM lexical_terms WHERE word = '') "
            "FROM unnest(to_tsvector('english', %s)) t LEFT JOIN lexical_terms s ON s.word = t.lexeme",
            (" ".join(words),),
        )
        if not terms:
            return []
        n = terms[0][2] or 1
        weights = [math.log(1 + (n - df + 0.5) / (df + 0.5)) for _, df, _ in terms]
        lexemes = [t for t, _, _ in terms]
        score = " + ".join(
            f"%s * ts_rank(p.tsv, %s::tsquery, {RANK_NORMALIZATION})" for _ in lexemes
        )
        score_args: list = []
        for w, t in zip(weights, lexemes):
            score_args += [w, _quote_lexeme(t)]
        where, fargs = filter_sql(filters)
        rows = self.store.execute(
            f"SELECT p.id, {score} AS s FROM papers p WHERE p.tsv @@ %s::tsquery{where} "
            "ORDER BY s DESC, p.id LIMIT %s",
            (*score_args, " | ".join(_quote_lexeme(t) for t in lexemes), *fargs, k),
        )
        return [(int(d), float(s)) for d, s in rows]

    def __len__(self) -> int:
        return self.store.count_papers()

    # The tsvector is a generated column: PostgreSQL keeps it current on every write.
    def reload(self) -> None: ...
    def commit(self) -> None: ...


def _quote_lexeme(t: str) -> str:
    return "'" + t.replace("'", "''") + "'"


class PgDense:
    """Cosine nearest neighbours through pgvector's HNSW index (vector_cosine_ops) on `vector::vector(dim)`."""

    def __init__(self, store, model: str, dim: int):
        self.store, self.model, self.dim = store, model, dim

    def _ann_sql(self, k: int, extra: str = "", join: str = "", exact: bool = False) -> str:
        v = f"e.vector::vector({self.dim})"
        dist = f"({v} <=> %s::vector({self.dim}))"
        order = "(e.vector <=> %s::vector)" if exact else dist  # not the indexed expression: a full scan
        return (
            f"SELECT e.paper_id, 1 - {dist} FROM embeddings e {join} "
            f"WHERE e.model = %s AND vector_dims(e.vector) = {self.dim}{extra} ORDER BY {order} LIMIT %s"
        )

    def _run(self, sql: str, args: list, k: int) -> list[tuple[int, float]]:
        ef = max(EF_SEARCH, 2 * k)
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
