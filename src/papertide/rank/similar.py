"""Similar papers: the paper's dense neighbours fused with a lexical "more like this", without its duplicates.

The dense side is the paper's own embedding against every other; the lexical side a BM25 query made of
the paper's text (LEXICAL_QUERY), which lifts papers sharing its rare terms. Both lists are fused with
the same convex combination as search (index/fusion.py). Papers whose normalised title equals the
paper's (another record of the same work) or an earlier hit's are dropped.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from papertide.index import fusion
from papertide.models import SearchFilters
from papertide.rank.search import SearchEngine

DEPTH = 50  # candidates per ranker
# Tuned on CSFCube's dev fold (benchmarks/bench_similar.py; the only fold here, so optimistic), mean
# NDCG@20 over its three facets: title query 0.577 / 0.581 / 0.589 / 0.589 / 0.577 at dense weight
# 0.6 / 0.7 / 0.8 / 0.9 / 1.0; title + abstract as the query at best 0.584 (w 0.6); the weight before
# tuning (0.7) 0.581. Baselines: tf-idf cosine 0.555, arxiv-sanity's tf-idf + SVM 0.487.
DENSE_WEIGHT = 0.8
LEXICAL_QUERY = "title"  # or "title+abstract"
# The lexical query keeps the first this many words: a long abstract costs BM25 time per term.
MAX_QUERY_WORDS = 200

_WORD = re.compile(r"\w+", re.UNICODE)


def lexical_query_text(title: str, abstract: str, kind: str = LEXICAL_QUERY) -> str:
    """The BM25 "more like this" query of a paper: its title, or its title and abstract."""
    text = title if kind == "title" else f"{title}\n{abstract}"
    return " ".join(_WORD.findall(text)[:MAX_QUERY_WORDS])


def normalise_title(title: str) -> str:
    """Case-, accent-, punctuation- and space-insensitive title, to spot two records of one paper."""
    t = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return " ".join(_WORD.findall(t))


def similar_papers(engine: SearchEngine, doc_id: int, k: int = 10, since: date | None = None) -> list[tuple[int, float]]:
    """Up to k (doc_id, score) most similar to `doc_id`, optionally only papers from `since` on."""
    papers = engine.store.get_papers([doc_id])
    paper = papers.get(doc_id)
    if paper is None:
        return []
    filters = SearchFilters(date_from=since) if since else None
    den: list[tuple[int, float]] = []
    vec = engine.indexes.dense.vector_of(doc_id)
    depth = max(DEPTH, k) + 1
    if vec is not None:
        den = engine.vector_search(vec, depth, filters)
    lex = engine.indexes.lexical.search(lexical_query_text(paper.title, paper.abstract), depth, filters)
    den = [(d, s) for d, s in den if d != doc_id]
    lex = [(d, s) for d, s in lex if d != doc_id]
    fused = fusion.convex(lex, den, DENSE_WEIGHT if den else 0.0) if (lex or den) else []
    return _distinct(engine, paper.title, fused, k)


def _distinct(engine: SearchEngine, title: str, ranked: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
    """The first k of `ranked` whose normalised title is neither the paper's nor an earlier hit's."""
    seen = {normalise_title(title)}
    out: list[tuple[int, float]] = []
    start = 0
    while len(out) < k and start < len(ranked):
        batch = ranked[start : start + 2 * k]  # fetch a little beyond k: duplicates are rare
        start += len(batch)
        titles = engine.store.get_papers([d for d, _ in batch])
        for d, s in batch:
            p = titles.get(d)
            key = normalise_title(p.title) if p else None
            if key is None or key in seen:
                continue
            seen.add(key)
            out.append((d, s))
            if len(out) == k:
                break
    return out
