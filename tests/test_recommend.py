"""The per-user "for you" model on real papers (the bundled sample, embedded by the session index)."""

import numpy as np
import pytest

from papertide.rank.recommend import (
    Background,
    PaperRows,
    TermSpace,
    UserModels,
    blend_with_trending,
    category_names,
    category_rows,
    explain,
    fit_rows,
    fit_user,
    model_from_parts,
)


@pytest.fixture(scope="module")
def papers(indexed):
    """(doc ids, papers, embeddings, term rows, term space) of the indexed sample papers."""
    store, indexes, _ = indexed
    ids = indexes.dense.ids.copy()
    by_id = store.get_papers(ids.tolist())
    vectors = indexes.dense.vectors.copy()
    texts = [f"{by_id[int(d)].title}\n{by_id[int(d)].abstract}" for d in ids]
    space = TermSpace.fit(texts, min_df=2, max_df=0.5)
    return ids, [by_id[int(d)] for d in ids], vectors, space.transform(texts), space


def _topic(papers, category):
    return np.array([i for i, p in enumerate(papers) if p.primary_category == category])


@pytest.fixture(scope="module")
def cl_model(papers):
    """A user who saved half of the cs.CL papers; the other half is held out."""
    ids, ps, vectors, terms, _ = papers
    cl = _topic(ps, "cs.CL")
    assert len(cl) >= 20
    saved, held = cl[::2], cl[1::2]
    bg = Background.sample(vectors, terms, size=200, seed=1)
    return fit_user(bg, vectors[saved], terms[saved], pos_ids=ids[saved]), saved, held, bg


def test_model_ranks_held_out_papers_of_the_users_topic_first(papers, cl_model):
    _ids, ps, vectors, terms, _ = papers
    model, saved, held, _ = cl_model
    rest = np.setdiff1d(np.arange(len(ps)), saved)
    s = model.score(vectors[rest], terms[rest])
    is_held = np.isin(rest, held)
    # AUC of held-out cs.CL papers against every other unsaved paper
    order = np.argsort(np.argsort(s))
    auc = (order[is_held].mean() - (is_held.sum() - 1) / 2) / (~is_held).sum()
    assert auc > 0.8, auc
    # the top 10 are mostly the user's topic
    assert is_held[np.argsort(-s)[:10]].mean() >= 0.6


def test_scores_are_calibrated_per_paper_not_per_batch(papers, cl_model):
    _, _, vectors, terms, _ = papers
    model, *_ = cl_model
    all_scores = model.score(vectors, terms)
    one = model.score(vectors[7:8], terms[7:8])
    assert one[0] == pytest.approx(all_scores[7], rel=1e-5, abs=1e-5)


