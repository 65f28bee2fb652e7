"""The for-you term space saved by `papertide index`: the site's corpus side built from it (only the
candidates and the background transformed) equals the one fitted from scratch; refits; torn saves."""

from __future__ import annotations

import numpy as np

from papertide.rank.foryou import REFIT_GROWTH, TERMS_DIR, build_corpus, ensure_term_space
from papertide.rank.recommend import TermSpace


def test_the_corpus_from_the_saved_space_is_the_corpus_fitted_from_scratch(site):
    space_dir = site.settings.index_dir / TERMS_DIR
    assert TermSpace.load(space_dir) is not None  # the template saved one, as `papertide index` does
    model = site.engine.embedder.model_id
    fresh = build_corpus(site.store, model, candidate_days=3650)
    saved = build_corpus(site.store, model, candidate_days=3650, space_dir=space_dir)
    assert saved.space.terms == fresh.space.terms
    assert np.allclose(saved.space.idf, fresh.space.idf)
    assert saved.ids.tolist() == fresh.ids.tolist() and len(saved.ids) > 100
    assert np.array_equal(saved.vectors, fresh.vectors)
    assert abs(saved.terms - fresh.terms).max() < 1e-6
    assert np.array_equal(saved.background.vectors, fresh.background.vectors)
    assert abs(saved.background.terms - fresh.background.terms).max() < 1e-6
    assert saved.category_names == fresh.category_names == site.store.category_names()
    assert (saved.categories != fresh.categories).nnz == 0 and saved.categories.nnz >= len(saved.ids)
    assert (saved.background.categories != fresh.background.categories).nnz == 0


def test_the_space_is_refitted_only_when_the_store_has_grown(site, sample_papers, tmp_path):
    d = tmp_path / "terms"
    assert ensure_term_space(site.store, d) is True
    assert ensure_term_space(site.store, d) is False  # up to date
    n = TermSpace.load(d)[1]
    assert n == site.store.count_papers()
    site.store.upsert_papers(sample_papers[1600 : 1600 + int(n * REFIT_GROWTH) - 5])
    assert ensure_term_space(site.store, d) is False  # grown by less than REFIT_GROWTH
    site.store.upsert_papers(sample_papers[1900:2000])
    assert ensure_term_space(site.store, d) is True
    assert TermSpace.load(d)[1] == site.store.count_papers()
    assert ensure_term_space(site.store, d, force=True) is True


def test_a_torn_or_foreign_save_is_not_used(site, tmp_path):
    d = tmp_path / "terms"
    assert ensure_term_space(site.store, d)
    space, _ = TermSpace.load(d)
    (d / "terms.txt").write_text("\n".join(space.terms[:-3]))  # a crash between the renames
    assert TermSpace.load(d) is None
    (d / "space.json").unlink()
    assert TermSpace.load(d) is None
    assert ensure_term_space(site.store, d) is True  # and the next `papertide index` writes it again
    assert TermSpace.load(d) is not None


def test_the_site_warms_for_you_at_start_up(site_template, tmp_path, embedder):
    """`papertide serve` builds the corpus side in the background at start, from the saved space."""
    import shutil

    from fastapi.testclient import TestClient

    from papertide.config import Settings
    from papertide.web import create_app

    home = tmp_path / "home"
    shutil.copytree(site_template, home)
    settings = Settings(home=home, secret_key="k", base_url="http://testserver")
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver"):
        fy = app.state.services._foryou
        assert fy is not None and fy.state in ("warming", "ready")  # nobody visited /for-you
        assert fy.wait(120), fy.state
        assert fy.space_dir == home / "index" / TERMS_DIR and len(fy.corpus.space) == len(
            TermSpace.load(fy.space_dir)[0])
    off = create_app(Settings(home=home, secret_key="k", foryou_warm=False))
    with TestClient(off):
        assert off.state.services._foryou is None


def test_index_command_saves_the_space(tmp_path):
    """`papertide index` fits and saves the term space beside the indexes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    home = tmp_path / "home"
    env = dict(os.environ, PAPERTIDE_HOME=str(home), HF_HUB_OFFLINE="1")
    cli = str(Path(sys.executable).parent / "papertide")
    fixture = Path(__file__).parent / "fixtures" / "bulk" / "arxiv-cs-sample50.jsonl"
    subprocess.run([cli, "ingest", "file", str(fixture)], env=env, check=True, capture_output=True, timeout=300)
    r = subprocess.run([cli, "index"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "term space fitted" in r.stdout, r.stdout
    loaded = TermSpace.load(home / "index" / TERMS_DIR)
    assert loaded is not None and loaded[1] == 50
    r = subprocess.run([cli, "index"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0 and "term space fitted" not in r.stdout  # nothing new: kept


def test_a_large_store_fits_the_space_on_a_sample(site, tmp_path, monkeypatch):
    """Past TERM_SPACE_MAX_PAPERS papers, the fit reads a fixed random sample of them (and records the
    store's size, so the 25% growth rule still counts every paper)."""
    import papertide.rank.foryou as fy

    n = site.store.count_papers()
    monkeypatch.setattr(fy, "TERM_SPACE_MAX_PAPERS", n // 2)
    read = []
    orig = site.store.title_abstracts
    monkeypatch.setattr(site.store, "title_abstracts", lambda ids: read.extend(ids) or orig(ids))
    d = tmp_path / "terms"
    assert ensure_term_space(site.store, d)
    space, papers = TermSpace.load(d)
    assert papers == n and len(read) == n // 2 == len(set(read))
    full = tmp_path / "full"
    monkeypatch.setattr(fy, "TERM_SPACE_MAX_PAPERS", n)
    assert ensure_term_space(site.store, full)
    assert 0 < len(space) < len(TermSpace.load(full)[0])  # a sample sees fewer terms


def test_the_background_is_drawn_from_papers_older_than_the_candidates(site, monkeypatch):
    """As the benchmark draws it from the papers before its cutoff: a candidate in the background would be
    a negative of every user's model. A store with too few older papers draws from all of them."""
    import papertide.rank.recommend as rec

    model = site.engine.embedder.model_id
    everything = build_corpus(site.store, model, candidate_days=3650)
    n = len(everything.ids)
    assert n > 100
    recent = build_corpus(site.store, model, candidate_days=3650, candidate_limit=n // 4)
    assert len(_rows(everything.vectors)) == n  # no two papers share an embedding: rows identify papers
    monkeypatch.setattr(rec, "BACKGROUND_SIZE", n // 2)  # 0.6 n older papers are needed: 0.75 n there are
    small = build_corpus(site.store, model, candidate_days=3650, candidate_limit=n // 4)
    assert len(small.background.vectors) == n // 2
    assert _rows(small.background.vectors) & _rows(small.vectors) == set()
    monkeypatch.setattr(rec, "BACKGROUND_SIZE", n)  # too few older papers: from all of them
    young = build_corpus(site.store, model, candidate_days=3650, candidate_limit=n // 4)
    assert _rows(young.background.vectors) & _rows(recent.vectors)


def _rows(vectors: np.ndarray) -> set[bytes]:
    return {v.tobytes() for v in vectors}
