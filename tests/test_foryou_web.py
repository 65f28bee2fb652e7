"""The "for you" feed through the site: a member saves papers on one topic (speech, from the fixture's
papers), the feed ranks that topic first and says why; "not interested" and the trending blend stick."""

from __future__ import annotations

import pytest
from webutil import card_ids, csrf, html, post, signup

# Papers of the fixture on one clear theme: speech (recognition, synthesis, translation, restoration).
SPEECH = ["2503.14928", "2504.01519", "2504.02604", "2504.15509", "2505.04457", "2505.11200", "2505.17320"]
DIFFUSION = ["2503.14489", "2503.17660", "2503.20537"]


@pytest.fixture
def fy(site):
    f = site.for_you()
    f.candidate_days = 3650  # the fixture's papers span months; every one of them is a candidate
    assert f.wait(300), f.state
    return f


def save(client, arxiv_id: str):
    r = post(client, f"/papers/{arxiv_id}/save", {"saved": "1"})
    assert r.status_code == 303, r.text[:300]


def feed(client) -> tuple[list[str], object]:
    r = client.get("/for-you")
    assert r.status_code == 200, r.text[:500]
    return card_ids(r.text), html(r.text)


def is_speech(site, arxiv_id: str) -> bool:
    p = site.store.get_paper(arxiv_id)
    return "speech" in (p.title + " " + p.abstract).lower()


