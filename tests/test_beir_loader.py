"""Loaders for BEIR-layout datasets (tests/fixtures/beir-mini, SciFact) and CSFCube."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest

from papertide.eval import csfcube
from papertide.eval.beir import BeirDataset, DatasetError, load_beir
from papertide.eval.csfcube import FACETS, load_csfcube

MINI = Path(__file__).resolve().parent / "fixtures" / "beir-mini"
# The shared, non-commercial evaluation sets live beside the checkout (../shared/data), never in the repo.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SCIFACT = SHARED_DATA / "scifact"
CSFCUBE = SHARED_DATA / "csfcube"

needs_scifact = pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"SciFact not found at {SCIFACT}")
needs_csfcube = pytest.mark.skipif(not CSFCUBE.is_dir(), reason=f"CSFCube not found at {CSFCUBE}")


def _copy_mini(tmp_path: Path, *, gzip_names: tuple[str, ...] = ()) -> Path:
    """A writable copy of beir-mini, with the named files gzip'd in place of the plain ones."""
    root = tmp_path / "beir-mini"
    shutil.copytree(MINI, root)
    for name in gzip_names:
        plain = root / name
        with gzip.open(root / f"{name}.gz", "wb") as out:
            out.write(plain.read_bytes())
        plain.unlink()
    return root


