"""The HNSW path of the dense index (used from `ann_threshold` rows on), on real papers with the real model."""

import shutil
from dataclasses import replace

import numpy as np
import pytest

from papertide.index import ann
from papertide.index.build import open_indexes, update_index
from papertide.index.dense import DenseIndex, prefer_exact
from papertide.models import SearchFilters
from papertide.rank.search import Mode, SearchEngine
from papertide.store import SqliteStore

N_QUERIES = 50


def _exact(dense, q, k, allowed=None):
    scores = dense.vectors @ q
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
        k = min(k, int(allowed.sum()))
    return [int(dense.ids[i]) for i in np.argsort(-scores, kind="stable")[:k]]


def _overlap(a, b):
    return len(set(a) & set(b)) / max(1, len(b))


def _no_build(*a, **kw):
    raise AssertionError("the graph was rebuilt")


@pytest.fixture(scope="module")
def queries(embedder, sample_papers):
    # real query strings the index has not seen: titles of papers past the indexed ones
    return [embedder.encode_query(p.title) for p in sample_papers[400 : 400 + N_QUERIES]]


@pytest.fixture
def ann_dense(indexed, tmp_path):
    """A copy of the session's dense cache, opened with ann_threshold=1 so that every search is HNSW."""
    store, indexes, root = indexed
    shutil.copytree(root / "index" / "dense", tmp_path / "dense")
    dense = DenseIndex(tmp_path / "dense", indexes.dense.dim, indexes.dense.model, ann_threshold=1)
    dense.refresh(store)
    return dense


def test_below_the_threshold_search_stays_exact(indexed):
    _, indexes, root = indexed
    assert len(indexes.dense) < indexes.dense.ann_threshold and indexes.dense.ann is None
    assert not (root / "index" / "dense" / ann.FILE).exists()


def test_hnsw_recall_at_10_against_exact(ann_dense, queries):
    assert ann_dense.ann is not None and len(ann_dense.ann.index) == len(ann_dense)
    recalls = []
    for q in queries:
        hits = ann_dense.search(q, 10)
        recalls.append(_overlap([d for d, _ in hits], _exact(ann_dense, q, 10)))
        # candidates are rescored in float32: the scores are the exact cosines, best first
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == pytest.approx(float(ann_dense.vector_of(hits[0][0]) @ q), abs=1e-6)
    assert np.mean(recalls) >= 0.95
    # every paper can be found: its own vector leads to it (concurrent inserts could strand some)
    for row, v in enumerate(ann_dense.vectors):
        assert row in ann_dense.ann.search(v, 3), row
    # the graph alone (no rescoring, float16 vectors), asked for only 10
    graph_ids = [ann_dense.ids[ann_dense.ann.search(q, 10)].tolist() for q in queries]
    assert np.mean([_overlap(g, _exact(ann_dense, q, 10)) for g, q in zip(graph_ids, queries)]) >= 0.95


@pytest.mark.parametrize(
    "filters, path",
    [
        (SearchFilters(categories=("cs.RO",)), "selective"),  # 11 of 300 papers: exact over those rows
        (SearchFilters(has_code=False), "selective"),  # 217 of 300: still cheaper exact, at this size
        (SearchFilters(categories=("cs.CV", "cs.AI")), "over-fetch"),  # 234 of 300: from the graph
        (SearchFilters(categories=("cs.CV", "cs.CL")), "over-fetch"),  # 299 of 300
    ],
)
def test_filtered_search_returns_only_allowed_docs(indexed, ann_dense, queries, filters, path):
    _, indexes, _ = indexed
    allowed = indexes.filters.mask(ann_dense.ids, filters)
    assert prefer_exact(int(allowed.sum()), 10, len(ann_dense)) == (path == "selective")
    allowed_ids = set(ann_dense.ids[allowed].tolist())
    overlaps = []
    for q in queries:
        hits = ann_dense.search(q, 10, allowed)
        assert len(hits) == min(10, len(allowed_ids))
        assert {d for d, _ in hits} <= allowed_ids
        overlaps.append(_overlap([d for d, _ in hits], _exact(ann_dense, q, 10, allowed)))
    assert np.mean(overlaps) >= (1.0 if path == "selective" else 0.95)


