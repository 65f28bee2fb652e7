"""Read a dataset in BEIR's folder layout (corpus, queries, qrels per split) into BEIR's in-memory shapes.

Layout (beir-cellar/beir, ``GenericDataLoader``)::

    <dir>/corpus.jsonl[.gz]     {"_id", "title", "text", ...} one document a line
    <dir>/queries.jsonl[.gz]    {"_id", "text", ...} one query a line
    <dir>/qrels/<split>.tsv     header "query-id<TAB>corpus-id<TAB>score", then one judgment a line

A wrong layout or a malformed line raises :class:`DatasetError`, whose message names the file, the line
and what is wrong, so a command line can print it as is.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from papertide.eval.metrics import Qrels

QRELS_HEADER = ("query-id", "corpus-id", "score")
_HEADER_TEXT = "\t".join(QRELS_HEADER)

__all__ = ["QRELS_HEADER", "BeirDataset", "DatasetError", "iter_jsonl", "load_beir"]


class DatasetError(Exception):
    """A benchmark dataset on disk is missing a file or holds a malformed line.

    ``str(error)`` reads ``<path>:<line>: <reason>`` (or ``<path>: <reason>``), like a compiler message.
    """

    def __init__(self, path: Path, reason: str, line: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class BeirDataset:
    """One split of a BEIR-layout dataset: the whole corpus, and the queries judged in that split."""

    corpus: dict[str, dict[str, str]]  # doc id -> {"title": ..., "text": ...}; title may be ""
    queries: dict[str, str]  # query id -> query text; only queries with qrels in this split
    qrels: Qrels  # query id -> doc id -> grade, as in qrels/<split>.tsv


def _find(directory: Path, name: str) -> Path:
    """``directory/name``, else ``directory/name.gz``; plain text wins when both exist."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(directory, f"missing {name} (or {name}.gz): not a BEIR-layout dataset folder")


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, line) for every line; unreadable bytes become a DatasetError."""
    lineno = 0
    try:
        with _open_text(path) as handle:
            for lineno, line in enumerate(handle, start=1):
                yield lineno, line
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        # Decoding and decompression read ahead in blocks, so the failing line is only known roughly.
        raise DatasetError(path, f"cannot be read after line {lineno}: {exc}") from exc


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) for every non-blank line of a JSON-lines file, gzip'd or not."""
    for lineno, line in _iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(path, f"not valid JSON ({exc.msg} at column {exc.colno})", lineno) from None
        if not isinstance(record, dict):
            raise DatasetError(path, f"expected a JSON object, got {type(record).__name__}", lineno)
        yield lineno, record


def _record_id(record: dict[str, Any], path: Path, lineno: int) -> str:
    value = record.get("_id")
    # Ids are compared with the qrels' TSV columns, which are text; some dumps write numeric ids as numbers.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise DatasetError(path, f'missing or empty "_id" (got {value!r})', lineno)
    return value


def _text_field(record: dict[str, Any], key: str, path: Path, lineno: int, *, required: bool) -> str:
    if key not in record and required:
        raise DatasetError(path, f'missing "{key}"', lineno)
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DatasetError(path, f'"{key}" must be a string, got {type(value).__name__}', lineno)
    return value


def _read_corpus(path: Path) -> dict[str, dict[str, str]]:
    corpus: dict[str, dict[str, str]] = {}
    for lineno, record in iter_jsonl(path):
        doc_id = _record_id(record, path, lineno)
        if doc_id in corpus:
            raise DatasetError(path, f"duplicate document _id {doc_id!r}", lineno)
        corpus[doc_id] = {
            "title": _text_field(record, "title", path, lineno, required=False),
            "text": _text_field(record, "text", path, lineno, required=True),
        }
    return corpus


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for lineno, record in iter_jsonl(path):
        query_id = _record_id(record, path, lineno)
        if query_id in queries:
            raise DatasetError(path, f"duplicate query _id {query_id!r}", lineno)
        queries[query_id] = _text_field(record, "text", path, lineno, required=True)
    return queries


def _read_qrels(path: Path) -> tuple[Qrels, dict[str, int]]:
    """The judgments, and for each query the line of its first judgment (for error messages)."""
    qrels: Qrels = {}
    first_line: dict[str, int] = {}
    saw_header = False
    for lineno, raw in _iter_lines(path):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        if not saw_header:
            if tuple(fields) != QRELS_HEADER:
                raise DatasetError(path, f"expected the header {_HEADER_TEXT!r}, got {line!r}", lineno)
            saw_header = True
            continue
        if len(fields) != 3:
            reason = f"expected 3 tab-separated fields (query-id, corpus-id, score), got {len(fields)}"
            raise DatasetError(path, reason, lineno)
        query_id, doc_id, grade_text = fields
        if not query_id or not doc_id:
            raise DatasetError(path, "empty query-id or corpus-id", lineno)
        try:
            grade = int(grade_text)
        except ValueError:
            raise DatasetError(path, f"score {grade_text!r} is not an integer", lineno) from None
        judged = qrels.setdefault(query_id, {})
        if doc_id in judged:
            raise DatasetError(path, f"duplicate judgment for query {query_id!r}, doc {doc_id!r}", lineno)
        judged[doc_id] = grade
        first_line.setdefault(query_id, lineno)
    if not saw_header:
        raise DatasetError(path, f"empty file: expected the header {_HEADER_TEXT!r}")
    return qrels, first_line


def load_beir(dir: Path, split: str = "train") -> BeirDataset:
    """Load ``split`` of the BEIR-layout dataset in ``dir`` (e.g. ../shared/data/scifact).

    Keeps every corpus document but only the queries judged in ``qrels/<split>.tsv``. Judgments of
    documents absent from the corpus are kept, as BEIR keeps them (no run can retrieve them, so they cap
    the metric below 1); a judged query absent from the queries file is an error, since it cannot be run.
    Raises :class:`DatasetError` naming the file (and line) when the layout or a line is wrong.
    """
    root = Path(dir)
    if not root.is_dir():
        raise DatasetError(root, "not a directory")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        hint = f"available splits: {', '.join(available)}" if available else "no qrels/*.tsv at all"
        raise DatasetError(qrels_path, f"missing qrels for split {split!r} ({hint})")
    corpus_path, queries_path = _find(root, "corpus.jsonl"), _find(root, "queries.jsonl")

    qrels, first_line = _read_qrels(qrels_path)
    all_queries = _read_queries(queries_path)
    unknown = [qid for qid in qrels if qid not in all_queries]
    if unknown:
        raise DatasetError(
            qrels_path,
            f"query-id {unknown[0]!r} is not in {queries_path.name} ({len(unknown)} judged queries missing)",
            first_line[unknown[0]],
        )
    corpus = _read_corpus(corpus_path)
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels)
