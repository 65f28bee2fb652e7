"""Parts 3 and 4, index and resume: the full index of the arxiv-cs set, built with the real CLI, killed half way.

The first build (a fresh work dir) is the resume check: `papertide ingest file` then `papertide index` as
subprocesses with PAPERTIDE_HOME in benchmarks/work/; the index run is SIGKILLed when about half of the
papers have embeddings, and `papertide index` is run again to completion. Its figures are kept in
build.json beside the index, so later runs reuse the index (and report the build's figures) unless
--fresh. Each run also measures the lexical and dense builds on their own, the index size, and the
incremental case: 1,000 synthetic copies added to a copy of the full index.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import (
    CLI,
    WORK,
    BenchError,
    arxiv_cs_files,
    console,
    db_bytes,
    dir_bytes,
    mb,
    run_proc,
    worker,
)
from rich.table import Table

QUICK_PAPERS = 1200  # --quick indexes the first papers of the set only
INCREMENTAL_N = 1000
QUICK_INCREMENTAL_N = 200
VERIFY_SAMPLE = 300
COSINE_MIN = 0.9999
POLL_S = 2.0  # how often the parent counts the papers still without an embedding (~0.1 s a count at 75k)


def base_dir(quick: bool) -> Path:
    return WORK / ("quick" if quick else "full")


def home_dir(quick: bool) -> Path:
    return base_dir(quick) / "home"


# -- the build (with the kill/resume check) ---------------------------------------------------------
def ensure_built(quick: bool, fresh: bool, embedder) -> dict:
    """The build record of the work index; builds it (killing and resuming) when absent or stale."""
    base = base_dir(quick)
    rec_f = base / "build.json"
    reason = None
    if fresh:
        reason = "--fresh"
    elif not rec_f.exists():
        reason = "no index in the work dir yet"
    else:
        rec = json.loads(rec_f.read_text())
        if rec.get("model_id") != embedder.model_id:
            reason = f"the index was built with {rec.get('model_id')}, the embedder is now {embedder.model_id}"
        else:
            from papertide.store import SqliteStore

            store = SqliteStore(home_dir(quick) / "papertide.db")
            try:
                n, missing = store.count_papers(), store.count_missing_embeddings(embedder.model_id)
            finally:
                store.close()
            if n != rec["papers"] or missing:
                reason = f"the work index is stale ({n:,} papers, {missing:,} without a current embedding)"
    if reason is None:
        rec["this_run"] = False
        console.print(f"  reusing the index built {rec['built_at']} in {base} (use --fresh to rebuild)")
        return rec
    console.print(f"  building the index in {base}: {reason}")
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    files = [_quick_file(base)] if quick else arxiv_cs_files()
    rec = _build(home_dir(quick), files, embedder)
    rec_f.write_text(json.dumps(rec, indent=2))
    rec["this_run"] = True
    return rec


def _lexical_dir() -> str:
    """The lexical index's folder name under index/ (it carries a layout version)."""
    from papertide.index import build

    return getattr(build, "LEXICAL_DIR", "lexical")


def _mtime(f: Path, t0: float) -> float | None:
    """Seconds from t0 to the file's last write (a stage's end), None if the layout changed."""
    try:
        return f.stat().st_mtime - t0
    except OSError:
        return None