def _replace_line(path: Path, lineno: int, text: str) -> None:
    """Overwrite line ``lineno`` (from 1) of a plain or gzip'd text file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    lines[lineno - 1] = text
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _assert_mini_train(ds: BeirDataset) -> None:
    assert len(ds.corpus) == 8
    assert set(ds.queries) == {"q1", "q2", "q3"}  # q4 is judged in test only, q5 nowhere
    assert ds.qrels == {"q1": {"d1": 2, "d2": 1}, "q2": {"d3": 1, "d4": 0}, "q3": {"d5": 1}}
    assert ds.queries["q2"] == "keyword search over abstracts"
    assert ds.corpus["d7"] == {
        "title": "",
        "text": "An untitled note on deduplicating papers that appear under several version numbers.",
    }
    assert ds.corpus["d8"]["title"] == "Évaluation des systèmes de recherche — ein Überblick"


def test_loads_plain_fixture():
    _assert_mini_train(load_beir(MINI))
    test = load_beir(MINI, split="test")
    assert test.queries == {"q4": "email digest of relevant papers"}
    assert test.qrels == {"q4": {"d6": 1, "d1": 1}}
    assert len(test.corpus) == 8


def test_loads_gzip_variant(tmp_path):
    root = _copy_mini(tmp_path, gzip_names=("corpus.jsonl", "queries.jsonl"))
    assert not (root / "corpus.jsonl").exists()
    ds = load_beir(root, "train")
    _assert_mini_train(ds)
    assert ds == load_beir(MINI, "train")


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_malformed_corpus_line_names_file_and_line(tmp_path, gzipped):
    root = _copy_mini(tmp_path, gzip_names=("corpus.jsonl",) if gzipped else ())
    corpus = root / ("corpus.jsonl.gz" if gzipped else "corpus.jsonl")
    _replace_line(corpus, 4, '{"_id": "d4", "title": "cut short", "text": "no closing brace"')
    with pytest.raises(DatasetError) as caught:
        load_beir(root)
    err = caught.value
    assert (err.path, err.line) == (corpus, 4)
    assert str(err).startswith(f"{corpus}:4: not valid JSON")


@pytest.mark.parametrize(
    ("lineno", "text", "message"),
    [
        (1, "qid\tdocid\tscore", "expected the header 'query-id\\tcorpus-id\\tscore'"),
        (3, "q1\td2", "expected 3 tab-separated fields"),
        (3, "q1 d2 1", "expected 3 tab-separated fields"),
        (4, "q2\td3\tyes", "score 'yes' is not an integer"),
        (4, "q1\td1\t1", "duplicate judgment for query 'q1', doc 'd1'"),
        (6, "q9\td5\t1", "query-id 'q9' is not in queries.jsonl"),
    ],
)
def test_malformed_qrels_line_names_file_and_line(tmp_path, lineno, text, message):
    root = _copy_mini(tmp_path)
    qrels = root / "qrels" / "train.tsv"
    _replace_line(qrels, lineno, text)
    with pytest.raises(DatasetError, match=f"^{re.escape(str(qrels))}:{lineno}: ") as caught:
        load_beir(root)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("lineno", "record", "message"),
    [
        (2, {"title": "no id", "text": "x"}, 'missing or empty "_id"'),
        (2, {"_id": "d1", "title": "again", "text": "x"}, "duplicate document _id 'd1'"),
        (2, {"_id": "d2", "title": "no text"}, 'missing "text"'),
        (2, {"_id": "d2", "title": 7, "text": "x"}, '"title" must be a string'),
        (2, ["not", "an", "object"], "expected a JSON object"),
    ],
)
def test_invalid_corpus_records(tmp_path, lineno, record, message):
    root = _copy_mini(tmp_path)
    _replace_line(root / "corpus.jsonl", lineno, json.dumps(record))
    with pytest.raises(DatasetError, match=f":{lineno}: ") as caught:
        load_beir(root)
    assert message in str(caught.value)


def test_numeric_ids_are_read_as_text(tmp_path):
    root = _copy_mini(tmp_path)
    _replace_line(root / "corpus.jsonl", 1, json.dumps({"_id": 42, "title": "t", "text": "x"}))
    _replace_line(root / "qrels" / "train.tsv", 2, "q1\t42\t2")
    ds = load_beir(root)
    assert ds.corpus["42"] == {"title": "t", "text": "x"}
    assert ds.qrels["q1"] == {"42": 2, "d2": 1}


def test_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a directory"):
        load_beir(tmp_path / "nowhere")
    with pytest.raises(
        DatasetError, match=r"missing qrels for split 'dev' \(available splits: test, train\)"
    ):
        load_beir(MINI, split="dev")

    root = _copy_mini(tmp_path)
    (root / "corpus.jsonl").unlink()
    with pytest.raises(DatasetError, match=r"missing corpus\.jsonl \(or corpus\.jsonl\.gz\)") as caught:
        load_beir(root)
    assert caught.value.path == root
    assert caught.value.line is None

    shutil.copy(MINI / "corpus.jsonl", root / "corpus.jsonl")
    (root / "qrels" / "train.tsv").write_text("", encoding="utf-8")
    with pytest.raises(DatasetError, match="empty file"):
        load_beir(root)


def test_truncated_gzip_is_a_dataset_error(tmp_path):
    root = _copy_mini(tmp_path, gzip_names=("corpus.jsonl",))
    path = root / "corpus.jsonl.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DatasetError, match="cannot be read"):
        load_beir(root)


@needs_scifact
def test_scifact_train_counts():
    ds = load_beir(SCIFACT, "train")
    assert len(ds.corpus) == 5183
    assert len(ds.queries) == 809
    assert sum(len(judged) for judged in ds.qrels.values()) == 919
    assert set(ds.queries) == set(ds.qrels)
    assert all(doc_id in ds.corpus for judged in ds.qrels.values() for doc_id in judged)
    with pytest.raises(DatasetError, match="available splits: train"):
        load_beir(SCIFACT, "test")  # withheld on purpose


# --- CSFCube ----------------------------------------------------------------------------------------


@needs_csfcube
def test_csfcube_counts_and_fields():
    ds = load_csfcube(CSFCUBE)
    assert len(ds.abstracts) == 4205
    assert {facet: len(ds.queries[facet]) for facet in FACETS} == dict.fromkeys(FACETS, 8)
    pool = ds.queries["background"]["3264891"]
    assert len(pool) == 88
    assert all(0 <= grade <= 3 for _, grade in pool)
    assert ds.pool("background", "3264891")[0] == pool[0][0]
    assert len(ds.qrels("method")["11310392"]) == 251
    paper = ds.abstracts["388"]
    assert paper.title.startswith("A Sentimental Education")
    assert paper.year == 2004
    assert paper.abstract == " ".join(paper.sentences)
    assert len(paper.sentence_labels) == len(paper.sentences) == 3
    assert ds.abstracts["52952241"].year is None  # released as "None"
    assert "8781666" in ds.pool("result", "8781666")  # the query is in its own pool (graded 3)


@needs_csfcube
def test_csfcube_oracle_and_inverse_runs():
    ds = load_csfcube(CSFCUBE)
    oracle = {
        facet: {qid: {cand: float(grade) for cand, grade in pool} for qid, pool in ds.queries[facet].items()}
        for facet in FACETS
    }
    scores = csfcube.evaluate_csfcube(ds, oracle)
    assert scores.k == 20
    assert scores.per_facet == pytest.approx(dict.fromkeys(FACETS, 1.0))
    assert scores.mean == pytest.approx(1.0)
    inverse = {
        f: {q: {c: -s for c, s in run.items()} for q, run in runs.items()} for f, runs in oracle.items()
    }
    worst = csfcube.evaluate_csfcube(ds, inverse)
    assert all(0.0 <= value < 0.2 for value in worst.per_facet.values())
    assert set(worst.per_query["method"]) == set(ds.queries["method"])
    with pytest.raises(ValueError, match="no run for facet"):
        csfcube.evaluate_csfcube(ds, {"background": oracle["background"]})


def _write_csfcube(root: Path, anns: dict, abstracts: list[dict]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with gzip.open(root / "abstracts.jsonl.gz", "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(record) + "\n" for record in abstracts)
    for facet in FACETS:
        (root / f"dev-pid2anns-{facet}.json").write_text(json.dumps(anns), encoding="utf-8")


def _paper(pid: str) -> dict:
    return {
        "paper_id": pid,
        "title": f"Paper {pid}",
        "year": "2020",
        "abstract": ["One.", "Two."],
        "pred_labels": ["background_label", "method_label"],
    }


def test_csfcube_loader_on_synthetic_files(tmp_path):
    anns = {"1": {"cands": ["2", "3"], "relevance_adju": [3, 0], "relevance_max": [3, 1]}}
    _write_csfcube(tmp_path, anns, [_paper("1"), _paper("2"), _paper("3")])
    ds = load_csfcube(tmp_path)
    assert ds.queries["result"] == {"1": [("2", 3), ("3", 0)]}
    assert ds.abstracts["2"].abstract == "One. Two."
    assert ds.qrels("method") == {"1": {"2": 3, "3": 0}}
    with pytest.raises(KeyError, match="unknown facet"):
        ds.qrels("intro")


@pytest.mark.parametrize(
    ("anns", "message"),
    [
        ({"1": {"cands": ["2", "3"], "relevance_adju": [3]}}, "2 cands but 1 relevance_adju grades"),
        ({"1": {"cands": ["2", "3"], "relevance_adju": [3, 4]}}, "grade 4 is not an integer 0-3"),
        ({"1": {"cands": ["2", "9"], "relevance_adju": [3, 0]}}, "paper '9' has no abstract"),
        ({"1": {"cands": ["2", "2"], "relevance_adju": [3, 0]}}, "listed twice"),
        ({"1": {"relevance_adju": [3, 0]}}, '"cands" and "relevance_adju" must both be lists'),
    ],
)
def test_csfcube_malformed_annotations(tmp_path, anns, message):
    _write_csfcube(tmp_path, anns, [_paper("1"), _paper("2"), _paper("3")])
    with pytest.raises(DatasetError, match=r"dev-pid2anns-background\.json") as caught:
        load_csfcube(tmp_path)
    assert message in str(caught.value)


def test_csfcube_missing_and_broken_files(tmp_path):
    _write_csfcube(tmp_path, {"1": {"cands": ["2"], "relevance_adju": [1]}}, [_paper("1"), _paper("2")])
    (tmp_path / "dev-pid2anns-method.json").write_text('{"1": ', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"dev-pid2anns-method\.json:1: not valid JSON"):
        load_csfcube(tmp_path)
    (tmp_path / "dev-pid2anns-result.json").unlink()
    (tmp_path / "dev-pid2anns-method.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DatasetError, match="missing the 'result' facet"):
        load_csfcube(tmp_path)
    (tmp_path / "abstracts.jsonl.gz").unlink()
    with pytest.raises(DatasetError, match=r"missing abstracts\.jsonl"):
        load_csfcube(tmp_path)
