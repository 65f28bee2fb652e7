"""For you: a small per-user model over paper embeddings and tf-idf terms, refitted in milliseconds, explained.

A user's model scores a paper as a weighted sum of calibrated parts (weights LEX/DENSE/NEAREST/CATEGORY_WEIGHT):

* lexical: a linear SVM over tf-idf terms, the user's positives (library + upvotes) against a fixed,
  cached background sample of the corpus and the user's explicit negatives ("not interested") -
  arxiv-sanity's per-tag SVM (karpathy/arxiv-sanity-lite), but trained against BACKGROUND_SIZE sampled
  papers instead of the whole corpus, so a refit costs milliseconds, not seconds;
* dense: the positives' mean embedding minus the background's, whitened by the background covariance
  (linear discriminant analysis with a shared covariance: Hariharan, Malik & Ramanan, "Discriminative
  decorrelation for clustering and classification", ECCV 2012) - one 384 x 384 product per refit;
* nearest: the cosine to the closest positive, so a user with several interests is not averaged away;
* categories (optional): how much likelier the paper's arXiv categories are among the positives than in
  the background (a smoothed log-likelihood ratio, averaged over the paper's categories).

Each part is standardised by its mean and spread over the background sample, so a new paper gets the
same score whatever else arrives with it (no per-batch normalisation). Weights and settings were tuned on
the recsys dev users (benchmarks/README.md, "For you"). Everything here is pure: arrays in, arrays out;
persisting a model is the store's job - `UserModel.parts()` is what to store (a 384-float vector, the
lexical weights as (term id, weight) pairs, one float per category, eight floats of calibration, the
positives' ids), and `model_from_parts` rebuilds it with the positives' embeddings from the dense index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

# Fusion weights of the standardised parts, chosen by cross-validation between the halves of the 500
# recsys dev users (benchmarks/README.md, "For you"). Session 5, at the 4,000-paper background, grid dense
# 0.25 / 0.5 / 0.75 x nearest 0.6 / 0.9 / 1.2 (/ 1.5) x categories 0 / 0.25: users 251-500 pick this row
# both with the texts as given and with code-URL owners masked for every method; users 1-250 pick dense
# 0.5 or 0.75, nearest 0.9, categories 0. Recall@50 on all 500, background draw 0, against the row before
# (dense 0.25, nearest 0.6): 0.1716 vs 0.1683 as given, 0.1667 vs 0.1602 owners masked (three draws
# masked: 0.1667 / 0.1664 / 0.1661 vs 0.1602 / 0.1640 / 0.1650). With owners masked the terms say less
# and the embedding parts carry more. CATEGORY_PRIOR pseudo-papers of the background's category mix
# smooth a small library's counts.
LEX_WEIGHT = 1.0
DENSE_WEIGHT = 0.5
NEAREST_WEIGHT = 1.2
CATEGORY_WEIGHT = 0.25
CATEGORY_PRIOR = 5.0
# SVM cost (squared hinge, balanced classes): 1.0 beat 0.1 and tied with 10 on the dev users.
SVM_C = 1.0
# Stopping tolerance of liblinear's dual coordinate descent: 0.1, liblinear's own default for it, instead
# of 1e-4 (session 4): ~26 passes instead of ~80 at a 4,000-paper background, the same ranking for practical
# purposes (scores over 4.6k papers correlate > 0.9999 with the 1e-4 fit's, 49.4 of the top 50 shared on
# average); Recall@50 at 4,000 over three draws 0.1682 / 0.1739 / 0.1712 vs 0.1678 / 0.1739 / 0.1716 at 1e-4.
SVM_TOL = 0.1
# Ridge on the background covariance before inverting it (the whitening); 0.001 vs 0.003: same recall.
WHITEN_RIDGE = 1e-3
# Background papers every user is fitted against. 4,000 vs 2,000 (session 4, benchmarks/README.md "For you",
# three draws each on the 500 recsys dev users): Recall@50 0.1678 / 0.1739 / 0.1716 (mean +22.3% over the
# arxiv-sanity SVM) vs 0.1698 / 0.1670 / 0.1674 (+20.1%), but it doubled the fit, and the for-you page's first
# view p95 went over its 150 ms target in 4 of 5 runs. Since commit b322f5e the fit trains over the rows' own
# term columns with SVM_TOL 0.1: at 4,000 fit p95 40-46 ms on the benchmark (was 91-111), and the page's
# first view p95 125-136 ms (2,000 with the old fit, alternated: 115-146), Recall@50 0.1711 (+22.3%).
# 5,000 tied 2,000 on the first 100 users.
BACKGROUND_SIZE = 4000
# Lexical weights kept per user (largest |weight|): the SVM gives every term of the background a weight,
# ~100k of them; the largest LEX_KEEP carry the ranking, and keep a stored model and batch scoring small.
LEX_KEEP = 4096
# Explicit negatives count this much more than a background paper in the SVM (they are sure negatives).
NEGATIVE_WEIGHT = 5.0
# The term space: unigrams and bigrams, kept if in >= 2 papers and <= 10% of them (the rare, specific
# terms carry the signal: 20,000 terms as arxiv-sanity keeps gave 0.147 Recall@50 as a profile, all
# 525k terms 0.186 on the same users), tf x idf, l2 rows, tf = 1 + TF_LOG_SCALE x ln(count): 1 is
# sklearn's sublinear tf, 0 binary. Repetition says less than presence in an abstract for the recsys
# users (500 dev users, fusion dense 0.25 / nearest 0.6 / categories 0.5: 0.1601 / 0.1659 / 0.1676 /
# 0.1716 Recall@50 at 1 / 0.5 / 0.3 / 0); 0.3, not 0, because a reader who saved three speech papers
# should still get mostly speech papers first (tests/test_foryou_web.py fails at 0.15 and at 0: one more
# of the top 5 is off the topic).
# Only the rows depend on it: a saved space (terms, idf) stays valid.
TF_LOG_SCALE = 0.3
TERM_MIN_DF = 2
TERM_MAX_DF = 0.1
TOKEN_PATTERN = r"(?u)\b[a-zA-Z_][a-zA-Z0-9_\-]+\b"
# Bump when the saved term space means something else (tokenisation, n-grams, df limits): it is refitted.
SPACE_LAYOUT = 1

__all__ = [
    "Background",
    "Explanation",
    "PaperRows",
    "TermSpace",
    "UserModel",
    "UserModels",
    "blend_with_trending",
    "category_names",
    "category_rows",
    "category_scores",
    "explain",
    "fit_rows",
    "fit_user",
    "model_from_parts",
]


class TermSpace:
    """Tf-idf terms of paper texts (title + abstract): a vocabulary and its idf, fitted on the corpus.

    Persist `terms` and `idf` (a table of term, idf); papers arriving later are transformed with them, and
    their new words are ignored until the space is refitted (e.g. monthly, then every model refitted).
    """

    def __init__(self, terms: Sequence[str], idf: np.ndarray):
        from sklearn.feature_extraction.text import CountVectorizer

        self.terms = list(terms)
        self.idf = np.asarray(idf, dtype=np.float64)
        self._idf32 = self.idf.astype(np.float32)
        self._vec = CountVectorizer(**_vectorizer_args(), vocabulary={t: i for i, t in enumerate(self.terms)})

    @classmethod
    def fit(cls, texts: Sequence[str], min_df: int = TERM_MIN_DF, max_df: float = TERM_MAX_DF) -> TermSpace:
        return cls.fit_transform(texts, min_df, max_df)[0]

    @classmethod
    def fit_transform(cls, texts: Sequence[str], min_df: int = TERM_MIN_DF,
                      max_df: float = TERM_MAX_DF) -> tuple[TermSpace, sp.csr_matrix]:
        """`fit` and the texts' rows in one pass (transforming again costs as much as fitting)."""
        from sklearn.feature_extraction.text import CountVectorizer

        vec = CountVectorizer(**_vectorizer_args(), min_df=min_df, max_df=max_df)
        counts = vec.fit_transform(texts).tocsr()
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        idf = np.log((1.0 + counts.shape[0]) / (1.0 + df)) + 1.0  # sklearn's smoothed idf (TfidfVectorizer's)
        space = cls(vec.get_feature_names_out().tolist(), idf)
        return space, space._weigh(counts)

    def __len__(self) -> int:
        return len(self.terms)

    def save(self, directory: Path, papers: int) -> None:
        """Write the space to `directory` (terms.txt, idf.npy, space.json last, each renamed into place:
        a kill leaves the old space or the new one). `papers`: how many papers it was fitted on."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, write in (
            ("terms.txt", lambda f: f.write("\n".join(self.terms).encode())),
            ("idf.npy", lambda f: np.save(f, self.idf)),
            ("space.json", lambda f: f.write(json.dumps({
                "papers": papers, "terms": len(self.terms), "layout": SPACE_LAYOUT}).encode())),
        ):
            tmp = directory / (name + ".tmp")
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, directory / name)

    @classmethod
    def load(cls, directory: Path) -> tuple[TermSpace, int] | None:
        """The space saved in `directory` and how many papers it was fitted on; None if absent or unusable."""
        try:
            meta = json.loads((directory / "space.json").read_text())
            if meta.get("layout") != SPACE_LAYOUT:
                return None
            terms = (directory / "terms.txt").read_text().split("\n")
            idf = np.load(directory / "idf.npy")
        except (OSError, ValueError):
            return None
        if len(terms) != meta["terms"] or len(idf) != len(terms):
            return None  # files from different saves (a crash between the renames)
        return cls(terms, idf), int(meta["papers"])

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised tf-idf rows (float32 CSR), one per text; tf = 1 + TF_LOG_SCALE x ln(count)."""
        return self._weigh(self._vec.transform(texts).tocsr())

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        from sklearn.preprocessing import normalize

        rows = counts.astype(np.float32)
        rows.data = (1.0 + TF_LOG_SCALE * np.log(rows.data)) * self._idf32[rows.indices]
        return normalize(rows, copy=False)


