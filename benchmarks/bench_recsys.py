"""The "for you" benchmark on recsys dev users: papertide's per-user model vs three baselines, and its speed.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_recsys.py [--users N]

Protocol: ../shared/data/README.md (recsys/) and papertide.eval.recsys. The 74,728 papers and their
embeddings are read (read-only) from the benchmark store benchmarks/work/full/home/papertide.db; nothing is
re-embedded. Baselines, in the same run over the same users and candidates:
  * newest-first: candidates by listing day;
  * centroid: cosine of each candidate to the mean of the library's embeddings;
  * tf-idf + LinearSVC as arxiv-sanity-lite does it (karpathy/arxiv-sanity-lite compute.py / serve.py):
    TfidfVectorizer(ngram 1-2, 20,000 features, min_df 5, max_df 0.1, sublinear tf, l2) fit on every paper
    (title + abstract: the protocol hides authors, which arxiv-sanity-lite would include), one
    LinearSVC(class_weight="balanced", C=0.01, tol=1e-6) per user with the library as positives and every
    other paper as negatives, candidates ranked by decision_function. It takes ~5 s a user on this machine,
    so its per-user rankings are cached in benchmarks/work/recsys/ (keyed by the user and the library);
    --fresh-svm recomputes them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
try:
    import papertide  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "src"))

from papertide.eval.recsys import (
    RecsysCorpus,
    RecsysTask,
    build_task,
    evaluate_recsys,
    load_corpus_db,
    load_users,
    mask_url_owners,
    per_user,
    run_from_scores,
)

DATA = ROOT.parent / "shared" / "data" / "recsys"
DB = ROOT / "benchmarks" / "work" / "full" / "home" / "papertide.db"
WORK = ROOT / "benchmarks" / "work" / "recsys"
RESULTS = ROOT / "benchmarks" / "results"
SVM_C = 0.01  # arxiv-sanity-lite serve.py


def sanity_tfidf(corpus: RecsysCorpus, masked: bool = False) -> sp.csr_matrix:
    """arxiv-sanity-lite's tf-idf features of every paper (cached: the fit takes minutes here); `masked`:
    from the texts with code-URL owners masked."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = corpus.texts()
    if masked:
        texts = [mask_url_owners(t) for t in texts]
    key = hashlib.blake2b("\x00".join(corpus.arxiv_ids).encode(), digest_size=8).hexdigest()
    f = WORK / f"sanity-tfidf-{key}{'-masked' if masked else ''}.npz"
    if f.exists():
        return sp.load_npz(f).tocsr()
    v = TfidfVectorizer(
        input="content", encoding="utf-8", decode_error="replace", strip_accents="unicode", lowercase=True,
        analyzer="word", stop_words="english", token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b",
        ngram_range=(1, 2), max_features=20000, norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True,
        max_df=0.1, min_df=5,
    )
    X = v.fit_transform(texts).tocsr().astype(np.float32)
    WORK.mkdir(parents=True, exist_ok=True)
    sp.save_npz(f.with_suffix(".tmp.npz"), X)
    os.replace(f.with_suffix(".tmp.npz"), f)
    return X


def svm_run(corpus: RecsysCorpus, task: RecsysTask, X: sp.csr_matrix, user: str, fresh: bool = False,
            masked: bool = False) -> dict[str, float]:
    """arxiv-sanity-lite's per-tag SVM for one user: top RUN_DEPTH candidates (cached per user, library and
    features: `masked` = X is sanity_tfidf(masked=True))."""
    from sklearn.svm import LinearSVC

    lib = task.libraries[user]
    tag = "\x00masked" if masked else ""  # unmasked keys are the ones of the runs before the option
    key = hashlib.blake2b(f"{user}\x00{lib.tolist()}\x00{X.shape}\x00{SVM_C}{tag}".encode(), digest_size=8).hexdigest()
    f = WORK / "svm" / f"{key}.json"
    if f.exists() and not fresh:
        return json.loads(f.read_text())
    y = np.zeros(X.shape[0], dtype=np.float32)
    y[lib] = 1.0
    clf = LinearSVC(class_weight="balanced", verbose=False, max_iter=10000, tol=1e-6, C=SVM_C)
    clf.fit(X, y)
    run = run_from_scores(corpus, task.candidates, clf.decision_function(X[task.candidates]))
    f.parent.mkdir(parents=True, exist_ok=True)
    f.with_suffix(".tmp").write_text(json.dumps(run))
    os.replace(f.with_suffix(".tmp"), f)
    return run


