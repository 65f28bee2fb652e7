"""The "for you" page at 74,728 papers: corpus build time, and the page's latency per view kind.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_foryou.py [--users 30]

Runs the real app in process (FastAPI TestClient, one request at a time: the handler's own cost, no
network) on a copy of the web benchmark's database (benchmarks/work/web/home, the index folder linked
read-only). Each simulated member saves 6 papers on one topic (a random paper and its dense
neighbours), then: the first view (model fit + scoring every candidate + reasons), ten views of pages
1-2 (cached model and ranking), and the first view after one more save (the refit). Targets (issue 5):
feed page p95 <= 150 ms, refresh after a save p95 <= 200 ms. Results go to
benchmarks/results/foryou-<stamp>.json. `--background-size N` overrides recommend.BACKGROUND_SIZE for the
run (to compare sizes under the same conditions); `--skip-index` does not run `papertide index` first
(the index folder is linked from the web benchmark's home: with it, nothing there is written).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import RESULTS, WORK, console, cpu_model, git_commit, latency_summary, vm_hwm_mb

SOURCE = WORK / "web" / "home"
HOME = WORK / "foryou" / "home"
SEED = 20261129
TARGET_P95_MS = 150.0
TARGET_REFRESH_P95_MS = 200.0


def prepare_home() -> Path:
    HOME.mkdir(parents=True, exist_ok=True)
    db = HOME / "papertide.db"
    if not db.exists():
        console.print(f"copying {SOURCE / 'papertide.db'} -> {db}")
        con = __import__("sqlite3").connect(f"file:{SOURCE / 'papertide.db'}?mode=ro", uri=True)
        out = __import__("sqlite3").connect(db)
        con.backup(out)  # a consistent copy even if the source's WAL is live
        out.close()
        con.close()
    if not (HOME / "index").exists():
        (HOME / "index").symlink_to((SOURCE / "index").resolve())
    return HOME


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=30)
    ap.add_argument("--profile", action="store_true", help="cProfile the first views, print the top 25")
    ap.add_argument("--compare-fit", action="store_true",
                    help="also time the corpus side fitted from every paper (no saved term space), after the rest")
    ap.add_argument("--background-size", type=int, help="papers in the for-you background (default: the code's)")
    ap.add_argument("--skip-index", action="store_true", help="do not run `papertide index` first")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from papertide.rank import recommend

    if args.background_size:
        recommend.BACKGROUND_SIZE = args.background_size  # read by foryou.build_corpus when it runs
    from fastapi.testclient import TestClient
    from webutil import post, signup

    from papertide.config import Settings
    from papertide.web import create_app
    from papertide.web.services import build_services

    home = prepare_home()
    # what `papertide index` does once (and again after 25% growth): fit the term space on every paper
    cli = str(Path(sys.executable).parent / "papertide")
    index_s = None
    if not args.skip_index:
        t0 = time.perf_counter()
        subprocess.run([cli, "index"], env=dict(os.environ, PAPERTIDE_HOME=str(home)), check=True,
                       capture_output=True)
        index_s = round(time.perf_counter() - t0, 1)
        console.print(f"`papertide index` (term space fitted if missing): {index_s:.1f} s")
    settings = Settings(home=home, secret_key="bench-secret", base_url="http://testserver", index_refresh_seconds=0,
                        signup_rate="100000/60", vote_rate="100000/60")
    services = build_services(settings)
    fy = services.for_you()
    assert fy is not None
    t0 = time.perf_counter()
    assert fy.wait(None), fy.state
    build_s = time.perf_counter() - t0
    corpus = fy.corpus
    console.print(f"corpus side built in {build_s:.1f} s: {len(corpus.ids)} candidates, {len(corpus.space)} terms, "
                  f"background {len(corpus.background.vectors)} papers, {len(corpus.category_names)} categories")

    rng = np.random.default_rng(SEED)
    dense = services.engine.indexes.dense
    kinds: dict[str, list[float]] = {"first view": [], "cached views": [], "after a save": []}
    fits: list[float] = []
    refits: list[float] = []
    app = create_app(services=services)
    import cProfile
    import pstats

    prof = cProfile.Profile() if args.profile else None
    run = int(time.time())  # the copied home keeps earlier runs' members
    with TestClient(app, base_url="http://testserver") as client:
        for u in range(args.users):
            client.cookies.clear()
            signup(client, email=f"bench{u}-{run}@example.org", name=f"Bench {u}")
            seed_id = int(dense.ids[rng.integers(len(dense.ids))])
            near = [d for d, _ in dense.search(dense.vector_of(seed_id), 12) if d != seed_id]
            arx = services.store.arxiv_ids_for([seed_id, *near])
            topic = [arx[d] for d in [seed_id, *near] if d in arx]
            post(client, "/for-you/settings", {"trending": "20"})
            for a in topic[:6]:
                post(client, f"/papers/{a}/save", {"saved": "1"})

            def view(kind: str, page: int = 1) -> None:
                if prof and kind != "cached views":
                    prof.enable()
                t = time.perf_counter()
                r = client.get(f"/for-you?page={page}")
                kinds[kind].append((time.perf_counter() - t) * 1e3)
                if prof:
                    prof.disable()
                assert r.status_code == 200 and 'class="why"' in r.text, r.text[:300]

            view("first view")
            fits.append(fy.last_fit_ms(services.store.get_user_by_email(f"bench{u}-{run}@example.org").id))
            for i in range(10):
                view("cached views", 1 + i % 2)
            post(client, f"/papers/{topic[6]}/save", {"saved": "1"})
            view("after a save")
            refits.append(fy.last_fit_ms(services.store.get_user_by_email(f"bench{u}-{run}@example.org").id))
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    allv = [x for v in kinds.values() for x in v]
    result = {
        "bench": "foryou", "commit": git_commit(), "cpu": cpu_model(), "users": args.users,
        "papers": services.store.count_papers(), "candidates": len(corpus.ids), "terms": len(corpus.space),
        "background": len(corpus.background.vectors), "categories": len(corpus.category_names),
        "svm_tol": getattr(recommend, "SVM_TOL", None), "recommend_module": recommend.__file__,
        "index_command_s": index_s, "corpus_build_s": round(build_s, 1), "rss_hwm_mb": vm_hwm_mb(),
        "fit_ms": latency_summary(fits), "refit_after_save_ms": latency_summary(refits),
        "pages": {k: latency_summary(v) for k, v in kinds.items()},
        "all_views": latency_summary(allv), "target_p95_ms": TARGET_P95_MS,
        "target_refresh_p95_ms": TARGET_REFRESH_P95_MS,
        "load": os.getloadavg(), "raw_ms": {k: [round(x, 1) for x in v] for k, v in kinds.items()},
    }
    for k, v in result["pages"].items():
        console.print(f"{k:>14}: p50 {v['p50']:.1f} ms  p95 {v['p95']:.1f} ms  (n={len(kinds[k])})")
    console.print(f"     all views: p95 {result['all_views']['p95']:.1f} ms (target {TARGET_P95_MS:.0f}); "
                  f"model fit p50 {result['fit_ms']['p50']:.0f} ms p95 {result['fit_ms']['p95']:.0f} ms, "
                  f"refit after a save p95 {result['refit_after_save_ms']['p95']:.0f} ms")
    if args.compare_fit:  # the baseline in the same run: the corpus side fitted from every paper's text
        from papertide.rank.foryou import build_corpus

        t0 = time.perf_counter()
        build_corpus(services.store, fy.model_id, fy.candidate_days, fy.candidate_limit, space_dir=None)
        result["corpus_build_without_saved_space_s"] = round(time.perf_counter() - t0, 1)
        result["rss_hwm_mb_after_that"] = vm_hwm_mb()
        console.print(f"corpus side from the saved space {build_s:.1f} s (RSS peak {result['rss_hwm_mb']} MB); "
                      f"fitted from scratch {result['corpus_build_without_saved_space_s']} s "
                      f"(RSS peak then {result['rss_hwm_mb_after_that']} MB)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"foryou-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {out}")
    services.close()


if __name__ == "__main__":
    main()