def _vectorizer_args() -> dict:
    return {
        "strip_accents": "unicode", "lowercase": True, "stop_words": "english", "token_pattern": TOKEN_PATTERN,
        "ngram_range": (1, 2), "dtype": np.float32,
    }


@dataclass(frozen=True)
class PaperRows:
    """Papers as a user model reads them, row-aligned: doc ids, embeddings, term rows, category rows.

    The site (rank/foryou.py) and the benchmark (benchmarks/bench_recsys.py) both fit with `fit_rows` and
    score with `UserModel.score_rows` over these, so the product runs the model the benchmark measures.
    """

    ids: np.ndarray  # int64 [n]
    vectors: np.ndarray  # float32 [n, d], L2-normalised
    terms: sp.csr_matrix  # [n, n_terms] rows of the TermSpace
    categories: sp.csr_matrix | None = None  # [n, n_categories] `category_rows` over the background's list

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: Sequence[int] | np.ndarray) -> PaperRows:
        """The rows at positions `rows` (not doc ids), in that order."""
        idx = np.asarray(rows, dtype=np.int64)
        cats = None if self.categories is None else self.categories[idx].tocsr()
        return PaperRows(self.ids[idx], self.vectors[idx], self.terms[idx].tocsr(), cats)


@dataclass
class Background:
    """What every user model is fitted against: a fixed sample of the corpus, and its statistics.

    Build it once (and again when the corpus has drifted, e.g. monthly) from BACKGROUND_SIZE random
    papers: their embeddings, term rows and (optionally) category indicator rows over a fixed category
    list. `whiten` is (cov + ridge I)^-1 of the sample's embeddings.
    """

    vectors: np.ndarray  # float32 [b, d], L2-normalised
    terms: sp.csr_matrix  # [b, n_terms] rows of the TermSpace
    categories: sp.csr_matrix | None = None  # [b, n_categories], 1 where the paper has the category
    mean: np.ndarray = field(init=False)
    whiten: np.ndarray = field(init=False)
    category_prior: np.ndarray | None = field(init=False)
    # The SVM is trained over the columns that occur in its rows only (a term in no row gets weight 0
    # anyway): the background's (`_cols`, sorted) then the positives' and negatives' other terms. Its rows
    # over those columns, float64 for liblinear and float32 for the calibration, are built once here.
    _cols: np.ndarray = field(init=False, repr=False)
    _local64: sp.csr_matrix = field(init=False, repr=False)
    _local32: sp.csr_matrix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        v = np.asarray(self.vectors, dtype=np.float64)
        self.mean = v.mean(0)
        cov = np.cov(v.T) if len(v) > 1 else np.zeros((v.shape[1], v.shape[1]))
        self.whiten = np.linalg.inv(cov + WHITEN_RIDGE * np.eye(v.shape[1])).astype(np.float32)
        t = self.terms.tocsr()
        t.sort_indices()
        self._cols = np.unique(t.indices).astype(np.int64)
        local = np.searchsorted(self._cols, t.indices).astype(np.int32)  # monotone: rows stay sorted
        shape = (t.shape[0], len(self._cols))
        self._local64 = sp.csr_matrix((t.data.astype(np.float64), local, t.indptr.copy()), shape=shape)
        self._local32 = sp.csr_matrix((t.data.astype(np.float32), local, t.indptr.copy()), shape=shape)
        self.category_prior = None
        if self.categories is not None:
            counts = np.asarray(self.categories.sum(0)).ravel() + 1.0  # add-one: unseen categories stay finite
            self.category_prior = counts / counts.sum()

    @classmethod
    def sample(cls, vectors: np.ndarray, terms: sp.csr_matrix, categories: sp.csr_matrix | None = None,
               size: int = BACKGROUND_SIZE, seed: int = 0) -> Background:
        """A background of `size` random rows (all of them when there are fewer)."""
        n = vectors.shape[0]
        rows = np.sort(np.random.default_rng(seed).choice(n, min(size, n), replace=False))
        cats = categories[rows].tocsr() if categories is not None else None
        return cls(np.ascontiguousarray(vectors[rows]), terms[rows].tocsr(), cats)

    @classmethod
    def from_rows(cls, rows: PaperRows) -> Background:
        """A background of exactly these papers (with their category rows, if they have them)."""
        return cls(np.ascontiguousarray(rows.vectors, dtype=np.float32), rows.terms.tocsr(), rows.categories)


