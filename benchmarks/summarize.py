"""Markdown tables of one or more results files, for the "Latest results" section of benchmarks/README.md.

    .venv/bin/python benchmarks/summarize.py [benchmarks/results/latest.json ...]

When several files are given, each part is taken from the last file that has it (and says which).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PARTS = ("ingest", "embed", "index", "resume", "query", "eval")


def _load(paths: list[Path]) -> tuple[dict, dict]:
    parts: dict[str, dict] = {}
    origin: dict[str, dict] = {}
    for p in paths:
        r = json.loads(p.read_text())
        for part in PARTS:
            if part in r and "error" not in r[part]:
                parts[part] = r[part]
                origin[part] = {"file": p.name, "meta": r["meta"], "load": r.get("load_average", {}).get(part)}
    return parts, origin


def _src(origin: dict, part: str) -> str:
    o = origin[part]
    load = o["load"]
    ld = f"; load average mean {load['mean']:.1f} (max {load['max']:.1f}) on 2 cores" if load else ""
    return f"_{o['meta']['started']}, `{o['meta']['command']}`, git {o['meta']['git']}{ld}_"


def main(argv: list[str]) -> None:
    paths = [Path(a) for a in argv] or [Path(__file__).parent / "results" / "latest.json"]
    parts, origin = _load(paths)
    out: list[str] = []
    w = out.append
    if "ingest" in parts:
        i = parts["ingest"]
        parse = i["baseline"]["parse"]["papers_per_s_median"]
        w(f"### 1. ingest ({i['papers']:,} papers, {i['files']} files, median of {i['repeats']})\n{_src(origin, 'ingest')}\n")
        w("| what | papers/s | vs parse only | runs | peak RSS MB (main / parser) |\n|---|---:|---:|---|---:|")
        for label, s in (("fresh db, parallel=True", i["fresh"]["parallel"]), ("fresh db, parallel=False", i["fresh"]["serial"]),
                         ("re-ingest unchanged, parallel=True", i["reingest"]["parallel"]),
                         ("re-ingest unchanged, parallel=False", i["reingest"]["serial"]),
                         ("baseline: read_jsonl parse only", i["baseline"]["parse"]),
                         ("baseline: gunzip + json.loads", i["baseline"]["jsonload"])):
            runs = " ".join(f"{x:,.0f}" for x in s["papers_per_s_runs"])
            w(f"| {label} | {s['papers_per_s_median']:,.0f} | {s['papers_per_s_median'] / parse:.2f}x | {runs} | "
              f"{s['peak_rss_mb']:.0f} / {s['peak_rss_reader_mb']:.0f} |")
        k = i["kaggle_head"]
        w(f"\nTarget >= 20,000 papers/s: **{i['best_fresh_papers_per_s']:,.0f}** ({'met' if i['target_met'] else 'missed'}). "
          f"Bulk snapshot head: {k['read']} read, {k['inserted']} inserted, {k['errors']} rejected "
          f"({k['with_versions']} with versions, {k['with_doi']} with a DOI).\n")
    if "embed" in parts:
        e = parts["embed"]
        c = e["cosine"]
        w(f"### 2. embed ({e['n']:,} texts, median of {e['repeats']} alternating runs)\n{_src(origin, 'embed')}\n")
        w("| variant | texts/s | runs | ratio | cosine min / p1 / mean |\n|---|---:|---|---:|---|")
        b, m = e["baseline"], e["embedder"]
        w(f"| sentence-transformers fp32 defaults | {b['texts_per_s']:.1f} | {' '.join(f'{x:.1f}' for x in b['runs'])} | 1.00x | |")
        w(f"| Embedder {m['model_id']} | {m['texts_per_s']:.1f} | {' '.join(f'{x:.1f}' for x in m['runs'])} | "
          f"**{e['speedup']:.2f}x** | {c['min']:.5f} / {c['p1']:.5f} / {c['mean']:.6f} |")
        q = e.get("query_latency_ms")
        if q:
            w(f"\nencode_query on {q['n']} titles: median {q['median']:.1f} ms, p90 {q['p90']:.1f} ms.\n")
    if "index" in parts:
        x = parts["index"]
        f, s, inc = x["full_build"], x["sizes"], x["incremental"]
        w(f"### 3. index ({x['papers']:,} papers, {x['model_id']}; built {x['built_at']})\n{_src(origin, 'index')}\n")
        w("| what | value | notes |\n|---|---:|---|")
        w(f"| `papertide ingest file` (CLI) | {x['ingest_cli']['wall_s']:.1f} s | peak RSS {x['ingest_cli']['maxrss_mb']:.0f} MB |")
        w(f"| full build, `papertide index` killed + resumed | {f['wall_s'] / 60:.1f} min | peak RSS {f['peak_rss_mb']:.0f} MB |")
        if f["embed_s"]:
            w(f"| embedding (estimated from polls) | {f['embed_s'] / 60:.1f} min | {f['embed_papers_per_s']:.1f} papers/s |")
        lex, den = x["lexical_build"], x["dense_build"]
        w(f"| lexical build from scratch | {lex['seconds']:.1f} s | {lex['docs_per_s']:,.0f} docs/s, peak RSS {lex['rss_self_mb']:.0f} MB |")
        w(f"| dense cache build from the store | {den['seconds']:.1f} s | filter columns {den['filters_seconds']:.1f} s, load {den['load_seconds'] * 1e3:.0f} ms |")
        w(f"| size: database / lexical / dense / total | {s['db_bytes'] / 1e6:.0f} / {s['lexical_bytes'] / 1e6:.0f} / "
          f"{s['dense_bytes'] / 1e6:.0f} / **{s['total_bytes'] / 1e6:.0f} MB** | |")
        w(f"| incremental +{inc['added']:,} papers: `update_index` | {inc['update_index_seconds']:.1f} s | embedded {inc['embedded']:,}, "
          f"lexical {inc['lexical_updated']:,}, dense rows {inc['dense_rows']:,}; + {inc['model_load_seconds']:.1f} s model load in a CLI run |")
        w(f"| full build / incremental | **{x['incremental_vs_full']:.0f}x** | only new papers touched: {inc['incremental_only']} |\n")
    if "resume" in parts:
        v = parts["resume"]
        k = v["kill"]
        w(f"### 4. resume: **{'PASS' if v['pass'] else 'FAIL'}**\n{_src(origin, 'resume')}\n")
        w(f"- `papertide index` SIGKILLed after {k['killed_after_s'] / 60:.1f} min with {k['embedded_at_kill']:,} of "
          f"{k['papers']:,} papers embedded; the re-run took {k['resume_wall_s'] / 60:.1f} min and embedded the other "
          f"{k['embedded_by_resume']:,} (build of {k['built_at']}).")
        w(f"- embeddings: {v['embeddings']:,} rows for {v['embeddings_unique']:,} distinct papers, "
          f"{v['missing_or_stale']} missing or stale; dense {v['dense_count']:,} = lexical {v['lexical_count']:,} = "
          f"papers {v['papers']:,}; dense cache identical to the store's vectors: {v['dense_cache_equals_store']}.")
        w(f"- {v['sample']} random papers re-embedded: cosine to the stored vector min {v['cosine_min']:.6f}, "
          f"p1 {v['cosine_p1']:.6f}, mean {v['cosine_mean']:.6f} (target > 0.9999).\n")
    if "query" in parts:
        q = parts["query"]
        w(f"### 5. query ({q['queries']} queries, {q['papers']:,} papers, k=10, ms)\n{_src(origin, 'query')}\n")
        w("| variant | p50 | p95 | p99 | mean |\n|---|---:|---:|---:|---:|")
        for v, s in q["latency_ms"].items():
            w(f"| {v} | {s['p50']:.1f} | {s['p95']:.1f} | {s['p99']:.1f} | {s['mean']:.1f} |")
        w("\n| hybrid stage (ms) | p50 | p95 | with filters p50 | with filters p95 |\n|---|---:|---:|---:|---:|")
        hb = q["hybrid_breakdown_ms"]
        for st in ("embed", "lexical", "dense", "fusion+other", "fetch", "total"):
            a, b = hb["hybrid"].get(st), hb["hybrid+filters"].get(st)
            w(f"| {st} | {a['p50']:.2f} | {a['p95']:.2f} | {b['p50']:.2f} | {b['p95']:.2f} |")
        w(f"\nTarget hybrid p95 <= 50 ms: **{q['latency_ms']['hybrid']['p95']:.1f} ms** "
          f"({'met' if q['target_met'] else 'missed'}); filtered hits breaking their filters: "
          f"{q['filtered_hits_violating_filters']}.\n")
    if "eval" in parts:
        e = parts["eval"]
        fu = e["fusion"]
        w(f"### 6. eval ({e['dataset']} {e['split']}: {e['docs']:,} docs, {e['queries']:,} queries)\n{_src(origin, 'eval')}\n")
        w("| ranker | nDCG@10 | Recall@100 |\n|---|---:|---:|")
        for m, s in e["scores"].items():
            label = f"hybrid ({fu['method']}, alpha {fu['alpha']}, depth {fu['depth']})" if m == "hybrid" else m
            w(f"| {label} | {s['ndcg@10']:.4f} | {s['recall@100']:.4f} |")
        w("\nFusion sweep, offline from one lexical and one dense ranking per query "
          "(**tuned on the train split: optimistic**):\n")
        w("| fusion | nDCG@10 d=100 | R@100 d=100 | nDCG@10 d=200 | R@100 d=200 |\n|---|---:|---:|---:|---:|")
        by = {(x["method"], x["param"], x["depth"]): x for x in e["sweep"]}
        for method, param in dict.fromkeys((x["method"], x["param"]) for x in e["sweep"]):
            a, b = by[(method, param, 100)], by[(method, param, 200)]
            w(f"| {method} {param} | {a['ndcg@10']:.4f} | {a['recall@100']:.4f} | {b['ndcg@10']:.4f} | {b['recall@100']:.4f} |")
        best = e["best"]
        w(f"\nBest: {best['method']} {best['param']} at depth {best['depth']}, nDCG@10 {best['ndcg@10']:.4f}. "
          f"The offline fusion at the product's setting reproduces run_beir's hybrid: "
          f"{e['offline_reproduces_run_beir_hybrid']}.\n")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