def test_signed_out_goes_to_sign_in(client):
    r = client.get("/for-you", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/for-you"


def test_empty_library_offers_the_cold_start(client, fy):
    signup(client)
    page = html(client.get("/for-you").text)
    empty = page.find(cls="cold-start")
    assert empty is not None and "library is empty" in empty.text
    assert {a.attrs["href"] for a in empty.find_all("a")} >= {"/for-you/import", "/for-you/author"}
    assert page.find("nav", cls="header-nav").find("a", href="/for-you") is not None


def test_feed_follows_the_library_with_reasons(client, site, fy):
    signup(client)
    for a in SPEECH[:3]:
        save(client, a)
    post(client, "/for-you/settings", {"trending": "0"})
    ids, page = feed(client)
    assert not set(ids) & set(SPEECH[:3])  # what you saved is not recommended back
    assert sum(is_speech(site, a) for a in ids[:5]) >= 4, ids[:5]
    assert len(set(SPEECH[3:]) & set(ids[:10])) >= 3
    # every card says why: nearest saved papers (linked) and shared terms, with the two actions
    saved_titles = {site.store.get_paper(a).title for a in SPEECH[:3]}
    for card in page.find_all("article", cls="card")[:5]:
        why = card.find(cls="why")
        links = why.find(cls="because").find_all("a")
        assert links and {a.text for a in links} <= saved_titles
        assert all(a.attrs["href"].removeprefix("/papers/") in SPEECH[:3] for a in links)
        assert why.find(cls="terms") is not None
        assert why.find("a", cls="more-like-this").attrs["href"].endswith("#similar-h")
        assert why.find("form", cls="not-interested-form") is not None
    assert "speech" in page.find(cls="terms").text


def test_the_sites_model_has_the_categories_part(client, site, fy):
    """The feed runs the model benchmarks/bench_recsys.py measures, arXiv categories part included: the
    background's, the saved papers' and the candidates' category rows, as the store holds them."""
    import numpy as np

    from papertide.rank.recommend import CATEGORY_PRIOR, category_rows

    signup(client)
    for a in SPEECH[:3]:
        save(client, a)
    post(client, "/for-you/settings", {"trending": "0"})
    ids, _ = feed(client)
    corpus = fy.corpus
    names = corpus.category_names
    assert names == site.store.category_names() and "cs.CL" in names
    bg = corpus.background
    assert bg.categories is not None and bg.categories.shape == (len(bg.vectors), len(names))
    assert corpus.categories.shape == (len(corpus.ids), len(names))
    arx = site.store.arxiv_ids_for(corpus.ids[:20].tolist())
    for i, d in enumerate(corpus.ids[:20].tolist()):
        row = {names[j] for j in corpus.categories[i].indices}
        assert row == set(site.store.get_paper(arx[d]).categories)
    model = fy._entry(1).model
    assert model is not None and model.category_llr is not None
    # learnt from the saved papers' categories against the background's
    pos = category_rows([site.store.get_paper(a).categories for a in SPEECH[:3]], names)
    counts = np.asarray(pos.sum(0)).ravel() + CATEGORY_PRIOR * bg.category_prior
    np.testing.assert_allclose(model.category_llr, np.log(counts / counts.sum() / bg.category_prior), rtol=1e-5)
    # and it moves the candidates' scores, which order the feed
    with_cat = model.score_rows(corpus.candidates)
    assert not np.allclose(with_cat, model.score(corpus.vectors, corpus.terms))
    score_of = dict(zip(corpus.ids.tolist(), with_cat.tolist(), strict=True))
    picks = fy.ranking(1, 0.0)
    assert [p.score for p in picks] == pytest.approx([score_of[p.doc_id] for p in picks], rel=1e-5, abs=1e-6)
    assert [site.store.doc_ids_for([a])[a] for a in ids[:5]] == [p.doc_id for p in picks[:5]]


def test_refit_after_a_save_changes_the_feed(client, site, fy):
    signup(client)
    for a in SPEECH[:3]:
        save(client, a)
    post(client, "/for-you/settings", {"trending": "0"})
    before, _ = feed(client)
    for a in DIFFUSION:
        save(client, a)
    after, _ = feed(client)
    assert after != before and not set(after) & set(DIFFUSION)
    diffusion_like = [a for a in after[:10] if "diffusion" in site.store.get_paper(a).abstract.lower()]
    assert len(diffusion_like) >= 3, after[:10]
    assert fy.last_fit_ms(1) is not None


def test_not_interested_removes_and_stays_removed(client, site, fy):
    signup(client)
    for a in SPEECH[:3]:
        save(client, a)
    ids, _ = feed(client)
    top = ids[0]
    r = post(client, f"/papers/{top}/not-interested", headers={"referer": "http://testserver/for-you"})
    assert r.status_code == 303 and r.headers["location"] == "/for-you"
    ids2, _ = feed(client)
    assert top not in ids2
    # with JavaScript: a JSON answer, the card is removed in place
    second = ids2[0]
    r = client.post(f"/papers/{second}/not-interested", headers={"accept": "application/json",
                                                                 "x-csrf-token": csrf(client, "/for-you")})
    assert r.json() == {"arxiv_id": second, "not_interested": True}
    save(client, SPEECH[3] if SPEECH[3] not in (top, second) else SPEECH[4])  # a refit: still gone
    ids3, _ = feed(client)
    assert top not in ids3 and second not in ids3
    assert site.store.not_interested_papers(1)[:2] == [site.store.doc_ids_for([a])[a] for a in (second, top)]


def test_trending_blend_is_a_stored_preference(client, site, fy):
    signup(client)
    for a in SPEECH[:3]:
        save(client, a)
    assert site.store.foryou_trending(1) == pytest.approx(0.2)
    r = post(client, "/for-you/settings", {"trending": "100"})
    assert r.status_code == 303
    assert site.store.foryou_trending(1) == 1.0
    pure_trending, page = feed(client)
    assert page.find("input", id="trending").attrs["value"] == "100"
    post(client, "/for-you/settings", {"trending": "0"})
    pure_foryou, _ = feed(client)
    assert pure_trending != pure_foryou
    assert post(client, "/for-you/settings", {"trending": "150"}).status_code == 422


def test_new_posts_need_csrf(client, site, fy):
    signup(client)
    save(client, SPEECH[0])
    for path, data in [(f"/papers/{SPEECH[1]}/not-interested", {}), ("/for-you/settings", {"trending": "0"}),
                       ("/for-you/import", {"ids": SPEECH[2]}), ("/for-you/author", {"name": "Jiaxin Ye"})]:
        r = client.post(path, data=data, follow_redirects=False)
        assert r.status_code == 403, path
    assert site.store.not_interested_papers(1) == []
    assert site.store.foryou_trending(1) == pytest.approx(0.2)


def test_warming_up_page(client, site):
    f = site.for_you()
    f.state = "warming"  # as while the corpus side is being built after a restart
    f._ready.set()
    signup(client)
    save(client, SPEECH[0])
    page = html(client.get("/for-you").text)
    assert page.find(cls="warming") is not None
    assert page.find("meta", http_equiv="refresh") is not None


@pytest.fixture(params=["sqlite", "postgres"])
def bare_store(request, tmp_path):
    from datetime import date

    from papertide.models import Paper
    from papertide.store import SqliteStore, open_store

    s = SqliteStore(tmp_path / "fy.db") if request.param == "sqlite" else open_store(request.getfixturevalue("pg_url"))
    s.upsert_papers([
        Paper("2601.00001", "Speech Recognition at Scale", "About ASR.", ["Ada Lovelace", "Jérôme Müller"],
              listed=date(2026, 1, 5), doi="10.1000/ABC", categories=["eess.AS", "cs.CL"]),
        Paper("2601.00002", "Two", "Second.", ["Grace Hopper"], listed=date(2026, 1, 6), categories=["cs.CL"]),
        Paper("2601.00003", "Three", "Third.", ["ada lovelace"], listed=date(2026, 3, 7)),
    ])
    yield s
    s.close()


def test_foryou_store_methods(bare_store):
    s = bare_store
    ids = s.doc_ids_for(["2601.00001", "2601.00002", "2601.00003"])
    one, two, three = ids["2601.00001"], ids["2601.00002"], ids["2601.00003"]
    u = s.create_user("a@example.org", "A", "h")
    assert s.foryou_positives(u.id) == [] and s.foryou_trending(u.id) == pytest.approx(0.2)
    c = s.default_collection(u.id)
    s.set_saved(c.id, one, True)
    s.toggle_vote(u.id, two)
    s.toggle_vote(u.id, one)  # saved and upvoted: once
    assert s.foryou_positives(u.id) == [one, two]  # latest action first
    s.set_not_interested(u.id, three)
    s.set_not_interested(u.id, three)  # idempotent
    assert s.not_interested_papers(u.id) == [three]
    s.set_not_interested(u.id, three, False)
    assert s.not_interested_papers(u.id) == []
    s.set_foryou_trending(u.id, 0.7)
    assert s.foryou_trending(u.id) == pytest.approx(0.7)
    from datetime import date

    assert [d for d, _ in s.recent_papers(date(2026, 1, 6), 10)] == [three, two]
    assert s.title_abstracts([one])[one] == ("Speech Recognition at Scale", "About ASR.")
    assert s.category_names() == ["cs.CL", "eess.AS"]  # every paper's, once (the third has none)
    assert s.paper_texts([one, three]) == {one: ("eess.AS cs.CL", "Speech Recognition at Scale", "About ASR."),
                                           three: ("", "Three", "Third.")}
    assert [x for b in s.iter_paper_texts(batch=2) for x, _, _ in b] == sorted([one, two, three])
    assert s.ids_for_dois(["10.1000/abc", "10.9/none"]) == {"10.1000/abc": one}
    assert sorted(d for b in s.iter_titles(batch=2) for d, _ in b) == sorted([one, two, three])
    assert sorted(s.papers_by_author("ADA LOVELACE")) == sorted([one, three])
    assert s.papers_by_author("jérôme müller") == [one] and s.papers_by_author("Ada") == []


def test_new_papers_join_the_feed_as_they_are_indexed(client, site, fy):
    import dataclasses
    from datetime import date

    signup(client)
    for a in SPEECH[:3]:
        save(client, a)
    post(client, "/for-you/settings", {"trending": "0"})
    feed(client)
    base = site.store.get_paper(SPEECH[4])
    new = dataclasses.replace(base, arxiv_id="2512.00001", title="Streaming Speech Recognition for Tunisian Arabic",
                              listed=date(2025, 12, 1), versions=[])
    site.store.upsert_papers([new])
    site.index_new_papers()  # as a submission through the site does
    ids, _ = feed(client)
    assert "2512.00001" in ids[:5]
    assert fy.corpus.version == 1
