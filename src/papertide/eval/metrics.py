"""Retrieval metrics (nDCG@k, Recall@k, MRR) over BEIR-shaped qrels and runs, computed as trec_eval does.

Shapes (beir-cellar/beir): ``qrels[qid][doc_id] = grade`` (int; <= 0 means judged non-relevant) and
``run[qid][doc_id] = score`` (higher is better; the order of the dict does not matter).

Every function reproduces trec_eval 9 as wrapped by pytrec_eval (``ndcg_cut.k``, ``recall.k``,
``recip_rank``), which is what BEIR and most retrieval papers report, down to two details that change
numbers on real runs:

* **Ranking.** trec_eval ignores any rank column and sorts a query's documents by score descending,
  breaking ties by doc id *descending* (``strcmp``): of two equally scored documents "b" comes before "a".
  It also keeps scores as C ``float`` (32 bit), so scores that differ only beyond single precision
  (1.0 and 1.0 + 1e-8) are ties as well. :func:`ranked_doc_ids` does both.
* **Averaging.** The mean is over every query in ``qrels`` that has at least one judgment; a judged query
  the run does not answer scores 0 (``trec_eval -c``). pytrec_eval itself only returns queries present in
  the run, and BEIR's ``EvaluateRetrieval`` averages that output, which overstates a run that drops
  queries. Queries in the run but not in qrels are ignored; a qrels entry with no judgments at all is not
  a query (trec_eval never sees it).
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Literal, overload

import numpy as np

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]
# Read-only views of the same shapes, so callers may pass any mapping.
QrelsLike = Mapping[str, Mapping[str, int]]
RunLike = Mapping[str, Mapping[str, float]]

# trec_eval's default relevance level (its -l option): a judgment counts as relevant for Recall and MRR
# when grade >= 1. nDCG uses the grade itself as the gain and ignores grades <= 0.
RELEVANCE_LEVEL = 1

__all__ = [
    "RELEVANCE_LEVEL",
    "Qrels",
    "Run",
    "check_cutoff",
    "dcg",
    "evaluate",
    "mean_over_queries",
    "mrr",
    "ndcg_at_k",
    "per_query_scores",
    "ranked_doc_ids",
    "recall_at_k",
]


def ranked_doc_ids(scores: Mapping[str, float], k: int | None = None) -> list[str]:
    """Doc ids best first, in trec_eval's order, cut to the top ``k`` (all of them when ``k`` is None).

    Order: score descending, compared in single precision as trec_eval stores it, then doc id descending.
    Python compares str by code point, which is the byte order of UTF-8, so this agrees with ``strcmp``.
    Raises ValueError on a NaN score, which has no place in a ranking.
    """
    if not scores:
        return []
    doc_ids = list(scores)
    with np.errstate(over="ignore"):  # |score| > 3.4e38 becomes +-inf in float32, as it does in trec_eval
        as_float32 = np.asarray([scores[d] for d in doc_ids], dtype=np.float64).astype(np.float32)
    if np.isnan(as_float32).any():
        bad = doc_ids[int(np.flatnonzero(np.isnan(as_float32))[0])]
        raise ValueError(f"NaN score for doc {bad!r}")
    # Tuples compare by (score, doc id); nlargest(k) is sorted(reverse=True)[:k] without the full sort.
    keyed = zip(as_float32.tolist(), doc_ids, strict=True)
    top = sorted(keyed, reverse=True) if k is None else heapq.nlargest(k, keyed)
    return [doc_id for _, doc_id in top]


@lru_cache(maxsize=64)
def _log2_discounts(n: int) -> np.ndarray:
    """1 / log2(rank + 1) for ranks 1..n."""
    discounts = 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))
    discounts.setflags(write=False)  # shared through the cache
    return discounts


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain of gains listed best rank first: sum of gain_i / log2(i + 1), i = 1..n.

    DCG is due to Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", ACM TOIS 20(4),
    2002. Their paper leaves ranks up to the log base b undiscounted (gain_i / max(1, log_b i)); trec_eval's
    ``ndcg_cut`` (and hence BEIR) discounts every rank by log2(i + 1), so rank 1 gets weight 1 and rank 2
    weight 0.63. This is the trec_eval form.
    """
    if len(gains) == 0:
        return 0.0
    return float(np.dot(np.asarray(gains, dtype=np.float64), _log2_discounts(len(gains))))


def _ndcg_one(judged: Mapping[str, int], scores: Mapping[str, float], k: int) -> float:
    # Ideal ranking from the qrels (not from the run): every positively judged document, best grade first.
    ideal = dcg(sorted((g for g in judged.values() if g > 0), reverse=True)[:k])
    if ideal == 0.0:
        return 0.0
    # Linear gain = grade, as trec_eval's ndcg_cut (not 2^grade - 1); unjudged and negative grades give 0.
    gains = [max(judged.get(doc_id, 0), 0) for doc_id in ranked_doc_ids(scores, k)]
    return dcg(gains) / ideal


def _recall_one(judged: Mapping[str, int], scores: Mapping[str, float], k: int) -> float:
    relevant = {doc_id for doc_id, grade in judged.items() if grade >= RELEVANCE_LEVEL}
    if not relevant:
        return 0.0
    found = sum(1 for doc_id in ranked_doc_ids(scores, k) if doc_id in relevant)
    return found / len(relevant)


def _reciprocal_rank_one(judged: Mapping[str, int], scores: Mapping[str, float], k: int | None) -> float:
    for rank, doc_id in enumerate(ranked_doc_ids(scores, k), start=1):
        if judged.get(doc_id, 0) >= RELEVANCE_LEVEL:
            return 1.0 / rank
    return 0.0


