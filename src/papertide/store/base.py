"""The store interface: everything papertide persists goes through a `Store`.

SQLite implements it today (`store.sqlite`); PostgreSQL will implement the same protocol. SQL dialect
details stay inside each backend; callers see typed data only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Protocol, Self

import numpy as np

from papertide.models import Paper


class StoreError(Exception):
    """A store could not be opened or used (bad URL, newer schema, ...)."""


@dataclass(slots=True)
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: UpsertResult) -> Self:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


@dataclass(slots=True)
class DocMeta:
    """What an index needs to filter one paper: its row id, day, categories and code flag."""

    doc_id: int
    seq: int
    day: str | None  # ISO date the paper was listed (or submitted when the listing day is unknown)
    categories: list[str]
    has_code: bool


@dataclass(slots=True)
class TextRow:
    """A paper's text to embed, with the hash the embedding will be stored under."""

    doc_id: int
    text_hash: str
    title: str
    abstract: str


@dataclass(slots=True)
class StoreStats:
    papers: int
    with_code: int
    embedded: int
    first_day: str | None
    last_day: str | None
    by_category: list[tuple[str, int]]
    by_source: list[tuple[str, int]]
    schema_version: int
    size_bytes: int


class Store(Protocol):
    """Persistence for papers, embeddings and small durable state (checkpoints, index watermarks)."""

    # papers
    def upsert_papers(self, papers: Sequence[Paper]) -> UpsertResult: ...
    def get_paper(self, arxiv_id: str) -> Paper | None: ...
    def get_papers(self, doc_ids: Sequence[int]) -> dict[int, Paper]: ...
    def doc_ids_for(self, arxiv_ids: Sequence[str]) -> dict[str, int]: ...
    def count_papers(self) -> int: ...
    def max_seq(self) -> int: ...
    def iter_changed(self, since_seq: int, batch: int = 5000) -> Iterator[list[tuple[DocMeta, Paper]]]: ...
    def iter_doc_meta(self, since_seq: int, batch: int = 20000) -> Iterator[list[DocMeta]]: ...
    def stats(self) -> StoreStats: ...
    # embeddings
    def count_missing_embeddings(self, model: str) -> int: ...
    def missing_embeddings(self, model: str, limit: int) -> list[TextRow]: ...
    def put_embeddings(self, model: str, rows: Sequence[TextRow], vectors: np.ndarray) -> None: ...
    def iter_embeddings(
        self, model: str, since_seq: int, batch: int = 20000
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]: ...
    # small durable state
    def get_state(self, key: str) -> str | None: ...
    def set_state(self, key: str, value: str | None) -> None: ...
    def close(self) -> None: ...


def content_hash(p: Paper) -> str:
    """Hash of everything an upsert would write, so re-ingesting an identical record is a no-op.

    Stored hashes depend on the exact payload (each field's str(), "None" when missing, joined by
    unit separators): changing it makes the next re-ingest rewrite every paper. One f-string, because
    bulk ingest hashes every record.
    """
    us = "\x1f"
    versions = ";".join([f"{v.version},{v.created},{v.size}" for v in p.versions]) if p.versions else ""
    authors = "\x1e".join(p.authors)
    payload = (
        f"{p.version}{us}{p.title}{us}{p.abstract}{us}{authors}{us}{' '.join(p.categories)}{us}{p.submitted}{us}"
        f"{p.updated}{us}{p.listed}{us}{p.comments}{us}{p.journal_ref}{us}{p.doi}{us}{' '.join(p.code_urls)}{us}"
        f"{p.submitter}{us}{p.license}{us}{versions}"
    )
    return blake2b(payload.encode(), digest_size=10).hexdigest()


def text_hash(title: str, abstract: str) -> str:
    return blake2b(f"{title}\x00{abstract}".encode(), digest_size=10).hexdigest()


def embed_text(title: str, abstract: str) -> str:
    """The text a paper is embedded as (SPECTER-style title + abstract)."""
    return f"{title}. {abstract}" if abstract else title


def chunked(items: Iterable, size: int) -> Iterator[list]:
    buf: list = []
    for it in items:
        buf.append(it)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf
