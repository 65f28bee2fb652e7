"""HNSW (usearch) vs exact dense search on real vectors: build time, recall, query latency; exact search at 2.7M.

    .venv/bin/python benchmarks/bench_ann.py [--n N] [--queries 200] [--synthetic-rows 1000000] [--sweep]

Vectors: the largest dense cache under benchmarks/work/**/index/dense/ (the 74,728-paper index that
benchmarks/run.py builds) or the one given with `--cache`, read only; if there is none with at least 2,000
rows, the 2,000 papers of ../shared/data/arxiv-cs/sample-2k.jsonl embedded with the product's Embedder.
`--n` keeps the first N rows.

Queries, two sets of `--queries` each: (a) held-out paper vectors (removed from the indexed rows), perturbed
with Gaussian noise (cosine ~0.98 to the original) and renormalised; (b) short real query strings (the first
2-5 words of sample titles) through `Embedder.encode_query`, skipped with `--no-text`.

Reported: HNSW build time (the product's settings, via `DenseIndex.refresh` with ann_threshold=0, so it
includes saving the graph) and the open time of the saved file (memory-mapped); recall@10 and recall@100 of
`DenseIndex.search` (graph candidates rescored in float32) against exact search, and of the raw graph at
several ef; the same for a float32 graph (and M=32, and twice the ef_add, with `--sweep`); p50/p95
latency of exact vs HNSW, unfiltered and with random masks (20%: over-fetch path; 2%: exact over the
allowed rows), interleaved query by query after a warm-up. Then exact search on a SYNTHETIC matrix of
`--synthetic-rows` perturbed copies of the real vectors, timed and projected linearly to arXiv's 2.7M rows
(`--synthetic-rows 0` skips).

Prints rich tables; writes everything to benchmarks/results/ann-latest.json. The machine is shared and
noisy: latencies are medians over interleaved queries, with the load average recorded. Exact search is
numpy's BLAS, multi-threaded by default: on a loaded 2-core box its threads' wake-ups add ~5-10 ms to a
small product (and spill onto the next variant); `OPENBLAS_NUM_THREADS=1` shows the single-threaded figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work"
RESULTS = ROOT / "benchmarks" / "results"
SAMPLE = ROOT.parent / "shared" / "data" / "arxiv-cs" / "sample-2k.jsonl"
ARXIV_ROWS = 2_700_000
MIN_CACHE_ROWS = 2_000
SEED = 20260701
NOISE = 0.01  # per-dimension sigma of the query perturbation: |noise| ~ 0.2, cosine to the paper ~0.98
SYNTH_NOISE = 0.05  # per-dimension sigma making the synthetic rows distinct from their real originals
WARMUP = 20

try:
    import papertide  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))

from rich.console import Console
from rich.table import Table

from papertide.index import ann
from papertide.index import dense as dense_mod
from papertide.index.dense import DenseIndex

console = Console(width=None if sys.stdout.isatty() else 150)


class ArrayStore:
    """Just enough of the Store protocol for `DenseIndex.refresh`: embeddings from arrays, one seq."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray):
        self.ids, self.vectors = ids, vectors

    def iter_embeddings(
        self, model: str, since_seq: int, batch: int = 100_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if since_seq >= 1:
            return
        for s in range(0, len(self.ids), batch):
            ids = self.ids[s : s + batch]
            yield ids, np.ones(len(ids), dtype=np.int64), self.vectors[s : s + batch]


# -- data -------------------------------------------------------------------------------------------
def find_cache(where: Path | None = None) -> tuple[Path, dict] | None:
    best = None
    for meta_f in [where / "meta.json"] if where else WORK.glob("**/index/dense/meta.json"):
        try:
            meta = json.loads(meta_f.read_text())
        except (OSError, ValueError):
            continue
        if best is None or meta.get("count", 0) > best[1].get("count", 0):
            best = (meta_f.parent, meta)
    return best if best and best[1].get("count", 0) >= MIN_CACHE_ROWS else None


def load_vectors(n: int | None, cache: Path | None = None) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(ids, vectors, model id, where from)."""
    found = find_cache(cache)
    if found is not None:
        path, meta = found
        count, dim = int(meta["count"]), int(meta["dim"])
        count = min(count, n) if n else count
        ids = np.fromfile(path / "ids.i64", dtype="<i8", count=count)
        vecs = np.fromfile(path / "vectors.f32", dtype="<f4", count=count * dim).reshape(count, dim)
        return ids, vecs, meta["model"], f"dense cache {path} ({meta['count']:,} rows)"
    from papertide.index.embedder import Embedder
    from papertide.models import Paper
    from papertide.sources.bulk import read_jsonl
    from papertide.store.base import embed_text

    papers = [p for p in read_jsonl(SAMPLE) if isinstance(p, Paper)][: n or None]
    emb = Embedder()
    console.print(f"[dim]no dense cache of >= {MIN_CACHE_ROWS:,} rows in {WORK}: embedding {len(papers):,} papers[/]")
    vecs = emb.encode([embed_text(p.title, p.abstract) for p in papers]).astype(np.float32)
    return np.arange(1, len(papers) + 1, dtype=np.int64), vecs, emb.model_id, f"{SAMPLE.name}, embedded now"


def perturbed(rng: np.random.Generator, v: np.ndarray, sigma: float) -> np.ndarray:
    out = v + rng.standard_normal(v.shape, dtype=np.float32) * np.float32(sigma)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def text_queries(count: int) -> np.ndarray | None:
    from papertide.index.embedder import Embedder
    from papertide.models import Paper
    from papertide.sources.bulk import read_jsonl

    rng = np.random.default_rng(SEED)
    titles = [p.title for p in read_jsonl(SAMPLE) if isinstance(p, Paper)]
    picked = rng.choice(len(titles), size=min(count, len(titles)), replace=False)
    texts = [" ".join(titles[i].replace(":", " ").split()[: int(rng.integers(2, 6))]) for i in picked]
    emb = Embedder()
    return np.stack([emb.encode_query(t) for t in texts]).astype(np.float32)


# -- measurements -----------------------------------------------------------------------------------
def pct(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=float)
    return {"n": len(a), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95))}


def exact_top(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray | None = None):
    s = vectors @ q
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
        k = min(k, int(allowed.sum()))
    return ids[np.argpartition(-s, k - 1)[:k]]


def recall(got: list[int] | np.ndarray, truth: np.ndarray) -> float:
    return len(set(np.asarray(got).tolist()) & set(truth.tolist())) / len(truth)


def interleaved(variants: dict[str, Callable[[np.ndarray], object]], queries: np.ndarray) -> dict[str, dict]:
    """Latency of each variant over the same queries, run query by query in rotating order."""
    names = list(variants)
    for q in queries[:WARMUP]:
        for name in names:
            variants[name](q)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, q in enumerate(queries):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0 = time.perf_counter()
            variants[name](q)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: pct(t) for name, t in times.items()}


def graph_recall(graph: ann.HnswIndex, base: np.ndarray, ids: np.ndarray, qsets: dict, efs: list[int]) -> dict:
    """Recall@10 of the raw graph (count=10, no rescoring) at several ef."""
    out = {}
    for ef in efs:
        graph.index.expansion_search = ef
        for qname, (qs, truth10, _) in qsets.items():
            r = [recall(ids[graph.search(q, 10)], t) for q, t in zip(qs, truth10, strict=True)]
            out[f"{qname} ef={ef}"] = float(np.mean(r))
    graph.index.expansion_search = ann.EXPANSION_SEARCH
    return out


def bench_real(ids, vecs, model, n_queries: int, text: bool, sweep: bool) -> dict:
    rng = np.random.default_rng(SEED)
    held = rng.choice(len(ids), size=n_queries, replace=False)
    keep = np.ones(len(ids), dtype=bool)
    keep[held] = False
    base_ids, base = ids[keep], np.ascontiguousarray(vecs[keep])
    qsets_raw = {"held-out vectors": perturbed(rng, vecs[held], NOISE)}
    if text:
        tq = text_queries(n_queries)
        if tq is not None:
            qsets_raw["short text queries"] = tq
    qsets = {
        name: (qs, [exact_top(base, base_ids, q, 10) for q in qs], [exact_top(base, base_ids, q, 100) for q in qs])
        for name, qs in qsets_raw.items()
    }
    store = ArrayStore(base_ids, base)
    out: dict = {"rows": len(base_ids), "queries": {k: len(v[0]) for k, v in qsets.items()}}

    exact = DenseIndex(None, base.shape[1], model, ann_threshold=2**62)
    exact.refresh(store)
    with tempfile.TemporaryDirectory(prefix="bench-ann-") as tmp:
        dense = DenseIndex(Path(tmp) / "dense", base.shape[1], model, ann_threshold=0)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        dense.refresh(store)  # writes the cache, builds the graph and saves it
        out["build_s"] = time.perf_counter() - t0
        out["graph_bytes"] = (Path(tmp) / "dense" / ann.FILE).stat().st_size
        t0 = time.perf_counter()
        reopened = DenseIndex(Path(tmp) / "dense", base.shape[1], model, ann_threshold=0)
        t1 = time.perf_counter()
        reopened.refresh(store)
        out["open_s"] = {"dense cache": t1 - t0, "graph (mmap)": time.perf_counter() - t1}
        assert reopened.ann is not None and reopened.ann.view
        del reopened

        # recall of the product path (the graph's best candidates rescored in float32)
        rec: dict[str, float] = {}
        for qname, (qs, t10, t100) in qsets.items():
            for k, truth in ((10, t10), (100, t100)):
                got = [[d for d, _ in dense.search(q, k)] for q in qs]
                rec[f"{qname} @{k}"] = float(np.mean([recall(g, t) for g, t in zip(got, truth, strict=True)]))
        out["recall_product"] = rec
        efs = [128, 256, 512, 1024, 2048]
        graph = dense.ann
        assert graph is not None
        configs = {f"{ann.DTYPE} M={ann.CONNECTIVITY}": graph_recall(graph, base_ids, base_ids, qsets, efs)}
        builds = {f"{ann.DTYPE} M={ann.CONNECTIVITY}": out["build_s"]}
        # the alternatives, built the same way (same insert threads) but not saved
        alts = [("f32", ann.CONNECTIVITY, ann.EXPANSION_ADD)]
        if sweep:
            alts += [("f16", 32, ann.EXPANSION_ADD), ("f16", ann.CONNECTIVITY, 2 * ann.EXPANSION_ADD)]
        from usearch.index import Index

        for dtype, m, ef_add in alts:
            idx = Index(ndim=base.shape[1], metric="ip", dtype=dtype, connectivity=m, expansion_add=ef_add)
            t0 = time.perf_counter()
            idx.add(np.arange(len(base), dtype=np.uint64), base, threads=ann.ADD_THREADS)
            name = f"{dtype} M={m}" + ("" if ef_add == ann.EXPANSION_ADD else f" ef_add={ef_add}")
            builds[name] = time.perf_counter() - t0
            alt = ann.HnswIndex(idx, ann.AnnState(model, base.shape[1], len(base), 1, ""))
            alt.index.expansion_add = ef_add
            configs[name] = graph_recall(alt, base_ids, base_ids, qsets, efs)
            del alt, idx
        out["recall_graph"] = configs
        out["build_s_by_config"] = builds

        # latency, interleaved: exact vs HNSW, unfiltered and filtered
        lat_q = qsets_raw["held-out vectors"]
        m20 = rng.random(len(base)) < 0.20
        m02 = rng.random(len(base)) < 0.02
        variants = {
            "exact k=10": lambda q: exact.search(q, 10),
            "hnsw k=10": lambda q: dense.search(q, 10),
            "exact k=100": lambda q: exact.search(q, 100),
            "hnsw k=100": lambda q: dense.search(q, 100),
            "exact k=100 mask 20%": lambda q: exact.search(q, 100, m20),
            "hnsw k=100 mask 20%": lambda q: dense.search(q, 100, m20),
            "exact k=100 mask 2%": lambda q: exact.search(q, 100, m02),
            "hnsw k=100 mask 2%": lambda q: dense.search(q, 100, m02),
        }
        out["latency_ms"] = interleaved(variants, lat_q)
        out["filtered_recall@100"] = {
            name: float(np.mean([
                recall([d for d, _ in dense.search(q, 100, m)], exact_top(base, base_ids, q, 100, m)) for q in lat_q
            ]))
            for name, m in (("mask 20%", m20), ("mask 2%", m02))
        }
        out["load_avg"] = [load0, os.getloadavg()[0]]
    return out


def bench_synthetic(vecs: np.ndarray, rows: int, n_queries: int) -> dict:
    """Exact search on `rows` SYNTHETIC rows (perturbed copies of the real vectors), projected to 2.7M."""
    rng = np.random.default_rng(SEED + 1)
    big = np.empty((rows, vecs.shape[1]), dtype=np.float32)
    for s in range(0, rows, 100_000):
        e = min(rows, s + 100_000)
        big[s:e] = perturbed(rng, vecs[rng.integers(0, len(vecs), e - s)], SYNTH_NOISE)
    ids = np.arange(1, rows + 1, dtype=np.int64)
    dense = DenseIndex(None, vecs.shape[1], "synthetic", ann_threshold=2**62)
    dense.refresh(ArrayStore(ids, big))
    del big
    qs = perturbed(rng, vecs[rng.integers(0, len(vecs), n_queries)], NOISE)
    m05 = rng.random(rows) < 0.05
    m02 = rng.random(rows) < 0.02
    rows05, rows02 = np.flatnonzero(m05), np.flatnonzero(m02)
    lat = interleaved(
        {
            "exact k=100": lambda q: dense.search(q, 100),
            "exact k=100 mask 5% (full scan)": lambda q: dense.search(q, 100, m05),
            "exact over allowed rows 5%": lambda q: dense._top_of_rows(rows05, q, 100),
            "exact over allowed rows 2%": lambda q: dense._top_of_rows(rows02, q, 100),
        },
        qs,
    )
    scale = ARXIV_ROWS / rows
    return {
        "rows": rows,
        "synthetic": True,
        "latency_ms": lat,
        "projected_2.7M_ms": {k: {"p50": v["p50"] * scale, "p95": v["p95"] * scale} for k, v in lat.items()},
        "load_avg": os.getloadavg()[0],
    }


# -- report -----------------------------------------------------------------------------------------
def report(res: dict) -> None:
    r = res["real"]
    load = f"{r['load_avg'][0]:.1f}-{r['load_avg'][1]:.1f}"
    console.print(
        f"[bold]HNSW vs exact[/] on {r['rows']:,} real vectors ({res['source']}); "
        f"queries: {r['queries']}; load avg {load} on {os.cpu_count()} cores"
    )
    t = Table(title=f"build ({ann.ADD_THREADS} insert thread(s))")
    for c in ("config", "build s", "note"):
        t.add_column(c)
    for name, s in r["build_s_by_config"].items():
        product = name == f"{ann.DTYPE} M={ann.CONNECTIVITY}"
        note = "product: DenseIndex.refresh, incl. saving" if product else "usearch add only"
        t.add_row(name, f"{s:.2f}", note)
    mapped = f"memory-mapped; {r['graph_bytes'] / 1e6:.0f} MB on disk"
    t.add_row("open saved graph", f"{r['open_s']['graph (mmap)']:.3f}", mapped)
    console.print(t)
    t = Table(title=f"recall vs exact: DenseIndex.search (ef={ann.EXPANSION_SEARCH}, 2k candidates rescored in f32)")
    t.add_column("queries")
    t.add_column("recall")
    for k, v in r["recall_product"].items():
        t.add_row(k, f"{v:.4f}")
    for k, v in r["filtered_recall@100"].items():
        t.add_row(f"held-out vectors @100, {k}", f"{v:.4f}")
    console.print(t)
    t = Table(title="recall@10 of the raw graph (count=10, no rescoring)")
    cols = list(next(iter(r["recall_graph"].values())))
    t.add_column("config")
    for c in cols:
        t.add_column(c.replace("held-out vectors", "held-out").replace("short text queries", "text"))
    for name, row in r["recall_graph"].items():
        t.add_row(name, *(f"{row[c]:.3f}" for c in cols))
    console.print(t)
    t = Table(title=f"query latency, ms (DenseIndex.search, {r['rows']:,} rows; interleaved)")
    for c in ("variant", "p50", "p95"):
        t.add_column(c)
    for k, v in r["latency_ms"].items():
        t.add_row(k, f"{v['p50']:.2f}", f"{v['p95']:.2f}")
    console.print(t)
    if res.get("synthetic"):
        s = res["synthetic"]
        t = Table(title=f"SYNTHETIC: exact search on {s['rows']:,} perturbed copies of the real vectors, ms")
        for c in ("variant", "p50", "p95", "projected p50 @2.7M", "projected p95 @2.7M"):
            t.add_column(c)
        for k, v in s["latency_ms"].items():
            p = s["projected_2.7M_ms"][k]
            t.add_row(k, f"{v['p50']:.1f}", f"{v['p95']:.1f}", f"{p['p50']:.0f}", f"{p['p95']:.0f}")
        console.print(t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=None, help="use the first N rows (default: all)")
    ap.add_argument("--cache", type=Path, default=None, help="a dense cache folder (default: the largest in work/)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--synthetic-rows", type=int, default=1_000_000, help="0 skips the synthetic exact run")
    ap.add_argument("--sweep", action="store_true", help="also build M=32 and ef_add x2")
    ap.add_argument("--no-text", action="store_true", help="skip the text queries (no model load)")
    ap.add_argument("--json", type=Path, default=RESULTS / "ann-latest.json")
    a = ap.parse_args()
    ids, vecs, model, source = load_vectors(a.n, a.cache)
    res: dict = {
        "source": source,
        "settings": {
            "dtype": ann.DTYPE, "M": ann.CONNECTIVITY, "ef_add": ann.EXPANSION_ADD,
            "ef_search": ann.EXPANSION_SEARCH, "add_threads": ann.ADD_THREADS, "rescored": dense_mod.RESCORED,
            "overfetch": dense_mod.OVERFETCH, "graph_to_exact_cost": dense_mod.GRAPH_TO_EXACT_COST,
        },
        "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        },
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    import usearch

    res["machine"]["usearch"] = usearch.__version__
    res["real"] = bench_real(ids, vecs, model, a.queries, not a.no_text, a.sweep)
    if a.synthetic_rows:
        res["synthetic"] = bench_synthetic(vecs, a.synthetic_rows, min(a.queries, 100))
    report(res)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(res, indent=1))
    console.print(f"[dim]wrote {a.json}[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
