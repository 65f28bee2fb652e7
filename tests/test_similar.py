"""Similar papers on a small real index: itself and its duplicates excluded, recency filter, the CLI command."""

import dataclasses
import gzip
import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from papertide.rank.similar import lexical_query_text, normalise_title, similar_papers

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "papertide" / "data" / "sample-arxiv-cs-2k.jsonl.gz"


def test_normalise_title_ignores_case_accents_punctuation_and_spaces():
    assert normalise_title("Déjà  Vu: A\nStudy of LLMs!") == normalise_title("deja vu - a study of llms")
    assert normalise_title("A study") != normalise_title("A study, part 2")


def test_lexical_query_is_the_title_or_title_and_abstract():
    assert lexical_query_text("Sparse Attention", "We prune heads.", "title") == "Sparse Attention"
    assert lexical_query_text("Sparse Attention", "We prune heads.", "title+abstract") == "Sparse Attention We prune heads"


@pytest.fixture(scope="module")
def engine_with_duplicate(tmp_path_factory, embedder, sample_papers):
    """40 sample papers plus a second record of the first one (another id, same title re-typed)."""
    from papertide.index.build import update_index
    from papertide.rank.search import SearchEngine
    from papertide.store import SqliteStore

    root = tmp_path_factory.mktemp("similar")
    store = SqliteStore(root / "papertide.db")
    papers = sample_papers[:40]
    dup = dataclasses.replace(papers[0], arxiv_id="2999.00001", title=papers[0].title.upper() + " ")
    store.upsert_papers([*papers, dup])
    indexes, _ = update_index(store, root / "index", embedder)
    yield SearchEngine(store, indexes, embedder), store, papers, dup
    store.close()


def test_similar_excludes_the_paper_and_its_duplicates(engine_with_duplicate):
    engine, store, papers, dup = engine_with_duplicate
    ids = store.doc_ids_for([papers[0].arxiv_id, dup.arxiv_id])
    hits = similar_papers(engine, ids[papers[0].arxiv_id], k=10)
    assert len(hits) == 10
    got = [d for d, _ in hits]
    assert ids[papers[0].arxiv_id] not in got and ids[dup.arxiv_id] not in got
    assert len(set(got)) == len(got)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    titles = [normalise_title(p.title) for p in store.get_papers(got).values()]
    assert len(set(titles)) == len(titles)


def test_similar_since_keeps_only_recent_papers(engine_with_duplicate):
    engine, store, papers, _ = engine_with_duplicate
    days = sorted(p.listed for p in papers if p.listed)
    since = days[len(days) // 2]
    doc = store.doc_ids_for([papers[5].arxiv_id])[papers[5].arxiv_id]
    hits = similar_papers(engine, doc, k=40, since=since)
    assert hits
    for p in store.get_papers([d for d, _ in hits]).values():
        assert (p.listed or p.submitted) >= since


def test_similar_unknown_paper_is_empty(engine_with_duplicate):
    engine, *_ = engine_with_duplicate
    assert similar_papers(engine, 10**9, k=5) == []


def test_cli_similar_json(tmp_path, monkeypatch):
    from papertide.cli import app

    monkeypatch.setenv("PAPERTIDE_HOME", str(tmp_path / "home"))
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(30)]
    (tmp_path / "p.jsonl").write_text("".join(lines), encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "file", str(tmp_path / "p.jsonl")]).exit_code == 0
    assert runner.invoke(app, ["index"]).exit_code == 0
    first = json.loads(lines[0])["id"]
    r = runner.invoke(app, ["similar", first, "--json", "-k", "5"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["arxiv_id"] == first and out["since"] == "all"
    assert len(out["hits"]) == 5 and first not in [h["arxiv_id"] for h in out["hits"]]
    r = runner.invoke(app, ["similar", first, "--since", "week"])
    assert r.exit_code != 0
    r = runner.invoke(app, ["similar", "2999.99999"])
    assert r.exit_code != 0
    assert date.today()  # the since window is relative to today; the sample is older, so month may be empty
    r = runner.invoke(app, ["similar", first, "--since", "month"])
    assert r.exit_code == 0, r.output
