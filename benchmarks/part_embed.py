"""Part 2, embed: benchmarks/bench_embed.py's `run(n, repeats)` (its own engineer's benchmark), in this run.

Plain sentence-transformers with its fp32 defaults against papertide's Embedder on the same texts, runs
alternating: texts/s of both, their ratio, and the per-vector cosine between the two.
"""

from __future__ import annotations

from common import console

TARGET_SPEEDUP = 2.0
TARGET_COSINE = 0.999


def run(quick: bool) -> dict:
    import bench_embed

    n, repeats = (128, 1) if quick else (500, 3)  # 500 texts x 3 each: ~10 min on 2 busy cores
    res = bench_embed.run(n, repeats, log=lambda m: console.print(f"  [dim]{m}[/]"))
    console.print(bench_embed.table(res))
    q = res.get("query_latency_ms")
    if q:
        console.print(f"  encode_query on {q['n']} paper titles: median {q['median']:.1f} ms, p90 {q['p90']:.1f} ms")
    c = res["cosine"]
    res["targets_checked"] = [
        {"part": "embed", "what": f"Embedder vs sentence-transformers fp32, texts/s ratio ({res['n']:,} texts)",
         "target": f">= {TARGET_SPEEDUP:.0f}x", "value": f"{res['speedup']:.2f}x", "met": res["speedup"] >= TARGET_SPEEDUP},
        {"part": "embed", "what": "per-vector cosine to the fp32 reference, min",
         "target": f">= {TARGET_COSINE}", "value": f"{c['min']:.5f} (p1 {c['p1']:.5f}, mean {c['mean']:.6f})",
         "met": c["min"] >= TARGET_COSINE},
    ]
    return res
