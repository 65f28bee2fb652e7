"""arXiv OAI-PMH ListRecords pages (arXivRaw, arXiv or oai_dc metadata) parsed into Papers.

Pure: bytes in, an `OaiPage` out. Prefer `arXivRaw`: it is the only format with every version's
date and size, the submitter and the licence. `arXiv` has no version numbers, and `oai_dc` has
neither version numbers nor category codes (only subject names), so those stay unknown.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, date
from email.utils import parsedate_to_datetime
from typing import Any

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

SOURCE = "arxiv-oai"

_OAI = "{http://www.openarchives.org/OAI/2.0/}"
_RAW = "{http://arxiv.org/OAI/arXivRaw/}"
_ARXIV = "{http://arxiv.org/OAI/arXiv/}"
_OAI_DC = "{http://www.openarchives.org/OAI/2.0/oai_dc/}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_HEADER_ID_PREFIX = "oai:arXiv.org:"

# Affiliations in free-text author lists: "A. Author (MIT)" or "A, B ((1) MIT, (2) CERN)".
_PARENS = re.compile(r"\([^()]*\)")
_AUTHOR_SEP = re.compile(r",|;|\s+and\s+|\s+&\s+")
_NAME_SUFFIX = re.compile(r"(?:Jr|Sr)\.?|I{2,3}|IV", re.IGNORECASE)


class OaiError(SourceError):
    """An OAI-PMH <error> other than noRecordsMatch (e.g. badResumptionToken, badArgument)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"OAI-PMH error {code}: {message}")
        self.code = code
        self.message = message


@dataclass(slots=True)
class OaiPage:
    """One ListRecords response. An empty or missing resumption token means the list is complete."""

    papers: list[Paper] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    resumption_token: str | None = None
    complete_list_size: int | None = None
    cursor: int | None = None
    deleted: list[str] = field(default_factory=list)  # arXiv ids the server reports as deleted

    @property
    def done(self) -> bool:
        return not self.resumption_token


class _BadRecord(ValueError):
    """One record that cannot become a Paper; the page goes on without it."""


def parse_list_records(xml: bytes, location: str) -> OaiPage:
    """Parse a ListRecords response; `location` (the request URL) prefixes every RecordError.

    Raises MalformedResponse for unparseable XML and OaiError for protocol errors; noRecordsMatch
    is an empty, finished page.
    """
    root = parse_xml(xml, location)
    if root.tag != f"{_OAI}OAI-PMH":
        raise MalformedResponse(f"{location}: not an OAI-PMH response (root element {root.tag})")
    errors = root.findall(f"{_OAI}error")
    if errors:
        for err in errors:
            code = err.get("code") or "unknown"
            if code != "noRecordsMatch":
                raise OaiError(code, " ".join((err.text or "").split()))
        return OaiPage()
    listing = root.find(f"{_OAI}ListRecords")
    if listing is None:
        raise MalformedResponse(f"{location}: neither <ListRecords> nor <error> in the response")

    page = OaiPage()
    for i, record in enumerate(listing.findall(f"{_OAI}record"), 1):
        header = record.find(f"{_OAI}header")
        if header is not None and header.get("status") == "deleted":
            ident = _header_id(header)
            if ident:
                page.deleted.append(ident)
            continue
        try:
            page.papers.append(_parse_record(record, header))
        except _BadRecord as e:
            page.errors.append(RecordError(f"{location} record {i}", str(e)))

    token = listing.find(f"{_OAI}resumptionToken")
    if token is not None:
        page.resumption_token = (token.text or "").strip() or None
        page.complete_list_size = _int_attr(token, "completeListSize")
        page.cursor = _int_attr(token, "cursor")
    return page


def split_authors(text: str | None) -> list[str]:
    """Split arXiv's free-text author list ("A. One, B. Two, and C. Three (MIT)") into names."""
    s = unwrap(text)
    previous = None
    while previous != s:  # repeat so nested "((1) MIT, (2) CERN)" goes too
        previous, s = s, _PARENS.sub(" ", s)
    names: list[str] = []
    for part in _AUTHOR_SEP.split(s):
        name = " ".join(part.split())
        if name.lower().startswith("and "):  # the Oxford comma: "A, B, and C"
            name = name[4:].lstrip()
        if not name:
            continue
        if names and _NAME_SUFFIX.fullmatch(name):  # "John Smith, Jr." is one author
            names[-1] = f"{names[-1]} {name}"
        else:
            names.append(name)
    return names