def _quick_file(base: Path) -> Path:
    """The first QUICK_PAPERS records of the set, as one plain JSON-lines file (arXiv metadata is CC0)."""
    import gzip

    out = base / f"arxiv-cs-first-{QUICK_PAPERS}.jsonl"
    with gzip.open(arxiv_cs_files(1)[0], "rt", encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i >= QUICK_PAPERS:
                break
            g.write(line)
    return out


def _span(samples: list[tuple[float, int]], start: int, end: int) -> dict:
    """Embedding phase of one run from (elapsed, missing) polls: its rate, duration and start offset."""
    moved = [(t, m) for t, m in samples if m < start]
    if len(moved) < 2 or moved[0][1] == moved[-1][1]:
        return {"rate": None, "seconds": None, "start_s": None}
    (t1, m1), (t2, m2) = moved[0], next((t, m) for t, m in moved if m == moved[-1][1])
    rate = (m1 - m2) / (t2 - t1) if t2 > t1 else None
    if not rate:
        return {"rate": None, "seconds": None, "start_s": None}
    seconds = (start - end) / rate
    return {"rate": rate, "seconds": seconds, "start_s": t1 - (start - m1) / rate}


def _build(home: Path, files: list[Path], embedder) -> dict:
    from papertide.store import SqliteStore

    env = {"PAPERTIDE_HOME": str(home)}
    model = embedder.model_id
    rec: dict = {"built_at": datetime.now(UTC).isoformat(timespec="seconds"), "model_id": model,
                 "home": str(home), "files": len(files)}
    ing = run_proc([CLI, "ingest", "file", *map(str, files)], env=env)
    if ing.returncode != 0:
        raise BenchError(f"papertide ingest file failed (exit {ing.returncode}): {ing.stderr.strip()[-500:]}")
    store = SqliteStore(home / "papertide.db")
    try:
        n = store.count_papers()
        rec["papers"] = n
        rec["ingest_cli"] = {"wall_s": ing.wall_s, "maxrss_mb": ing.maxrss_mb, "papers_per_s": n / ing.wall_s}
        console.print(f"  papertide ingest file: {n:,} papers in {ing.wall_s:.1f} s")

        # Run A: killed when about half of the papers have embeddings.
        samples_a: list[tuple[float, int]] = []

        def poll_a(elapsed: float) -> bool:
            m = store.count_missing_embeddings(model)
            samples_a.append((elapsed, m))
            return m <= n // 2

        console.print("  papertide index (run A, to be SIGKILLed half way) ...")
        ra = run_proc([CLI, "index"], env=env, poll=poll_a, interval=POLL_S)
        if not ra.killed:
            raise BenchError(f"papertide index finished (exit {ra.returncode}) before it could be killed half way: "
                             f"{ra.stderr.strip()[-500:]}")
        missing_after_kill = store.count_missing_embeddings(model)
        index_dir = home / "index"
        state_after_kill = {
            "embedded": n - missing_after_kill,
            "dense_meta_exists": (index_dir / "dense" / "meta.json").exists(),
            "lexical_mark_exists": (index_dir / "lexical.json").exists(),
        }
        console.print(f"  killed after {ra.wall_s:.1f} s with {n - missing_after_kill:,} of {n:,} papers embedded")

        # Run B: the same command again, to completion.
        samples_b: list[tuple[float, int]] = []
        t_b0 = time.time()

        def poll_b(elapsed: float) -> bool:
            if not samples_b or samples_b[-1][1] > 0:
                samples_b.append((elapsed, store.count_missing_embeddings(model)))
            return False

        console.print("  papertide index (run B, resumes) ...")
        rb = run_proc([CLI, "index"], env=env, poll=poll_b, interval=POLL_S)
        if rb.returncode != 0:
            raise BenchError(f"papertide index (resume) failed (exit {rb.returncode}): {rb.stderr.strip()[-800:]}")
        console.print(f"  resumed run finished in {rb.wall_s:.1f} s")
        dense_done = _mtime(index_dir / "dense" / "meta.json", t_b0)
        lexical_done = _mtime(index_dir / f"{_lexical_dir()}.json", t_b0)
    finally:
        store.close()
    span_a = _span(samples_a, n, missing_after_kill)
    span_b = _span(samples_b, missing_after_kill, 0)
    embed_done_b = (span_b["start_s"] or 0) + (span_b["seconds"] or 0)
    embed_s = (span_a["seconds"] or 0) + (span_b["seconds"] or 0)
    rec.update({
        "run_a": {"wall_s": ra.wall_s, "maxrss_mb": ra.maxrss_mb, "killed": ra.killed, "embed": span_a,
                  "samples": samples_a},
        "after_kill": state_after_kill,
        "run_b": {
            "wall_s": rb.wall_s, "maxrss_mb": rb.maxrss_mb, "embed": span_b, "samples": samples_b,
            # offsets from run B's start: embeddings done (estimated from polls), dense cache written
            # (open_indexes), lexical committed (file mtimes)
            "embed_done_s": embed_done_b, "dense_done_s": dense_done, "lexical_done_s": lexical_done,
            "stdout": rb.stdout.strip()[-400:],
        },
        "build_wall_s": ra.wall_s + rb.wall_s,
        "embed_seconds": embed_s,
        "embed_papers_per_s": n / embed_s if embed_s else None,
        "build_peak_rss_mb": max(ra.maxrss_mb, rb.maxrss_mb),
    })
    return rec


# -- resume verification ----------------------------------------------------------------------------
def verify(quick: bool, embedder, rec: dict) -> dict:
    """Every paper has one embedding, dense == lexical == papers, stored vectors match fresh ones."""
    from papertide.index.build import open_indexes
    from papertide.store import SqliteStore
    from papertide.store.base import embed_text

    home = home_dir(quick)
    store = SqliteStore(home / "papertide.db")
    try:
        n = store.count_papers()
        paper_ids = np.array(sorted(m.doc_id for b in store.iter_doc_meta(0) for m in b), dtype=np.int64)
        missing = store.count_missing_embeddings(embedder.model_id)
        emb_ids, emb_vecs = [], []
        for ids, _, vecs in store.iter_embeddings(embedder.model_id, 0):
            emb_ids.append(ids)
            emb_vecs.append(vecs)
        emb_id = np.concatenate(emb_ids)
        emb_vec = np.concatenate(emb_vecs)
        order = np.argsort(emb_id)
        emb_id, emb_vec = emb_id[order], emb_vec[order]
        norms = np.linalg.norm(emb_vec, axis=1)
        indexes = open_indexes(store, home / "index", embedder.model_id, embedder.dim)
        dense = indexes.dense
        d_order = np.argsort(dense.ids)
        cache_equal = bool(
            len(dense.ids) == len(emb_id) and np.array_equal(dense.ids[d_order], emb_id)
            and np.array_equal(dense.vectors[d_order], emb_vec)
        )
        rng = random.Random(1)
        sample = sorted(rng.sample(paper_ids.tolist(), min(VERIFY_SAMPLE, len(paper_ids))))
        papers = store.get_papers(sample)
        t0 = time.perf_counter()
        fresh = embedder.encode([embed_text(papers[d].title, papers[d].abstract) for d in sample])
        t_fresh = time.perf_counter() - t0
        stored = np.stack([dense.vector_of(d) for d in sample])
        cos = (fresh * stored).sum(1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(stored, axis=1))
        out = {
            "papers": n,
            "embeddings": len(emb_id),
            "embeddings_unique": len(np.unique(emb_id)),
            "embeddings_match_papers": bool(np.array_equal(np.unique(emb_id), paper_ids)),
            "missing_or_stale": missing,
            "vector_norm_min": float(norms.min()), "vector_norm_max": float(norms.max()),
            "dense_count": len(dense), "dense_unique": len(np.unique(dense.ids)),
            "lexical_count": len(indexes.lexical),
            "dense_cache_equals_store": cache_equal,
            "sample": len(sample), "sample_encode_s": t_fresh,
            "cosine_min": float(cos.min()), "cosine_p1": float(np.percentile(cos, 1)),
            "cosine_mean": float(cos.mean()), "cosine_below_threshold": int((cos <= COSINE_MIN).sum()),
        }
    finally:
        store.close()
    out["pass"] = bool(
        out["embeddings"] == n and out["embeddings_unique"] == n and out["embeddings_match_papers"]
        and missing == 0 and out["dense_count"] == n and out["dense_unique"] == n and out["lexical_count"] == n
        and cache_equal and out["cosine_min"] > COSINE_MIN
    )
    out["kill"] = {
        "killed_after_s": rec["run_a"]["wall_s"], "embedded_at_kill": rec["after_kill"]["embedded"],
        "papers": rec["papers"], "resume_wall_s": rec["run_b"]["wall_s"],
        "embedded_by_resume": rec["papers"] - rec["after_kill"]["embedded"],
        "built_at": rec["built_at"], "checked_this_run": rec.get("this_run", False),
    }
    _verify_table(out)
    return out


def _verify_table(v: dict) -> None:
    k = v["kill"]
    t = Table(title="4. resume: SIGKILL `papertide index` half way, run it again, check the index", show_header=False)
    t.add_row("killed after", f"{k['killed_after_s']:.1f} s, {k['embedded_at_kill']:,} of {k['papers']:,} papers embedded"
              + ("" if k["checked_this_run"] else f" (build of {k['built_at']})"))
    t.add_row("re-run", f"{k['resume_wall_s']:.1f} s, embedded the other {k['embedded_by_resume']:,}")
    t.add_row("embeddings", f"{v['embeddings']:,} rows, {v['embeddings_unique']:,} distinct papers, "
              f"{v['missing_or_stale']} missing/stale, one per paper: {v['embeddings_match_papers']}")
    t.add_row("index counts", f"papers {v['papers']:,} / dense {v['dense_count']:,} (distinct {v['dense_unique']:,}) "
              f"/ lexical {v['lexical_count']:,}")
    t.add_row("dense cache == store vectors", str(v["dense_cache_equals_store"]))
    t.add_row(f"fresh vs stored, {v['sample']} random papers",
              f"cosine min {v['cosine_min']:.6f}, p1 {v['cosine_p1']:.6f}, mean {v['cosine_mean']:.6f} "
              f"(target > {COSINE_MIN}; {v['cosine_below_threshold']} at or below)")
    t.add_row("result", "[green]PASS[/]" if v["pass"] else "[red]FAIL[/]")
    console.print(t)


# -- index figures ----------------------------------------------------------------------------------
def measure(quick: bool, embedder, rec: dict) -> dict:
    home = home_dir(quick)
    db = home / "papertide.db"
    index_dir = home / "index"
    dense_bytes = dir_bytes(index_dir / "dense")
    lexical_bytes = dir_bytes(index_dir / _lexical_dir())
    sizes = {"db_bytes": db_bytes(db), "lexical_bytes": lexical_bytes, "dense_bytes": dense_bytes,
             "index_dir_bytes": dir_bytes(index_dir)}
    sizes["total_bytes"] = sizes["db_bytes"] + sizes["index_dir_bytes"]
    base = base_dir(quick)
    with tempfile.TemporaryDirectory(prefix="rebuild-", dir=base) as tmp:
        lex, lex_p = worker("lexical-rebuild", "--db", str(db), "--out", str(Path(tmp) / "lex"))
        den, den_p = worker("dense-rebuild", "--db", str(db), "--out", str(Path(tmp) / "den"),
                            "--model", embedder.model_id, "--dim", str(embedder.dim))
    lex["process_maxrss_mb"], den["process_maxrss_mb"] = lex_p.maxrss_mb, den_p.maxrss_mb
    console.print(f"  lexical build from scratch: {lex['seconds']:.1f} s; dense cache: {den['seconds']:.1f} s")

    n_add = QUICK_INCREMENTAL_N if quick else INCREMENTAL_N
    copy = base / "incremental"
    shutil.rmtree(copy, ignore_errors=True)
    t0 = time.perf_counter()
    shutil.copytree(home, copy)
    t_copy = time.perf_counter() - t0
    try:
        inc, inc_p = worker("incremental", "--home", str(copy), "--n", str(n_add))
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    inc["process_maxrss_mb"], inc["copy_seconds"] = inc_p.maxrss_mb, t_copy
    n = rec["papers"]
    inc["incremental_only"] = bool(
        inc["embedded"] == n_add and inc["lexical_updated"] == n_add and inc["dense_rows"] == n_add
        and inc["dense_count"] == n + n_add and inc["lexical_count"] == n + n_add and inc["missing_after"] == 0
    )
    full_s = rec["build_wall_s"]
    # The full build, as `papertide index` does it, without the two processes' start-up (model load).
    full_update_s = full_s - 2 * inc["model_load_seconds"]
    out = {
        "papers": n, "model_id": rec["model_id"], "built_at": rec["built_at"], "built_this_run": rec["this_run"],
        "ingest_cli": rec["ingest_cli"],
        "full_build": {
            "wall_s": full_s, "wall_s_excluding_startup_est": full_update_s,
            "embed_s": rec["embed_seconds"], "embed_papers_per_s": rec["embed_papers_per_s"],
            "peak_rss_mb": rec["build_peak_rss_mb"],
            "note": "papertide index run twice (SIGKILLed half way, then resumed): wall = sum of both runs; "
                    "embedding time estimated from 2 s polls of the store",
            "resumed_run_offsets_s": {k: rec["run_b"][k] for k in ("embed_done_s", "dense_done_s", "lexical_done_s")},
        },
        "lexical_build": lex, "dense_build": den, "sizes": sizes,
        "incremental": inc,
        "incremental_vs_full": full_update_s / inc["update_index_seconds"],
    }
    _table(out)
    return out


def _table(o: dict) -> None:
    f, s, inc = o["full_build"], o["sizes"], o["incremental"]
    t = Table(title=f"3. index: {o['papers']:,} papers ({o['model_id']})"
                    + ("" if o["built_this_run"] else f"; build figures from the build of {o['built_at']}"))
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_column("notes")
    t.add_row("papertide ingest file (CLI)", f"{o['ingest_cli']['wall_s']:.1f} s",
              f"{o['ingest_cli']['papers_per_s']:,.0f} papers/s incl. start-up, peak RSS {o['ingest_cli']['maxrss_mb']:.0f} MB")
    t.add_row("full build: papertide index (killed + resumed)", f"{f['wall_s']:.1f} s",
              f"peak RSS {f['peak_rss_mb']:.0f} MB")
    if f["embed_s"]:
        t.add_row("  embedding", f"{f['embed_s']:.1f} s", f"{f['embed_papers_per_s']:,.0f} papers/s (title + abstract)")
    lex, den = o["lexical_build"], o["dense_build"]
    t.add_row("lexical build from scratch (tantivy)", f"{lex['seconds']:.1f} s",
              f"{lex['docs_per_s']:,.0f} docs/s, peak RSS {lex['rss_self_mb']:.0f} MB (this run)")
    t.add_row("dense cache build from the store", f"{den['seconds']:.1f} s",
              f"+ filter columns {den['filters_seconds']:.1f} s; load in a search process {den['load_seconds'] * 1e3:.0f} ms")
    t.add_row("size: database", f"{mb(s['db_bytes'])} MB", "papers, versions, embeddings (float32 blobs)")
    t.add_row("size: lexical index", f"{mb(s['lexical_bytes'])} MB", "tantivy segments")
    t.add_row("size: dense cache", f"{mb(s['dense_bytes'])} MB", "index/dense/: vectors.f32 + ids.i64 (+ ANN graph if any)")
    t.add_row("size: total on disk", f"{mb(s['total_bytes'])} MB", "")
    t.add_row(f"incremental: +{inc['added']:,} papers, update_index", f"{inc['update_index_seconds']:.2f} s",
              f"embedded {inc['embedded']:,}, lexical {inc['lexical_updated']:,}, dense rows {inc['dense_rows']:,}; "
              f"model load {inc['model_load_seconds']:.1f} s extra in a CLI run")
    t.add_row("  full build / incremental", f"{o['incremental_vs_full']:.0f}x",
              "only the new papers touched: " + ("[green]yes[/]" if inc["incremental_only"] else "[red]NO[/]"))
    console.print(t)
    st = inc["stages"]
    if "embed" in st and "lexical" in st:
        console.print(f"  incremental stages (s from start): embed done {st['embed']['last']:.2f}, "
                      f"lexical done {st['lexical']['last']:.2f}, total {inc['update_index_seconds']:.2f}")


def run_index(quick: bool, fresh: bool, embedder) -> tuple[dict, dict]:
    rec = ensure_built(quick, fresh, embedder)
    return rec, measure(quick, embedder, rec)
