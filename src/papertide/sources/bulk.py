"""Bulk arXiv metadata files: the Kaggle/arXiv OAI snapshot (JSON lines) and papertide's reshaped set.

Both are JSON lines, plain or gzip'd, read as a stream so that the 2.7M-record snapshot imports in
bounded memory. `parse_record` is pure; `read_lines` only handles files and line numbers.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from papertide.models import (
    InvalidIdError,
    Paper,
    RecordError,
    Version,
    find_code_urls,
    parse_arxiv_id,
    unwrap,
)

_ARCHIVES = frozenset(
    "cs math physics stat eess econ q-bio q-fin nlin cond-mat astro-ph hep-ph hep-th hep-ex hep-lat gr-qc "
    "quant-ph math-ph nucl-th nucl-ex acc-phys adap-org alg-geom ao-sci atom-ph bayes-an chao-dyn chem-ph "
    "cmp-lg comp-gas dg-ga funct-an mtrl-th patt-sol plasm-ph q-alg solv-int supr-con".split()
)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


class BadRecord(ValueError):
    """A record that cannot become a paper; the message says why."""


def open_text(path: Path) -> io.TextIOBase:
    """Open a plain or gzip'd text file (decided by its magic bytes, not its name)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="strict")
    return open(path, encoding="utf-8", errors="strict")


def read_jsonl(path: Path, source: str | None = None) -> Iterator[Paper | RecordError]:
    """Papers from a JSON-lines file; each bad line becomes a RecordError("file:line", reason)."""
    name = path.name
    for x in read_lines(path):
        yield x if isinstance(x, RecordError) else parse_line(name, x[0], x[1], source)


