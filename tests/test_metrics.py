"""papertide.eval.metrics and CSFCube's NDCG checked against pytrec_eval, ir_measures, published values."""

from __future__ import annotations

import math
import random

import pytest
import pytrec_eval

from papertide.eval import csfcube, metrics
from papertide.eval.metrics import evaluate, mrr, ndcg_at_k, ranked_doc_ids, recall_at_k

TOL = 1e-9
CUTOFFS = (1, 3, 5, 10, 20, 100)
TREC_MEASURES = {
    "ndcg_cut." + ",".join(map(str, CUTOFFS)),
    "recall." + ",".join(map(str, CUTOFFS)),
    "recip_rank",
}


def _trec(qrels, run):
    """pytrec_eval's per-query values; it only returns queries that are judged and present in the run."""
    return pytrec_eval.RelevanceEvaluator(qrels, TREC_MEASURES).evaluate(run)


def _reference_per_query(qrels, run, measure):
    """pytrec_eval per query over every judged query, 0 for the ones it leaves out (trec_eval -c)."""
    computed = _trec(qrels, run)
    return {qid: computed.get(qid, {}).get(measure, 0.0) for qid, judged in qrels.items() if judged}


def _reciprocal_rank_at(rr: float, k: int) -> float:
    """MRR@k from trec_eval's uncut recip_rank: the first hit counts only when its rank is <= k."""
    return rr if rr > 0 and round(1 / rr) <= k else 0.0


def _assert_matches_pytrec_eval(qrels, run):
    for k in CUTOFFS:
        for ours, measure in ((ndcg_at_k, f"ndcg_cut_{k}"), (recall_at_k, f"recall_{k}")):
            expected = _reference_per_query(qrels, run, measure)
            got = ours(qrels, run, k, per_query=True)
            assert got.keys() == expected.keys()
            for qid in expected:
                assert got[qid] == pytest.approx(expected[qid], abs=TOL), (measure, qid)
            assert ours(qrels, run, k) == pytest.approx(sum(expected.values()) / len(expected), abs=TOL)
    expected_rr = _reference_per_query(qrels, run, "recip_rank")
    got_rr = mrr(qrels, run, per_query=True)
    assert got_rr == pytest.approx(expected_rr, abs=TOL)
    assert mrr(qrels, run) == pytest.approx(sum(expected_rr.values()) / len(expected_rr), abs=TOL)
    for k in CUTOFFS:
        expected_at_k = {qid: _reciprocal_rank_at(rr, k) for qid, rr in expected_rr.items()}
        assert mrr(qrels, run, k, per_query=True) == pytest.approx(expected_at_k, abs=TOL)