def test_search_engine_end_to_end_on_hnsw(indexed, ann_dense, embedder, sample_papers):
    store, indexes, _ = indexed
    ix = replace(indexes, dense=ann_dense)
    eng = SearchEngine(store, ix, embedder)
    target = sample_papers[42]
    for mode in (Mode.dense, Mode.hybrid):
        assert eng.search(target.title, 5, mode=mode).hits[0].paper.arxiv_id == target.arxiv_id
        res = eng.search("robot manipulation", 10, SearchFilters(categories=("cs.RO",)), mode)
        assert res.hits and all("cs.RO" in h.paper.categories for h in res.hits)


def test_reopened_index_reuses_the_graph_file(indexed, ann_dense, queries, monkeypatch):
    store, _, _ = indexed
    f = ann_dense.path / ann.FILE
    before = f.stat().st_mtime_ns
    expected = [ann_dense.search(q, 10) for q in queries[:10]]
    monkeypatch.setattr(ann.HnswIndex, "build", _no_build)
    # reopened without a refresh (searched straight away), and with one
    lazy = DenseIndex(ann_dense.path, ann_dense.dim, ann_dense.model, ann_threshold=1)
    assert [lazy.search(q, 10) for q in queries[:10]] == expected
    again = DenseIndex(ann_dense.path, ann_dense.dim, ann_dense.model, ann_threshold=1)
    assert again.refresh(store) == 0
    assert again.ann is not None and again.ann.view  # memory-mapped from the file
    assert [again.search(q, 10) for q in queries[:10]] == expected
    assert f.stat().st_mtime_ns == before


@pytest.fixture(scope="module")
def own_template(tmp_path_factory, embedder, sample_papers):
    """A store of 60 papers with its indexes, the dense one on HNSW (ann_threshold=1): embedded once."""
    root = tmp_path_factory.mktemp("ann-template")
    store = SqliteStore(root / "db.sqlite")
    store.upsert_papers(sample_papers[:60])
    ix = open_indexes(store, root / "index", embedder.model_id, embedder.dim, refresh=False)
    ix.dense = DenseIndex(root / "index" / "dense", embedder.dim, embedder.model_id, ann_threshold=1)
    update_index(store, root / "index", embedder, indexes=ix)
    store.close()
    return root


@pytest.fixture
def own_index(own_template, tmp_path, embedder):
    """A fresh copy of the template for each test: (store, indexes, dense cache folder)."""
    shutil.copytree(own_template, tmp_path / "own")
    store = SqliteStore(tmp_path / "own" / "db.sqlite")
    ix = open_indexes(store, tmp_path / "own" / "index", embedder.model_id, embedder.dim, refresh=False)
    ix.dense = DenseIndex(tmp_path / "own" / "index" / "dense", embedder.dim, embedder.model_id, ann_threshold=1)
    ix.refresh(store)
    yield store, ix, tmp_path / "own" / "index" / "dense"
    store.close()


QUOKKA = {"title": "Quokka population telemetry", "abstract": "We fit GPS collars to quokkas on Rottnest Island."}


