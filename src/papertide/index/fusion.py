"""Fusion of ranked lists: plain functions, no I/O.

- Reciprocal rank fusion: score(d) = sum_i 1 / (k + rank_i(d)), k = 60
  (Cormack, Clarke & Buettcher, "Reciprocal Rank Fusion outperforms Condorcet and individual rank
  learning methods", SIGIR 2009; the same k as pyserini's fusion).
- Convex combination of normalised scores: score(d) = alpha * dense(d) + (1 - alpha) * lexical(d),
  each min-max normalised over its own candidate list, a missing score counting as 0
  (Bruch, Gai & Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", ACM TOIS 2023, who
  find a tuned convex combination beats RRF and needs few labelled queries to tune).
"""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60
# Weight of the dense list in the convex combination, tuned on SciFact train (benchmarks/README.md):
# nDCG@10 0.730 / 0.735 / 0.733 / 0.722 for alpha 0.3 / 0.4 / 0.5 / 0.6 at depth 100; RRF gives 0.714.
CONVEX_ALPHA = 0.4

Ranked = Sequence[tuple[int, float]]  # (doc_id, score), best first


def rrf(lists: Sequence[Ranked], k: int = RRF_K, weights: Sequence[float] | None = None) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of several ranked lists (ranks start at 1)."""
    scores: dict[int, float] = {}
    for li, ranked in enumerate(lists):
        w = 1.0 if weights is None else weights[li]
        for rank, (doc, _) in enumerate(ranked, 1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def minmax(ranked: Ranked) -> dict[int, float]:
    """Scores rescaled to [0, 1] over the list; a list of equal scores maps to 1."""
    if not ranked:
        return {}
    vals = [s for _, s in ranked]
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return {d: 1.0 for d, _ in ranked}
    return {d: (s - lo) / (hi - lo) for d, s in ranked}


def convex(lexical: Ranked, dense: Ranked, alpha: float = CONVEX_ALPHA) -> list[tuple[int, float]]:
    """alpha * minmax(dense) + (1 - alpha) * minmax(lexical), over the union of both lists."""
    lex, den = minmax(lexical), minmax(dense)
    docs = set(lex) | set(den)
    fused = {d: alpha * den.get(d, 0.0) + (1 - alpha) * lex.get(d, 0.0) for d in docs}
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
