"""arXiv API query feeds (export.arxiv.org/api/query, Atom 1.0) parsed into Papers.

Pure: bytes in, an `AtomPage` out. Reads both the legacy feed (namespaces declared on each element,
`scheme` on the primary category) and the current one (namespaces on the root); the XML parser
resolves namespaces, so the two need no separate code. The API reports failures as a feed whose
single entry has an id under https://arxiv.org/api/errors; that raises ArxivApiError.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from papertide.models import (
    InvalidIdError,
    Paper,
    RecordError,
    Version,
    find_code_urls,
    parse_arxiv_id,
    unwrap,
)
from papertide.sources import MalformedResponse, SourceError, parse_xml

SOURCE = "arxiv-api"

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
_ERROR_IDS = ("http://arxiv.org/api/errors", "https://arxiv.org/api/errors")


class ArxivApiError(SourceError):
    """The arXiv API answered with its error feed (bad query, malformed id, ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"arXiv API error: {message}")
        self.message = message


@dataclass(slots=True)
class AtomPage:
    papers: list[Paper] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    total_results: int | None = None
    start_index: int | None = None
    items_per_page: int | None = None


class _BadEntry(ValueError):
    pass


def parse_atom_feed(xml: bytes, location: str) -> AtomPage:
    """Parse one page of API results; each unusable entry becomes a RecordError("<location> entry i")."""
    root = parse_xml(xml, location)
    if root.tag != f"{_ATOM}feed":
        raise MalformedResponse(f"{location}: not an Atom feed (root element {root.tag})")
    entries = root.findall(f"{_ATOM}entry")
    for entry in entries:
        if (_text(entry, f"{_ATOM}id") or "").startswith(_ERROR_IDS):
            raise ArxivApiError(unwrap(_text(entry, f"{_ATOM}summary")) or "unspecified error")

    page = AtomPage(
        total_results=_int(_text(root, f"{_OPENSEARCH}totalResults")),
        start_index=_int(_text(root, f"{_OPENSEARCH}startIndex")),
        items_per_page=_int(_text(root, f"{_OPENSEARCH}itemsPerPage")),
    )
    for i, entry in enumerate(entries, 1):
        try:
            page.papers.append(_parse_entry(entry))
        except _BadEntry as e:
            page.errors.append(RecordError(f"{location} entry {i}", str(e)))
    return page


def _parse_entry(entry: ET.Element) -> Paper:
    raw_id = _text(entry, f"{_ATOM}id")
    if not raw_id:
        raise _BadEntry("missing id")
    try:
        arxiv_id, version = parse_arxiv_id(raw_id)
    except InvalidIdError:
        raise _BadEntry(f"invalid arXiv id {raw_id!r}") from None
    title = unwrap(_text(entry, f"{_ATOM}title"))
    if not title:
        raise _BadEntry(f"{arxiv_id}: missing title")
    abstract = unwrap(_text(entry, f"{_ATOM}summary"), paragraphs=True)
    comments = unwrap(_text(entry, f"{_ARXIV}comment")) or None

    categories: list[str] = []
    primary = entry.find(f"{_ARXIV}primary_category")
    terms = [primary.get("term")] if primary is not None else []
    terms += [c.get("term") for c in entry.findall(f"{_ATOM}category")]
    for term in terms:
        if term and term not in categories:
            categories.append(term)

    published = _timestamp(_text(entry, f"{_ATOM}published"))
    updated = _timestamp(_text(entry, f"{_ATOM}updated"))
    latest = version or 1
    # The API dates only v1 (<published>) and the version it returns (<updated>); the ones between
    # are unknown, so `versions` lists just those two.
    versions = [Version(1, published)] if published else []
    if latest > 1 and updated:
        versions.append(Version(latest, updated))

    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors=[n for n in (unwrap(_text(a, f"{_ATOM}name")) for a in entry.findall(f"{_ATOM}author")) if n],
        categories=categories,
        version=latest,
        submitted=_day(published),
        updated=_day(updated) or _day(published),
        comments=comments,
        journal_ref=unwrap(_text(entry, f"{_ARXIV}journal_ref")) or None,
        doi=unwrap(_text(entry, f"{_ARXIV}doi")) or None,
        code_urls=find_code_urls(abstract, comments),
        source=SOURCE,
        versions=versions,
    )


def _text(el: ET.Element, path: str) -> str | None:
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _timestamp(text: str | None) -> str | None:
    """'2006-03-02T02:22:45Z' (or with an offset) -> the same instant as 'YYYY-MM-DDTHH:MM:SSZ'."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(timestamp: str | None) -> date | None:
    return date.fromisoformat(timestamp[:10]) if timestamp else None
