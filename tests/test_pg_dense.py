"""pgvector search on a real server: the HNSW candidate list grows with the table, recall holds."""

from __future__ import annotations

import numpy as np

from papertide.index import pg
from papertide.index.pg import PgDense


def test_ef_search_grows_with_the_table(pg_indexed, monkeypatch):
    store, indexes, _ = pg_indexed
    dense: PgDense = indexes.dense
    store.execute("ANALYZE embeddings")  # reltuples: PostgreSQL's own estimate of the rows
    dense._rows = None
    n = len(dense)
    assert dense.ef_search(10) == pg.EF_SEARCH  # a few hundred papers: the floor
    assert dense.ef_search(300) == 600  # never under twice k
    assert dense._rows[0] == n
    # as if the table were 1M rows: 800 candidates (recall@10 0.965 there, bench_scale.py), capped at 1,000
    monkeypatch.setattr(pg, "EF_PER_ROWS", max(1, n // 800))
    dense._rows = None
    assert dense.ef_search(10) == min(pg.EF_SEARCH_MAX, n // max(1, n // 800))
    monkeypatch.setattr(pg, "EF_PER_ROWS", 1)
    dense._rows = None
    assert dense.ef_search(10) == min(pg.EF_SEARCH_MAX, n)
    # and the search itself agrees with the exact scan at that setting
    q = np.asarray(dense.vector_of(int(dense.ids[7])), dtype=np.float32)
    assert [d for d, _ in dense.search(q, 10)] == [d for d, _ in dense.exact(q, 10)]


def test_the_row_count_is_reread_after_its_ttl(pg_indexed, monkeypatch):
    _store, indexes, _ = pg_indexed
    dense: PgDense = indexes.dense
    dense._rows = (5_000_000, 0.0)  # stale: read at time 0
    monkeypatch.setattr(pg, "ROW_COUNT_TTL_S", 1e12)
    assert dense.ef_search(10) == pg.EF_SEARCH_MAX  # within the TTL the cached count is used
    monkeypatch.setattr(pg, "ROW_COUNT_TTL_S", 0.0)
    assert dense.ef_search(10) == pg.EF_SEARCH  # re-read: the real (small) table
