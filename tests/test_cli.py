"""The `papertide` command end to end, on real files, with the real model."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from papertide.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = Path(__file__).resolve().parents[1] / "src" / "papertide" / "data" / "sample-arxiv-cs-2k.jsonl.gz"
runner = CliRunner()


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERTIDE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _small_file(tmp_path, n=60, bad=True) -> Path:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(n)]
    if bad:
        lines.insert(10, "{not json\n")
        lines.insert(20, json.dumps({"id": "2501.00001", "abstract": "no title"}) + "\n")
    p = tmp_path / "papers.jsonl"
    p.write_text("".join(lines), encoding="utf-8")
    return p


def test_ingest_reports_bad_records_and_goes_on(home, tmp_path):
    f = _small_file(tmp_path)
    r = runner.invoke(app, ["ingest", "file", str(f)])
    assert r.exit_code == 1, r.output
    assert "inserted 60" in r.output
    assert "papers.jsonl:11" in r.output and "invalid JSON" in r.output
    assert "papers.jsonl:21" in r.output and "missing 'title'" in r.output
    # re-running changes nothing
    r = runner.invoke(app, ["ingest", "file", str(f)])
    assert "inserted 0" in r.output and "unchanged 60" in r.output


def test_ingest_index_search_show_stats(home, tmp_path):
    f = _small_file(tmp_path, 80, bad=False)
    assert runner.invoke(app, ["ingest", "file", str(f)]).exit_code == 0
    hf = FIXTURES / "recorded" / "hf_daily_papers_2026-07-31.json"
    r = runner.invoke(app, ["ingest", "hf", "--file", str(hf)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["index"])
    assert r.exit_code == 0, r.output
    assert "embedded 85" in r.output

    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    r = runner.invoke(app, ["search", first["title"], "--json", "-k", "3"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["hits"][0]["arxiv_id"] == first["id"]
    assert data["hits"][0]["links"]["pdf"] == f"https://arxiv.org/pdf/{first['id']}"
    assert set(data["timings_ms"]) >= {"lexical", "dense", "total"}

    r = runner.invoke(app, ["search", "video", "--mode", "lexical", "-c", "cs.CV", "--from", "2025-03-18", "--json"])
    assert r.exit_code == 0
    assert all("cs.CV" in h["categories"] for h in json.loads(r.output)["hits"])

    r = runner.invoke(app, ["search", "video generation"])
    assert r.exit_code == 0 and "score" in r.output

    r = runner.invoke(app, ["show", f"https://arxiv.org/abs/{first['id']}v1", "--json"])
    assert r.exit_code == 0
    shown = json.loads(r.output)
    assert shown["arxiv_id"] == first["id"] and shown["listed"] == first["update_date"]

    r = runner.invoke(app, ["stats", "--json"])
    st = json.loads(r.output)
    assert st["papers"] == 85 and st["embedded"] == 85 and st["index_bytes"] > 0


def _cli(*args, env_home):
    env = {**os.environ, "PAPERTIDE_HOME": str(env_home)}
    return subprocess.run([sys.executable, "-c", "from papertide.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_user_errors_are_one_line_exit_2(tmp_path):
    r = _cli("ingest", "file", str(tmp_path / "nope.jsonl"), env_home=tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    r = _cli("show", "not-an-id", env_home=tmp_path)
    assert r.returncode == 2 and "not an arXiv identifier" in r.stderr and "Traceback" not in r.stderr
    r = _cli("show", "2501.99999", env_home=tmp_path)
    assert r.returncode == 2 and "not in the store" in r.stderr
    r = _cli("search", "anything", env_home=tmp_path / "empty")
    assert r.returncode == 2 and "papertide index" in r.stderr and "Traceback" not in r.stderr
    r = _cli("search", "x", "--from", "yesterday", env_home=tmp_path)
    assert r.returncode == 2 and "YYYY-MM-DD" in r.stderr
    r = _cli("eval", "beir", str(tmp_path), env_home=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_help_lists_every_command():
    r = runner.invoke(app, ["--help"])
    for cmd in ("ingest", "index", "search", "show", "stats", "eval"):
        assert cmd in r.output
    r = runner.invoke(app, ["ingest", "--help"])
    for cmd in ("file", "sample", "arxiv", "ids", "hf"):
        assert cmd in r.output


def test_eval_beir_on_a_tiny_collection(home, tmp_path):
    out = tmp_path / "scores.json"
    r = runner.invoke(app, ["eval", "beir", str(FIXTURES / "beir-mini"), "--json", str(out)])
    assert r.exit_code == 0, r.output
    scores = json.loads(out.read_text())["scores"]
    assert set(scores) == {"lexical", "dense", "hybrid"}
    for s in scores.values():
        assert 0.0 < s["ndcg@10"] <= 1.0 and 0.0 < s["recall@100"] <= 1.0