PARTS = ("lexical", "dense", "nearest", "categories")


@dataclass
class UserModel:
    """One user's scorer: dense weights, lexical weights, category weights, the positives' vectors, calibration."""

    dense: np.ndarray  # float32 [d]: whitened mean difference
    lexical: sp.csr_matrix  # [1, n_terms] SVM weights (the LEX_KEEP largest)
    lexical_bias: float
    positives: np.ndarray  # float32 [p, d]: for the nearest part and the explanations
    positive_ids: np.ndarray  # int64 [p]: the papers behind `positives` (doc ids, as the caller gave them)
    category_llr: np.ndarray | None  # float32 [n_categories], or None without categories
    calibration: np.ndarray  # float64 [4, 2]: (mean, std) over the background of each of PARTS
    weights: tuple[float, ...] = (LEX_WEIGHT, DENSE_WEIGHT, NEAREST_WEIGHT, CATEGORY_WEIGHT)

    def parts_raw(self, vectors: np.ndarray, terms: sp.csr_matrix,
                  categories: sp.csr_matrix | None = None) -> np.ndarray:
        """Uncalibrated scores of papers, one row per part of PARTS: [4, n] (categories 0 without them)."""
        # A dense weight vector: a CSR mat-vec is ~10x faster than a sparse-sparse product at 14k x 950k terms.
        lex = np.asarray(terms @ self.lexical.toarray().ravel()).ravel() + self.lexical_bias
        return self._parts_raw(lex, vectors, categories)

    def _parts_raw(self, lex: np.ndarray, vectors: np.ndarray, categories: sp.csr_matrix | None) -> np.ndarray:
        """`parts_raw` given the papers' lexical scores (bias included)."""
        dense = vectors @ self.dense
        near = (vectors @ self.positives.T).max(1) if len(self.positives) else np.zeros(len(vectors))
        cat = np.zeros(len(vectors))
        if categories is not None and self.category_llr is not None:
            cat = category_scores(self.category_llr[None, :], categories)[0]
        return np.vstack([lex, dense, near, cat]).astype(np.float64)

    def score(self, vectors: np.ndarray, terms: sp.csr_matrix, categories: sp.csr_matrix | None = None) -> np.ndarray:
        """The model's score of each paper (embeddings [n, d], term rows, category rows): higher = better."""
        z = (self.parts_raw(vectors, terms, categories) - self.calibration[:, :1]) / self.calibration[:, 1:]
        w = np.asarray(self.weights, dtype=np.float64)
        if categories is None or self.category_llr is None:
            w = w * (np.arange(len(w)) < 3)
        return w @ z

    def score_rows(self, rows: PaperRows) -> np.ndarray:
        """`score` of papers given as PaperRows; a model with a categories part needs their category rows
        (`score` would drop the part without them, silently)."""
        if self.category_llr is not None and rows.categories is None:
            raise ValueError("this model has a categories part: pass the papers' category rows")
        return self.score(rows.vectors, rows.terms, rows.categories)

    def parts(self) -> dict[str, np.ndarray | float | None]:
        """What to persist (a few KB): arrays a store can keep as blobs or rows, no pickles."""
        lex = self.lexical.tocsr()
        return {
            "dense": self.dense, "lexical_terms": lex.indices.astype(np.int32), "lexical_weights": lex.data,
            "lexical_bias": self.lexical_bias, "category_llr": self.category_llr, "calibration": self.calibration,
            "positive_ids": self.positive_ids,
        }