def test_batch_scoring_matches_each_users_model(papers, cl_model):
    ids, ps, vectors, terms, _ = papers
    model, _, _, bg = cl_model
    cv = _topic(ps, "cs.CV")[:8]
    other = fit_user(bg, vectors[cv], terms[cv], pos_ids=ids[cv])
    stack = UserModels([model, other, model])
    got = stack.score(vectors[:50], terms[:50])
    assert got.shape == (3, 50)
    np.testing.assert_allclose(got[0], model.score(vectors[:50], terms[:50]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[1], other.score(vectors[:50], terms[:50]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[2], got[0])


def test_not_interested_lowers_similar_papers(papers, cl_model):
    ids, _ps, vectors, terms, _ = papers
    model, saved, held, bg = cl_model
    neg = held[:3]
    with_neg = fit_user(bg, vectors[saved], terms[saved], vectors[neg], terms[neg], pos_ids=ids[saved])
    before = model.score(vectors[neg], terms[neg])
    after = with_neg.score(vectors[neg], terms[neg])
    assert (after < before).all()


def test_explanation_names_library_papers_and_shared_terms(papers, cl_model):
    ids, ps, vectors, terms, space = papers
    model, saved, held, _ = cl_model
    i = held[0]
    why = explain(model, vectors[i], terms[i], space, k_papers=3, k_terms=5)
    assert len(why.nearest) == 3
    assert {d for d, _ in why.nearest} <= set(ids[saved].tolist())
    sims = [s for _, s in why.nearest]
    assert sims == sorted(sims, reverse=True)
    text = f"{ps[i].title} {ps[i].abstract}".lower()
    for term, weight in why.terms:
        assert weight > 0
        assert all(w in text for w in term.split())


def test_model_parts_are_small_plain_arrays(cl_model):
    model, *_ = cl_model
    parts = model.parts()
    assert parts["dense"].shape == (384,) and parts["dense"].dtype == np.float32
    assert len(parts["lexical_terms"]) == len(parts["lexical_weights"]) <= 4096
    assert parts["calibration"].shape == (4, 2) and parts["category_llr"] is None


def test_categories_part_favours_the_users_categories(papers):
    ids, ps, vectors, terms, _ = papers
    names = sorted({c for p in ps for c in p.categories})
    K = category_rows([p.categories for p in ps], names)
    assert K.shape == (len(ps), len(names)) and (K.sum(1) >= 1).all()
    bg = Background.sample(vectors, terms, K, size=200, seed=1)
    ro = _topic(ps, "cs.RO")
    assert len(ro) >= 4
    saved = ro[::2]
    model = fit_user(bg, vectors[saved], terms[saved], pos_ids=ids[saved], pos_categories=K[saved])
    assert model.category_llr is not None and model.category_llr[names.index("cs.RO")] > 0
    with_cat = model.score(vectors, terms, K)
    without = model.score(vectors, terms)
    in_ro = np.array(["cs.RO" in p.categories for p in ps])
    # the categories part lifts robotics papers relative to the rest
    assert (with_cat - without)[in_ro].mean() > (with_cat - without)[~in_ro].mean()
    other = fit_user(bg, vectors[:5], terms[:5], pos_categories=K[:5])
    stack = UserModels([model, other])
    np.testing.assert_allclose(stack.score(vectors[:30], terms[:30], K[:30])[0], with_cat[:30], rtol=1e-4, atol=1e-4)
    plain_bg = Background.sample(vectors, terms, size=200, seed=1)
    with pytest.raises(ValueError):
        UserModels([model, fit_user(plain_bg, vectors[:5], terms[:5])])


def test_a_background_with_categories_needs_the_positives_categories(papers):
    """The drift the site once had (rank/foryou.py fitted without categories while the benchmark fitted
    with them) is an error now, for a fit and for scoring through PaperRows."""
    ids, ps, vectors, terms, _ = papers
    names = category_names(p.categories for p in ps)
    rows = PaperRows(ids, vectors, terms, category_rows([p.categories for p in ps], names))
    bg = Background.from_rows(rows.take(np.arange(0, len(ps), 3)))
    saved = _topic(ps, "cs.RO")[::2]
    with pytest.raises(ValueError, match="pos_categories"):
        fit_user(bg, vectors[saved], terms[saved])
    np.random.seed(0)  # liblinear (LinearSVC, random_state None) shuffles with numpy's global generator
    model = fit_rows(bg, rows.take(saved))
    # fit_rows is fit_user with every part of the rows handed over
    np.random.seed(0)
    ref = fit_user(bg, vectors[saved], terms[saved], pos_ids=ids[saved], pos_categories=rows.categories[saved])
    assert model.category_llr is not None and model.positive_ids.tolist() == ids[saved].tolist()
    np.testing.assert_allclose(model.score_rows(rows), ref.score(vectors, terms, rows.categories), rtol=1e-5, atol=1e-5)
    assert not np.allclose(model.score_rows(rows), model.score(vectors, terms))  # the part counts
    with pytest.raises(ValueError, match="category rows"):
        model.score_rows(PaperRows(ids, vectors, terms))
    # negatives through fit_rows: used (an empty set is no negatives)
    neg = _topic(ps, "cs.RO")[1::2][:2]
    with_neg = fit_rows(bg, rows.take(saved), rows.take(neg))
    assert (with_neg.score_rows(rows.take(neg)) < model.score_rows(rows.take(neg))).all()
    np.random.seed(0)
    np.testing.assert_allclose(fit_rows(bg, rows.take(saved), rows.take([])).score_rows(rows), model.score_rows(rows))


def test_the_svm_over_the_rows_terms_only_is_the_svm_over_every_term(papers):
    """fit_user trains liblinear over the columns present in its rows only (the background's, then the
    positives' and negatives' other terms): the same weights as over every column of the term space."""
    import scipy.sparse as sp
    from sklearn.svm import LinearSVC

    from papertide.rank import recommend

    _ids, ps, vectors, terms, _ = papers
    bg = Background.sample(vectors, terms, size=60, seed=3)  # small: the positives bring terms of their own
    saved, neg = _topic(ps, "cs.CL")[:8], _topic(ps, "cs.RO")[:3]
    assert np.setdiff1d(terms[saved].indices, bg.terms.indices).size > 0
    np.random.seed(0)
    model = fit_user(bg, vectors[saved], terms[saved], vectors[neg], terms[neg])
    X = sp.vstack([terms[saved], bg.terms, terms[neg]], format="csr")
    y = np.r_[np.ones(len(saved)), np.zeros(bg.terms.shape[0] + len(neg))]
    w = np.r_[np.ones(len(saved)), np.ones(bg.terms.shape[0]), np.full(len(neg), recommend.NEGATIVE_WEIGHT)]
    w[y == 1] *= w[y == 0].sum() / w[y == 1].sum()
    np.random.seed(0)  # the same shuffles as the fit above: the same coordinate descent, over every column
    ref = LinearSVC(C=recommend.SVM_C, tol=recommend.SVM_TOL, dual=True).fit(X.astype(np.float64), y, sample_weight=w)
    coef = ref.coef_.ravel()
    assert X.shape[1] == terms.shape[1] and np.count_nonzero(coef) <= recommend.LEX_KEEP
    np.testing.assert_allclose(model.lexical.toarray().ravel(), coef, atol=1e-5 * np.abs(coef).max())
    assert abs(model.lexical_bias - ref.intercept_[0]) < 1e-5 * max(1.0, abs(ref.intercept_[0]))
    assert set(model.lexical.indices) <= set(np.flatnonzero(coef))
    # and SVM_TOL stops near the converged solution (scores of every paper)
    tight = LinearSVC(C=recommend.SVM_C, tol=1e-8, dual=True, max_iter=100_000).fit(X.astype(np.float64), y, sample_weight=w)
    assert np.corrcoef(terms @ coef, terms @ tight.coef_.ravel())[0, 1] > 0.999
    # the calibration's lexical statistics are the background's scores under the kept weights
    lex = bg.terms @ model.lexical.toarray().ravel() + model.lexical_bias
    np.testing.assert_allclose(model.calibration[0], [lex.mean(), lex.std()], rtol=1e-4)


def test_a_stored_model_scores_as_the_fitted_one(papers, cl_model):
    ids, _, vectors, terms, space = papers
    model, *_ = cl_model
    parts = model.parts()
    row = {int(d): i for i, d in enumerate(ids)}
    positives = vectors[[row[int(d)] for d in parts["positive_ids"]]]
    again = model_from_parts(parts, positives, len(space))
    np.testing.assert_allclose(again.score(vectors, terms), model.score(vectors, terms), rtol=1e-5, atol=1e-5)


def test_fit_needs_a_positive(papers, cl_model):
    *_, bg = cl_model
    _, _, vectors, terms, _ = papers
    with pytest.raises(ValueError):
        fit_user(bg, vectors[:0], terms[:0])


def test_blend_with_trending():
    mine = np.array([3.0, 2.0, 1.0, 0.0])
    trend = np.array([0.0, 1.0, 5.0, 9.0])
    assert np.argsort(-blend_with_trending(mine, trend, 0.0)).tolist() == [0, 1, 2, 3]
    assert np.argsort(-blend_with_trending(mine, trend, 1.0)).tolist() == [3, 2, 1, 0]
    mid = blend_with_trending(mine, trend, 0.5)
    assert np.allclose(mid, 0.5)
    with pytest.raises(ValueError):
        blend_with_trending(mine, trend, 1.5)
    with pytest.raises(ValueError):
        blend_with_trending(mine, trend[:2], 0.5)


@pytest.mark.parametrize(("scale", "reference"), [(1.0, {"sublinear_tf": True}), (0.0, {"binary": True})])
def test_term_rows_match_sklearn_at_the_ends_of_the_tf_scale(papers, monkeypatch, scale, reference):
    """tf = 1 + TF_LOG_SCALE x ln(count): 1 is TfidfVectorizer's sublinear tf, 0 its binary tf (same idf)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from papertide.rank import recommend

    _ids, ps, *_ = papers
    texts = [f"{p.title}\n{p.abstract}" for p in ps]
    monkeypatch.setattr(recommend, "TF_LOG_SCALE", scale)
    space, rows = TermSpace.fit_transform(texts, min_df=2, max_df=0.5)
    vec = TfidfVectorizer(strip_accents="unicode", lowercase=True, stop_words="english",
                          token_pattern=recommend.TOKEN_PATTERN, ngram_range=(1, 2), norm="l2", min_df=2, max_df=0.5,
                          **reference)
    want = vec.fit_transform(texts)
    assert space.terms == vec.get_feature_names_out().tolist()
    np.testing.assert_allclose(space.idf, vec.idf_)
    assert abs(rows - want).max() < 1e-6
    assert abs(TermSpace(space.terms, space.idf).transform(texts[:20]) - want[:20]).max() < 1e-6