def test_new_and_re_embedded_papers_are_updated_in_place(own_index, embedder, sample_papers, monkeypatch):
    store, ix, _ = own_index
    assert ix.dense.ann is not None and ix.dense.ann.view and len(ix.dense.ann.index) == 60
    monkeypatch.setattr(ann.HnswIndex, "build", _no_build)
    # another process serving searches from the same folder (the indexing job is this one)
    reader = DenseIndex(ix.dense.path, embedder.dim, embedder.model_id, ann_threshold=1)
    reader.refresh(store)
    changed = replace(sample_papers[5], **QUOKKA, version=2)
    store.upsert_papers(sample_papers[60:80] + [changed])
    ix, rep = update_index(store, ix.dense.path.parent, embedder, indexes=ix)
    assert rep.dense_rows == 21
    # the reader picks up the graph the job saved, memory-mapped, instead of redoing the work
    assert reader.refresh(store) == 21 and reader.ann.view and len(reader.ann.index) == 80
    q = embedder.encode_query("quokkas on Rottnest Island")
    assert reader.search(q, 10) == ix.dense.search(q, 10)
    # the memory-mapped file is read-only: it was loaded and caught up (not rebuilt), then kept in memory
    graph = ix.dense.ann
    assert not graph.view and len(graph.index) == 80
    store.upsert_papers(sample_papers[80:83])
    ix, _ = update_index(store, ix.dense.path.parent, embedder, indexes=ix)
    assert ix.dense.ann is graph and len(graph.index) == 83
    assert ann.read_state(ix.dense.path).rows == 83
    ids = store.doc_ids_for([p.arxiv_id for p in sample_papers[60:83]] + [changed.arxiv_id])
    for aid, doc in ids.items():
        assert ix.dense.search(ix.dense.vector_of(doc), 1)[0][0] == doc, aid
    # the re-embedded paper's node holds its new vector; its old one is gone from the graph
    doc5 = ids[changed.arxiv_id]
    row = int(np.flatnonzero(ix.dense.ids == doc5)[0])
    node = graph.index.get(row).astype(np.float32)
    assert float(node @ ix.dense.vector_of(doc5)) > 0.999
    assert ix.dense.search(embedder.encode_query("quokkas on Rottnest Island"), 1)[0][0] == doc5


def test_graph_file_behind_the_cache_catches_up_from_the_store(own_index, embedder, sample_papers, monkeypatch):
    """A crash after the dense cache was saved but before the graph was: the next open catches up."""
    store, ix, dense_dir = own_index
    old = {name: (dense_dir / name).read_bytes() for name in (ann.FILE, ann.META)}
    store.upsert_papers(sample_papers[60:70] + [replace(sample_papers[5], **QUOKKA, version=2)])
    update_index(store, dense_dir.parent, embedder, indexes=ix)
    for name, data in old.items():
        (dense_dir / name).write_bytes(data)

    monkeypatch.setattr(ann.HnswIndex, "build", _no_build)
    dense = DenseIndex(dense_dir, embedder.dim, embedder.model_id, ann_threshold=1)
    dense.refresh(store)
    assert ann.read_state(dense_dir).rows == len(dense) == 70 and len(dense.ann.index) == 70
    doc5 = store.doc_ids_for([sample_papers[5].arxiv_id])[sample_papers[5].arxiv_id]
    assert dense.search(embedder.encode_query("quokkas on Rottnest Island"), 1)[0][0] == doc5
    assert dense.search(dense.vector_of(doc5), 1)[0][0] == doc5


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "json"])
def test_damaged_graph_file_is_rebuilt(own_index, embedder, queries, damage):
    store, _, dense_dir = own_index
    f = dense_dir / ann.FILE
    if damage == "missing":
        f.unlink()
    elif damage == "garbage":
        f.write_bytes(b"\x00not a usearch file" * 100)
    elif damage == "truncated":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    else:
        (dense_dir / ann.META).write_text("{not json")
    dense = DenseIndex(dense_dir, embedder.dim, embedder.model_id, ann_threshold=1)
    dense.refresh(store)
    assert len(dense.ann.index) == len(dense) == 60
    state = ann.read_state(dense_dir)
    assert state is not None and state.bytes == f.stat().st_size
    for q in queries[:10]:
        assert [d for d, _ in dense.search(q, 10)] == _exact(dense, q, 10)
    # what was written is whole: it opens, memory-mapped, as is
    reopened = DenseIndex(dense_dir, embedder.dim, embedder.model_id, ann_threshold=1)
    reopened.refresh(store)
    assert reopened.ann.view


