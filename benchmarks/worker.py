"""One measurement per process (so each has its own peak RSS and a cold start); prints one JSON line.

Called by benchmarks/run.py, e.g. `python benchmarks/worker.py ingest --db X --parallel 1 FILE...`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

SYNTHETIC_PREFIX = "9999."  # ids of the synthetic copies added by the incremental benchmark
SYNTHETIC_SOURCE = "bench-synthetic"


def _rss() -> dict[str, float]:
    """This process's peak RSS (VmHWM), and ru_maxrss of its finished children (the ingest parser
    process; on Linux that figure is at least this process's RSS when the child was started)."""
    with open("/proc/self/status") as f:
        hwm = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")) / 1024
    return {
        "rss_self_mb": hwm,
        "rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def ingest(args) -> dict:
    from papertide.sources.ingest import ingest_files
    from papertide.store import SqliteStore

    parallel = {"1": True, "0": False, "auto": None}[args.parallel]
    store = SqliteStore(args.db)
    t0 = time.perf_counter()
    rep = ingest_files(store, [Path(f) for f in args.files], parallel=parallel)
    dt = time.perf_counter() - t0
    store.close()
    return {
        "seconds": dt, "read": rep.read, "inserted": rep.inserted, "updated": rep.updated,
        "unchanged": rep.unchanged, "errors": len(rep.errors), "first_errors": [str(e) for e in rep.errors[:5]],
        "papers_per_s": rep.read / dt, **_rss(),
    }


def parse(args) -> dict:
    """Baseline: papertide's parser alone (gunzip + JSON + Paper), no store."""
    from papertide.models import Paper
    from papertide.sources.bulk import read_jsonl

    t0 = time.perf_counter()
    n = 0
    for f in args.files:
        n += sum(1 for x in read_jsonl(Path(f)) if isinstance(x, Paper))
    dt = time.perf_counter() - t0
    return {"seconds": dt, "read": n, "papers_per_s": n / dt, **_rss()}


def jsonload(args) -> dict:
    """Baseline: gunzip + json.loads of every line, nothing else (the floor of any Python importer)."""
    t0 = time.perf_counter()
    n = 0
    for f in args.files:
        with gzip.open(f, "rb") as fh:
            for line in fh:
                if line.strip():
                    json.loads(line)
                    n += 1
    dt = time.perf_counter() - t0
    return {"seconds": dt, "read": n, "papers_per_s": n / dt, **_rss()}


def lexical_rebuild(args) -> dict:
    """Build the lexical index of every paper of a store from scratch, into an empty folder."""
    from papertide.index.build import update_lexical
    from papertide.index.lexical import LexicalIndex
    from papertide.store import SqliteStore

    store = SqliteStore(args.db)
    out = Path(args.out)
    t0 = time.perf_counter()
    lex = LexicalIndex(out / "lexical")
    n = update_lexical(store, lex, out)
    dt = time.perf_counter() - t0
    res = {"seconds": dt, "docs": n, "num_docs": len(lex), "docs_per_s": n / dt, **_rss()}
    store.close()
    return res


def dense_rebuild(args) -> dict:
    """Build the dense cache of every stored embedding from scratch, into an empty folder."""
    from papertide.index.dense import DenseIndex, DocFilter
    from papertide.store import SqliteStore

    store = SqliteStore(args.db)
    t0 = time.perf_counter()
    dense = DenseIndex(Path(args.out) / "dense", args.dim, args.model)
    n = dense.refresh(store)
    t1 = time.perf_counter()
    filters = DocFilter()
    filters.refresh(store)
    t2 = time.perf_counter()
    t3 = time.perf_counter()
    reloaded = DenseIndex(Path(args.out) / "dense", args.dim, args.model)  # what a search process pays
    t4 = time.perf_counter()
    store.close()
    return {
        "seconds": t1 - t0, "rows": n, "filters_seconds": t2 - t1, "load_seconds": t4 - t3,
        "loaded_rows": len(reloaded), **_rss(),
    }


def incremental(args) -> dict:
    """Add N synthetic copies of real papers to an indexed store and time `update_index` (what `papertide
    index` runs) on top of it. The copies keep their text; ids are 9999.NNNNN, source bench-synthetic."""
    from papertide.config import Settings
    from papertide.index.build import update_index
    from papertide.index.embedder import Embedder
    from papertide.store import SqliteStore

    home = Path(args.home)
    settings = Settings(home=home)
    store = SqliteStore(home / "papertide.db")
    n_before = store.count_papers()
    t0 = time.perf_counter()
    embedder = Embedder(precision=settings.embed_precision, batch_size=settings.embed_batch_size)
    embedder.encode(["warm up"])
    t_load = time.perf_counter() - t0

    ids = [m.doc_id for batch in store.iter_doc_meta(0) for m in batch]
    rng = random.Random(args.seed)
    sample = sorted(rng.sample(ids, args.n))
    papers = store.get_papers(sample)
    synthetic = [
        replace(papers[d], arxiv_id=f"{SYNTHETIC_PREFIX}{i:05d}", source=SYNTHETIC_SOURCE, versions=[])
        for i, d in enumerate(sample)
    ]
    t0 = time.perf_counter()
    up = store.upsert_papers(synthetic)
    t_upsert = time.perf_counter() - t0

    marks: dict[str, list[float]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        marks.setdefault(stage, []).append(time.perf_counter())

    t0 = time.perf_counter()
    indexes, rep = update_index(store, settings.index_dir, embedder, progress)
    t_update = time.perf_counter() - t0
    stages = {s: {"first": v[0] - t0, "last": v[-1] - t0} for s, v in marks.items()}
    n_after = store.count_papers()
    res = {
        "added": args.n, "inserted": up.inserted, "papers_before": n_before, "papers_after": n_after,
        "model_load_seconds": t_load, "upsert_seconds": t_upsert, "update_index_seconds": t_update,
        "stages": stages, "embedded": rep.embedded, "lexical_updated": rep.lexical, "dense_rows": rep.dense_rows,
        "dense_count": len(indexes.dense), "lexical_count": len(indexes.lexical),
        "missing_after": store.count_missing_embeddings(embedder.model_id), **_rss(),
    }
    store.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--db", required=True)
    p.add_argument("--parallel", choices=["0", "1", "auto"], default="auto")
    p.add_argument("files", nargs="+")
    for name in ("parse", "jsonload"):
        sub.add_parser(name).add_argument("files", nargs="+")
    p = sub.add_parser("lexical-rebuild")
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("dense-rebuild")
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--dim", type=int, required=True)
    p = sub.add_parser("incremental")
    p.add_argument("--home", required=True)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    fn = {"ingest": ingest, "parse": parse, "jsonload": jsonload, "lexical-rebuild": lexical_rebuild,
          "dense-rebuild": dense_rebuild, "incremental": incremental}[args.cmd]
    print(json.dumps(fn(args)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
