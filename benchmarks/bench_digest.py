"""E-mail digest throughput: 10,000 confirmed subscribers with varied preferences, composed and delivered over
SMTP to a local aiosmtpd server running in a separate process.

    .venv/bin/python benchmarks/bench_digest.py [--subscribers 10000] [--seed 20260801]

Reports messages/s of the whole run (compose + render + SMTP + durable state per message), the peak RSS of
the sending process (VmHWM), and distinct compositions against subscribers - composing runs once per
distinct (categories, keywords) filter, never per subscriber. Writes benchmarks/results/digest-<UTC>.json
and digest-latest.json. Uses the bundled 2,000-paper sample; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, console, cpu_model, git_commit, vm_hwm_mb

CATEGORIES = ["cs.CV", "cs.CL", "cs.LG", "cs.AI", "cs.RO", "cs.GR", "cs.IR", "eess.IV", "cs"]
KEYWORDS = ["diffusion", "language model", "transformer", "reinforcement learning", "benchmark", "retrieval",
            "3d", "graph", "agent", "video", "robot", "segmentation"]


def _smtp_sink(port_q, stop_evt, count_v) -> None:
    """The SMTP server process: accepts and counts every message."""
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            with count_v.get_lock():
                count_v.value += 1
            return "250 OK"

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = Controller(Sink(), hostname="127.0.0.1", port=port)
    c.start()
    port_q.put(port)
    stop_evt.wait()
    c.stop()


def _preferences(rng: random.Random):
    from papertide.store.digest import Preferences

    r = rng.random()
    cats = () if r < 0.35 else tuple(sorted(rng.sample(CATEGORIES, 1 if r < 0.8 else 2)))
    kws = tuple(sorted(rng.sample(KEYWORDS, 1))) if rng.random() < 0.3 else ()
    return Preferences("weekly", cats, kws, rng.choice([5, 10, 20]), False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=20260801)
    args = ap.parse_args()

    from papertide.config import Settings
    from papertide.digest.deliver import run_digest
    from papertide.models import Paper
    from papertide.sources.bulk import read_jsonl
    from papertide.store import SqliteStore

    ctx = mp.get_context("spawn")
    port_q, stop_evt, count_v = ctx.Queue(), ctx.Event(), ctx.Value("i", 0)
    server = ctx.Process(target=_smtp_sink, args=(port_q, stop_evt, count_v), daemon=True)
    server.start()
    port = port_q.get(timeout=30)

    with tempfile.TemporaryDirectory(prefix="bench-digest-") as tmp:
        home = Path(tmp)
        store = SqliteStore(home / "papertide.db")
        with resources.as_file(resources.files("papertide.data") / "sample-arxiv-cs-2k.jsonl.gz") as p:
            papers = [x for x in read_jsonl(p) if isinstance(x, Paper)]
        store.upsert_papers(papers)
        rng = random.Random(args.seed)
        for doc_id in rng.sample(range(1, len(papers) + 1), 300):  # some community signal for the trending score
            store._db.execute("UPDATE papers SET hf_upvotes = ? WHERE id = ?", (rng.randint(1, 60), doc_id))
        weeks = Counter((x.listed or x.submitted).isocalendar()[:2] for x in papers)
        (year, week), in_week = weeks.most_common(1)[0]
        day = datetime.fromisocalendar(year, week, 1).date()

        t0 = time.perf_counter()
        prefs = []
        for i in range(args.subscribers):
            pr = _preferences(rng)
            sub = store.create_subscriber(f"reader{i}@example.org", f"k{i}", prefs=pr)
            store.confirm_subscriber(sub.id)
            prefs.append(pr)
        setup_s = time.perf_counter() - t0
        distinct_filters = len({(p.categories, p.keywords) for p in prefs})
        distinct_prefs = len(set(prefs))

        settings = Settings(home=home, secret_key="bench", base_url="https://papertide.example", smtp_host="127.0.0.1",
                            smtp_port=port, mail_from="papertide <digest@papertide.example>", digest_rate=0)
        rss_before = vm_hwm_mb()
        t0 = time.perf_counter()
        rep = run_digest(store, settings, "weekly", day)
        wall = time.perf_counter() - t0
        rss_peak = vm_hwm_mb()
        store.close()
    time.sleep(0.2)
    received = count_v.value
    stop_evt.set()
    server.join(timeout=10)

    res = {
        "bench": "digest", "when": datetime.now(UTC).isoformat(timespec="seconds"), "commit": git_commit(),
        "cpu": cpu_model(), "subscribers": args.subscribers, "seed": args.seed,
        "edition": {"frequency": "weekly", "week_of": day.isoformat(), "papers_in_period": in_week},
        "distinct_preference_sets": distinct_prefs, "distinct_filters": distinct_filters,
        "compositions": rep.compositions, "sent": rep.sent, "skipped_nothing_matches": rep.skipped,
        "failed": rep.failed, "received_by_server": received,
        "wall_s": round(wall, 2), "messages_per_s": round(rep.sent / wall, 1),
        "subscriber_setup_s": round(setup_s, 2),
        "peak_rss_mb": round(rss_peak or 0, 1), "peak_rss_before_run_mb": round(rss_before or 0, 1),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),  # a shared machine: read figures against this
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"digest-{stamp}.json", "digest-latest.json"):
        (RESULTS / name).write_text(json.dumps(res, indent=2) + "\n")
    console.print_json(json.dumps(res))
    ok = rep.failed == 0 and received == rep.sent and rep.compositions <= distinct_filters
    if not ok:
        console.print("[red]check failed[/]: every sent message must reach the server, one composition per filter")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
