"""BibTeX export of papers: one @misc entry per paper, in the form arXiv itself suggests (eprint fields)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from papertide.models import Paper

_SPECIAL = str.maketrans({"&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_"})


def cite_key(p: Paper) -> str:
    """surnameYEARfirstword, ASCII only: e.g. vaswani2017attention."""
    first = p.authors[0] if p.authors else "anon"
    surname = first.replace(",", " ").split()[-1] if "," not in first else first.split(",")[0]
    year = _year(p) or ""
    word = next((w for w in re.findall(r"[A-Za-z]+", p.title) if len(w) > 3), "paper")
    return _ascii(f"{surname}{year}{word}").lower()


def to_bibtex(p: Paper, key: str | None = None) -> str:
    fields = [
        ("title", "{" + _value(p.title) + "}"),
        ("author", " and ".join(_value(a) for a in p.authors) or "Anonymous"),
        ("year", str(_year(p) or "")),
        ("eprint", p.arxiv_id),
        ("archivePrefix", "arXiv"),
        ("primaryClass", p.primary_category or ""),
        ("doi", p.doi or ""),
        ("journal", _value(p.journal_ref) if p.journal_ref else ""),
        ("url", p.abs_url),
    ]
    body = ",\n".join(f"  {name} = {{{val}}}" for name, val in fields if val)
    return f"@misc{{{key or cite_key(p)},\n{body}\n}}\n"


def collection_bibtex(papers: Iterable[Paper]) -> str:
    """Entries for many papers, with keys made unique (a, b, c suffixes) where they clash."""
    seen: dict[str, int] = {}
    out = []
    for p in papers:
        key = cite_key(p)
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(to_bibtex(p, key + (chr(ord("a") + n - 1) if n else "")))
    return "\n".join(out)


def _year(p: Paper) -> int | None:
    d = p.submitted or p.listed or p.updated
    return d.year if d else None


def _value(text: str) -> str:
    # LaTeX in titles stays LaTeX; only characters that break BibTeX outside math are escaped.
    parts = re.split(r"(\$[^$]*\$)", " ".join(text.split()))
    return "".join(part if i % 2 else part.translate(_SPECIAL) for i, part in enumerate(parts))


def _ascii(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode())
