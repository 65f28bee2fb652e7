"""Shared fixtures: the real embedding model and a small real index, built once per test session."""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "src" / "papertide" / "data" / "sample-arxiv-cs-2k.jsonl.gz"
N_INDEXED = 300  # papers of the bundled sample in the session index: small enough to embed in seconds


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