def model_from_parts(parts: dict, positives: np.ndarray, n_terms: int) -> UserModel:
    """Rebuild a stored model: `parts` as `UserModel.parts()` gave them, the positives' current embeddings
    (rows in `parts["positive_ids"]` order, read from the dense index) and the term space's size."""
    terms = np.asarray(parts["lexical_terms"], dtype=np.int32)
    weights = np.asarray(parts["lexical_weights"], dtype=np.float32)
    lexical = sp.csr_matrix((weights, terms, [0, len(terms)]), shape=(1, n_terms))
    llr = parts.get("category_llr")
    return UserModel(
        np.asarray(parts["dense"], dtype=np.float32), lexical, float(parts["lexical_bias"]),
        np.asarray(positives, dtype=np.float32), np.asarray(parts["positive_ids"], dtype=np.int64),
        None if llr is None else np.asarray(llr, dtype=np.float32), np.asarray(parts["calibration"], dtype=np.float64),
    )


def category_rows(categories: Sequence[Sequence[str]], names: Sequence[str]) -> sp.csr_matrix:
    """Indicator rows [papers, len(names)] of each paper's arXiv categories (unknown ones ignored)."""
    col = {c: i for i, c in enumerate(names)}
    indptr, indices = [0], []
    for cats in categories:
        indices.extend(sorted({col[c] for c in cats if c in col}))
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, np.asarray(indices, dtype=np.int32), indptr), shape=(len(categories), len(names)))