# -- records -------------------------------------------------------------------------------------


def _parse_record(record: ET.Element, header: ET.Element | None) -> Paper:
    metadata = record.find(f"{_OAI}metadata")
    if metadata is None or len(metadata) == 0:
        raise _BadRecord(_with_id(header, "record has no <metadata>"))
    md = metadata[0]
    if md.tag == f"{_RAW}arXivRaw":
        return _from_arxiv_raw(md, header)
    if md.tag == f"{_ARXIV}arXiv":
        return _from_arxiv(md, header)
    if md.tag == f"{_OAI_DC}dc":
        return _from_oai_dc(md, header)
    raise _BadRecord(_with_id(header, f"unsupported metadata format {md.tag}"))


def _from_arxiv_raw(md: ET.Element, header: ET.Element | None) -> Paper:
    arxiv_id, id_version = _identify(_text(md, f"{_RAW}id"), header)
    versions: list[Version] = []
    for v in md.findall(f"{_RAW}version"):
        label = (v.get("version") or "").strip()
        if not re.fullmatch(r"v\d+", label):
            raise _BadRecord(f"{arxiv_id}: bad version label {label!r}")
        versions.append(
            Version(int(label[1:]), _rfc2822_to_iso(_text(v, f"{_RAW}date")), _text(v, f"{_RAW}size"))
        )
    versions.sort(key=lambda v: v.version)
    return _paper(
        arxiv_id,
        title=_text(md, f"{_RAW}title"),
        abstract=_text(md, f"{_RAW}abstract"),
        comments=_text(md, f"{_RAW}comments"),
        authors=split_authors(_text(md, f"{_RAW}authors")),
        categories=_categories(_text(md, f"{_RAW}categories")),
        version=versions[-1].version if versions else id_version or 1,
        submitted=_iso_day(versions[0].created) if versions else None,
        updated=_iso_day(versions[-1].created) if versions else None,
        journal_ref=_text(md, f"{_RAW}journal-ref"),
        doi=_text(md, f"{_RAW}doi"),
        versions=versions,
        submitter=unwrap(_text(md, f"{_RAW}submitter")) or None,
        license=_text(md, f"{_RAW}license"),
    )


def _from_arxiv(md: ET.Element, header: ET.Element | None) -> Paper:
    arxiv_id, id_version = _identify(_text(md, f"{_ARXIV}id"), header)
    authors = []
    for a in md.findall(f"{_ARXIV}authors/{_ARXIV}author"):
        parts = (_text(a, f"{_ARXIV}{k}") for k in ("forenames", "keyname", "suffix"))
        name = " ".join(unwrap(p) for p in parts if p)
        if name:
            authors.append(name)
    created = _day(_text(md, f"{_ARXIV}created"))
    return _paper(
        arxiv_id,
        title=_text(md, f"{_ARXIV}title"),
        abstract=_text(md, f"{_ARXIV}abstract"),
        comments=_text(md, f"{_ARXIV}comments"),
        authors=authors,
        categories=_categories(_text(md, f"{_ARXIV}categories")),
        version=id_version or 1,  # this format has no version numbers
        submitted=created,
        updated=_day(_text(md, f"{_ARXIV}updated")) or created,
        journal_ref=_text(md, f"{_ARXIV}journal-ref"),
        doi=_text(md, f"{_ARXIV}doi"),
        license=_text(md, f"{_ARXIV}license"),
    )


