"""Reading a researcher's library from outside: BibTeX (and Zotero's .bib), RIS, or a list of arXiv ids/URLs.

Pure parsing: text in, `Reference`s out (what identifies each paper: arXiv id, DOI, title). Matching the
references to stored papers is `match_references`, over lookups the caller passes in (the store's).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from papertide.models import InvalidIdError, parse_arxiv_id
from papertide.rank.similar import normalise_title

__all__ = [
    "ImportReport",
    "Reference",
    "clean_latex",
    "match_references",
    "parse_bibtex",
    "parse_id_list",
    "parse_references",
    "parse_ris",
]

# arXiv's own DOIs (since 2022): 10.48550/arXiv.<id>
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)
_DOI_IN_TEXT = re.compile(r"\b(10\.\d{4,9}/\S+[^\s.,;])", re.IGNORECASE)
_ACCENT = re.compile(r"\\[`'^\"~=.]|\\[uvHcdbtk](?=[\s{])")  # accent commands: \"{u}, \'e, \v{c}
_COMMAND = re.compile(r"\\[a-zA-Z]+\*?")  # \textit, \emph ... (their argument stays)
# Fields that may hold an arXiv id, in the order they are trusted.
_ID_FIELDS = ("eprint", "arxivid", "arxiv", "url", "note", "journal", "howpublished", "booktitle", "annote")


@dataclass(frozen=True, slots=True)
class Reference:
    """One entry of an imported library: what it can be matched by, and a label to report it with."""

    label: str
    title: str | None = None
    arxiv_id: str | None = None
    doi: str | None = None


@dataclass(slots=True)
class ImportReport:
    """References found in the store (doc id, and how: "arxiv", "doi" or "title") and those not found."""

    matched: list[tuple[Reference, int, str]] = field(default_factory=list)
    unmatched: list[Reference] = field(default_factory=list)

    @property
    def doc_ids(self) -> list[int]:
        return list(dict.fromkeys(d for _, d, _ in self.matched))


def clean_latex(text: str) -> str:
    """A BibTeX value as plain text: accents, commands, braces and math dollars dropped, spaces joined."""
    t = _ACCENT.sub("", text)
    t = t.replace(r"\&", "&").replace(r"\%", "%").replace(r"\_", "_").replace("~", " ")
    t = _COMMAND.sub("", t)
    t = t.replace("{", "").replace("}", "").replace("$", "")
    return " ".join(t.split())


def arxiv_id_in(text: str | None) -> str | None:
    """The arXiv id in an id, URL, arXiv DOI or free text ("arXiv preprint arXiv:2401.12345"), if any."""
    if not text:
        return None
    text = text.strip()
    m = _ARXIV_DOI.match(text)
    if m:
        text = m.group(1)
    try:
        return parse_arxiv_id(text)[0]
    except InvalidIdError:
        return None


def _doi(text: str | None) -> str | None:
    if not text:
        return None
    t = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", "", text.strip(), flags=re.IGNORECASE)
    m = _DOI_IN_TEXT.search(t)
    return m.group(1).lower() if m else None


def _reference(label: str, title: str | None, id_texts: Iterable[str | None], doi: str | None) -> Reference:
    doi = _doi(doi)
    arxiv = None
    if doi and _ARXIV_DOI.match(doi):
        arxiv, doi = arxiv_id_in(doi), None
    for t in id_texts:
        arxiv = arxiv or arxiv_id_in(t)
    title = clean_latex(title) if title else None
    return Reference(label, title or None, arxiv, doi)


def parse_bibtex(text: str) -> list[Reference]:
    """References of a .bib file (BibTeX or BibLaTeX, as Zotero, Google Scholar or arXiv write them).

    Entries that do not parse are skipped; @string macros and @comment blocks are not references.
    """
    import bibtexparser

    library = bibtexparser.parse_string(text)
    out = []
    for e in library.entries:
        f = {fld.key.lower(): str(fld.value) for fld in e.fields}
        eprint = f.get("eprint")
        # An eprint from another archive (e.g. a PubMed id) is not an arXiv id.
        prefix = (f.get("archiveprefix") or f.get("eprinttype") or "arxiv").lower()
        if prefix != "arxiv":
            eprint = None
        ids = [eprint] + [f.get(k) for k in _ID_FIELDS[1:]]
        out.append(_reference(e.key, f.get("title"), ids, f.get("doi")))
    return out


_RIS_LINE = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")


def parse_ris(text: str) -> list[Reference]:
    """References of a RIS file (Zotero, Mendeley, EndNote exports): TY ... ER records."""
    out: list[Reference] = []
    rec: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = _RIS_LINE.match(line.rstrip())
        if not m:
            continue
        tag, value = m.group(1), (m.group(2) or "").strip()
        if tag == "TY":
            rec = {}
        elif tag == "ER":
            if rec:
                out.append(_ris_reference(rec, len(out) + 1))
            rec = {}
        else:
            rec.setdefault(tag, []).append(value)
    if rec:  # a file cut short of its last ER
        out.append(_ris_reference(rec, len(out) + 1))
    return out


def _ris_reference(rec: dict[str, list[str]], n: int) -> Reference:
    title = next(iter(rec.get("TI", []) + rec.get("T1", [])), None)
    ids = rec.get("UR", []) + rec.get("L1", []) + rec.get("N1", []) + rec.get("M3", []) + rec.get("JO", [])
    ids += rec.get("T2", []) + rec.get("ID", [])
    return _reference(title or f"record {n}", title, ids, next(iter(rec.get("DO", [])), None))


def parse_id_list(text: str) -> list[Reference]:
    """One arXiv id or URL (or DOI) per line, or separated by spaces or commas; other lines are reported."""
    out = []
    for token in re.split(r"[\s,;]+", text):
        token = token.strip()
        if not token:
            continue
        if _doi(token) and not _ARXIV_DOI.match(_doi(token) or ""):
            out.append(Reference(token, doi=_doi(token)))
        else:
            out.append(Reference(token, arxiv_id=arxiv_id_in(token)))
    return out


def parse_references(filename: str, text: str) -> list[Reference]:
    """Parse an uploaded file by its name (.bib / .ris / anything else: a list of ids), or by its content."""
    name = filename.lower()
    looks_bibtex = re.search(r"^\s*@\w+\s*[{(]", text, re.MULTILINE) is not None
    if name.endswith((".bib", ".bibtex", ".biblatex")) or (not name.endswith(".ris") and looks_bibtex):
        return parse_bibtex(text)
    if name.endswith(".ris") or re.search(r"^TY  - ", text, re.MULTILINE):
        return parse_ris(text)
    return parse_id_list(text)


def match_references(
    refs: Sequence[Reference],
    by_arxiv: Callable[[list[str]], dict[str, int]],
    by_doi: Callable[[list[str]], dict[str, int]],
    titles: Callable[[], Iterable[list[tuple[int, str]]]],
) -> ImportReport:
    """Match references to stored papers: by arXiv id first, then DOI, then normalised title.

    `titles` yields batches of (doc id, title) of stored papers; it is read only if some reference is
    left for the title pass.
    """
    report = ImportReport()
    ids = by_arxiv([r.arxiv_id for r in refs if r.arxiv_id])
    dois = by_doi([r.doi for r in refs if r.doi])
    left: list[Reference] = []
    for r in refs:
        if r.arxiv_id and r.arxiv_id in ids:
            report.matched.append((r, ids[r.arxiv_id], "arxiv"))
        elif r.doi and r.doi in dois:
            report.matched.append((r, dois[r.doi], "doi"))
        else:
            left.append(r)
    want = {normalise_title(r.title): r for r in left if r.title and len(normalise_title(r.title)) >= 10}
    found: dict[str, int] = {}
    if want:
        for batch in titles():
            for doc_id, title in batch:
                key = normalise_title(title)
                if key in want:
                    found.setdefault(key, doc_id)
            if len(found) == len(want):
                break
    for r in left:
        key = normalise_title(r.title) if r.title else ""
        if key in found:
            report.matched.append((r, found[key], "title"))
        else:
            report.unmatched.append(r)
    return report