def category_names(categories: Iterable[Sequence[str]]) -> list[str]:
    """The sorted category list (columns of `category_rows`) of papers' category lists."""
    return sorted({c for cats in categories for c in cats})


def category_scores(llr: np.ndarray, categories: sp.csr_matrix) -> np.ndarray:
    """Mean log-likelihood ratio of each paper's categories, for each user: [users, papers]."""
    n = np.maximum(np.asarray(categories.sum(1)).ravel(), 1.0)
    return np.asarray(categories @ llr.T).T / n


def fit_user(
    bg: Background,
    pos_vectors: np.ndarray,
    pos_terms: sp.csr_matrix,
    neg_vectors: np.ndarray | None = None,
    neg_terms: sp.csr_matrix | None = None,
    pos_ids: Sequence[int] | None = None,
    pos_weights: np.ndarray | None = None,
    pos_categories: sp.csr_matrix | None = None,
) -> UserModel:
    """Fit a user's model from their positives (library + upvotes) and explicit negatives, if any.

    A full refit is the incremental update: it costs one SVM over (positives + negatives + background)
    rows and one 384 x 384 product, a few tens of ms (benchmarks/README.md), whatever the corpus size.
    `pos_weights` (default 1) lets recent saves count more; `pos_categories` (rows over the background's
    category list) enables the categories part, and is required when the background has category rows
    (a caller forgetting them would get a weaker model without noticing: the site once did).
    """
    from sklearn.svm import LinearSVC

    pos_vectors = np.asarray(pos_vectors, dtype=np.float32)
    if len(pos_vectors) == 0:
        raise ValueError("a user model needs at least one positive paper")
    if bg.category_prior is not None and pos_categories is None:
        raise ValueError("the background has category rows: pass the positives' (pos_categories)")
    n_terms = bg.terms.shape[1]
    has_neg = neg_vectors is not None and len(neg_vectors) > 0
    pw = np.ones(len(pos_vectors)) if pos_weights is None else np.asarray(pos_weights, dtype=np.float64)
    # lexical: positives (+1) against the background and explicit negatives (-1), classes balanced,
    # over the columns present in these rows only (the background's first: see Background._cols)
    extra_rows = [pos_terms.tocsr()]
    y = [np.ones(pos_terms.shape[0]), np.zeros(bg.terms.shape[0])]
    w = [pw, np.ones(bg.terms.shape[0])]
    if has_neg and neg_terms is not None:
        extra_rows.append(neg_terms.tocsr())
        y.append(np.zeros(neg_terms.shape[0]))
        w.append(np.full(neg_terms.shape[0], NEGATIVE_WEIGHT))
    cols, local = _local_columns(bg._cols, [r.indices for r in extra_rows])
    B = bg._local64
    parts = [(extra_rows[0], local[0]), (B, B.indices)] + [(r, c) for r, c in zip(extra_rows[1:], local[1:], strict=True)]
    indptr = [np.zeros(1, dtype=np.int64)]
    offset = 0
    for r, _ in parts:
        indptr.append(np.asarray(r.indptr[1:], dtype=np.int64) + offset)
        offset += int(r.indptr[-1])
    X = sp.csr_matrix((np.concatenate([np.asarray(r.data[: r.indptr[-1]], dtype=np.float64) for r, _ in parts]),
                       np.concatenate([np.asarray(c[: r.indptr[-1]], dtype=np.int32) for r, c in parts]),
                       np.concatenate(indptr)), shape=(sum(r.shape[0] for r, _ in parts), max(len(cols), 1)))
    yy, ww = np.concatenate(y), np.concatenate(w)
    ww[yy == 1] *= ww[yy == 0].sum() / ww[yy == 1].sum()  # balanced: both classes weigh the same in total
    # dual coordinate descent, as "auto" picks whenever terms outnumber papers (always at real sizes)
    clf = LinearSVC(C=SVM_C, tol=SVM_TOL, dual=True, random_state=0)  # fixed: the same fit every time
    clf.fit(X, yy, sample_weight=ww)
    coef = clf.coef_.astype(np.float32).ravel()[: len(cols)]
    keep = np.flatnonzero(coef)
    if len(keep) > LEX_KEEP:
        keep = np.argpartition(-np.abs(coef), LEX_KEEP - 1)[:LEX_KEEP]
    order = np.argsort(cols[keep], kind="stable")
    lexical = sp.csr_matrix((coef[keep][order], cols[keep][order].astype(np.int32), [0, len(keep)]), shape=(1, n_terms))
    bias = float(clf.intercept_[0])
    # the background's lexical scores for the calibration, over its own columns (the first len(bg._cols))
    w_bg = np.zeros(len(bg._cols), dtype=np.float32)
    kb = keep[keep < len(bg._cols)]
    w_bg[kb] = coef[kb]
    bg_lex = np.asarray(bg._local32 @ w_bg).ravel() + bias
    # dense: whitened difference between the positives' mean and the reference (background, negatives)
    ref = bg.mean
    if has_neg:
        assert neg_vectors is not None
        ref = 0.5 * bg.mean + 0.5 * np.asarray(neg_vectors, dtype=np.float64).mean(0)
    pos_mean = (pw[:, None] * pos_vectors).sum(0) / pw.sum()
    dense = (bg.whiten @ (pos_mean - ref).astype(np.float32)).astype(np.float32)
    # categories: smoothed category frequencies of the positives against the background's
    llr = None
    if pos_categories is not None and bg.category_prior is not None:
        counts = np.asarray(pos_categories.T @ pw).ravel() + CATEGORY_PRIOR * bg.category_prior
        llr = np.log(counts / counts.sum() / bg.category_prior).astype(np.float32)
    ids = np.asarray(pos_ids if pos_ids is not None else np.arange(len(pos_vectors)), dtype=np.int64)
    model = UserModel(dense, lexical, bias, pos_vectors, ids, llr, np.tile([0.0, 1.0], (4, 1)))
    raw = model._parts_raw(bg_lex, bg.vectors, bg.categories)
    std = raw.std(1)
    model.calibration = np.column_stack([raw.mean(1), np.where(std > 0, std, 1.0)])
    return model