def test_many_replaced_rows_trigger_a_rebuild(ann_dense, monkeypatch):
    """Re-added rows are linked less well than a fresh build would: past REBUILD_AFTER the graph is rebuilt."""
    vectors = ann_dense.vectors.copy()
    graph = ann.catch_up(None, None, "m", vectors, ann_dense.ids, 1, None)
    vectors[3] = ann_dense.vectors[7]  # row 3 re-embedded (to a real vector)
    same = ann.catch_up(graph, None, "m", vectors, ann_dense.ids, 2, lambda s: np.array([3]))
    assert same is graph and same.state.replaced == 1
    assert set(same.search(vectors[3], 2).tolist()) == {3, 7}
    monkeypatch.setattr(ann, "REBUILD_AFTER", 0.0)
    vectors[4] = ann_dense.vectors[8]
    rebuilt = ann.catch_up(same, None, "m", vectors, ann_dense.ids, 3, lambda s: np.array([4]))
    assert rebuilt is not same and rebuilt.state.replaced == 0 and rebuilt.seq == 3
    assert set(rebuilt.search(vectors[4], 2).tolist()) == {4, 8}


def test_over_fetch_grows_then_falls_back_to_exact(ann_dense, queries, monkeypatch):
    """A filter that keeps only the papers farthest from the query: over-fetching finds none, exact does."""
    import papertide.index.dense as dense_mod

    monkeypatch.setattr(dense_mod, "EXPANSION_SEARCH", 16)  # a small beam, so the graph returns few rows
    monkeypatch.setattr(dense_mod, "GRAPH_TO_EXACT_COST", 0.0)  # over-fetch whatever the filter
    calls = []
    search = ann_dense.ann.search
    monkeypatch.setattr(ann_dense.ann, "search", lambda q, count: calls.append(count) or search(q, count))
    q = queries[0]
    far = np.argsort(ann_dense.vectors @ q)[: len(ann_dense) * 2 // 5]  # the 40% least similar
    allowed = np.zeros(len(ann_dense), dtype=bool)
    allowed[far] = True
    scored = []
    top_of_rows = ann_dense._top_of_rows
    monkeypatch.setattr(
        ann_dense, "_top_of_rows", lambda rows, q, k: scored.append(len(rows)) or top_of_rows(rows, q, k)
    )
    hits = ann_dense.search(q, 5, allowed)
    assert [d for d, _ in hits] == _exact(ann_dense, q, 5, allowed)
    # 2 * 5 * 300 / 120 candidates, then 4 times as many (none allowed among the 100 nearest), then exact
    assert calls == [25, 100] and scored == [120]
    # the same filter on a query near those papers is served from the graph alone
    calls.clear()
    scored.clear()
    q_near = ann_dense.vectors[far[0]]
    hits = ann_dense.search(q_near, 5, allowed)
    assert calls == [25] and scored[0] < 25 and hits[0][0] == int(ann_dense.ids[far[0]])


def test_a_read_only_reader_never_writes_the_graph_file(own_index, embedder, sample_papers):
    """The web server opens the indexes read-only: ahead of the indexing job's graph file, it catches up in
    memory and leaves the file (and its json) exactly as the job wrote them."""
    store, _ix, dense_dir = own_index
    before = {name: (dense_dir / name).read_bytes() for name in (ann.FILE, ann.META)}
    store.upsert_papers(sample_papers[60:70])
    from papertide.index.build import embed_missing

    embed_missing(store, embedder)  # embedded, but the job has not refreshed the graph file yet
    reader = DenseIndex(dense_dir, embedder.dim, embedder.model_id, ann_threshold=1, read_only=True)
    assert reader.refresh(store) == 10 and len(reader.ann.index) == 70
    doc = store.doc_ids_for([sample_papers[65].arxiv_id])[sample_papers[65].arxiv_id]
    assert reader.search(reader.vector_of(doc), 1)[0][0] == doc
    assert {name: (dense_dir / name).read_bytes() for name in before} == before
    # a reader that opens without a refresh and finds the file behind builds in memory, writes nothing
    (dense_dir / ann.FILE).unlink()
    fresh = DenseIndex(dense_dir, embedder.dim, embedder.model_id, ann_threshold=1, read_only=True)
    fresh.refresh(store)
    assert fresh.search(fresh.vector_of(doc), 1)[0][0] == doc
    assert not (dense_dir / ann.FILE).exists()
