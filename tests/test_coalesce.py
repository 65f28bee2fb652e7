"""Concurrent calls served as one batch (index/coalesce.py), and the search engine's dense stage on it."""

import threading
import time

import numpy as np
import pytest

from papertide.index.coalesce import Coalescer


def test_a_lone_call_runs_at_once_in_a_batch_of_one():
    seen = []
    c = Coalescer(lambda xs: (seen.append(list(xs)), [x * 2 for x in xs])[1])
    assert c(3) == 6 and c(4) == 8
    assert seen == [[3], [4]] and (c.batches, c.calls) == (2, 2)


def test_calls_made_during_a_batch_share_the_next_one_and_each_gets_its_own_result():
    gate = threading.Event()
    sizes = []

    def batch(xs):
        sizes.append(len(xs))
        if len(sizes) == 1:
            gate.wait(5)  # the first batch runs while the others arrive
        return [x * x for x in xs]

    c = Coalescer(batch, max_batch=4)
    results: dict[int, int] = {}

    def call(x):
        results[x] = c(x)

    first = threading.Thread(target=call, args=(1,))
    first.start()
    while not sizes:
        time.sleep(0.001)
    rest = [threading.Thread(target=call, args=(x,)) for x in range(2, 8)]
    for t in rest:
        t.start()
    deadline = time.time() + 5
    while len(c._pending) < 6 and time.time() < deadline:
        time.sleep(0.001)
    gate.set()
    for t in [first, *rest]:
        t.join(5)
    assert results == {x: x * x for x in range(1, 8)}
    assert sizes[0] == 1 and sorted(sizes[1:]) == [2, 4]  # 6 waiting callers: batches of at most 4
    assert c.calls == 7 and c.batches == 3


def test_an_error_reaches_every_caller_of_its_batch_and_the_next_batch_runs():
    def batch(xs):
        if "bad" in xs:
            raise ValueError("no")
        return [x.upper() for x in xs]

    c = Coalescer(batch)
    with pytest.raises(ValueError, match="no"):
        c("bad")
    assert c("ok") == "OK"
    with pytest.raises(RuntimeError, match="2 results for 1"):
        Coalescer(lambda xs: [1, 2])("x")


def test_concurrent_searches_get_the_rankings_they_get_alone(indexed, embedder):
    """The engine's dense stage batches concurrent queries; each still gets its own (exact) ranking."""
    from papertide.index.dense import DenseIndex
    from papertide.models import SearchFilters
    from papertide.rank.search import Mode, SearchEngine

    store, indexes, root = indexed
    # the 16-bit scan, as at 75k papers (the sample is below HALF_SCAN_MIN_ROWS)
    indexes.dense = DenseIndex(root / "index" / "dense", indexes.dense.dim, indexes.dense.model, read_only=True,
                               half_scan_min_rows=0)
    engine = SearchEngine(store, indexes, embedder)
    asks = [("graph neural networks", None), ("speech recognition", None), ("robot navigation", None),
            ("language models", SearchFilters(categories=["cs.CL"])), ("image segmentation", None),
            ("reinforcement learning", SearchFilters(has_code=True))] * 3
    alone = [engine.rank(q, 20, f, Mode.dense) for q, f in asks]
    got: dict[int, list] = {}
    start = threading.Barrier(len(asks))

    def run(i):
        start.wait()
        got[i] = engine.rank(asks[i][0], 20, asks[i][1], Mode.dense)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(asks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert engine._dense_stage.calls >= len(asks) * 2
    assert engine._dense_stage.batches < engine._dense_stage.calls  # some queries really shared a batch
    for i, want in enumerate(alone):
        # padded batches move vectors by bf16 rounding: the same papers (a near tie may swap at the edge),
        # scores within rounding
        assert len({h.doc_id for h in got[i][:10]} & {h.doc_id for h in want[:10]}) >= 9
        assert np.allclose([h.score for h in got[i]], [h.score for h in want], atol=2e-3)
