"""The one owner of persistence. `open_store(url)` picks the backend from the database URL."""

from __future__ import annotations

import os

from papertide.store.base import Store, StoreError, UpsertResult
from papertide.store.sqlite import SqliteStore

__all__ = ["Store", "StoreError", "SqliteStore", "UpsertResult", "open_store"]


def open_store(url: str) -> SqliteStore:
    """Open the store named by a URL: `sqlite:///path/to/db` (or a plain path)."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url[len("sqlite:///") :] or ":memory:")
    if url.startswith(("postgresql://", "postgres://")):
        raise StoreError("the PostgreSQL backend is not part of this version yet; use a sqlite:/// URL")
    if "://" in url:
        raise StoreError(f"unsupported database URL {url!r}; expected sqlite:///path")
    return SqliteStore(os.path.expanduser(url))
