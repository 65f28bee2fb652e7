"""Hugging Face daily papers parsing, against real recorded API responses."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from papertide.models import RecordError
from papertide.sources import MalformedResponse
from papertide.sources.hf import HfApiError, parse_daily_papers

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
JUL31 = "hf_daily_papers_2026-07-31.json"
AUG03 = "hf_daily_papers_2026-08-03.json"
LOC = "https://huggingface.co/api/daily_papers?date=2026-07-31"


def load(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


def by_id(page):
    return {p.arxiv_id: p for p in page.papers}


def test_daily_list_ids_upvotes_and_days():
    page = parse_daily_papers(load(JUL31), LOC)
    assert page.errors == []
    assert [p.arxiv_id for p in page.papers] == [
        "2607.23193",
        "2607.27958",
        "2607.28582",
        "2607.28308",
        "2607.16922",
    ]
    assert [p.hf_upvotes for p in page.papers] == [3, 11, 17, 2, 0]
    assert {p.featured_on for p in page.papers} == {date(2026, 7, 31)}
    for p in page.papers:
        assert p.source == "hf-daily"
        assert p.categories == [] and p.version == 1


def test_paper_fields():
    p = by_id(parse_daily_papers(load(JUL31), LOC))["2607.23193"]
    assert p.title == "OmniScope: Modality-Decoupled Token Compression for Omnimodal Large Language Models"
    assert p.authors == ["Jinsen Su", "Yongdong Luo", "Yuexiao Ma", "Yibo Hu", "Meiguang Jin", "Xiaowu Zheng"]
    # paper.publishedAt (2026-07-28T00:00Z), not the list item's 2026-07-27T20:00Z.
    assert p.submitted == date(2026, 7, 28)
    assert p.submitter == "Jinsen Su"  # submittedOnDailyBy.fullname
    assert p.abstract.startswith("Existing token compression methods for omnimodal large language models")
    # githubRepo, also cited in the summary with a trailing full stop: listed once.
    assert p.code_urls == ["https://github.com/MAC-AutoML/OmniScope"]


def test_non_ascii_titles_project_pages_and_no_code():
    papers = by_id(parse_daily_papers(load(JUL31), LOC))
    assert (
        papers["2607.27958"].title == "Σ-Mem: An Online Reliability Memory for LLM-based Multi-Agent Systems"
    )
    assert papers["2607.27958"].code_urls == ["https://github.com/declare-lab/sigma-mem"]
    beta = papers["2607.28582"]
    assert beta.title == "β-OPSD: Deriving with Policy Optimization, Training with Self-Distillation"
    assert beta.code_urls == ["https://umd-huang-lab.github.io/beta-opsd/"]  # projectPage
    assert beta.submitter == "Minghui Liu"
    assert papers["2607.28308"].code_urls == []
    assert papers["2607.16922"].authors[3] == "S M Jubaer"
    assert papers["2607.16922"].submitted == date(2026, 7, 18)


def test_second_recording_repo_then_project_page():
    papers = by_id(parse_daily_papers(load(AUG03), LOC))
    assert list(papers) == ["2607.26654", "2607.28229", "2607.27851"]
    assert papers["2607.26654"].code_urls == [
        "https://github.com/desBugger/constitutional-mt",
        "https://www.lesswrong.com/posts/n5htoDGvKKJFAjji2",
    ]
    assert papers["2607.28229"].code_urls == ["https://github.com/petroni-lab/librarian"]
    assert papers["2607.28229"].submitted == date(2026, 7, 30)
    assert papers["2607.28229"].featured_on == date(2026, 8, 3)
    assert len(papers["2607.28229"].authors) == 12


def test_submitter_falls_back_to_submitted_by():
    items = json.loads(load(JUL31))
    del items[0]["paper"]["submittedOnDailyBy"]
    [p, *_] = parse_daily_papers(json.dumps(items).encode(), LOC).papers
    assert p.submitter == "Jinsen Su"  # item.submittedBy.fullname


def test_bad_items_are_reported_and_skipped():
    # In memory, from the recording: item 2 loses its id, item 4 is not an object, item 5 has no title.
    items = json.loads(load(JUL31))
    del items[1]["paper"]["id"]
    items[3] = "2607.28308"
    del items[4]["paper"]["title"]
    del items[4]["title"]
    page = parse_daily_papers(json.dumps(items).encode(), LOC)
    assert [p.arxiv_id for p in page.papers] == ["2607.23193", "2607.28582"]
    assert page.errors == [
        RecordError(f"{LOC} item 2", "missing paper.id"),
        RecordError(f"{LOC} item 4", "expected an object, got str"),
        RecordError(f"{LOC} item 5", "2607.16922: missing title"),
    ]


@pytest.mark.parametrize("data", [load(JUL31)[:4000], b"<html>Bad gateway</html>", b'{"papers": []}', b""])
def test_unreadable_body_is_malformed(data):
    with pytest.raises(MalformedResponse):
        parse_daily_papers(data, LOC)


def test_error_object_raises_api_error():
    with pytest.raises(HfApiError, match="Invalid date"):
        parse_daily_papers(b'{"error": "Invalid date"}', LOC)


def test_empty_day():
    page = parse_daily_papers(b"[]", LOC)
    assert page.papers == [] and page.errors == []