def load(users_n: int | None):
    corpus = load_corpus_db(DB)
    users = load_users(DATA / "dev-users.txt")
    task = build_task(corpus, users[:users_n] if users_n else users)
    return corpus, task


def masked_vectors(corpus: RecsysCorpus) -> np.ndarray:
    """The embeddings with code-URL owners masked: the papers whose text the mask changes are re-embedded
    (as the store embeds them, `embed_text`), the others keep their stored vector. Cached."""
    from papertide.store.base import embed_text

    changed = [i for i in range(len(corpus)) if mask_url_owners(corpus.abstracts[i]) != corpus.abstracts[i]
               or mask_url_owners(corpus.titles[i]) != corpus.titles[i]]
    key = hashlib.blake2b("\x00".join(corpus.arxiv_ids[i] for i in changed).encode(), digest_size=8).hexdigest()
    f = WORK / f"vectors-masked-{key}.npy"
    if not f.exists():
        from papertide.index.embedder import Embedder

        t = time.perf_counter()
        new = Embedder().encode([embed_text(mask_url_owners(corpus.titles[i]), mask_url_owners(corpus.abstracts[i]))
                                 for i in changed])
        print(f"re-embedded {len(changed):,} papers with owners masked ({time.perf_counter() - t:.0f} s)",
              file=sys.stderr)
        WORK.mkdir(parents=True, exist_ok=True)
        np.save(f.with_suffix(".tmp.npy"), np.asarray(new, dtype=np.float32))
        os.replace(f.with_suffix(".tmp.npy"), f)
    vectors = corpus.vectors.copy()
    vectors[changed] = np.load(f)
    return vectors


