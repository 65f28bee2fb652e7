"""`papertide serve` and `papertide user create`: the site's commands, run for real."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from papertide.cli import app
from papertide.store import SqliteStore
from papertide.web.security import verify_password

runner = CliRunner()
CLI = str(Path(sys.executable).parent / "papertide")


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERTIDE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_user_create_then_promote_to_admin(home, monkeypatch):
    monkeypatch.setenv("PAPERTIDE_NEW_PASSWORD", "correct horse battery")
    r = runner.invoke(app, ["user", "create", "Ada@Example.org", "--name", "Ada"])
    assert r.exit_code == 0, r.output
    store = SqliteStore(home / "papertide.db")
    user = store.get_user_by_email("ada@example.org")
    assert user is not None and user.name == "Ada" and not user.is_admin
    assert verify_password(user.password_hash, "correct horse battery")
    store.close()

    r = runner.invoke(app, ["user", "create", "ada@example.org", "--admin"])
    assert r.exit_code == 0 and "now an administrator" in r.output
    store = SqliteStore(home / "papertide.db")
    assert store.get_user_by_email("ada@example.org").is_admin
    store.close()


def test_user_create_refuses_a_short_password_and_a_duplicate(home):
    r = subprocess.run(check=False, args=[CLI, "user", "create", "bob@example.org"], env={**os.environ, "PAPERTIDE_HOME": str(home),
                       "PAPERTIDE_NEW_PASSWORD": "short"}, capture_output=True, text=True)
    assert r.returncode == 2
    assert "at least 10 characters" in r.stderr and "Traceback" not in r.stderr
    env = {**os.environ, "PAPERTIDE_HOME": str(home), "PAPERTIDE_NEW_PASSWORD": "long enough password"}
    assert subprocess.run(check=False, args=[CLI, "user", "create", "bob@example.org"], env=env).returncode == 0
    r = subprocess.run(check=False, args=[CLI, "user", "create", "bob@example.org"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "already exists" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_on_a_real_socket(tmp_path, site_template):
    """The real command: uvicorn on a loopback port over an indexed home; the feed and a search answer."""
    home = tmp_path / "home"
    shutil.copytree(site_template, home)
    port = _free_port()
    env = {**os.environ, "PAPERTIDE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([CLI, "serve", "--port", str(port), "--log-level", "warning"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.time() < deadline, "serve did not start"
                time.sleep(0.3)
        assert r.status_code == 200 and "papertide" in r.text
        r = httpx.get(f"http://127.0.0.1:{port}/search", params={"q": "neural network"}, timeout=30)
        assert r.status_code == 200 and 'class="card"' in r.text
        assert (home / "secret_key").exists()  # made on first start, not in the repo
    finally:
        proc.terminate()
        proc.wait(30)


def test_serve_refuses_a_broken_database_in_one_line(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "papertide.db").write_text("this is not a database")
    r = subprocess.run(check=False, args=[CLI, "serve", "--port", str(_free_port())], env={**os.environ, "PAPERTIDE_HOME": str(home)},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "cannot open database" in r.stderr and "Traceback" not in r.stderr


def test_a_running_site_picks_up_newly_indexed_papers(site, sample_papers, embedder):
    """`papertide ingest` + `papertide index` while the site runs: the refresh swaps in the new indexes."""
    from papertide.index.build import update_index

    new = sample_papers[1500]
    assert site.store.doc_ids_for([new.arxiv_id]) == {}
    assert site.refresh_indexes() is False  # nothing changed yet
    site.store.upsert_papers([new])
    update_index(site.store, site.settings.index_dir, embedder)  # what the index job does, in its own objects
    assert site.refresh_indexes() is True
    doc = site.store.doc_ids_for([new.arxiv_id])[new.arxiv_id]
    hits = site.engine.rank(new.title, 5)
    assert hits[0].doc_id == doc
    assert site.engine.indexes.dense.vector_of(doc) is not None
