"""The one owner of persistence. `open_store(url)` picks the backend from the database URL."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from papertide.store.base import Store, StoreError, UpsertResult
from papertide.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from papertide.store.postgres import PostgresStore

__all__ = ["SqliteStore", "Store", "StoreError", "UpsertResult", "open_store"]


def open_store(url: str) -> SqliteStore | PostgresStore:
    """Open the store named by a URL: `sqlite:///path/to/db` (or a plain path), or `postgresql://...`."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url[len("sqlite:///") :] or ":memory:")
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from papertide.store.postgres import PostgresStore
        except ImportError as e:
            raise StoreError(
                f"a postgresql:// database needs the PostgreSQL driver: pip install 'papertide[postgres]' ({e})"
            ) from e
        return PostgresStore(url)
    if "://" in url:
        raise StoreError(f"unsupported database URL {url!r}; expected sqlite:///path or postgresql://...")
    return SqliteStore(os.path.expanduser(url))
