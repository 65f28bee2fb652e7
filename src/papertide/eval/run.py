"""Run papertide's own retrieval pipeline on a BEIR-layout collection, in a temporary store, and score it."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from papertide.eval.beir import BeirDataset, load_beir
from papertide.eval.metrics import Run, evaluate
from papertide.index.build import Progress, update_index
from papertide.models import Paper
from papertide.rank.search import FusionConfig, Mode, SearchEngine
from papertide.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from papertide.index.embedder import Embedder

METRICS = ("ndcg@10", "recall@100")


@dataclass(slots=True)
class BeirResult:
    name: str
    docs: int
    queries: int
    scores: dict[str, dict[str, float]]  # mode -> metric -> value
    runs: dict[str, Run] = field(default_factory=dict)


def corpus_papers(ds: BeirDataset) -> list[Paper]:
    """BEIR documents as papers (the BEIR id stands in for the arXiv id)."""
    return [
        Paper(arxiv_id=doc_id, title=d.get("title") or "", abstract=d.get("text") or "", source="beir")
        for doc_id, d in ds.corpus.items()
    ]


def run_beir(
    directory: Path, embedder: Embedder, split: str = "train", fusion_config: FusionConfig | None = None,
    modes: tuple[Mode, ...] = (Mode.lexical, Mode.dense, Mode.hybrid), depth: int = 100,
    progress: Progress | None = None, on_query: Callable[[int, int], None] | None = None,
    work_dir: Path | None = None, db_url: str | None = None,
) -> BeirResult:
    """Score papertide's rankers on a BEIR collection, in a temporary store: a SQLite file, or, when `db_url`
    is a postgresql:// URL, a temporary database on that server (created and dropped here)."""
    ds = load_beir(directory, split)
    with tempfile.TemporaryDirectory(prefix="papertide-eval-", dir=work_dir) as tmp, ExitStack() as stack:
        if db_url and db_url.startswith(("postgresql://", "postgres://")):
            from papertide.store.postgres import PostgresStore, temporary_database

            store = PostgresStore(stack.enter_context(temporary_database(db_url, "papertide_eval")))
        else:
            store = SqliteStore(Path(tmp) / "eval.db")
        try:
            papers = corpus_papers(ds)
            for i in range(0, len(papers), 5000):
                store.upsert_papers(papers[i : i + 5000])
            indexes, _ = update_index(store, Path(tmp) / "index", embedder, progress)
            engine = SearchEngine(store, indexes, embedder, fusion_config)
            ids = {d: a for a, d in store.doc_ids_for(list(ds.corpus)).items()}
            runs: dict[str, Run] = {m.value: {} for m in modes}
            for n, (qid, text) in enumerate(ds.queries.items(), 1):
                for m in modes:
                    hits = engine.rank(text, depth, mode=m)
                    runs[m.value][qid] = {ids[h.doc_id]: h.score for h in hits}
                if on_query:
                    on_query(n, len(ds.queries))
        finally:
            store.close()
    scores = {m: evaluate(ds.qrels, run, METRICS) for m, run in runs.items()}
    return BeirResult(directory.name, len(ds.corpus), len(ds.queries), scores, runs)
