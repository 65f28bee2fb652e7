"""The "for you" benchmark: simulated users are authors, their earlier papers the library, their later ones the targets.

Protocol (``../shared/data/README.md``, recsys/): a user is an author name (matched as an exact string);
the library is their papers listed before the cutoff (2026-01-01), treated as saved; the candidates are
every paper listed on or after it, shown to the recommender without authors; the relevant candidates
are the user's own. A recommender ranks all candidates for each user; report Recall@50, nDCG@20 (binary
gains) and MRR, averaged over users, with :mod:`papertide.eval.metrics` (trec_eval semantics).

Pure functions over :class:`RecsysCorpus` arrays, plus one thin reader of a papertide SQLite database
(papers and their stored embeddings), opened read-only so a benchmark never writes to it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from papertide.eval import metrics
from papertide.eval.metrics import Qrels

CUTOFF = date(2026, 1, 1)
MIN_LIBRARY = 5  # the protocol's eligibility: >= 5 papers before the cutoff and >= 3 on or after it
MIN_RELEVANT = 3
# What the protocol reports. MRR is over the run as given: runs here hold each user's top RUN_DEPTH.
MEASURES = ("recall@50", "ndcg@20", "mrr")
RUN_DEPTH = 1000

__all__ = [
    "CUTOFF",
    "MEASURES",
    "RUN_DEPTH",
    "RecsysCorpus",
    "RecsysTask",
    "build_task",
    "evaluate_recsys",
    "load_corpus_db",
    "load_users",
    "mask_url_owners",
    "per_user",
    "run_from_scores",
]


@dataclass(slots=True)
class RecsysCorpus:
    """Every paper of the benchmark, row-aligned: ids, listing day, authors, text and embedding."""

    arxiv_ids: list[str]
    listed: np.ndarray  # datetime64[D]
    authors: list[list[str]]
    titles: list[str]
    abstracts: list[str]
    vectors: np.ndarray  # float32 [n, dim], L2-normalised (a zero row where a paper has no embedding)
    categories: list[list[str]] = field(default_factory=list)  # arXiv categories, primary first

    def __len__(self) -> int:
        return len(self.arxiv_ids)

    def texts(self, rows: Iterable[int] | None = None) -> list[str]:
        """Title and abstract of each row (no authors: the protocol hides them from the recommender)."""
        idx = range(len(self)) if rows is None else rows
        return [f"{self.titles[i]}\n{self.abstracts[i]}" for i in idx]


@dataclass(slots=True)
class RecsysTask:
    """The split: candidate rows, and per user the library rows and the relevant candidates (qrels)."""

    cutoff: date
    candidates: np.ndarray  # rows listed on or after the cutoff, ascending
    history: np.ndarray  # rows listed before the cutoff, ascending (where background samples come from)
    libraries: dict[str, np.ndarray]  # user -> rows of their papers before the cutoff
    qrels: Qrels  # user -> {arxiv id: 1} for their papers on or after the cutoff

    @property
    def users(self) -> list[str]:
        return list(self.libraries)


def load_users(path: Path) -> list[str]:
    """Author names, one a line (blank lines ignored), in file order."""
    with Path(path).open(encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def load_corpus_db(db: Path, model: str | None = None) -> RecsysCorpus:
    """Papers and stored embeddings of a papertide SQLite database, opened read-only.

    `model` picks the embedding model when the store holds several (default: the only one).
    """
    path = Path(db)
    if not path.is_file():
        raise FileNotFoundError(f"no database at {path}")
    # immutable: no lock or -shm file at all, safe while nothing writes; a live store (a -wal file beside
    # it) is opened plainly read-only so its write-ahead log is read too.
    live = Path(f"{path}-wal").exists()
    con = sqlite3.connect(f"file:{path}?mode=ro{'' if live else '&immutable=1'}", uri=True)
    try:
        models = [r[0] for r in con.execute("SELECT DISTINCT model FROM embeddings")]
        if model is None:
            if len(models) > 1:
                raise ValueError(f"{path} holds embeddings of several models ({', '.join(models)}): pick one")
            model = models[0] if models else ""
        rows = con.execute(
            "SELECT p.id, p.arxiv_id, coalesce(p.listed, p.submitted), p.authors, p.title, p.abstract, e.vector, "
            "p.categories "
            "FROM papers p LEFT JOIN embeddings e ON e.paper_id = p.id AND e.model = ? ORDER BY p.id",
            (model,),
        ).fetchall()
    finally:
        con.close()
    dim = next((len(r[6]) // 4 for r in rows if r[6] is not None), 0)
    vectors = np.zeros((len(rows), dim), dtype=np.float32)
    for i, r in enumerate(rows):
        if r[6] is not None:
            vectors[i] = np.frombuffer(r[6], dtype="<f4")
    return RecsysCorpus(
        arxiv_ids=[r[1] for r in rows],
        listed=np.array([r[2] or "1970-01-01" for r in rows], dtype="datetime64[D]"),
        authors=[json.loads(r[3]) for r in rows],
        titles=[r[4] for r in rows],
        abstracts=[r[5] for r in rows],
        vectors=vectors,
        categories=[(r[7] or "").split() for r in rows],
    )


# The owner in a code or model URL (github.com/<owner>/repo, <owner>.github.io) is mostly an author's or
# their lab's account name: a check of how much a recommender leans on it (benchmarks/README.md).
_OWNER = re.compile(r"\b((?:github|gitlab|huggingface|bitbucket)\.(?:com|co|org)/)[A-Za-z0-9_.\-]+",
                    re.IGNORECASE)
_PAGES = re.compile(r"\b[A-Za-z0-9\-]+\.github\.io\b", re.IGNORECASE)


def mask_url_owners(text: str) -> str:
    """`text` with the owner of each GitHub / GitLab / Hugging Face / Bitbucket URL and github.io page
    replaced by OWNER (the repository name, a method's name, stays)."""
    return _PAGES.sub("OWNER.github.io", _OWNER.sub(r"\1OWNER", text))


def build_task(
    corpus: RecsysCorpus, users: Sequence[str], cutoff: date = CUTOFF, check: bool = True,
    min_library: int = MIN_LIBRARY, min_relevant: int = MIN_RELEVANT,
) -> RecsysTask:
    """Split the corpus at `cutoff` and find each user's library and relevant candidates.

    With `check`, a user without `min_library` papers before the cutoff and `min_relevant` on or after it
    is an error (the published user lists satisfy it); without, such users are dropped.
    """
    after = corpus.listed >= np.datetime64(cutoff, "D")
    by_author: dict[str, list[int]] = {}
    wanted = set(users)
    for row, names in enumerate(corpus.authors):
        for name in set(names):
            if name in wanted:
                by_author.setdefault(name, []).append(row)
    libraries: dict[str, np.ndarray] = {}
    qrels: Qrels = {}
    for user in users:
        rows = np.asarray(by_author.get(user, []), dtype=np.int64)
        lib, rel = rows[~after[rows]], rows[after[rows]]
        if len(lib) < min_library or len(rel) < min_relevant:
            if check:
                raise ValueError(
                    f"user {user!r} has {len(lib)} papers before {cutoff} and {len(rel)} after: "
                    f"not eligible (needs >= {min_library} and >= {min_relevant})"
                )
            continue
        libraries[user] = lib
        qrels[user] = {corpus.arxiv_ids[r]: 1 for r in rel}
    return RecsysTask(cutoff, np.flatnonzero(after), np.flatnonzero(~after), libraries, qrels)


def run_from_scores(
    corpus: RecsysCorpus, rows: np.ndarray, scores: np.ndarray, depth: int = RUN_DEPTH
) -> dict[str, float]:
    """One user's run (arxiv id -> score) of the `depth` best of `rows` scored `scores`."""
    k = min(depth, len(rows))
    top = np.argpartition(-scores, k - 1)[:k] if k < len(rows) else np.arange(len(rows))
    return {corpus.arxiv_ids[int(rows[i])]: float(scores[i]) for i in top}


def evaluate_recsys(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
                    measures: Sequence[str] = MEASURES) -> dict[str, float]:
    """Mean of each measure over every user in `qrels` (a user missing from the run scores 0)."""
    return metrics.evaluate(qrels, run, measures)


def per_user(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
             k: int = 50) -> dict[str, float]:
    """Recall@k of each user (for paired comparisons between recommenders)."""
    return metrics.recall_at_k(qrels, run, k, per_query=True)

