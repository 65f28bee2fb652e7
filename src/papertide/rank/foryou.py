"""The "for you" feed of a running site: the corpus side built once per process, per-user models cached.

`ForYou` owns what every user model shares (rank/recommend.py): the term space fitted on all papers, the
arXiv category list, the background sample, and the candidates - the recent papers, with their embeddings,
term rows and category rows - kept in memory. Models are fitted and scored through `fit_rows` and
`UserModel.score_rows`, as benchmarks/bench_recsys.py does, so the site runs the model measured there.
Building it reads every paper's text (a minute at 75k papers, see benchmarks/bench_foryou.py), so it runs
in a background thread and the page says "warming up" meanwhile. A user's model is refitted when what it
learns from changed (saves, upvotes, "not interested": compared on every request, so it also
follows actions taken in another worker process), which costs one per-user fit, never a corpus pass.
New papers join the candidates as their embeddings arrive (`catch_up`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from papertide.rank.recommend import (
    Background,
    Explanation,
    PaperRows,
    TermSpace,
    UserModel,
    blend_with_trending,
    category_rows,
    explain,
    fit_rows,
)
from papertide.rank.trending import end_of, trending_scores

log = logging.getLogger(__name__)

# Candidates: papers listed within CANDIDATE_DAYS of the newest one, at most CANDIDATE_LIMIT (newest first).
# A feed is for what is new; 60 days of arXiv cs is ~15k papers, scored in a few ms per user.
CANDIDATE_DAYS = 60
CANDIDATE_LIMIT = 20_000
# A model learns from at most this many of the user's latest saves and upvotes (and dismissals):
# keeps a refit within the refresh budget (<= 200 ms p95) for very large libraries.
MAX_POSITIVES = 500
MAX_NEGATIVES = 500
MODEL_CACHE = 1024  # users whose model and ranking stay in memory (least recently used dropped)
TRENDING_TTL_S = 120.0  # trending moves with votes over hours; two minutes stale is invisible
# The term space is fitted by `papertide index` (a pass over every paper's text) and saved beside the
# indexes (TERMS_DIR); it is refitted once the store has grown by REFIT_GROWTH since, so new words enter it.
TERMS_DIR = "terms"
REFIT_GROWTH = 0.25
# Past this many papers the space is fitted on a random sample of them: at 75k papers the fit takes 47 s
# and ~2 GB, growing with the corpus; 200k papers give the vocabulary of every field of arXiv that has
# more than a handful of papers (terms must be in 2+ papers of the sample to count).
TERM_SPACE_MAX_PAPERS = 200_000
DEFAULT_TRENDING = 0.2  # the blend a new account starts with (store migration 0004 has the same default)


@dataclass
class Corpus:
    """What every user's model is fitted against and scored over (immutable; catch-up builds a new one)."""

    space: TermSpace
    background: Background
    ids: np.ndarray  # int64 [n]: candidate doc ids
    vectors: np.ndarray  # float32 [n, d]
    terms: sp.csr_matrix  # [n, n_terms]
    categories: sp.csr_matrix  # [n, len(category_names)]: the candidates' category rows
    category_names: list[str]  # columns of every category row here (background's, positives', candidates')
    days: list[str | None]
    emb_seq: int  # embeddings up to this store seq are in
    version: int = 0
    row: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.row = {int(d): i for i, d in enumerate(self.ids)}

    @property
    def candidates(self) -> PaperRows:
        return PaperRows(self.ids, self.vectors, self.terms, self.categories)


@dataclass(slots=True)
class Pick:
    doc_id: int
    score: float  # the model's own (standardised) score, before the trending blend


@dataclass
class _UserEntry:
    signature: tuple
    model: UserModel | None
    rankings: dict[tuple[int, float], list[Pick]] = field(default_factory=dict)
    fit_ms: float = 0.0