HAND_BUILT = {
    # Equal scores: trec_eval ranks by doc id descending, so "a" (the relevant one) comes last.
    "ties-docid-descending": (
        {"q": {"a": 1}},
        {"q": {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.9}},
    ),
    # Doc ids compare as strings ("9" > "10"), byte-wise for non-ASCII ("é" > "z" > "Z").
    "ties-string-order": (
        {"q": {"10": 1, "Z": 2, "é": 1}},
        {"q": {"10": 1.0, "9": 1.0, "Z": 1.0, "z": 1.0, "é": 1.0, "a10": 1.0}},
    ),
    # trec_eval keeps scores in single precision: these differ as doubles but tie as floats.
    "ties-float32": (
        {"q": {"a": 1, "c": 1}},
        {"q": {"a": 1.0 + 1e-9, "b": 1.0, "c": 0.30000000000000004, "d": 0.3, "e": 1e-50, "f": 0.0}},
    ),
    "graded-and-negative": (
        {"q": {"a": 3, "b": 2, "c": 1, "d": 0, "e": -1, "f": 2}},
        {"q": {"e": 9.0, "d": 8.0, "c": 7.0, "b": 6.0, "a": 5.0, "x": 4.0}},
    ),
    "more-relevant-than-k": (
        {"q": {f"r{i:02d}": 1 + i % 3 for i in range(30)}},
        {"q": {f"r{i:02d}": float(-i) for i in range(0, 30, 2)} | {"junk": 100.0}},
    ),
    "relevant-just-past-the-cutoff": (
        {"q": {"hit": 1}},
        {"q": {f"n{i:03d}": 1000.0 - i for i in range(100)} | {"hit": 0.5}},
    ),
    "missing-queries-and-extra-queries": (
        {"q1": {"a": 1}, "q2": {"b": 2}, "q3": {"c": 1, "d": 1}},
        {"q1": {"a": 1.0, "z": 2.0}, "q3": {"d": 1.0}, "unjudged": {"a": 1.0}},
    ),
    "only-non-relevant-judgments": (
        {"q1": {"a": 0, "b": -2}, "q2": {"c": 1}},
        {"q1": {"a": 1.0, "b": 2.0}, "q2": {"c": 1.0}},
    ),
    "empty-run": ({"q1": {"a": 1}, "q2": {"b": 1}}, {}),
    "empty-ranking-for-a-query": ({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": {}, "q2": {"b": 3.0}}),
    "negative-and-huge-scores": (
        {"q": {"a": 1, "b": 2, "c": 1}},
        # Beyond float32's range both c and d become +inf and tie; d then ranks first.
        {"q": {"a": -1e40, "b": -5.0, "c": 1e40, "d": 3.5e38}},
    ),
}


@pytest.mark.parametrize("case", HAND_BUILT, ids=list(HAND_BUILT))
def test_hand_built_cases_match_pytrec_eval(case):
    qrels, run = HAND_BUILT[case]
    _assert_matches_pytrec_eval(qrels, run)


def _random_case(seed: int, n_queries: int = 300):
    rng = random.Random(seed)
    qrels, run = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        # Sorted, not set order: str hashes vary between processes and the case must not.
        docs = sorted({f"d{rng.randrange(1000)}" for _ in range(rng.randint(1, 250))})
        judged = rng.sample([*docs, "never-retrieved"], k=rng.randint(1, min(40, len(docs))))
        qrels[qid] = {doc: rng.choice((-1, 0, 0, 1, 1, 1, 2, 2, 3)) for doc in judged}
        if rng.random() < 0.1:
            continue  # a judged query the run does not answer
        coarse = rng.random() < 0.5  # few distinct scores, so ties are everywhere
        run[qid] = {doc: (rng.randint(0, 5) / 4 if coarse else rng.gauss(0.0, 3.0)) for doc in docs}
    for extra in range(20):
        run[f"unjudged{extra}"] = {f"d{i}": rng.random() for i in range(10)}
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_randomized_runs_match_pytrec_eval(seed):
    qrels, run = _random_case(seed)
    _assert_matches_pytrec_eval(qrels, run)


def test_randomized_means_match_ir_measures():
    # ir_measures averages over every judged query (missing ones count 0), as metrics does.
    ir_measures = pytest.importorskip("ir_measures")
    from ir_measures import RR, R, nDCG

    qrels, run = _random_case(seed=7)
    reference = ir_measures.calc_aggregate([nDCG @ 10, R @ 100, RR], qrels, run)
    ours = evaluate(qrels, run, ("ndcg@10", "recall@100", "mrr"))
    assert ours["ndcg@10"] == pytest.approx(reference[nDCG @ 10], abs=TOL)
    assert ours["recall@100"] == pytest.approx(reference[R @ 100], abs=TOL)
    assert ours["mrr"] == pytest.approx(reference[RR], abs=TOL)


def test_ranked_doc_ids_order():
    # "0" scores higher as a double but ties in single precision, so it sorts last by doc id.
    scores = {"a": 1.0, "b": 1.0, "c": 2.0, "10": 1.0, "9": 1.0, "0": 1.0 + 1e-9}
    assert ranked_doc_ids(scores) == ["c", "b", "a", "9", "10", "0"]
    assert ranked_doc_ids(scores, k=2) == ["c", "b"]
    assert ranked_doc_ids({}, k=5) == []


def test_known_values():
    qrels = {"q": {"d1": 1}}
    run = {"q": {"d1": 0.2, "d2": 0.9}}
    assert evaluate(qrels, run, ("ndcg@10", "mrr", "mrr@1", "recall@1")) == {
        "ndcg@10": pytest.approx(1 / math.log2(3)),
        "mrr": 0.5,
        "mrr@1": 0.0,
        "recall@1": 0.0,
    }
    # Ideal DCG from the qrels, linear gains: [3, 2] ranked as [2, 3].
    graded = {"q": {"a": 3, "b": 2}}
    value = ndcg_at_k(graded, {"q": {"a": 1.0, "b": 2.0}}, 10)
    assert value == pytest.approx((2 + 3 / math.log2(3)) / (3 + 2 / math.log2(3)))


def test_mean_counts_judged_queries_missing_from_run_as_zero():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "empty": {}}
    run = {"q1": {"a": 1.0}}
    assert ndcg_at_k(qrels, run, 10, per_query=True) == {"q1": 1.0, "q2": 0.0}
    assert ndcg_at_k(qrels, run, 10) == 0.5


def test_evaluate_rejects_bad_names_and_cutoffs():
    qrels, run = {"q": {"a": 1}}, {"q": {"a": 1.0}}
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(qrels, run, ("map@10",))
    with pytest.raises(ValueError, match="needs a cutoff"):
        evaluate(qrels, run, ("ndcg",))
    for bad in (0, -3, True, 2.5):
        with pytest.raises(ValueError, match="positive int"):
            ndcg_at_k(qrels, run, bad)
    with pytest.raises(ValueError, match="positive int"):
        mrr(qrels, run, 0)


def test_errors_on_nan_scores_and_empty_qrels():
    with pytest.raises(ValueError, match=r"query 'q'.*NaN score for doc 'b'"):
        ndcg_at_k({"q": {"a": 1}}, {"q": {"a": 1.0, "b": float("nan")}}, 10)
    with pytest.raises(ValueError, match="no judged queries"):
        recall_at_k({}, {"q": {"a": 1.0}}, 10)


# --- CSFCube's NDCG -------------------------------------------------------------------------------


def _official_csfcube_ndcg(ranked_grades: list[int], k: int) -> float:
    """CSFCube's ranking_eval.py: rank_metrics.ndcg_at_k(r, k) with its default method=0, written out."""

    def dcg(r):
        r = r[:k]
        return (r[0] + sum(g / math.log2(i) for i, g in enumerate(r[1:], start=2))) if r else 0.0

    best = dcg(sorted(ranked_grades, reverse=True))
    return dcg(ranked_grades) / best if best else 0.0


def test_csfcube_ndcg_matches_rank_metrics_published_values():
    # Doctest values of rank_metrics.py (gist bwhite/3726239), the module CSFCube's script imports.
    assert csfcube.jk_dcg([3, 2, 3, 0, 0, 1, 2, 2, 3, 0]) == pytest.approx(9.6051177391888114, abs=TOL)
    qrels = {"q": {"a": 2, "b": 1, "c": 2, "d": 0}}
    run = {"q": {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}}  # ranked grades [2, 1, 2, 0]
    assert csfcube.ndcg_at_k(qrels, run, 4) == pytest.approx(0.9203032077642922, abs=TOL)
    # method=1 in rank_metrics is trec_eval's discount.
    assert csfcube.ndcg_at_k(qrels, run, 4, discount="trec") == pytest.approx(0.96519546960144276, abs=TOL)
    assert metrics.ndcg_at_k(qrels, run, 4) == pytest.approx(0.96519546960144276, abs=TOL)


def test_csfcube_ndcg_matches_official_procedure_on_random_pools():
    rng = random.Random(3)
    qrels, run, expected = {}, {}, {}
    for q in range(50):
        pool = [f"c{i}" for i in range(rng.randint(20, 250))]
        qrels[f"q{q}"] = {c: rng.choice((0, 0, 0, 1, 1, 2, 3)) for c in pool}
        run[f"q{q}"] = {c: rng.random() for c in pool}
        ranked = ranked_doc_ids(run[f"q{q}"])
        expected[f"q{q}"] = _official_csfcube_ndcg([qrels[f"q{q}"][c] for c in ranked], csfcube.CUTOFF)
    assert csfcube.ndcg_at_k(qrels, run, per_query=True) == pytest.approx(expected, abs=TOL)


def test_csfcube_ndcg_rejects_documents_outside_the_pool():
    with pytest.raises(ValueError, match="not in its candidate pool"):
        csfcube.ndcg_at_k({"q": {"a": 1, "b": 0}}, {"q": {"a": 1.0, "zzz": 2.0}})
    with pytest.raises(ValueError, match="discount"):
        csfcube.ndcg_at_k({"q": {"a": 1}}, {"q": {"a": 1.0}}, discount="exp")  # type: ignore[arg-type]


def test_csfcube_ndcg_counts_unranked_pool_candidates_as_missed():
    # The official script would take the ideal from the ranked subset only and score this 1.0.
    qrels = {"q": {"a": 1, "b": 3}}
    assert csfcube.ndcg_at_k(qrels, {"q": {"a": 1.0}}) == pytest.approx(1 / (3 + 1))