def _from_oai_dc(md: ET.Element, header: ET.Element | None) -> Paper:
    # arXiv's Dublin Core: identifiers are the abs URL, the journal reference and "doi:..."; a
    # description starting "Comment:" holds the comments; dates are the version dates, oldest first.
    raw_id = doi = journal_ref = None
    for ident in _texts(md, f"{_DC}identifier"):
        if "arxiv.org/abs/" in ident.lower():
            raw_id = raw_id or ident
        elif ident.lower().startswith("doi:"):
            doi = doi or ident[4:].strip()
        elif not ident.lower().startswith(("http://", "https://")):
            journal_ref = journal_ref or ident
    arxiv_id, id_version = _identify(raw_id, header)
    abstract = comments = None
    for desc in _texts(md, f"{_DC}description"):
        if desc.startswith("Comment:"):
            comments = comments or desc[len("Comment:") :]
        else:
            abstract = abstract or desc
    dates = [d for d in (_day(t) for t in _texts(md, f"{_DC}date")) if d]
    return _paper(
        arxiv_id,
        title=_text(md, f"{_DC}title"),
        abstract=abstract,
        comments=comments,
        authors=[_surname_last(unwrap(c)) for c in _texts(md, f"{_DC}creator")],
        categories=[],  # only subject names ("Computer Science - Information Theory"), no codes
        version=id_version or 1,
        submitted=dates[0] if dates else None,
        updated=dates[-1] if dates else None,
        journal_ref=journal_ref,
        doi=doi,
    )


def _paper(
    arxiv_id: str,
    *,
    title: str | None,
    abstract: str | None,
    comments: str | None,
    journal_ref: str | None,
    doi: str | None,
    **fields: Any,
) -> Paper:
    """Clean the text fields every format shares (a title is required) and build the Paper."""
    clean_title = unwrap(title)
    if not clean_title:
        raise _BadRecord(f"{arxiv_id}: missing title")
    clean_abstract = unwrap(abstract, paragraphs=True)
    clean_comments = unwrap(comments) or None
    return Paper(
        arxiv_id=arxiv_id,
        title=clean_title,
        abstract=clean_abstract,
        comments=clean_comments,
        journal_ref=unwrap(journal_ref) or None,
        doi=unwrap(doi) or None,
        code_urls=find_code_urls(clean_abstract, clean_comments),
        source=SOURCE,
        **fields,
    )


# -- small helpers -------------------------------------------------------------------------------


def _identify(raw: str | None, header: ET.Element | None) -> tuple[str, int | None]:
    """The record's arXiv id from its metadata, else from the OAI header identifier."""
    text = (raw or "").strip() or (_header_id(header) if header is not None else None)
    if not text:
        raise _BadRecord("missing arXiv id")
    try:
        return parse_arxiv_id(text)
    except InvalidIdError:
        raise _BadRecord(f"invalid arXiv id {text!r}") from None


def _header_id(header: ET.Element) -> str | None:
    ident = (_text(header, f"{_OAI}identifier") or "").strip()
    return ident.removeprefix(_HEADER_ID_PREFIX) or None


def _with_id(header: ET.Element | None, reason: str) -> str:
    ident = _header_id(header) if header is not None else None
    return f"{ident}: {reason}" if ident else reason


def _text(el: ET.Element, path: str) -> str | None:
    found = el.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _texts(el: ET.Element, path: str) -> list[str]:
    return [t.text.strip() for t in el.findall(path) if t.text and t.text.strip()]


def _categories(text: str | None) -> list[str]:
    seen: list[str] = []
    for c in (text or "").split():  # arXiv lists the primary category first
        if c not in seen:
            seen.append(c)
    return seen


def _surname_last(name: str) -> str:
    """Dublin Core writes "Keyname, Forenames[, Suffix]"; papertide shows "Forenames Keyname"."""
    parts = [p.strip() for p in name.split(",")]
    if len(parts) < 2 or not parts[1]:
        return name
    return " ".join([parts[1], parts[0], *parts[2:]])


def _rfc2822_to_iso(text: str | None) -> str | None:
    """'Tue, 3 Apr 2007 22:04:11 GMT' -> '2007-04-03T22:04:11Z'."""
    if not text:
        return None
    try:
        dt = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_day(timestamp: str | None) -> date | None:
    return _day(timestamp[:10]) if timestamp else None


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _int_attr(el: ET.Element, name: str) -> int | None:
    value = el.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
