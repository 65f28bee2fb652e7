"""`run_beir` runs the real pipeline, and its metrics agree with pytrec_eval on the very same runs."""

from pathlib import Path

import pytest
import pytrec_eval

from papertide.eval.beir import load_beir
from papertide.eval.run import run_beir

MINI = Path(__file__).parent / "fixtures" / "beir-mini"


def test_run_beir_scores_match_pytrec_eval(embedder, tmp_path):
    res = run_beir(MINI, embedder, "train", work_dir=tmp_path)
    qrels = load_beir(MINI, "train").qrels
    assert set(res.runs) == {"lexical", "dense", "hybrid"}
    for mode, run in res.runs.items():
        assert run, mode
        ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
        # pytrec_eval only reports queries present in the run; absent queries score 0 in ours
        n = len(qrels)
        ndcg = sum(v["ndcg_cut_10"] for v in ev.values()) / n
        recall = sum(v["recall_100"] for v in ev.values()) / n
        assert res.scores[mode]["ndcg@10"] == pytest.approx(ndcg, abs=1e-9), mode
        assert res.scores[mode]["recall@100"] == pytest.approx(recall, abs=1e-9), mode
    # the tiny collection is easy: every ranker finds something relevant
    assert all(s["ndcg@10"] > 0.3 for s in res.scores.values())
