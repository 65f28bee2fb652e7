"""Plain typed data shared by every stage: papers, versions, search hits. No I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

# arXiv identifiers: new style 2503.11792 (4+4 or 4+5 digits), old style hep-th/9901001 or math.CO/0601001.
_NEW_ID = re.compile(r"^(\d{4}\.\d{4,5})(?:v(\d+))?$")
_OLD_ID = re.compile(r"^([a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v(\d+))?$")
_ID_IN_TEXT = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html)/|arxiv:\s*|^)\s*"
    r"(\d{4}\.\d{4,5}(?:v\d+)?|[a-z\-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)",
    re.IGNORECASE,
)
# Code links: GitHub/GitLab/Bitbucket/Hugging Face repositories and "project page" style URLs.
_URL = re.compile(r"https?://[^\s<>\"'{}\\]+", re.IGNORECASE)
_CODE_HOSTS = ("github.com/", "github.io", "gitlab.com/", "bitbucket.org/", "huggingface.co/", "codeberg.org/")
_PROJECT_HINT = re.compile(r"\b(project|codes?|available|(?:home|web)?page|website|demos?|repo(?:sitory)?)\b", re.IGNORECASE)
# arXiv wraps lines at ~80 columns; a blank line (or an indented line) marks a real paragraph break.
_NOT_SIMPLE = ("  ", "\n\n", " \n", "\n ", "\t", "\r")  # anything else unwraps by replacing "\n"
_PARA_BREAK = re.compile(r"\n\s*\n|\n(?=\s{2,}\S)")


class InvalidIdError(ValueError):
    """Raised when a string is not an arXiv identifier."""


def parse_arxiv_id(text: str) -> tuple[str, int | None]:
    """Split an arXiv id or URL into (canonical id without version, version or None).

    >>> parse_arxiv_id("https://arxiv.org/abs/2503.11792v2")
    ('2503.11792', 2)
    """
    s = (text or "").strip()
    for rx in (_NEW_ID, _OLD_ID):
        m = rx.match(s)
        if m:
            return m.group(1), int(m.group(2)) if m.group(2) else None
    m = _ID_IN_TEXT.search(s)
    if m:
        for rx in (_NEW_ID, _OLD_ID):
            mm = rx.match(m.group(1))
            if mm:
                return mm.group(1), int(mm.group(2)) if mm.group(2) else None
    raise InvalidIdError(f"not an arXiv identifier: {text!r}")


def unwrap(text: str | None, paragraphs: bool = False) -> str:
    """Remove arXiv's hard line breaks and surrounding space, keeping the LaTeX as it is.

    With `paragraphs`, paragraph breaks survive as a blank line: arXiv marks them with a blank line
    or, in abstracts, with a line that starts indented. Titles wrap with indented lines too, so
    titles, names and comments are unwrapped without it.
    """
    if not text:
        return ""
    text = text.strip()
    flat = text.replace("\n", " ")
    # The common case (single line breaks, single spaces): the replace is all. Every pattern of
    # _NOT_SIMPLE but tabs and CRs shows up as a double space after it: three scans instead of six.
    if "  " not in flat and "\t" not in flat and "\r" not in flat:
        return flat
    if not paragraphs:
        return " ".join(text.split())
    parts = _PARA_BREAK.split(text)
    return "\n\n".join(" ".join(p.split()) for p in parts if p.strip())


def find_code_urls(*texts: str | None) -> list[str]:
    """Code and project URLs mentioned in an abstract or comments, in order, deduplicated."""
    found: list[str] = []
    for text in texts:
        if not text or "http" not in text:
            continue
        flat = " ".join(text.split())
        for m in _URL.finditer(flat):
            url = m.group(0).rstrip(".,;:)]}")
            low = url.lower()
            is_code = any(h in low for h in _CODE_HOSTS)
            if not is_code:
                # Other URLs count when the sentence around them speaks of code or a project page.
                window = flat[max(0, m.start() - 60) : m.start()]
                is_code = bool(_PROJECT_HINT.search(window)) and "arxiv.org" not in low and "doi.org" not in low
            if is_code and url not in found:
                found.append(url)
    return found


@dataclass(slots=True)
class Version:
    version: int
    created: str | None = None  # ISO 8601 timestamp (UTC) when known
    size: str | None = None


@dataclass(slots=True)
class Paper:
    """One arXiv paper, as every source produces it and the store keeps it."""

    arxiv_id: str  # canonical, without version
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # primary first
    version: int = 1
    submitted: date | None = None  # v1 submission date
    updated: date | None = None  # latest version date
    listed: date | None = None  # first listing/announcement date
    comments: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    code_urls: list[str] = field(default_factory=list)
    source: str = "unknown"  # e.g. "arxiv-snapshot", "arxiv-oai", "hf-daily"
    versions: list[Version] = field(default_factory=list)
    submitter: str | None = None
    license: str | None = None
    # Community signals imported with the record (HF upvotes etc.). Local votes live in the store.
    hf_upvotes: int | None = None
    featured_on: date | None = None  # day the paper was featured (HF daily papers)

    @property
    def primary_category(self) -> str | None:
        return self.categories[0] if self.categories else None

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.arxiv_id}"

    @property
    def has_code(self) -> bool:
        return bool(self.code_urls)


@dataclass(slots=True, frozen=True)
class SearchFilters:
    date_from: date | None = None  # on listed date, inclusive
    date_to: date | None = None
    categories: tuple[str, ...] = ()  # any of
    has_code: bool | None = None

    def is_empty(self) -> bool:
        return self.date_from is None and self.date_to is None and not self.categories and self.has_code is None


@dataclass(slots=True)
class SearchHit:
    arxiv_id: str
    score: float
    lexical_rank: int | None = None
    dense_rank: int | None = None
    doc_id: int = 0  # the store's row id
    paper: Paper | None = None


@dataclass(slots=True)
class IngestReport:
    """What an import did: counts and every rejected record with its location and reason."""

    source: str
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RecordError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(slots=True, frozen=True)
class RecordError:
    location: str  # "file.jsonl:123" or "https://...?page=3 record 4"
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"
