"""Load CSFCube (faceted query-by-example over CS abstracts) and score rankings of its candidate pools.

CSFCube (Mysore, O'Gorman, McCallum & Zamani, NeurIPS 2021 Datasets and Benchmarks; iesl/CSFCube): for
each query paper and facet (background, method, result) experts graded a pool of ~100-250 candidates
0-3. A system re-ranks each pool; the per-facet score is the mean NDCG@20 over the facet's queries.

Files read (``../shared/data/csfcube``, the release's fold1_dev)::

    abstracts.jsonl[.gz]              {"paper_id", "title", "year", "abstract": [sentences], "pred_labels"}
    dev-pid2anns-<facet>.json         {query paper id: {"cands": [ids], "relevance_adju": [0-3], ...}}

``relevance_adju`` is the adjudicated grade the official script (``eval_scripts/ranking_eval.py``) uses;
the per-annotator and min/max grades in the same files are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from papertide.eval import metrics
from papertide.eval.beir import DatasetError, iter_jsonl
from papertide.eval.metrics import Qrels, QrelsLike, RunLike

FACETS = ("background", "method", "result")
# The cutoff CSFCube reports (ranking_eval.py's "ndcg@20"); pools hold 88-251 candidates.
CUTOFF = 20
MAX_GRADE = 3

Discount = Literal["csfcube", "trec"]

__all__ = [
    "CUTOFF",
    "FACETS",
    "CsfcubeDataset",
    "CsfcubePaper",
    "CsfcubeScores",
    "evaluate_csfcube",
    "jk_dcg",
    "load_csfcube",
    "ndcg_at_k",
]


@dataclass(frozen=True)
class CsfcubePaper:
    """One abstract of the collection (query or candidate)."""

    paper_id: str
    title: str
    abstract: str  # the sentences joined by single spaces
    year: int | None  # as released; a few are missing ("None") or odd ("801")
    sentences: tuple[str, ...]
    # Predicted rhetorical label per sentence ("background_label", "method_label", "result_label", ...),
    # what a facet-aware model would select sentences by.
    sentence_labels: tuple[str, ...]


@dataclass(frozen=True)
class CsfcubeDataset:
    """Abstracts, and per facet each query paper's graded candidate pool in released order."""

    abstracts: dict[str, CsfcubePaper]
    queries: dict[str, dict[str, list[tuple[str, int]]]]  # facet -> query id -> [(candidate id, grade 0-3)]

    def qrels(self, facet: str) -> Qrels:
        """The facet's judgments in BEIR's shape: query paper id -> candidate id -> grade."""
        return {qid: dict(pool) for qid, pool in self._facet(facet).items()}

    def pool(self, facet: str, query_id: str) -> list[str]:
        """Candidate ids to rank for ``query_id`` under ``facet``.

        Keep the query paper if it is in its own pool (8781666 is, for "result", graded 3): the official
        script scores the pool as released.
        """
        return [candidate for candidate, _ in self._facet(facet)[query_id]]

    def _facet(self, facet: str) -> dict[str, list[tuple[str, int]]]:
        if facet not in self.queries:
            raise KeyError(f"unknown facet {facet!r}; expected one of {', '.join(FACETS)}")
        return self.queries[facet]


