"""Hugging Face daily papers (huggingface.co/api/daily_papers JSON) parsed into Papers.

Pure: bytes in, an `HfPage` out. HF knows the arXiv id, title, abstract and authors, plus its own
signals (upvotes, the day the paper was featured, linked GitHub repo and project page). It knows no
arXiv categories or version numbers, so those stay empty / at their defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from papertide.models import InvalidIdError, Paper, RecordError, find_code_urls, parse_arxiv_id, unwrap
from papertide.sources import MalformedResponse, SourceError

SOURCE = "hf-daily"


class HfApiError(SourceError):
    """The API answered with an error object ({"error": "..."}) instead of a list of papers."""


@dataclass(slots=True)
class HfPage:
    papers: list[Paper] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


class _BadItem(ValueError):
    pass


def parse_daily_papers(data: bytes, location: str) -> HfPage:
    """Parse one daily-papers response; each unusable item becomes a RecordError("<location> item i")."""
    try:
        items = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MalformedResponse(f"{location}: invalid JSON ({e})") from None
    if isinstance(items, dict) and "error" in items:
        raise HfApiError(f"Hugging Face API error: {items['error']}")
    if not isinstance(items, list):
        raise MalformedResponse(f"{location}: expected a JSON list, got {type(items).__name__}")
    page = HfPage()
    for i, item in enumerate(items, 1):
        try:
            page.papers.append(_parse_item(item))
        except _BadItem as e:
            page.errors.append(RecordError(f"{location} item {i}", str(e)))
    return page


def _parse_item(item: object) -> Paper:
    if not isinstance(item, dict):
        raise _BadItem(f"expected an object, got {type(item).__name__}")
    paper = item.get("paper")
    if not isinstance(paper, dict):
        raise _BadItem("missing 'paper' object")
    raw_id = paper.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise _BadItem("missing paper.id")
    try:
        arxiv_id, version = parse_arxiv_id(raw_id)
    except InvalidIdError:
        raise _BadItem(f"paper.id {raw_id!r} is not an arXiv id") from None
    title = unwrap(_str(paper.get("title")) or _str(item.get("title")))
    if not title:
        raise _BadItem(f"{arxiv_id}: missing title")
    abstract = unwrap(_str(paper.get("summary")) or _str(item.get("summary")), paragraphs=True)

    authors = [
        unwrap(a["name"]) for a in paper.get("authors") or [] if isinstance(a, dict) and _str(a.get("name"))
    ]
    # HF's own links first (authors or HF users attach them), then any found in the abstract.
    code_urls: list[str] = []
    for url in [_str(paper.get("githubRepo")), _str(paper.get("projectPage")), *find_code_urls(abstract)]:
        if url and url not in code_urls:
            code_urls.append(url)
    upvotes = paper.get("upvotes")

    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors=authors,
        version=version or 1,
        submitted=_day(paper.get("publishedAt")) or _day(item.get("publishedAt")),
        code_urls=code_urls,
        source=SOURCE,
        submitter=_submitter(paper.get("submittedOnDailyBy")) or _submitter(item.get("submittedBy")),
        hf_upvotes=upvotes if isinstance(upvotes, int) and not isinstance(upvotes, bool) else None,
        featured_on=_day(paper.get("submittedOnDailyAt")),
    )


def _str(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _submitter(user: Any) -> str | None:
    """The HF user who put the paper on the daily list (not necessarily an author)."""
    if not isinstance(user, dict):
        return None
    return _str(user.get("fullname")) or _str(user.get("user")) or _str(user.get("name"))


def _day(value: Any) -> date | None:
    """'2026-07-31T00:00:00.000Z' -> date(2026, 7, 31), taken in UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.date()
