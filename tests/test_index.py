"""Lexical and dense indexes and the index build, on real papers with the real model."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from papertide.index.build import open_indexes, update_index
from papertide.index.dense import DenseIndex
from papertide.index.lexical import LexDoc, LexicalIndex, day_number
from papertide.models import SearchFilters
from papertide.store import SqliteStore


def _lex(papers):
    ix = LexicalIndex(None)
    ix.upsert(LexDoc.from_paper(i, p) for i, p in enumerate(papers))
    ix.commit()
    return ix


def test_lexical_stemming_and_stop_words(sample_papers):
    ix = _lex(sample_papers[:300])
    # "segmenting" and "segmentation" share the stem "segment"
    a = ix.search("segmenting", 20)
    b = ix.search("segmentation", 20)
    assert a and {d for d, _ in a} == {d for d, _ in b}
    # stop words alone match nothing; with content words they change nothing
    assert ix.search("the of and", 10) == []
    assert [d for d, _ in ix.search("the segmentation of", 10)] == [d for d, _ in ix.search("segmentation", 10)]


def test_lexical_query_syntax_is_plain_text(sample_papers):
    ix = _lex(sample_papers[:300])
    # characters of tantivy's query language must not raise nor turn into operators
    for q in ['self-supervised "learning', "a:b (c) [d] {e} ^2 ~1 AND OR NOT -video +x", "\\", "***"]:
        ix.search(q, 5)
    assert ix.search("self-supervised", 5) == ix.search("self supervised", 5)


def test_lexical_title_match_ranks_first(sample_papers):
    ix = _lex(sample_papers[:300])
    p = sample_papers[17]
    top = ix.search(p.title, 3)
    assert top[0][0] == 17


def test_lexical_filters(sample_papers):
    papers = sample_papers[:300]
    ix = _lex(papers)
    f = SearchFilters(date_from=date(2025, 3, 20), date_to=date(2025, 6, 30), categories=("cs.CL", "cs.AI"))
    hits = ix.search("language model", 100, f)
    assert hits
    for d, _ in hits:
        p = papers[d]
        assert date(2025, 3, 20) <= p.listed <= date(2025, 6, 30)
        assert {"cs.CL", "cs.AI"} & set(p.categories)
    with_code = ix.search("model", 100, SearchFilters(has_code=True))
    assert with_code and all(papers[d].code_urls for d, _ in with_code)
    without = ix.search("model", 100, SearchFilters(has_code=False))
    assert without and not any(papers[d].code_urls for d, _ in without)


def test_lexical_upsert_replaces_and_persists(tmp_path, sample_papers):
    ix = LexicalIndex(tmp_path / "lex")
    ix.upsert(LexDoc.from_paper(i, p) for i, p in enumerate(sample_papers[:50]))
    ix.commit()
    assert len(ix) == 50
    changed = replace(sample_papers[3], title="Zyxwvut quokka telemetry", abstract="")
    ix.upsert([LexDoc.from_paper(3, changed)])
    ix.commit()
    assert len(ix) == 50  # replaced, not added
    reopened = LexicalIndex(tmp_path / "lex")
    assert reopened.search("quokka", 5)[0][0] == 3
    assert reopened.search(sample_papers[3].title, 50)[0][0] != 3 or len(sample_papers[3].title.split()) < 3


def test_day_number():
    assert day_number(date(1970, 1, 2)) == 1
    assert day_number("2025-03-18") == day_number(date(2025, 3, 18))
    assert day_number(None) == 0


def test_dense_search_is_exact_cosine(indexed, embedder):
    _store, indexes, _ = indexed
    dense = indexes.dense
    q = embedder.encode_query("graph neural networks for molecules")
    hits = dense.search(q, 10)
    brute = dense.vectors @ q
    order = np.argsort(-brute)[:10]
    assert [d for d, _ in hits] == [int(dense.ids[i]) for i in order]
    assert hits[0][1] == pytest.approx(float(brute[order[0]]), abs=1e-6)


def test_half_precision_scan_gives_the_exact_ranking(indexed, embedder):
    """The float16 scan (used from HALF_SCAN_MIN_ROWS rows) only picks candidates: scores stay float32."""
    from papertide.index.dense import DenseIndex

    _, indexes, root = indexed
    exact = indexes.dense
    half = DenseIndex(root / "index" / "dense", exact.dim, exact.model, read_only=True, half_scan_min_rows=0)
    assert len(half) == len(exact)
    for text in ["graph neural networks for molecules", "robot navigation", "speech recognition"]:
        q = embedder.encode_query(text)
        assert half.search(q, 20) == exact.search(q, 20)
        assert half._half is not None  # the float16 path really ran
    q = embedder.encode_query("large language models")
    mask = np.zeros(len(exact), dtype=bool)
    mask[::3] = True
    assert half.search(q, 10, mask) == exact.search(q, 10, mask)  # a loose filter: the masked scan
    few = np.zeros(len(exact), dtype=bool)
    few[::20] = True
    got, want = half.search(q, 10, few), exact.search(q, 10, few)  # a selective one: just those rows, exactly
    assert [d for d, _ in got] == [d for d, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-6)  # another summation order
    assert half.search(q, 10, np.zeros(len(exact), dtype=bool)) == []


@pytest.mark.parametrize("kernel", ["onednn", "torch", "usearch"])
def test_every_half_scan_kernel_gives_the_exact_ranking(indexed, embedder, kernel):
    """Whichever kernel the 16-bit copy picks on a machine, the rescored ranking is the exact one, one query
    at a time or batched."""
    from papertide.index.dense import DenseIndex

    _, indexes, root = indexed
    exact = indexes.dense
    half = DenseIndex(root / "index" / "dense", exact.dim, exact.model, read_only=True, half_scan_min_rows=0)
    half.half_scan_kernels = (kernel,)
    try:
        half.search(embedder.encode_query("neural network training"), 5)
    except ValueError:
        pytest.skip(f"the {kernel} kernel does not work on this CPU")  # onednn needs native bf16
    assert half._half is not None and half._half[1].kernel == kernel
    texts = ["graph neural networks for molecules", "robot navigation", "speech recognition"]
    for text in texts:
        q = embedder.encode_query(text)
        assert half.search(q, 20) == exact.search(q, 20)
    mask = np.zeros(len(exact), dtype=bool)
    mask[1::2] = True
    q = embedder.encode_query("large language models")
    assert half.search(q, 10, mask) == exact.search(q, 10, mask)
    rows = half._half[1].top(embedder.encode_query("speech"), len(exact))
    assert sorted(rows.tolist()) == list(range(len(exact)))  # asking for every row returns each row once
    # a batch: each query with its own k and filter (none, loose, selective, nothing allowed)
    few = np.zeros(len(exact), dtype=bool)
    few[::20] = True
    qs = embedder.encode([*texts, "large language models"])
    ks, masks = [20, 7, 12, 10], [None, mask, few, np.zeros(len(exact), dtype=bool)]
    got = half.search_many(qs, ks, masks)
    want = [exact.search(qs[i], ks[i], masks[i]) for i in range(4)]
    assert [[d for d, _ in g] for g in got] == [[d for d, _ in w] for w in want]
    for g, w in zip(got, want, strict=True):
        assert [s for _, s in g] == pytest.approx([s for _, s in w], abs=1e-6)


def test_dense_filter_mask(indexed, embedder, sample_papers):
    store, indexes, _ = indexed
    f = SearchFilters(categories=("cs.CL",), has_code=True)
    mask = indexes.filters.mask(indexes.dense.ids, f)
    hits = indexes.dense.search(embedder.encode_query("language"), 50, mask)
    assert 0 < len(hits) <= int(mask.sum())
    papers = store.get_papers([d for d, _ in hits])
    assert all("cs.CL" in p.categories and p.code_urls for p in papers.values())


def test_index_build_is_incremental_and_idempotent(tmp_path, embedder, sample_papers):
    store = SqliteStore(tmp_path / "db.sqlite")
    store.upsert_papers(sample_papers[:40])
    ix, rep = update_index(store, tmp_path / "index", embedder)
    assert (rep.embedded, rep.lexical, len(ix.dense), len(ix.lexical)) == (40, 40, 40, 40)
    # nothing new: nothing redone
    ix, rep = update_index(store, tmp_path / "index", embedder)
    assert (rep.embedded, rep.lexical, rep.dense_rows) == (0, 0, 0)
    # 10 new papers and one changed abstract: only those are embedded and re-indexed
    changed = replace(sample_papers[5], abstract=sample_papers[5].abstract + " We also study quokkas.", version=2)
    store.upsert_papers(sample_papers[40:50] + [changed])
    ix, rep = update_index(store, tmp_path / "index", embedder)
    assert (rep.embedded, rep.lexical, rep.dense_rows) == (11, 11, 11)
    assert len(ix.dense) == 50 and len(ix.lexical) == 50
    doc5 = store.doc_ids_for([changed.arxiv_id])[changed.arxiv_id]
    assert ix.lexical.search("quokkas", 3)[0][0] == doc5
    # the reopened dense cache equals the store's embeddings
    again = DenseIndex(tmp_path / "index" / "dense", embedder.dim, embedder.model_id)
    assert len(again) == 50
    np.testing.assert_array_equal(again.vector_of(doc5), ix.dense.vector_of(doc5))
    store.close()


def test_deleted_index_dir_is_rebuilt(tmp_path, embedder, sample_papers):
    store = SqliteStore(tmp_path / "db.sqlite")
    store.upsert_papers(sample_papers[:20])
    update_index(store, tmp_path / "index", embedder)
    shutil.rmtree(tmp_path / "index")
    ix, rep = update_index(store, tmp_path / "index", embedder)
    assert rep.embedded == 0  # embeddings live in the store
    assert len(ix.lexical) == 20 and len(ix.dense) == 20
    store.close()


def test_truncated_dense_cache_converges(tmp_path, embedder, sample_papers):
    """A crash between writing vectors and meta.json leaves extra bytes; the next refresh ignores them."""
    store = SqliteStore(tmp_path / "db.sqlite")
    store.upsert_papers(sample_papers[:20])
    ix, _ = update_index(store, tmp_path / "index", embedder)
    with open(tmp_path / "index" / "dense" / "vectors.f32", "ab") as f:
        f.write(b"\x00" * 1000)
    meta = json.loads((tmp_path / "index" / "dense" / "meta.json").read_text())
    meta["count"] = 15  # as if the last 5 rows had not been recorded
    meta["seq"] = 0
    (tmp_path / "index" / "dense" / "meta.json").write_text(json.dumps(meta))
    ix2 = open_indexes(store, tmp_path / "index", embedder.model_id, embedder.dim)
    assert len(ix2.dense) == 20
    for d in ix.dense.ids:
        np.testing.assert_array_equal(ix2.dense.vector_of(int(d)), ix.dense.vector_of(int(d)))
    store.close()


def test_dense_cache_is_mapped_and_a_rewrite_leaves_readers_intact(tmp_path, embedder, sample_papers):
    """Web workers map the vectors (one copy in the page cache for all of them); when the indexing job
    rewrites the cache from scratch it writes new files, so a worker still mapping the old ones reads on."""
    from papertide.index.dense import DenseIndex

    store = SqliteStore(tmp_path / "db.sqlite")
    store.upsert_papers(sample_papers[:30])
    update_index(store, tmp_path / "index", embedder)
    dense_dir = tmp_path / "index" / "dense"
    reader = DenseIndex(dense_dir, embedder.dim, embedder.model_id, read_only=True)
    assert isinstance(reader.vectors.base, np.memmap) and len(reader) == 30  # a view of the mapping
    before = np.array(reader.vectors)
    (dense_dir / "meta.json").unlink()  # the job decides to start over (e.g. a damaged cache)
    writer = DenseIndex(dense_dir, embedder.dim, embedder.model_id)
    assert len(writer) == 0
    store.upsert_papers(sample_papers[30:35])
    from papertide.index.build import embed_missing

    embed_missing(store, embedder)
    assert writer.refresh(store) == 35
    np.testing.assert_array_equal(np.array(reader.vectors), before)  # the old mapping is untouched
    q = embedder.encode_query(sample_papers[3].title)
    assert reader.search(q, 3)[0][0] == writer.search(q, 3)[0][0]
    again = DenseIndex(dense_dir, embedder.dim, embedder.model_id, read_only=True)
    assert len(again) == 35 and isinstance(again.vectors.base, np.memmap)
    store.close()


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from papertide.index.build import update_index
    from papertide.index.embedder import Embedder
    from papertide.store import SqliteStore
    import papertide.index.build as b
    b.EMBED_CHUNK = 16
    root = Path(sys.argv[1])
    store = SqliteStore(root / "db.sqlite")
    update_index(store, root / "index", Embedder())
    """
)