# A per-query measure: (that query's judgments, that query's scores) -> value.
QueryMeasure = Callable[[Mapping[str, int], Mapping[str, float]], float]


def per_query_scores(one: QueryMeasure, qrels: QrelsLike, run: RunLike) -> dict[str, float]:
    """``one`` applied to every judged query; a query absent from the run is scored on an empty ranking."""
    out: dict[str, float] = {}
    for qid, judged in qrels.items():
        if not judged:
            continue
        try:
            out[qid] = one(judged, run.get(qid, {}))
        except ValueError as exc:
            raise ValueError(f"query {qid!r}: {exc}") from None
    return out


def mean_over_queries(per_query: Mapping[str, float]) -> float:
    """Arithmetic mean of per-query values; ValueError when there are none."""
    if not per_query:
        raise ValueError("qrels has no judged queries, so the mean is undefined")
    return math.fsum(per_query.values()) / len(per_query)


def check_cutoff(k: int | None, *, optional: bool = False) -> None:
    """ValueError unless ``k`` is a positive int (or None, when ``optional``)."""
    if k is None and optional:
        return
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"cutoff k must be a positive int, got {k!r}")


@overload
def ndcg_at_k(qrels: QrelsLike, run: RunLike, k: int, *, per_query: Literal[False] = False) -> float: ...
@overload
def ndcg_at_k(qrels: QrelsLike, run: RunLike, k: int, *, per_query: Literal[True]) -> dict[str, float]: ...
def ndcg_at_k(qrels: QrelsLike, run: RunLike, k: int, *, per_query: bool = False) -> float | dict[str, float]:
    """nDCG@k (Järvelin & Kekäläinen 2002) as trec_eval's ``ndcg_cut.k``, mean over judged queries.

    Per query: DCG of the run's top k (gain = grade, discount log2(rank + 1), see :func:`dcg`) divided by
    the DCG of the ideal top k built from the qrels; 0 when the query has no positive judgment.
    With ``per_query=True`` returns ``{qid: value}`` for every judged query instead of the mean.
    """
    check_cutoff(k)
    scores = per_query_scores(lambda judged, ranked: _ndcg_one(judged, ranked, k), qrels, run)
    return scores if per_query else mean_over_queries(scores)


@overload
def recall_at_k(qrels: QrelsLike, run: RunLike, k: int, *, per_query: Literal[False] = False) -> float: ...
@overload
def recall_at_k(qrels: QrelsLike, run: RunLike, k: int, *, per_query: Literal[True]) -> dict[str, float]: ...
def recall_at_k(
    qrels: QrelsLike, run: RunLike, k: int, *, per_query: bool = False
) -> float | dict[str, float]:
    """Recall@k as trec_eval's ``recall.k``: relevant documents in the top k / all relevant documents.

    Relevant means grade >= 1 (:data:`RELEVANCE_LEVEL`); a query without any scores 0.
    """
    check_cutoff(k)
    scores = per_query_scores(lambda judged, ranked: _recall_one(judged, ranked, k), qrels, run)
    return scores if per_query else mean_over_queries(scores)


@overload
def mrr(
    qrels: QrelsLike, run: RunLike, k: int | None = None, *, per_query: Literal[False] = False
) -> float: ...
@overload
def mrr(
    qrels: QrelsLike, run: RunLike, k: int | None = None, *, per_query: Literal[True]
) -> dict[str, float]: ...
def mrr(
    qrels: QrelsLike, run: RunLike, k: int | None = None, *, per_query: bool = False
) -> float | dict[str, float]:
    """Mean reciprocal rank of the first relevant document (grade >= 1), as trec_eval's ``recip_rank``.

    With ``k`` only the top k count (MRR@k, as MS MARCO reports it): a first hit below rank k scores 0.
    trec_eval has no cutoff for this measure; MRR@k is recip_rank on the run cut at k.
    """
    check_cutoff(k, optional=True)
    scores = per_query_scores(lambda judged, ranked: _reciprocal_rank_one(judged, ranked, k), qrels, run)
    return scores if per_query else mean_over_queries(scores)


_METRIC_NAME = re.compile(r"^(ndcg|recall|mrr)(?:@(\d+))?$")


def evaluate(
    qrels: QrelsLike, run: RunLike, metrics: Iterable[str] = ("ndcg@10", "recall@100")
) -> dict[str, float]:
    """Mean of each named metric, keyed by the name as given: "ndcg@K", "recall@K", "mrr" or "mrr@K".

    >>> evaluate({"q": {"d1": 1}}, {"q": {"d1": 0.2, "d2": 0.9}}, ("ndcg@10", "mrr"))
    {'ndcg@10': 0.6309297535714575, 'mrr': 0.5}
    """
    results: dict[str, float] = {}
    for name in metrics:
        match = _METRIC_NAME.match(name.strip().lower())
        if match is None:
            raise ValueError(f"unknown metric {name!r}: expected ndcg@K, recall@K, mrr or mrr@K")
        family, cutoff = match.group(1), match.group(2)
        k = int(cutoff) if cutoff is not None else None
        if family == "mrr":
            results[name] = mrr(qrels, run, k)
        elif k is None:
            raise ValueError(f"metric {name!r} needs a cutoff, e.g. {family}@10")
        elif family == "ndcg":
            results[name] = ndcg_at_k(qrels, run, k)
        else:
            results[name] = recall_at_k(qrels, run, k)
    return results