def _find(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(directory, f"missing {name} (or {name}.gz): not a CSFCube folder")


def _parse_year(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None


def _read_abstracts(path: Path) -> dict[str, CsfcubePaper]:
    papers: dict[str, CsfcubePaper] = {}
    for lineno, record in iter_jsonl(path):
        paper_id = record.get("paper_id")
        if isinstance(paper_id, int) and not isinstance(paper_id, bool):
            paper_id = str(paper_id)
        if not isinstance(paper_id, str) or not paper_id:
            raise DatasetError(path, f'missing or empty "paper_id" (got {paper_id!r})', lineno)
        if paper_id in papers:
            raise DatasetError(path, f"duplicate paper_id {paper_id!r}", lineno)
        title = record.get("title") or ""
        sentences = record.get("abstract")
        labels = record.get("pred_labels") or []
        if not isinstance(title, str):
            raise DatasetError(path, f'"title" must be a string, got {type(title).__name__}', lineno)
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise DatasetError(path, '"abstract" must be a list of sentence strings', lineno)
        if not isinstance(labels, list) or (labels and len(labels) != len(sentences)):
            raise DatasetError(path, '"pred_labels" must be a list with one label per sentence', lineno)
        papers[paper_id] = CsfcubePaper(
            paper_id=paper_id,
            title=title,
            abstract=" ".join(s.strip() for s in sentences),
            year=_parse_year(record.get("year")),
            sentences=tuple(sentences),
            sentence_labels=tuple(str(label) for label in labels),
        )
    return papers


def _read_annotations(path: Path, abstracts: Mapping[str, CsfcubePaper]) -> dict[str, list[tuple[str, int]]]:
    try:
        with path.open(encoding="utf-8") as handle:
            raw = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DatasetError(path, f"not valid JSON ({exc.msg} at column {exc.colno})", exc.lineno) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise DatasetError(path, "expected a JSON object {query paper id: annotations}")
    pools: dict[str, list[tuple[str, int]]] = {}
    for query_id, annotation in raw.items():
        where = f"query {query_id!r}"
        if not isinstance(annotation, dict):
            raise DatasetError(path, f"{where}: expected an object with cands and relevance_adju")
        candidates, grades = annotation.get("cands"), annotation.get("relevance_adju")
        if not isinstance(candidates, list) or not isinstance(grades, list):
            raise DatasetError(path, f'{where}: "cands" and "relevance_adju" must both be lists')
        if len(candidates) != len(grades):
            reason = f"{where}: {len(candidates)} cands but {len(grades)} relevance_adju grades"
            raise DatasetError(path, reason)
        if len(set(candidates)) != len(candidates):
            raise DatasetError(path, f"{where}: a candidate is listed twice")
        bad_grade = next((g for g in grades if not isinstance(g, int) or not 0 <= g <= MAX_GRADE), None)
        if bad_grade is not None:
            raise DatasetError(path, f"{where}: grade {bad_grade!r} is not an integer 0-{MAX_GRADE}")
        missing = [pid for pid in [query_id, *candidates] if pid not in abstracts]
        if missing:
            reason = f"{where}: paper {missing[0]!r} has no abstract ({len(missing)} missing)"
            raise DatasetError(path, reason)
        pools[query_id] = [(str(c), int(g)) for c, g in zip(candidates, grades, strict=True)]
    return pools


def load_csfcube(dir: Path) -> CsfcubeDataset:
    """Load abstracts and the three facets' dev pools from a CSFCube folder (e.g. ../shared/data/csfcube).

    Raises :class:`~papertide.eval.beir.DatasetError` naming the file when one is missing or malformed,
    or when a judged paper has no abstract.
    """
    root = Path(dir)
    if not root.is_dir():
        raise DatasetError(root, "not a directory")
    abstracts = _read_abstracts(_find(root, "abstracts.jsonl"))
    queries = {}
    for facet in FACETS:
        path = root / f"dev-pid2anns-{facet}.json"
        if not path.is_file():
            raise DatasetError(path, f"missing the {facet!r} facet's annotations")
        queries[facet] = _read_annotations(path, abstracts)
    return CsfcubeDataset(abstracts=abstracts, queries=queries)


def jk_dcg(gains: Sequence[float]) -> float:
    """DCG of Järvelin & Kekäläinen (ACM TOIS 2002) with log base 2: gain_1 + sum_{i>=2} gain_i / log2(i).

    Ranks 1 and 2 both weigh 1. This is ``dcg_at_k(method=0)`` of the rank_metrics module (gist
    bwhite/3726239) that CSFCube's ranking_eval.py calls through ``ndcg_at_k``; trec_eval instead divides
    by log2(i + 1) (:func:`papertide.eval.metrics.dcg`).
    """
    if len(gains) == 0:
        return 0.0
    array = np.asarray(gains, dtype=np.float64)
    return float(array[0] + np.sum(array[1:] / np.log2(np.arange(2, len(array) + 1, dtype=np.float64))))


def _csfcube_ndcg_one(judged: Mapping[str, int], scores: Mapping[str, float], k: int) -> float:
    ideal = jk_dcg(sorted((g for g in judged.values() if g > 0), reverse=True)[:k])
    if ideal == 0.0:
        return 0.0
    ranked = metrics.ranked_doc_ids(scores, k)
    return jk_dcg([max(judged.get(doc_id, 0), 0) for doc_id in ranked]) / ideal


def _check_pools(qrels: QrelsLike, run: RunLike) -> None:
    """CSFCube re-ranks fixed pools: a scored document outside its query's pool has no judgment."""
    for query_id, scores in run.items():
        pool = qrels.get(query_id)
        if pool is None:
            continue
        outside = [doc_id for doc_id in scores if doc_id not in pool]
        if outside:
            raise ValueError(
                f"query {query_id!r}: {len(outside)} scored documents are not in its candidate pool, "
                f"e.g. {outside[0]!r}; CSFCube ranks the pool only"
            )


@overload
def ndcg_at_k(
    qrels: QrelsLike,
    run: RunLike,
    k: int = CUTOFF,
    *,
    per_query: Literal[False] = False,
    discount: Discount = "csfcube",
) -> float: ...
@overload
def ndcg_at_k(
    qrels: QrelsLike,
    run: RunLike,
    k: int = CUTOFF,
    *,
    per_query: Literal[True],
    discount: Discount = "csfcube",
) -> dict[str, float]: ...
def ndcg_at_k(
    qrels: QrelsLike,
    run: RunLike,
    k: int = CUTOFF,
    *,
    per_query: bool = False,
    discount: Discount = "csfcube",
) -> float | dict[str, float]:
    """NDCG@k of pool re-rankings as CSFCube's official script computes it, mean over judged queries.

    What the official ``eval_scripts/ranking_eval.py`` (with ``rank_metrics.ndcg_at_k``) does, and here:

    * gains are the raw adjudicated grades 0-3 (linear, not 2^grade - 1);
    * discount, ``discount="csfcube"``: Järvelin & Kekäläinen's original with base 2, ranks 1 and 2 weigh
      1 and rank i >= 2 weighs 1 / log2(i) (:func:`jk_dcg`). ``discount="trec"`` reuses
      :func:`papertide.eval.metrics.ndcg_at_k` (1 / log2(i + 1), trec_eval's ndcg_cut) for numbers on the
      same scale as BEIR tables;
    * ideal: the best k grades of the query's pool. The official script takes them from the grades of the
      ranked list it is handed, the same thing when the run scores the whole pool; here a pool candidate
      missing from the run counts as not retrieved, so dropping candidates cannot raise a score;
    * order: the official script keeps the order of the system's ranked file; a run here is scores,
      ranked with trec_eval's tie-breaking (:func:`papertide.eval.metrics.ranked_doc_ids`).

    The official script also prints NDCG over the whole pool and NDCG%20 (cutoff at 20% of the pool
    size); neither is computed here, so check which one a published CSFCube number is before comparing.
    Raises ValueError when the run scores a document outside its query's pool (the official script stops
    with a KeyError there).
    """
    _check_pools(qrels, run)
    metrics.check_cutoff(k)
    if discount == "trec":
        scores = metrics.ndcg_at_k(qrels, run, k, per_query=True)
    elif discount == "csfcube":
        scores = metrics.per_query_scores(
            lambda judged, ranked: _csfcube_ndcg_one(judged, ranked, k), qrels, run
        )
    else:
        raise ValueError(f"discount must be 'csfcube' or 'trec', got {discount!r}")
    return scores if per_query else metrics.mean_over_queries(scores)


@dataclass(frozen=True)
class CsfcubeScores:
    """NDCG@k per facet (mean over its queries), their mean, and every query's value."""

    k: int
    per_facet: dict[str, float]
    mean: float  # mean of the facet means (= mean over all queries when facets have equal counts)
    per_query: dict[str, dict[str, float]]  # facet -> query id -> NDCG@k


def evaluate_csfcube(
    dataset: CsfcubeDataset,
    runs: Mapping[str, RunLike],
    k: int = CUTOFF,
    *,
    discount: Discount = "csfcube",
) -> CsfcubeScores:
    """Score one run per facet (``runs[facet][query id][candidate id] = score``) as CSFCube reports it.

    Every facet must have a run; a query missing from a facet's run scores 0.
    """
    missing = [facet for facet in dataset.queries if facet not in runs]
    if missing:
        raise ValueError(f"no run for facet(s) {', '.join(missing)}")
    per_query = {
        facet: ndcg_at_k(dataset.qrels(facet), runs[facet], k, per_query=True, discount=discount)
        for facet in dataset.queries
    }
    per_facet = {facet: metrics.mean_over_queries(values) for facet, values in per_query.items()}
    return CsfcubeScores(
        k=k,
        per_facet=per_facet,
        mean=metrics.mean_over_queries(per_facet),
        per_query=per_query,
    )
