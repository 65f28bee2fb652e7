"""Similar papers: the paper's dense neighbours fused with a lexical "more like this" on its title.

The dense side carries most of the signal (the paper's own abstract embedding against every other);
the lexical side, a BM25 query made of the title, lifts papers that share its rare terms. Both lists
are fused with the same convex combination as search (index/fusion.py).
"""

from __future__ import annotations

from datetime import date

from papertide.index import fusion
from papertide.models import SearchFilters
from papertide.rank.search import SearchEngine

DEPTH = 50  # candidates per ranker
# Dense weight of the fusion. A first choice, not yet tuned: the CSFCube evaluation (issue 5) will set it.
DENSE_WEIGHT = 0.7


def similar_papers(engine: SearchEngine, doc_id: int, k: int = 10, since: date | None = None) -> list[tuple[int, float]]:
    """Up to k (doc_id, score) most similar to `doc_id`, optionally only papers from `since` on."""
    papers = engine.store.get_papers([doc_id])
    paper = papers.get(doc_id)
    if paper is None:
        return []
    filters = SearchFilters(date_from=since) if since else None
    den: list[tuple[int, float]] = []
    vec = engine.indexes.dense.vector_of(doc_id)
    if vec is not None:
        allowed = engine.indexes.filters.mask(engine.indexes.dense.ids, filters) if filters else None
        den = engine.indexes.dense.search(vec, DEPTH + 1, allowed)
    lex = engine.indexes.lexical.search(paper.title, DEPTH + 1, filters)
    den = [(d, s) for d, s in den if d != doc_id]
    lex = [(d, s) for d, s in lex if d != doc_id]
    fused = fusion.convex(lex, den, DENSE_WEIGHT if den else 0.0) if (lex or den) else []
    return fused[:k]
