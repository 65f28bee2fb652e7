"""Part 1, ingest: bulk import of the arxiv-cs set into a fresh SQLite store, no embedding.

Each measurement is its own process (cold start, own peak RSS), into its own fresh database; the two
modes (parse in helper processes or not) alternate so machine noise falls on both. Baselines measured
in the same run: gunzip + json.loads alone, and papertide's parser alone (no store).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from common import WORK, BenchError, arxiv_cs_files, console, data_path, median, worker
from rich.table import Table

TARGET_PAPERS_PER_S = 20_000


def _rm_db(db: Path) -> None:
    for s in ("", "-wal", "-shm"):
        Path(str(db) + s).unlink(missing_ok=True)


def run(quick: bool) -> dict:
    files = arxiv_cs_files(3 if quick else None)
    repeats = 1 if quick else 3
    fargs = [str(f) for f in files]
    WORK.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ingest-", dir=WORK))
    modes = {"parallel": "1", "serial": "0"}
    fresh: dict[str, list[dict]] = {m: [] for m in modes}
    again: dict[str, list[dict]] = {m: [] for m in modes}
    base: dict[str, list[dict]] = {"jsonload": [], "parse": []}
    kept = tmp / "kept.db"
    try:
        for r in range(repeats):
            order = list(modes.items()) if r % 2 == 0 else list(reversed(modes.items()))
            for name, flag in order:
                db = tmp / f"{name}-{r}.db"
                res, proc = worker("ingest", "--db", str(db), "--parallel", flag, *fargs)
                res["process_wall_s"], res["process_maxrss_mb"] = proc.wall_s, proc.maxrss_mb
                fresh[name].append(res)
                console.print(f"  ingest {name:8s} run {r + 1}: {res['papers_per_s']:,.0f} papers/s "
                              f"({res['read']:,} in {res['seconds']:.2f} s)")
                if not kept.exists():
                    for s in ("", "-wal", "-shm"):
                        if Path(str(db) + s).exists():
                            shutil.move(str(db) + s, str(kept) + s)
                _rm_db(db)
            for name, runs in base.items():
                res, _ = worker(name, *fargs)
                runs.append(res)
        # Re-ingest: every record unchanged, into the store the first run filled.
        for r in range(repeats):
            order = list(modes.items()) if r % 2 == 0 else list(reversed(modes.items()))
            for name, flag in order:
                res, proc = worker("ingest", "--db", str(kept), "--parallel", flag, *fargs)
                res["process_maxrss_mb"] = proc.maxrss_mb
                again[name].append(res)
                console.print(f"  re-ingest {name:8s} run {r + 1}: {res['papers_per_s']:,.0f} papers/s "
                              f"(unchanged {res['unchanged']:,}, inserted {res['inserted']}, updated {res['updated']})")
        kaggle = _kaggle(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    n = fresh["parallel"][0]["read"]
    for runs in (*fresh.values(), *again.values()):
        for res in runs:
            if res["read"] != n or res["errors"]:
                raise BenchError(f"ingest runs disagree or rejected records: {res}")
    for res in (*again["parallel"], *again["serial"]):
        if res["inserted"] or res["updated"]:
            raise BenchError(f"re-ingest of unchanged records wrote papers: {res}")

    def summary(runs: list[dict]) -> dict:
        rates = [x["papers_per_s"] for x in runs]
        return {
            "papers_per_s_median": median(rates), "papers_per_s_runs": rates,
            "seconds_median": median([x["seconds"] for x in runs]),
            "peak_rss_mb": max(x["rss_self_mb"] for x in runs),
            "peak_rss_reader_mb": max(x["rss_children_mb"] for x in runs),
        }

    out = {
        "files": len(files), "papers": n, "repeats": repeats,
        "fresh": {m: summary(v) for m, v in fresh.items()},
        "reingest": {m: summary(v) for m, v in again.items()},
        "baseline": {m: summary(v) | {"peak_rss_reader_mb": 0.0} for m, v in base.items()},
        "kaggle_head": kaggle,
        "target_papers_per_s": TARGET_PAPERS_PER_S,
    }
    best = max(out["fresh"].values(), key=lambda s: s["papers_per_s_median"])
    out["best_fresh_papers_per_s"] = best["papers_per_s_median"]
    out["target_met"] = best["papers_per_s_median"] >= TARGET_PAPERS_PER_S
    _table(out)
    return out


def _kaggle(tmp: Path) -> dict:
    """The 200-record head of the real bulk snapshot: the format imports, with every field."""
    from papertide.sources.ingest import ingest_files
    from papertide.store import SqliteStore

    head = data_path("arxiv-kaggle", "arxiv-metadata-oai-snapshot.head.json")
    lines = sum(1 for ln in head.open(encoding="utf-8") if ln.strip())
    store = SqliteStore(tmp / "kaggle.db")
    try:
        rep = ingest_files(store, [head], parallel=False)
        stats = store.stats()
        ids = [m.doc_id for batch in store.iter_doc_meta(0) for m in batch]
        sample = store.get_papers(ids)
        with_versions = sum(1 for p in sample.values() if p.versions)
        with_doi = sum(1 for p in sample.values() if p.doi)
        with_submitted = sum(1 for p in sample.values() if p.submitted)
    finally:
        store.close()
    return {
        "lines": lines, "read": rep.read, "inserted": rep.inserted, "errors": len(rep.errors),
        "first_errors": [str(e) for e in rep.errors[:5]], "stored": stats.papers,
        "with_versions": with_versions, "with_doi": with_doi, "with_submitted_date": with_submitted,
    }


def _table(out: dict) -> None:
    t = Table(title=f"1. ingest: {out['papers']:,} papers, {out['files']} gzip'd JSON-lines files "
                    f"(median of {out['repeats']}, each run a fresh process + fresh database)")
    t.add_column("what")
    t.add_column("papers/s", justify="right")
    t.add_column("vs parse only", justify="right")
    t.add_column("seconds", justify="right")
    t.add_column("peak RSS MB (main / parser proc)", justify="right")
    parse = out["baseline"]["parse"]["papers_per_s_median"]
    rows = [
        ("ingest, parallel=True (fresh db)", out["fresh"]["parallel"]),
        ("ingest, parallel=False (fresh db)", out["fresh"]["serial"]),
        ("re-ingest unchanged, parallel=True", out["reingest"]["parallel"]),
        ("re-ingest unchanged, parallel=False", out["reingest"]["serial"]),
        ("baseline: read_jsonl parse only, no store", out["baseline"]["parse"]),
        ("baseline: gunzip + json.loads only", out["baseline"]["jsonload"]),
    ]
    for label, s in rows:
        t.add_row(label, f"{s['papers_per_s_median']:,.0f}", f"{s['papers_per_s_median'] / parse:.2f}x",
                  f"{s['seconds_median']:.2f}", f"{s['peak_rss_mb']:.0f} / {s['peak_rss_reader_mb']:.0f}")
    console.print(t)
    ok = "[green]met[/]" if out["target_met"] else "[red]MISSED[/]"
    console.print(f"  target >= {TARGET_PAPERS_PER_S:,} papers/s (fresh import, best mode): "
                  f"{out['best_fresh_papers_per_s']:,.0f} -> {ok}")
    k = out["kaggle_head"]
    console.print(f"  bulk snapshot head (arxiv-kaggle, {k['lines']} records): read {k['read']}, inserted "
                  f"{k['inserted']}, rejected {k['errors']}; with versions {k['with_versions']}, "
                  f"DOI {k['with_doi']}, submitted date {k['with_submitted_date']}")