class ForYou:
    """One per site process. `state` is "cold" (not started), "warming", "ready" or "failed"."""

    def __init__(self, store, model_id: str, vector_of: Callable[[int], np.ndarray | None],
                 candidate_days: int = CANDIDATE_DAYS, candidate_limit: int = CANDIDATE_LIMIT,
                 space_dir: Path | None = None):
        self.store = store
        self.space_dir = space_dir
        self.model_id = model_id
        self.vector_of = vector_of
        self.candidate_days = candidate_days
        self.candidate_limit = candidate_limit
        self.corpus: Corpus | None = None
        self.state = "cold"
        self.build_seconds: float | None = None
        self._ready = threading.Event()
        self._start_lock = threading.Lock()
        self._catch_up_lock = threading.Lock()
        self._users: OrderedDict[int, _UserEntry] = OrderedDict()
        self._users_lock = threading.Lock()
        self._checked_seq = 0
        self._trend: tuple[int, float, np.ndarray] | None = None
        self._trend_lock = threading.Lock()

    # -- corpus -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the corpus side in a background thread, once."""
        with self._start_lock:
            if self.state != "cold":
                return
            self.state = "warming"
        threading.Thread(target=self._build_logged, name="foryou-build", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Start the build if needed and wait for it (up to `timeout` s); True when ready."""
        self.start()
        self._ready.wait(timeout)
        return self.state == "ready"

    def _build_logged(self) -> None:
        t0 = time.perf_counter()
        try:
            self.corpus = build_corpus(self.store, self.model_id, self.candidate_days, self.candidate_limit,
                                       space_dir=self.space_dir)
            self._trending(self.corpus)  # the first read here, not in a member's request
            # The term space holds ~1M vocabulary strings at 75k papers; a full GC pass over them cost
            # ~250 ms in a request now and then (measured). Long-lived: move them out of the collector's way.
            gc.collect()
            gc.freeze()
            self.build_seconds = time.perf_counter() - t0
            self.state = "ready"
            log.info("for you: ready in %.1f s (%d candidates, %d terms)", self.build_seconds,
                     len(self.corpus.ids), len(self.corpus.space))
        except Exception:
            self.state = "failed"
            log.exception("for you: building the corpus side failed")
        finally:
            self._ready.set()

    def catch_up(self) -> int:
        """Add papers embedded since the corpus was built (or last caught up) to the candidates."""
        corpus = self.corpus
        now_seq = self.store.max_seq()
        if corpus is None or now_seq <= max(corpus.emb_seq, self._checked_seq):
            return 0
        self._checked_seq = now_seq  # papers stored without an embedding yet: look again once the seq moves
        with self._catch_up_lock:
            corpus = self.corpus
            assert corpus is not None
            new_ids, new_vecs, seq = [], [], corpus.emb_seq
            for ids, seqs, vecs in self.store.iter_embeddings(self.model_id, corpus.emb_seq):
                new_ids.append(ids)
                new_vecs.append(np.asarray(vecs, dtype=np.float32))
                seq = max(seq, int(seqs.max()))
            if not new_ids:
                return 0
            ids, vecs = np.concatenate(new_ids), np.concatenate(new_vecs)
            texts = self.store.paper_texts(ids.tolist())  # (categories, title, abstract)
            keep = [i for i, d in enumerate(ids) if int(d) in texts]
            ids, vecs = ids[keep], vecs[keep]
            rows = corpus.space.transform([_text(texts[int(d)]) for d in ids])
            # a category first seen now is ignored until the next build, as new words are by the term space
            cats = category_rows([texts[int(d)][0].split() for d in ids], corpus.category_names)
            # A re-embedded candidate (a new version) is replaced, not duplicated.
            fresh = set(ids.tolist())
            old = np.fromiter((int(d) not in fresh for d in corpus.ids), dtype=bool, count=len(corpus.ids))
            n = self.candidate_limit  # newest first: the oldest candidates make room for the new ones
            self.corpus = Corpus(
                space=corpus.space, background=corpus.background, ids=np.concatenate([ids, corpus.ids[old]])[:n],
                vectors=np.concatenate([vecs, corpus.vectors[old]])[:n],
                terms=sp.vstack([rows, corpus.terms[old]], format="csr")[:n],
                categories=sp.vstack([cats, corpus.categories[old]], format="csr")[:n],
                category_names=corpus.category_names,
                days=([None] * len(ids) + [d for d, k in zip(corpus.days, old, strict=True) if k])[:n], emb_seq=seq,
                version=corpus.version + 1,
            )
            return len(ids)

    # -- users --------------------------------------------------------------------------------------
    def _entry(self, user_id: int) -> _UserEntry:
        """The user's cached model, refitted first if their saves, upvotes or dismissals changed."""
        corpus = self.corpus
        assert corpus is not None
        positives = self.store.foryou_positives(user_id)[:MAX_POSITIVES]
        negatives = self.store.not_interested_papers(user_id)[:MAX_NEGATIVES]
        signature = (tuple(positives), tuple(negatives), corpus.version)
        with self._users_lock:
            entry = self._users.get(user_id)
            if entry is not None and entry.signature == signature:
                self._users.move_to_end(user_id)
                return entry
        t0 = time.perf_counter()
        model = self._fit(corpus, positives, negatives)
        entry = _UserEntry(signature, model, fit_ms=(time.perf_counter() - t0) * 1e3)
        with self._users_lock:
            self._users[user_id] = entry
            self._users.move_to_end(user_id)
            while len(self._users) > MODEL_CACHE:
                self._users.popitem(last=False)
        return entry

    def _rows(self, corpus: Corpus, doc_ids: list[int]) -> PaperRows:
        """The papers of `doc_ids` that have an embedding (candidates' from memory, others' read), with
        their term and category rows."""
        texts = self.store.paper_texts(doc_ids) if doc_ids else {}  # (categories, title, abstract)
        found, vecs = [], []
        for d in doc_ids:
            r = corpus.row.get(d)
            v = corpus.vectors[r] if r is not None else self.vector_of(d)
            if v is not None and d in texts:
                found.append(d)
                vecs.append(np.asarray(v, dtype=np.float32))
        if not found:
            return PaperRows(np.zeros(0, dtype=np.int64), np.zeros((0, corpus.vectors.shape[1]), dtype=np.float32),
                             sp.csr_matrix((0, len(corpus.space)), dtype=np.float32),
                             sp.csr_matrix((0, len(corpus.category_names)), dtype=np.float32))
        return PaperRows(np.array(found, dtype=np.int64), np.vstack(vecs),
                         corpus.space.transform([_text(texts[d]) for d in found]),
                         category_rows([texts[d][0].split() for d in found], corpus.category_names))

    def _fit(self, corpus: Corpus, positives: list[int], negatives: list[int]) -> UserModel | None:
        pos = self._rows(corpus, positives)
        if not len(pos):
            return None
        return fit_rows(corpus.background, pos, self._rows(corpus, negatives))

    def has_model(self, user_id: int) -> bool:
        return self._entry(user_id).model is not None

    def ranking(self, user_id: int, trending_weight: float) -> list[Pick]:
        """The user's candidates, best first, without what they saved, upvoted or dismissed."""
        self.catch_up()
        entry = self._entry(user_id)
        corpus = self.corpus
        assert corpus is not None
        key = (corpus.version, round(trending_weight, 3))
        if entry.model is None:
            return []
        cached = entry.rankings.get(key)
        if cached is not None:
            return cached
        scores = entry.model.score_rows(corpus.candidates)
        seen = set(entry.signature[0]) | set(entry.signature[1])
        order_by = scores
        if trending_weight > 0:
            order_by = blend_with_trending(scores, self._trending(corpus), trending_weight)
        order = np.argsort(-order_by, kind="stable")
        picks = [Pick(int(corpus.ids[i]), float(scores[i])) for i in order if int(corpus.ids[i]) not in seen]
        entry.rankings = {key: picks}  # one blend at a time: a user rarely flips back and forth
        return picks

    def _trending(self, corpus: Corpus) -> np.ndarray:
        """Trending scores of the candidates (votes here and on HF, age), as the home feed computes them.

        Shared by every user. Reading the window's votes costs ~200 ms at 75k papers, so a stale copy
        (older than TRENDING_TTL_S) is served while a background thread reads the new one.
        """
        cached = self._trend
        if cached is None or cached[0] != corpus.version:
            scores = self._trending_now(corpus)
            self._trend = (corpus.version, time.monotonic(), scores)
            return scores
        if time.monotonic() - cached[1] > TRENDING_TTL_S and self._trend_lock.acquire(blocking=False):
            def refresh() -> None:
                try:
                    self._trend = (corpus.version, time.monotonic(), self._trending_now(corpus))
                except Exception:
                    log.exception("for you: refreshing trending scores failed")
                finally:
                    self._trend_lock.release()

            threading.Thread(target=refresh, name="foryou-trending", daemon=True).start()
        return cached[2]

    def _trending_now(self, corpus: Corpus) -> np.ndarray:
        days = [d for d in corpus.days if d]
        if not days:
            return np.zeros(len(corpus.ids))
        start, end = date.fromisoformat(min(days)), date.fromisoformat(max(days))
        rows = self.store.feed_rows(start, end, False)
        until = min(end_of(end), datetime.now(UTC))
        by_id = dict(zip((r.doc_id for r in rows), trending_scores(rows, until), strict=True)) if rows else {}
        return np.array([by_id.get(int(d), 0.0) for d in corpus.ids])

    def explain(self, user_id: int, doc_ids: list[int], k_papers: int = 3, k_terms: int = 5) -> dict[int, Explanation]:
        """Why each of `doc_ids` (candidates) was recommended to the user."""
        entry = self._entry(user_id)
        corpus = self.corpus
        if entry.model is None or corpus is None:
            return {}
        out = {}
        for d in doc_ids:
            r = corpus.row.get(d)
            if r is not None:
                out[d] = explain(entry.model, corpus.vectors[r], corpus.terms[r], corpus.space, k_papers, k_terms)
        return out

    def last_fit_ms(self, user_id: int) -> float | None:
        entry = self._users.get(user_id)
        return entry.fit_ms if entry else None


def ensure_term_space(store, directory: Path, force: bool = False) -> bool:
    """Fit the term space on every paper and save it in `directory`, unless the saved one is recent
    enough (the store grew by less than REFIT_GROWTH since). True when it (re)fitted."""
    n = store.count_papers()
    saved = TermSpace.load(directory)
    if n == 0 or (saved is not None and not force and n <= saved[1] * (1 + REFIT_GROWTH)):
        return False
    if n <= TERM_SPACE_MAX_PAPERS:
        texts = [f"{t}\n{a}" for batch in store.iter_paper_texts() for _, t, a in batch]
    else:  # a fixed random sample: the vocabulary and idf of 200k papers, not 2.7M texts in memory
        ids = np.random.default_rng(0).choice(store.paper_ids(), TERM_SPACE_MAX_PAPERS, replace=False)
        texts = []
        for i in range(0, len(ids), 5000):
            got = store.title_abstracts(sorted(int(d) for d in ids[i : i + 5000]))
            texts += [f"{t}\n{a}" for t, a in got.values()]
    TermSpace.fit(texts).save(directory, n)
    return True


def build_corpus(store, model_id: str, candidate_days: int = CANDIDATE_DAYS,
                 candidate_limit: int = CANDIDATE_LIMIT, seed: int = 0, space_dir: Path | None = None) -> Corpus:
    """Sample the background and load the candidates, in the term space saved in `space_dir` by
    `papertide index` (only those papers' texts are read and transformed), or else in one fitted here on
    every paper (a pass over all texts: a minute and ~1.7 GB at 75k papers). Category rows are over every
    category any paper has (`store.category_names()`), as benchmarks/bench_recsys.py builds them."""
    from papertide.rank.recommend import BACKGROUND_SIZE

    seq0 = store.max_seq()
    names = store.category_names()
    saved = TermSpace.load(space_dir) if space_dir is not None else None
    if saved is not None:
        space = saved[0]
        doc_ids = store.paper_ids()
        all_terms = None
    else:
        doc_ids, texts = [], []
        for batch in store.iter_paper_texts():
            for d, title, abstract in batch:
                doc_ids.append(d)
                texts.append(f"{title}\n{abstract}")
        if doc_ids:
            space, all_terms = TermSpace.fit_transform(texts)
        del texts
    if not doc_ids:
        raise ValueError("there are no papers to recommend from")
    pos = {d: i for i, d in enumerate(doc_ids)}
    latest = store.latest_day(False) or date.today()
    recent = store.recent_papers(latest - timedelta(days=candidate_days), candidate_limit)
    cand_days = dict(recent)
    rng = np.random.default_rng(seed)
    # The background is drawn from the papers older than the candidates, as the benchmark draws it from the
    # papers before its cutoff: a candidate in the background would be a negative of every model (the
    # benchmark measured 0.132 vs 0.134 Recall@50 with candidates in the pool, benchmarks/README.md). From
    # every paper while the older ones are too few (a young store). Over-sampled: papers without an
    # embedding yet drop out below.
    pool = np.asarray(doc_ids, dtype=np.int64)
    older = pool[~np.isin(pool, np.fromiter(cand_days, dtype=np.int64, count=len(cand_days)))]
    if len(older) >= BACKGROUND_SIZE * 6 // 5:
        pool = older
    bg_pick = {int(d) for d in rng.choice(pool, min(len(pool), BACKGROUND_SIZE * 6 // 5), replace=False)}
    want = set(cand_days) | bg_pick
    got_ids, got_vecs, emb_seq = [], [], 0
    for ids, seqs, vecs in store.iter_embeddings(model_id, 0):
        emb_seq = max(emb_seq, int(seqs.max()))
        keep = np.fromiter((int(d) in want for d in ids), dtype=bool, count=len(ids))
        got_ids.append(ids[keep])
        got_vecs.append(np.asarray(vecs[keep], dtype=np.float32))
    ids = np.concatenate(got_ids) if got_ids else np.zeros(0, dtype=np.int64)
    vecs = np.concatenate(got_vecs) if got_vecs else np.zeros((0, 384), dtype=np.float32)
    row_of = {int(d): i for i, d in enumerate(ids)}
    bg_ids = sorted(d for d in bg_pick if d in row_of and d in pos)[:BACKGROUND_SIZE]
    if not bg_ids:
        raise ValueError("no paper has an embedding yet: run `papertide index`")
    cands = [d for d, _ in recent if d in row_of and d in pos]  # newest first
    texts_of = store.paper_texts(sorted(set(bg_ids) | set(cands)))  # (categories, title, abstract)
    if all_terms is not None:
        bg_terms, cand_terms = all_terms[[pos[d] for d in bg_ids]], all_terms[[pos[d] for d in cands]].tocsr()
    else:
        bg_terms, cand_terms = (space.transform([_text(texts_of[d]) for d in part]) for part in (bg_ids, cands))
    bg_cats, cand_cats = (category_rows([texts_of[d][0].split() for d in part], names) for part in (bg_ids, cands))
    background = Background.from_rows(PaperRows(np.array(bg_ids, dtype=np.int64), vecs[[row_of[d] for d in bg_ids]],
                                                bg_terms, bg_cats))
    return Corpus(space=space, background=background, ids=np.array(cands, dtype=np.int64),
                  vectors=vecs[[row_of[d] for d in cands]], terms=cand_terms, categories=cand_cats,
                  category_names=names, days=[cand_days[d] for d in cands], emb_seq=max(emb_seq, seq0))


def _text(row: tuple[str, str, str]) -> str:
    """The term space's text of a `store.paper_texts` row (categories, title, abstract)."""
    return f"{row[1]}\n{row[2]}"