def test_embedding_build_killed_half_way_resumes_to_same_index(tmp_path, embedder, sample_papers):
    store = SqliteStore(tmp_path / "db.sqlite")
    store.upsert_papers(sample_papers[:160])
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path)], env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        done = 160 - store.count_missing_embeddings(embedder.model_id)
        if done >= 32 or proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    half = 160 - store.count_missing_embeddings(embedder.model_id)
    assert 0 < half < 160, "the build was not interrupted half way"
    ix, rep = update_index(store, tmp_path / "index", embedder)
    assert rep.embedded == 160 - half
    assert len(ix.dense) == 160 and len(ix.lexical) == 160
    # the same vectors as a build that was never interrupted: bf16 kernels block a batch differently
    # depending on its padding, so vectors agree to ~1e-5, not bit for bit
    ref = SqliteStore(tmp_path / "ref.sqlite")
    ref.upsert_papers(sample_papers[:160])
    ref_ix, _ = update_index(ref, tmp_path / "ref-index", embedder)
    ids = store.doc_ids_for([p.arxiv_id for p in sample_papers[:160]])
    ref_ids = ref.doc_ids_for([p.arxiv_id for p in sample_papers[:160]])
    for aid in ids:
        a, b = ix.dense.vector_of(ids[aid]), ref_ix.dense.vector_of(ref_ids[aid])
        assert float(a @ b) > 0.9999
    store.close()
    ref.close()
