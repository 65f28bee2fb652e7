"""The search engine end to end: lexical, dense and hybrid over a real index with the real model, on both
backends (tantivy + in-process vectors next to SQLite; full-text + pgvector inside PostgreSQL)."""

from datetime import date

import pytest

from papertide.models import SearchFilters
from papertide.rank.search import FusionConfig, Mode, SearchEngine


@pytest.fixture(params=["sqlite", "postgres"])
def backend_indexed(request):
    return request.getfixturevalue("indexed" if request.param == "sqlite" else "pg_indexed")


def _engine(backend_indexed, embedder, **cfg):
    store, indexes, _ = backend_indexed
    return SearchEngine(store, indexes, embedder, FusionConfig(**cfg) if cfg else None)


def test_every_mode_finds_a_paper_by_its_title(backend_indexed, embedder, sample_papers):
    eng = _engine(backend_indexed, embedder)
    target = sample_papers[42]
    for mode in Mode:
        res = eng.search(target.title, 5, mode=mode)
        assert res.hits[0].paper.arxiv_id == target.arxiv_id, mode
        assert res.hits[0].paper.title == target.title


def test_dense_finds_paraphrase_lexical_cannot(backend_indexed, embedder, sample_papers):
    eng = _engine(backend_indexed, embedder)
    # a query sharing (almost) no words with the paper but its meaning
    res = eng.search("teaching computers to produce moving pictures from written prompts", 20, mode=Mode.dense)
    titles = " ".join(h.paper.title.lower() for h in res.hits)
    assert "video" in titles


def test_hybrid_ranks_are_reported(backend_indexed, embedder):
    eng = _engine(backend_indexed, embedder)
    res = eng.search("vision language model hallucination", 10, mode=Mode.hybrid)
    assert len(res.hits) == 10
    assert all(h.lexical_rank is not None or h.dense_rank is not None for h in res.hits)
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True)
    assert {"lexical", "embed", "dense", "fetch", "total"} <= set(res.timings_ms)


def test_rrf_and_convex_agree_on_the_obvious(backend_indexed, embedder, sample_papers):
    target = sample_papers[7]
    for method in ("rrf", "convex"):
        eng = _engine(backend_indexed, embedder, method=method)
        assert eng.search(target.title, 3).hits[0].paper.arxiv_id == target.arxiv_id


def test_filters_apply_to_every_mode(backend_indexed, embedder):
    eng = _engine(backend_indexed, embedder)
    f = SearchFilters(date_from=date(2025, 3, 19), categories=("cs.CV",), has_code=True)
    for mode in Mode:
        res = eng.search("image generation", 30, f, mode)
        assert res.hits, mode
        for h in res.hits:
            p = h.paper
            assert "cs.CV" in p.categories and p.code_urls and p.listed >= date(2025, 3, 19)


def test_pagination(backend_indexed, embedder):
    eng = _engine(backend_indexed, embedder)
    first = eng.search("reinforcement learning", 10)
    second = eng.search("reinforcement learning", 5, offset=5)
    assert [h.paper.arxiv_id for h in first.hits[5:]] == [h.paper.arxiv_id for h in second.hits]


def test_empty_and_junk_queries(backend_indexed, embedder):
    eng = _engine(backend_indexed, embedder)
    assert eng.search("", 5, mode=Mode.lexical).hits == []
    assert eng.search("!!! ???", 5, mode=Mode.lexical).hits == []
    assert len(eng.search("!!! ???", 5, mode=Mode.hybrid).hits) == 5  # dense still answers
