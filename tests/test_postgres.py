"""What only PostgreSQL promises: writers in several processes converge, migrate-db copies an instance
verified and resumably, and `serve --workers N` shares one database. Real server (tests/pgutil.py), real
processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from test_store import ALL, copy
from webutil import free_port

from papertide.store import SqliteStore, open_store

CLI = str(Path(sys.executable).with_name("papertide"))

_INGEST = """
import random, sys
sys.path.insert(0, {tests!r})
from test_store import ALL, copy
from papertide.store import open_store
seed, url = int(sys.argv[1]), sys.argv[2]
papers = [copy(p) for p in ALL]
random.Random(seed).shuffle(papers)
store = open_store(url)
for i in range(0, len(papers), 7):  # small overlapping batches: many chances to collide
    store.upsert_papers(papers[i:i + 7])
store.close()
"""


def test_concurrent_ingest_from_several_processes_converges(pg_url, tmp_path):
    script = tmp_path / "ingest.py"
    script.write_text(_INGEST.format(tests=str(Path(__file__).parent)))
    procs = [subprocess.Popen([sys.executable, str(script), str(seed), pg_url], stderr=subprocess.PIPE, text=True)
             for seed in range(4)]
    for p in procs:
        _, errs = p.communicate(timeout=120)
        assert p.returncode == 0, errs
    store = open_store(pg_url)
    try:
        assert store.count_papers() == len({p.arxiv_id for p in ALL}) == 80
        # Same content as one writer alone would leave, versions included; and a re-ingest changes nothing.
        for p in ALL:
            assert store.get_paper(p.arxiv_id) == p
        res = store.upsert_papers([copy(p) for p in ALL])
        assert (res.inserted, res.updated, res.unchanged) == (0, 0, 80)
        dup = store.execute("SELECT paper_id, source, count(*) FROM paper_sources GROUP BY 1, 2 HAVING count(*) > 1")
        assert dup == []
    finally:
        store.close()


def test_two_digest_runs_at_once_on_postgres_send_each_exactly_once(pg_url, tmp_path, sample_papers):
    from digestutil import DAY, SmtpServer, add_subscribers, env_for, settings_for

    store = open_store(pg_url)
    store.upsert_papers(sample_papers[:300])
    due = add_subscribers(store, 30)
    store.close()
    with SmtpServer() as smtp:
        s = settings_for(tmp_path / "home", smtp.port, digest_rate=40)  # slow enough for the runs to overlap
        env = {**env_for(s), "PAPERTIDE_DATABASE_URL": pg_url}
        runs = [subprocess.Popen([CLI, "digest", "send", "--frequency", "daily", "--date", DAY], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [r.communicate(timeout=120) for r in runs]
        assert {r.returncode for r in runs} <= {0, 3}, outs
        got = smtp.box.per_address()
    assert {a: got.get(a) for a in due} == {a: 1 for a in due}, got
    assert set(got) == set(due)


def test_claims_skip_rows_another_transaction_holds(pg_url):
    """SELECT ... FOR UPDATE SKIP LOCKED: a claim never waits on, nor takes, a row locked elsewhere."""
    import psycopg
    from digestutil import add_subscribers

    from papertide.store.digest import Edition

    store = open_store(pg_url)
    add_subscribers(store, 4)
    ed = store.ensure_edition("daily", date(2026, 1, 5))
    assert store.plan_deliveries(ed) == 4
    first = min(r[0] for r in store.execute("SELECT subscriber_id FROM digest_deliveries"))
    with psycopg.connect(pg_url) as other:  # another worker, mid-transaction on the first row
        other.execute("SELECT 1 FROM digest_deliveries WHERE subscriber_id = %s FOR UPDATE", (first,))
        t0 = time.monotonic()
        claims = store.claim_deliveries(Edition(ed.id, "daily", ed.day), "run-a", 10, 60, time.time())
        assert time.monotonic() - t0 < 2
        assert sorted(c.subscriber.id for c in claims) == sorted(
            r[0] for r in store.execute("SELECT subscriber_id FROM digest_deliveries WHERE subscriber_id != %s",
                                        (first,)))
    # Released: the next run gets the remaining row, and nobody gets a row twice.
    again = store.claim_deliveries(Edition(ed.id, "daily", ed.day), "run-b", 10, 60, time.time())
    assert [c.subscriber.id for c in again] == [first]
    store.close()


# -- migrate-db ----------------------------------------------------------------------------------------------


def _source(path: Path) -> SqliteStore:
    """A SQLite instance with something in every table: papers, embeddings, accounts, votes, a digest."""
    from digestutil import add_subscribers

    s = SqliteStore(path)
    s.upsert_papers([copy(p) for p in ALL])
    rows = s.missing_embeddings("minilm", 1000)
    s.put_embeddings("minilm", rows, np.random.default_rng(1).standard_normal((len(rows), 384)).astype(np.float32))
    ids = list(s.doc_ids_for([p.arxiv_id for p in ALL]).values())
    u = s.create_user("a@example.org", "A", "hash")
    s.toggle_vote(u.id, ids[0])
    s.set_saved(s.default_collection(u.id).id, ids[1], True)
    s.submit_paper(u.id, ids[2], date(2026, 1, 5))
    s.hit_rate_limit("ip:1", 5, 60)
    s.set_state("oai:cs:resume", "x|1")
    add_subscribers(s, 3)
    ed = s.ensure_edition("daily", date(2026, 1, 5))
    s.plan_deliveries(ed)
    return s


def _migrate(src: Path, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "migrate-db", "--from", f"sqlite:///{src}", "--to", url], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)


def test_migrate_db_copies_every_table_verified(tmp_path, pg_url):
    src = tmp_path / "papertide.db"
    s = _source(src)
    before = {aid: s.get_paper(aid) for aid in (p.arxiv_id for p in ALL)}
    s.close()
    r = _migrate(src, pg_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all verified" in r.stdout and "differs" not in r.stdout
    assert _migrate(src, pg_url).returncode == 0  # a re-run finds everything done and verifies again
    pg = open_store(pg_url)
    try:
        assert {aid: pg.get_paper(aid) for aid in before} == before
        assert pg.count_missing_embeddings("minilm") == 0
        assert pg.get_user_by_email("a@example.org").name == "A"
        assert pg.get_state("oai:cs:resume") == "x|1"
        # New rows after the copy get fresh ids and seqs (identity and change sequences moved past the copy).
        assert pg.create_user("b@example.org", "B", "h").id > pg.get_user_by_email("a@example.org").id
        seq = pg.max_seq()
        pg.upsert_papers([copy(ALL[0], arxiv_id="2601.99999")])
        assert pg.max_seq() > seq
    finally:
        pg.close()
    r = _migrate(src, pg_url)  # the target has moved on since: the check says so
    assert r.returncode == 2 and "differs" in r.stdout


def test_migrate_db_resumes_after_being_killed(tmp_path, pg_url, monkeypatch):
    from papertide.store import migrate as mig
    from papertide.store.postgres import PostgresStore

    src = tmp_path / "papertide.db"
    _source(src).close()
    monkeypatch.setattr(mig, "BATCH", 10)

    def die(table, done, total):
        if table == "embeddings" and done >= 30:
            raise KeyboardInterrupt

    target = PostgresStore(pg_url)
    with pytest.raises(KeyboardInterrupt):
        mig.migrate(str(src), target, die)
    assert target.count_papers() == 80
    assert target.execute("SELECT count(*) FROM embeddings")[0][0] == 30
    copied: list[tuple[str, int]] = []
    rep = mig.migrate(str(src), target, lambda t, d, n: copied.append((t, d)))
    assert rep.ok, rep.checks
    assert rep.copied["papers"] == 0 and rep.copied["embeddings"] == 50  # only what was missing
    assert target.execute("SELECT count(*) FROM embeddings")[0][0] == 80
    target.close()


def test_migrate_db_refuses_bad_urls(tmp_path):
    r = subprocess.run([CLI, "migrate-db", "--from", "postgresql://x/y", "--to", "postgresql://x/z"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and "--from expects a sqlite:/// URL" in r.stderr


# -- serve --workers -------------------------------------------------------------------------------------------


def test_serve_with_two_workers_on_postgres(tmp_path, pg_indexed):
    store, _, _ = pg_indexed
    url = store.url
    port = free_port()
    env = {**os.environ, "PAPERTIDE_HOME": str(tmp_path / "home"), "PAPERTIDE_DATABASE_URL": url,
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([CLI, "serve", "--port", str(port), "--workers", "2", "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 180
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/search", params={"q": "neural network"}, timeout=30)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "serve did not start"
            time.sleep(0.5)
        assert 'class="card"' in r.text
        assert len(psutil.Process(proc.pid).children(recursive=True)) >= 2  # the worker processes

        def get(i: int) -> int:
            q = ["graph neural networks", "video generation", "reinforcement learning", "language models"][i % 4]
            return httpx.get(f"http://127.0.0.1:{port}/search", params={"q": q}, timeout=60).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(get, range(24))) == {200}
        # Both workers hold their own connection to the one database.
        pids = store.execute(
            "SELECT count(DISTINCT pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid != pg_backend_pid()"
        )[0][0]
        assert pids >= 2
    finally:
        proc.terminate()
        proc.wait(30)