def read_lines(path: Path) -> Iterator[tuple[int, str] | RecordError]:
    """(line number, text) of each non-blank line of a JSON-lines file, plain or gzip'd, one item per
    record that `read_jsonl` yields: a line that is not UTF-8, or the unreadable rest of a file, is a
    RecordError. Split from the parsing so that a bulk import can parse batches in several processes.
    """
    name = path.name
    with open(path, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
        lineno = 0
        while True:
            lineno += 1
            try:
                raw = f.readline()
            except (EOFError, OSError, gzip.BadGzipFile) as e:
                yield RecordError(f"{name}:{lineno}", f"unreadable ({type(e).__name__}: {e}); rest of file skipped")
                return
            if not raw:
                return
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield RecordError(f"{name}:{lineno}", f"not UTF-8 ({e.reason} at byte {e.start})")
                continue
            if not line.strip():
                continue
            yield lineno, line


def parse_line(name: str, lineno: int, line: str, source: str | None = None) -> Paper | RecordError:
    """One line of `read_lines` as a Paper, or a RecordError("name:lineno", reason)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        return RecordError(f"{name}:{lineno}", f"invalid JSON ({e.msg} at column {e.colno})")
    try:
        return parse_record(obj, source)
    except BadRecord as e:
        return RecordError(f"{name}:{lineno}", str(e))


def parse_record(obj: object, source: str | None = None) -> Paper:
    """One record of either bulk format as a Paper. Raises BadRecord with a reason."""
    if not isinstance(obj, dict):
        raise BadRecord(f"expected a JSON object, got {type(obj).__name__}")
    raw_id = obj.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise BadRecord("missing 'id'")
    try:
        arxiv_id, id_version = parse_arxiv_id(raw_id)
    except InvalidIdError as e:
        raise BadRecord(str(e)) from None
    title = unwrap(_str(obj, "title"))
    if not title:
        raise BadRecord(f"{arxiv_id}: missing 'title'")
    abstract = unwrap(_str(obj, "abstract"), paragraphs=True)
    comments = unwrap(_str(obj, "comments")) or None
    categories = [c for c in (_str(obj, "categories") or "").split() if c.split(".")[0] in _ARCHIVES]
    if "versions" in obj:  # the full snapshot
        return _snapshot(obj, arxiv_id, title, abstract, comments, categories, source or "arxiv-snapshot")
    # papertide's reshaped set: update_date is the day the paper was first listed
    listed = _day(obj.get("update_date"), "update_date", arxiv_id)
    v = id_version or 1
    return Paper(
        arxiv_id=arxiv_id, title=title, abstract=abstract, authors=_split_authors(_str(obj, "authors")),
        categories=categories, version=v, listed=listed, comments=comments,
        journal_ref=unwrap(_str(obj, "journal-ref")) or None, doi=_str(obj, "doi") or None,
        code_urls=find_code_urls(abstract, comments), source=source or "arxiv-cs",
        versions=[Version(v)] if id_version else [],
    )


def _snapshot(obj: dict, arxiv_id: str, title: str, abstract: str, comments: str | None,
              categories: list[str], source: str) -> Paper:
    versions = []
    raw_versions = obj.get("versions") or []
    if not isinstance(raw_versions, list):
        raise BadRecord(f"{arxiv_id}: 'versions' is not a list")
    for i, v in enumerate(raw_versions, 1):
        if not isinstance(v, dict):
            raise BadRecord(f"{arxiv_id}: version {i} is not an object")
        label = str(v.get("version") or f"v{i}")
        try:
            num = int(label.lstrip("v"))
        except ValueError:
            raise BadRecord(f"{arxiv_id}: bad version label {label!r}") from None
        versions.append(Version(num, _rfc2822(v.get("created")), v.get("size")))
    versions.sort(key=lambda v: v.version)
    authors = _parsed_authors(obj.get("authors_parsed")) or _split_authors(_str(obj, "authors"))
    return Paper(
        arxiv_id=arxiv_id, title=title, abstract=abstract, authors=authors, categories=categories,
        version=versions[-1].version if versions else 1,
        submitted=_iso_day(versions[0].created) if versions else None,
        updated=_iso_day(versions[-1].created) if versions else None,
        comments=comments, journal_ref=unwrap(_str(obj, "journal-ref")) or None,
        doi=(_str(obj, "doi") or "").strip() or None, submitter=_str(obj, "submitter") or None,
        license=_str(obj, "license") or None, code_urls=find_code_urls(abstract, comments),
        source=source, versions=versions,
    )


def _str(obj: dict, key: str) -> str | None:
    v = obj.get(key)
    if v is None or isinstance(v, str):
        return v
    raise BadRecord(f"{obj.get('id')}: field {key!r} should be a string, got {type(v).__name__}")


def _split_authors(s: str | None) -> list[str]:
    if not s:
        return []
    s = unwrap(s)
    parts = [a.strip() for a in s.replace(" and ", ", ").split(",")]
    return [a for a in parts if a]


def _parsed_authors(parsed: object) -> list[str]:
    if not isinstance(parsed, list):
        return []
    out = []
    for a in parsed:
        if isinstance(a, list) and a:
            last, first, suffix = (list(a) + ["", ""])[:3]
            out.append(" ".join(x.strip() for x in (first, last, suffix) if x and x.strip()))
    return out


def _rfc2822(s: object) -> str | None:
    """'Mon, 2 Apr 2007 19:18:42 GMT' -> '2007-04-02T19:18:42Z' (fast path; arXiv always uses GMT)."""
    if not isinstance(s, str):
        return None
    try:
        _, d, mon, y, t, _tz = s.split()
        return f"{int(y):04d}-{_MONTHS[mon]:02d}-{int(d):02d}T{t}Z"
    except (ValueError, KeyError):
        return None


def _iso_day(ts: str | None) -> date | None:
    return date.fromisoformat(ts[:10]) if ts else None


def _day(v: object, key: str, arxiv_id: str) -> date | None:
    if v is None or v == "":
        return None
    try:
        return date.fromisoformat(str(v)[:10])
    except ValueError:
        raise BadRecord(f"{arxiv_id}: bad date in {key!r}: {v!r}") from None