def _local_columns(bg_cols: np.ndarray, indices: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The SVM's columns - the background's (`bg_cols`, sorted) then the other terms of `indices`, sorted -
    and each of `indices` mapped to them."""
    nb = len(bg_cols)
    found = []
    for idx in indices:
        at = np.searchsorted(bg_cols, idx)
        hit = np.zeros(len(idx), dtype=bool) if nb == 0 else bg_cols[np.minimum(at, nb - 1)] == idx
        found.append((at, hit))
    extra = np.unique(np.concatenate([idx[~hit] for idx, (_, hit) in zip(indices, found, strict=True)]))
    extra = extra.astype(np.int64)
    local = [np.where(hit, at, nb + np.searchsorted(extra, idx)).astype(np.int32)
             for idx, (at, hit) in zip(indices, found, strict=True)]
    return np.concatenate([bg_cols, extra]), local


def fit_rows(bg: Background, positives: PaperRows, negatives: PaperRows | None = None,
             pos_weights: np.ndarray | None = None) -> UserModel:
    """`fit_user` on PaperRows: the one call the site and the benchmark make (positives' ids, embeddings,
    term rows and category rows; negatives' embeddings and term rows - the categories part learns from
    the positives against the background only)."""
    neg = negatives if negatives is not None and len(negatives) else None
    return fit_user(
        bg, positives.vectors, positives.terms,
        None if neg is None else neg.vectors, None if neg is None else neg.terms,
        pos_ids=positives.ids, pos_weights=pos_weights, pos_categories=positives.categories,
    )


class UserModels:
    """Many users' models stacked, to score a batch of new papers for all of them in a few products."""

    def __init__(self, models: Sequence[UserModel]):
        self.n = len(models)
        self.dense = np.vstack([m.dense for m in models]).astype(np.float32)  # [u, d]
        self.lexical = sp.vstack([m.lexical for m in models], format="csr")  # [u, n_terms]
        self.bias = np.array([m.lexical_bias for m in models])
        self.calibration = np.stack([m.calibration for m in models])  # [u, 4, 2]
        self.weights = np.array([m.weights for m in models], dtype=np.float64)  # [u, 4]
        self.positives = np.vstack([m.positives for m in models]).astype(np.float32)  # [sum p, d]
        counts = np.array([len(m.positives) for m in models])
        self._starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        has_cat = [m.category_llr is not None for m in models]
        self.category_llr = None
        if all(has_cat):
            self.category_llr = np.vstack([m.category_llr for m in models])  # type: ignore[misc]
        elif any(has_cat):
            raise ValueError("either every model or none has category weights")

    def score(self, vectors: np.ndarray, terms: sp.csr_matrix, categories: sp.csr_matrix | None = None) -> np.ndarray:
        """Scores [users, papers]: each user's model on each new paper (as UserModel.score)."""
        parts = [
            (self.lexical @ terms.T).toarray() + self.bias[:, None],
            self.dense @ vectors.T,
            np.maximum.reduceat(self.positives @ vectors.T, self._starts, axis=0),
        ]
        if categories is not None and self.category_llr is not None:
            parts.append(category_scores(self.category_llr, categories))
        out = np.zeros((self.n, len(vectors)), dtype=np.float32)
        for j, part in enumerate(parts):
            mean, std = self.calibration[:, j, 0:1], self.calibration[:, j, 1:2]
            out += (self.weights[:, j : j + 1] * (part - mean) / std).astype(np.float32)
        return out


@dataclass(slots=True)
class Explanation:
    """Why a paper was recommended: the closest papers of the user's library and the terms they share."""

    nearest: list[tuple[int, float]]  # (positive paper id, cosine), closest first
    terms: list[tuple[str, float]]  # (term, contribution to the lexical score), largest first


def explain(model: UserModel, vector: np.ndarray, terms_row: sp.csr_matrix, space: TermSpace,
            k_papers: int = 3, k_terms: int = 5) -> Explanation:
    """The `k_papers` nearest positives and the `k_terms` terms that raise this paper's score most."""
    sims = model.positives @ np.asarray(vector, dtype=np.float32)
    top = np.argsort(-sims, kind="stable")[:k_papers]
    nearest = [(int(model.positive_ids[i]), float(sims[i])) for i in top]
    row = terms_row.tocsr()
    contrib = row.multiply(model.lexical).tocsr()  # term weight in the paper x the user's weight of it
    idx, val = contrib.indices, contrib.data
    order = np.argsort(-val, kind="stable")
    terms = [(space.terms[int(idx[i])], float(val[i])) for i in order[:k_terms] if val[i] > 0]
    return Explanation(nearest, terms)


def blend_with_trending(for_you: np.ndarray, trending: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) x for-you + weight x trending, each as a percentile rank within the candidates.

    Ranks, not raw scores: trending scores are heavy-tailed and for-you scores standardised, so only
    their orders are comparable. weight 0 = pure for-you order, 1 = pure trending order.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be within [0, 1], got {weight}")
    a, b = np.asarray(for_you, dtype=np.float64), np.asarray(trending, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"for_you and trending differ in shape: {a.shape} vs {b.shape}")
    return (1.0 - weight) * _percentile(a) + weight * _percentile(b)


def _percentile(x: np.ndarray) -> np.ndarray:
    if len(x) <= 1:
        return np.ones(len(x))
    ranks = np.empty(len(x))
    ranks[np.argsort(x, kind="stable")] = np.arange(len(x))
    return ranks / (len(x) - 1)
