"""The recsys benchmark's loaders and scoring, on a real papertide database (the session index)."""

import hashlib
from collections import Counter
from datetime import date

import numpy as np
import pytest

from papertide.eval import metrics
from papertide.eval.recsys import (
    RecsysCorpus,
    build_task,
    evaluate_recsys,
    load_corpus_db,
    load_users,
    mask_url_owners,
    per_user,
    run_from_scores,
)


@pytest.fixture(scope="module")
def corpus(indexed):
    _, _, root = indexed
    db = root / "papertide.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    c = load_corpus_db(db)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # read-only
    return c


def test_corpus_rows_are_aligned_with_the_store(indexed, corpus):
    store, indexes, _ = indexed
    assert len(corpus) == store.count_papers() == len(corpus.vectors)
    aid = corpus.arxiv_ids[3]
    p = store.get_paper(aid)
    assert corpus.titles[3] == p.title and corpus.authors[3] == p.authors and corpus.categories[3] == p.categories
    assert corpus.listed[3] == np.datetime64(p.listed or p.submitted, "D")
    doc = store.doc_ids_for([aid])[aid]
    np.testing.assert_array_equal(corpus.vectors[3], indexes.dense.vector_of(doc))
    assert np.allclose(np.linalg.norm(corpus.vectors, axis=1), 1.0, atol=1e-3)
    assert "\n" in corpus.texts([3])[0] and p.authors[0] not in corpus.texts([3])[0]


def _toy() -> RecsysCorpus:
    days = ["2025-11-01", "2025-12-01", "2025-12-20", "2026-01-01", "2026-02-01", "2026-03-01"]
    return RecsysCorpus(
        arxiv_ids=[f"2601.0000{i}" for i in range(6)],
        listed=np.array(days, dtype="datetime64[D]"),
        authors=[["Ada", "Bob"], ["Ada"], ["Bob"], ["Ada"], ["Ada", "Ada"], ["Bob"]],
        titles=["t"] * 6, abstracts=["a"] * 6, vectors=np.eye(6, dtype=np.float32),
    )


def test_build_task_splits_at_the_cutoff():
    task = build_task(_toy(), ["Ada", "Bob"], date(2026, 1, 1), min_library=2, min_relevant=1)
    assert task.candidates.tolist() == [3, 4, 5] and task.history.tolist() == [0, 1, 2]
    assert task.libraries["Ada"].tolist() == [0, 1]
    assert task.qrels["Ada"] == {"2601.00003": 1, "2601.00004": 1}  # an author listed twice counts once
    assert task.qrels["Bob"] == {"2601.00005": 1}


def test_build_task_checks_eligibility():
    with pytest.raises(ValueError, match="not eligible"):
        build_task(_toy(), ["Bob"], date(2026, 1, 1), min_library=2, min_relevant=2)
    task = build_task(_toy(), ["Bob", "Nobody"], date(2026, 1, 1), check=False, min_library=2, min_relevant=2)
    assert task.users == []


def test_scores_match_the_metrics_module_on_real_authors(corpus):
    # users: the sample's most prolific authors, split at the median listing day
    cutoff = np.sort(corpus.listed)[len(corpus) // 2].astype(object)
    counts = Counter(a for names in corpus.authors for a in set(names))
    users = [a for a, n in counts.most_common(40) if n >= 2]
    task = build_task(corpus, users, cutoff, check=False, min_library=1, min_relevant=1)
    assert task.users, "the sample should hold a few authors with papers on both sides of its median day"
    run = {}
    for u in task.users:
        centroid = corpus.vectors[task.libraries[u]].mean(0)
        run[u] = run_from_scores(corpus, task.candidates, corpus.vectors[task.candidates] @ centroid, depth=50)
        assert len(run[u]) == min(50, len(task.candidates))
    got = evaluate_recsys(task.qrels, run)
    assert got == {
        "recall@50": metrics.recall_at_k(task.qrels, run, 50),
        "ndcg@20": metrics.ndcg_at_k(task.qrels, run, 20),
        "mrr": metrics.mrr(task.qrels, run),
    }
    assert set(per_user(task.qrels, run)) == set(task.users)


def test_run_from_scores_keeps_the_best():
    c = _toy()
    run = run_from_scores(c, np.array([3, 4, 5]), np.array([0.1, 0.9, 0.5]), depth=2)
    assert run == {"2601.00004": pytest.approx(0.9), "2601.00005": pytest.approx(0.5)}


def test_load_users(tmp_path):
    f = tmp_path / "users.txt"
    f.write_text("Ada Lovelace\n\n  Bob  \n", encoding="utf-8")
    assert load_users(f) == ["Ada Lovelace", "Bob"]


def test_mask_url_owners_keeps_the_repository_and_drops_the_account():
    text = ("Code: https://github.com/alice-lab/NanoNet. Models at huggingface.co/bob/nano-7b; "
            "page: carol.github.io/nanonet. See https://example.org/alice.")
    got = mask_url_owners(text)
    assert "alice-lab" not in got and "bob" not in got and "carol" not in got
    assert "github.com/OWNER/NanoNet." in got and "huggingface.co/OWNER/nano-7b" in got
    assert "OWNER.github.io/nanonet" in got
    assert got.endswith("https://example.org/alice.")  # only code and model hosts