def main_svm_only(args) -> None:
    corpus, task = load(args.users)
    X = sanity_tfidf(corpus, args.mask_url_owners)
    t0 = time.perf_counter()
    for i, u in enumerate(task.users, 1):
        svm_run(corpus, task, X, u, args.fresh_svm, args.mask_url_owners)
        if i % 20 == 0:
            print(f"svm {i}/{len(task.users)} {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def term_space(corpus: RecsysCorpus, task: RecsysTask):
    """papertide's TermSpace fitted on the papers before the cutoff (what the product would have had)."""
    from papertide.rank.recommend import TermSpace

    key = hashlib.blake2b("\x00".join(corpus.arxiv_ids[i] for i in task.history).encode(), digest_size=8).hexdigest()
    f = WORK / f"termspace-{key}.npz"
    if f.exists():
        z = np.load(f, allow_pickle=False)
        return TermSpace(z["terms"].tolist(), z["idf"])
    space = TermSpace.fit(corpus.texts(task.history))
    WORK.mkdir(parents=True, exist_ok=True)
    np.savez(f.with_suffix(".tmp.npz"), terms=np.array(space.terms), idf=space.idf)
    os.replace(f.with_suffix(".tmp.npz"), f)
    return space


def pct(xs) -> dict[str, float]:
    a = np.asarray(xs, dtype=float) * 1e3
    return {"n": len(a), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "max": float(a.max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, help="Only the first N dev users (default: all 500).")
    ap.add_argument("--fresh-svm", action="store_true", help="Recompute the cached arxiv-sanity SVM runs.")
    ap.add_argument("--score-users", type=int, default=10_000, help="Users in the batch-scoring timing.")
    ap.add_argument("--new-papers", type=int, default=1_000, help="New papers in the batch-scoring timing.")
    ap.add_argument("--mask-url-owners", action="store_true",
                    help="Every method reads the texts with code-URL owners masked (github.com/<owner>/...: mostly "
                         "an author's account): papertide's term rows, arxiv-sanity's tf-idf, and the embeddings of "
                         "the papers the mask changes (re-embedded once, cached).")
    ap.add_argument("--background-size", type=int, help="Papers in the background sample "
                    "(default: recommend.BACKGROUND_SIZE, what the site uses).")
    ap.add_argument("--background-seed", type=int, default=0,
                    help="Seed of the background sample (drawn from the papers before the cutoff; default 0).")
    ap.add_argument("--out", type=Path, help="Results JSON (default benchmarks/results/recsys-<time>.json).")
    args = ap.parse_args()
    from papertide.rank import recommend
    from papertide.rank.recommend import (
        BACKGROUND_SIZE,
        Background,
        PaperRows,
        UserModels,
        category_names,
        category_rows,
        fit_rows,
    )

    t0 = time.perf_counter()
    corpus, task = load(args.users)
    print(f"{len(corpus):,} papers, {len(task.candidates):,} candidates, {len(task.users)} users "
          f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if args.mask_url_owners:
        corpus.vectors = masked_vectors(corpus)  # every method below reads these
    C = task.candidates
    VC = corpus.vectors[C]
    space = term_space(corpus, task)
    texts = corpus.texts()
    T = space.transform([mask_url_owners(t) for t in texts] if args.mask_url_owners else texts)
    TC = T[C]
    hist = task.history
    rng = np.random.default_rng(0)
    bg_size = args.background_size or BACKGROUND_SIZE
    # seed 0 is the stream the earlier runs drew their background from (the rest of the run draws on after it)
    bg_rows = np.sort(rng.choice(hist, bg_size, replace=False))
    if args.background_seed != 0:
        bg_rows = np.sort(np.random.default_rng(args.background_seed).choice(hist, bg_size, replace=False))
    K = category_rows(corpus.categories, category_names(corpus.categories))
    # every paper as the models read it (ids = row numbers); fitted and scored as the site does (rank/foryou.py)
    papers = PaperRows(np.arange(len(corpus), dtype=np.int64), corpus.vectors, T, K)
    cands = papers.take(C)
    bg = Background.from_rows(papers.take(bg_rows))
    X = sanity_tfidf(corpus, args.mask_url_owners)
    listed = corpus.listed[C].astype("datetime64[D]").astype(np.int64).astype(np.float64)
    runs: dict[str, dict] = {"papertide": {}, "papertide without categories": {}, "newest-first": {}, "centroid": {}, "tfidf-svm (arxiv-sanity)": {}}
    fit_s, refresh_s, models = [], [], []
    t_svm = 0.0
    for i, u in enumerate(task.users, 1):
        lib = task.libraries[u]
        t = time.perf_counter()
        m = fit_rows(bg, papers.take(lib))
        fit_s.append(time.perf_counter() - t)
        models.append(m)
        runs["papertide"][u] = run_from_scores(corpus, C, m.score_rows(cands))
        runs["papertide without categories"][u] = run_from_scores(corpus, C, m.score(VC, TC))
        # a save: the whole model is refitted with the new paper among the positives (that is the update)
        saved = np.append(lib, rng.choice(hist))
        t = time.perf_counter()
        fit_rows(bg, papers.take(saved))
        refresh_s.append(time.perf_counter() - t)
        runs["newest-first"][u] = run_from_scores(corpus, C, listed)
        c = corpus.vectors[lib].mean(0)
        runs["centroid"][u] = run_from_scores(corpus, C, VC @ (c / np.linalg.norm(c)))
        t = time.perf_counter()
        runs["tfidf-svm (arxiv-sanity)"][u] = svm_run(corpus, task, X, u, args.fresh_svm, args.mask_url_owners)
        t_svm += time.perf_counter() - t
        if i % 50 == 0:
            print(f"{i}/{len(task.users)} users", file=sys.stderr, flush=True)
    scores = {name: evaluate_recsys(task.qrels, run) for name, run in runs.items()}
    recalls = {name: per_user(task.qrels, run) for name, run in runs.items()}
    base = {k: v for k, v in scores.items() if not k.startswith("papertide")}
    best = max(base, key=lambda k: base[k]["recall@50"])
    gain = scores["papertide"]["recall@50"] / base[best]["recall@50"] - 1
    # paired bootstrap of the relative Recall@50 gain over the best baseline (users resampled)
    mine = np.array([recalls["papertide"][u] for u in task.users])
    theirs = np.array([recalls[best][u] for u in task.users])
    boot = []
    for _ in range(1000):
        s = rng.integers(0, len(mine), len(mine))
        boot.append(mine[s].mean() / max(theirs[s].mean(), 1e-12) - 1)
    # the same on each half of the user list (settings were chosen by cross-validation between the halves)
    half = len(task.users) // 2
    halves = {}
    for label, us in ((f"users 1-{half}", task.users[:half]), (f"users {half + 1}-{len(task.users)}", task.users[half:])):
        q = {u: task.qrels[u] for u in us}
        hs = {name: evaluate_recsys(q, {u: run[u] for u in us}) for name, run in runs.items()}
        halves[label] = {"scores": hs, "relative_recall50_gain": hs["papertide"]["recall@50"] / hs[best]["recall@50"] - 1}
    # batch scoring: the fitted models stacked up to --score-users users, --new-papers new papers
    reps = -(-args.score_users // len(models))
    stack = UserModels((models * reps)[: args.score_users])
    new = rng.choice(C, args.new_papers, replace=False)
    nv, nt, nk = corpus.vectors[new], T[new], K[new]
    batch_s = []
    for _ in range(3):
        t = time.perf_counter()
        stack.score(nv, nt, nk)
        batch_s.append(time.perf_counter() - t)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/bench_recsys.py", *sys.argv[1:]]),
        "users": len(task.users), "candidates": len(C), "papers": len(corpus),
        "terms": len(space), "background": len(bg_rows), "background_seed": args.background_seed,
        "svm_tol": recommend.SVM_TOL,
        "mask_url_owners": args.mask_url_owners,
        "scores": scores, "best_baseline": best, "relative_recall50_gain": gain,
        "gain_bootstrap_95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
        "halves": halves,
        "target_gain": 0.20, "target_met": gain >= 0.20,
        "fit_ms": pct(fit_s), "refresh_after_save_ms": pct(refresh_s),
        "batch_score": {"users": args.score_users, "papers": args.new_papers, "runs_s": batch_s,
                        "median_s": float(np.median(batch_s))},
        "svm_baseline_s_total_this_run": t_svm,
        "load_average": os.getloadavg(),
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }
    out = args.out or RESULTS / f"recsys-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"background: {len(bg_rows):,} papers, seed {args.background_seed}")
    print(f"{'method':28s} {'Recall@50':>10s} {'nDCG@20':>8s} {'MRR':>7s}")
    for name, sc in scores.items():
        print(f"{name:28s} {sc['recall@50']:10.4f} {sc['ndcg@20']:8.4f} {sc['mrr']:7.4f}")
    print(f"papertide vs best baseline ({best}): {gain:+.1%} Recall@50 (bootstrap 95% "
          f"{result['gain_bootstrap_95'][0]:+.1%} .. {result['gain_bootstrap_95'][1]:+.1%}); target +20%: "
          f"{'met' if result['target_met'] else 'MISSED'}")
    for label, h in halves.items():
        print(f"  {label}: papertide {h['scores']['papertide']['recall@50']:.4f} vs {best} "
              f"{h['scores'][best]['recall@50']:.4f}: {h['relative_recall50_gain']:+.1%}")
    print(f"refresh after a save: p50 {result['refresh_after_save_ms']['p50']:.1f} ms, "
          f"p95 {result['refresh_after_save_ms']['p95']:.1f} ms")
    print(f"score {args.new_papers:,} new papers for {args.score_users:,} users: {np.median(batch_s):.2f} s")
    print(f"results: {out}")


if __name__ == "__main__":
    if "--svm-only" in sys.argv:
        ap = argparse.ArgumentParser()
        ap.add_argument("--svm-only", action="store_true")
        ap.add_argument("--users", type=int)
        ap.add_argument("--fresh-svm", action="store_true")
        ap.add_argument("--mask-url-owners", action="store_true")
        main_svm_only(ap.parse_args())
    else:
        main()
