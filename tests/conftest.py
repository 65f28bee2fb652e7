"""Shared fixtures: the real embedding model and a small real index, built once per test session."""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "src" / "papertide" / "data" / "sample-arxiv-cs-2k.jsonl.gz"
N_INDEXED = 300  # papers of the bundled sample in the session index: small enough to embed in seconds


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL (with pgvector) for the session, started and stopped here (tests/pgutil.py)."""
    from pgutil import PgServer

    server = PgServer()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server):
    """A fresh, migrated PostgreSQL database for one test."""
    return pg_server.new_database()


@pytest.fixture(scope="session")
def embedder():
    from papertide.index.embedder import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def sample_papers():
    from papertide.models import Paper
    from papertide.sources.bulk import read_jsonl

    return [p for p in read_jsonl(SAMPLE) if isinstance(p, Paper)]


@pytest.fixture(scope="session")
def indexed(tmp_path_factory, embedder, sample_papers):
    """A store + indexes over the first N_INDEXED sample papers, with the real model."""
    from papertide.index.build import update_index
    from papertide.store import SqliteStore

    root = tmp_path_factory.mktemp("indexed")
    store = SqliteStore(root / "papertide.db")
    store.upsert_papers(sample_papers[:N_INDEXED])
    indexes, _ = update_index(store, root / "index", embedder)
    yield store, indexes, root
    store.close()


@pytest.fixture(scope="session")
def pg_indexed(pg_server, embedder, sample_papers):
    """`indexed` on PostgreSQL: the same papers in a PostgresStore, searched inside the database."""
    from papertide.index.build import update_index
    from papertide.store.postgres import PostgresStore

    store = PostgresStore(pg_server.new_database("indexed"))
    store.upsert_papers(sample_papers[:N_INDEXED])
    indexes, _ = update_index(store, None, embedder)
    yield store, indexes, None
    store.close()


HF_PAGES = sorted((pathlib.Path(__file__).parent / "fixtures" / "recorded").glob("hf_daily_papers_*.json"))


@pytest.fixture(scope="session")
def site_template(tmp_path_factory, embedder, sample_papers):
    """A site home (database + index) over N_INDEXED sample papers plus the recorded HF daily pages."""
    from papertide.index.build import update_index
    from papertide.rank.foryou import TERMS_DIR, ensure_term_space
    from papertide.sources.hf import parse_daily_papers
    from papertide.store import SqliteStore

    root = tmp_path_factory.mktemp("site-template")
    store = SqliteStore(root / "papertide.db")
    store.upsert_papers(sample_papers[:N_INDEXED])
    for page in HF_PAGES:
        store.upsert_papers(parse_daily_papers(page.read_bytes(), str(page)).papers)
    update_index(store, root / "index", embedder)
    ensure_term_space(store, root / "index" / TERMS_DIR)  # as `papertide index` does
    store.close()
    return root


@pytest.fixture
def site(tmp_path, site_template, embedder):
    """Services of a fresh copy of the template site: each test may vote, sign up, hide... freely."""
    import shutil

    from papertide.config import Settings
    from papertide.web.services import build_services

    home = tmp_path / "home"
    shutil.copytree(site_template, home)
    settings = Settings(home=home, secret_key="test-secret-key", base_url="http://testserver",
                        smtp_host="127.0.0.1", smtp_port=1)
    services = build_services(settings, embedder=embedder)
    yield services
    services.close()


@pytest.fixture
def client(site):
    """An HTTP client of the site (FastAPI TestClient: the real app, in process)."""
    from fastapi.testclient import TestClient

    from papertide.web import create_app

    with TestClient(create_app(services=site), base_url="http://testserver") as c:
        yield c
