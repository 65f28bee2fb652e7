"""The community half of the store, directly: accounts, votes, libraries, submissions, curation, rate limits."""

from __future__ import annotations

from datetime import date

import pytest

from papertide.models import Paper
from papertide.store import SqliteStore
from papertide.store.base import StoreError
from papertide.store.community import Conflict


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "community.db")
    else:
        from papertide.store import open_store

        s = open_store(request.getfixturevalue("pg_url"))
    s.upsert_papers([
        Paper("2601.00001", "One", listed=date(2026, 1, 5), hf_upvotes=2),
        Paper("2601.00002", "Two", listed=date(2026, 1, 5), featured_on=date(2026, 1, 6)),
        Paper("2601.00003", "Three", listed=date(2026, 1, 7)),
        Paper("2601.00004", "Four", submitted=date(2026, 1, 9)),  # no listing date: its v1 date counts
    ])
    yield s
    s.close()


@pytest.fixture
def ids(store):
    return store.doc_ids_for(["2601.00001", "2601.00002", "2601.00003", "2601.00004"])


def _users(store, n: int):
    return [store.create_user(f"u{i}@example.org", f"U{i}", "hash") for i in range(n)]


def test_users(store):
    u = store.create_user("  Ada@Example.ORG ", "Ada", "h1")
    assert (u.email, u.name, u.is_admin) == ("ada@example.org", "Ada", False)
    assert store.get_user_by_email("ADA@example.org").id == u.id
    with pytest.raises(Conflict):
        store.create_user("ada@EXAMPLE.org", "Eve", "h2")
    store.set_password(u.id, "h3")
    assert store.get_user(u.id).password_hash == "h3"
    assert not store.has_api_token(u.id)
    store.set_api_token_hash(u.id, "tokenhash")
    assert store.has_api_token(u.id) and store.get_user_by_token_hash("tokenhash").id == u.id
    store.set_admin(u.id, True)
    assert store.get_user(u.id).is_admin
    assert store.get_user(999) is None


def test_votes_toggle_and_count(store, ids):
    a, b = _users(store, 2)
    one, two = ids["2601.00001"], ids["2601.00002"]
    assert store.toggle_vote(a.id, one) == (True, 1)
    assert store.toggle_vote(b.id, one) == (True, 2)
    assert store.toggle_vote(a.id, two) == (True, 1)
    assert store.toggle_vote(a.id, one) == (False, 1)  # one vote per user per paper: again takes it back
    assert store.vote_counts([one, two, ids["2601.00003"]]) == {one: 1, two: 1, ids["2601.00003"]: 0}
    assert store.voted_among(a.id, [one, two]) == {two}
    assert store.voted_among(b.id, [one, two]) == {one}
    assert store.voted_papers(a.id) == [two]
    # The denormalised count always equals the votes rows.
    for pid in (one, two):
        rows = store._db.execute("SELECT count(*) FROM votes WHERE paper_id = ?", (pid,)).fetchone()[0]
        assert store.vote_counts([pid])[pid] == rows


def test_collections(store, ids):
    a, b = _users(store, 2)
    d = store.default_collection(a.id)
    assert d.name == "Reading list" and store.default_collection(a.id).id == d.id
    t = store.create_collection(a.id, "Thesis")
    with pytest.raises(Conflict):
        store.create_collection(a.id, "Thesis")
    store.create_collection(b.id, "Thesis")  # names are per user
    store.set_saved(t.id, ids["2601.00001"], True)
    store.set_saved(t.id, ids["2601.00001"], True)  # idempotent
    store.set_saved(d.id, ids["2601.00002"], True)
    assert [(c.name, c.count) for c in store.collections(a.id)] == [("Reading list", 1), ("Thesis", 1)]
    assert store.collections_with(a.id, ids["2601.00001"]) == {t.id}
    assert store.saved_among(a.id, list(ids.values())) == {ids["2601.00001"], ids["2601.00002"]}
    assert store.saved_among(b.id, list(ids.values())) == set()
    store.set_saved(t.id, ids["2601.00001"], False)
    assert store.collection_papers(t.id) == []
    store.delete_collection(d.id)
    assert store.get_collection(d.id) is None
    assert store._db.execute("SELECT count(*) FROM collection_items WHERE collection_id = ?", (d.id,)).fetchone()[0] == 0
    assert store.default_collection(a.id).id == t.id  # the oldest remaining one


def test_submissions_feature_a_paper_once(store, ids):
    a, b = _users(store, 2)
    three = ids["2601.00003"]
    assert store.submit_paper(a.id, three, date(2026, 2, 1)) is True
    assert store.submit_paper(a.id, three, date(2026, 2, 2)) is False
    assert store.submit_paper(b.id, three, date(2026, 2, 3)) is True
    assert store.get_paper("2601.00003").featured_on == date(2026, 2, 1)  # the first submission's day
    assert store.submitters([three]) == {three: "U0"}  # the first submitter
    assert store.submitted_papers(b.id) == [three]
    # Submitting an HF-featured paper keeps its featured day.
    store.submit_paper(a.id, ids["2601.00002"], date(2026, 2, 1))
    assert store.get_paper("2601.00002").featured_on == date(2026, 1, 6)


def test_merge_moves_votes_saves_and_submissions(store, ids):
    a, b = _users(store, 2)
    dup, target = ids["2601.00003"], ids["2601.00001"]
    store.toggle_vote(a.id, dup)
    store.toggle_vote(a.id, target)  # voted for both: one vote survives
    store.toggle_vote(b.id, dup)
    ca = store.default_collection(a.id)
    store.set_saved(ca.id, dup, True)
    store.set_saved(ca.id, target, True)
    cb = store.default_collection(b.id)
    store.set_saved(cb.id, dup, True)
    store.submit_paper(b.id, dup, date(2026, 2, 1))
    store.merge_papers(dup, target)
    assert store.vote_counts([dup, target]) == {dup: 0, target: 2}
    assert store.voted_among(a.id, [dup, target]) == {target}
    assert store.voted_among(b.id, [dup, target]) == {target}
    assert store.collection_papers(ca.id) == [target]
    assert store.collection_papers(cb.id) == [target]
    assert store.submitted_papers(b.id) == [target]
    assert store.curation(dup) == (True, "2601.00001")
    assert store.curation(target) == (False, None)
    with pytest.raises(StoreError):
        store.merge_papers(target, target)


def test_hidden_papers_leave_the_feeds(store, ids):
    day = date(2026, 1, 5)
    assert {r.doc_id for r in store.feed_rows(day, day, featured=False)} == {ids["2601.00001"], ids["2601.00002"]}
    store.set_hidden(ids["2601.00001"], True)
    assert store.hidden_among(list(ids.values())) == {ids["2601.00001"]}
    assert {r.doc_id for r in store.feed_rows(day, day, featured=False)} == {ids["2601.00002"]}
    store.set_hidden(ids["2601.00004"], True)
    assert store.latest_day(featured=False) == date(2026, 1, 7)
    assert store.adjacent_day(date(2026, 1, 7), featured=False, before=False) is None
    store.set_hidden(ids["2601.00002"], True)
    assert store.feed_rows(date(2026, 1, 1), date(2026, 1, 31), featured=True) == []
    assert store.latest_day(featured=True) is None
    store.set_hidden(ids["2601.00001"], False)
    assert store.hidden_among([ids["2601.00001"]]) == set()


def test_feed_rows_featured_and_all(store, ids):
    rows = store.feed_rows(date(2026, 1, 6), date(2026, 1, 6), featured=True)
    assert [(r.doc_id, r.day, r.featured_on) for r in rows] == [(ids["2601.00002"], "2026-01-05", "2026-01-06")]
    assert store.feed_rows(date(2026, 1, 6), date(2026, 1, 6), featured=False) == []
    all_jan = store.feed_rows(date(2026, 1, 1), date(2026, 1, 31), featured=False)
    assert {r.doc_id: r.hf_upvotes for r in all_jan}[ids["2601.00001"]] == 2
    assert {r.doc_id: r.day for r in all_jan}[ids["2601.00004"]] == "2026-01-09"
    assert store.adjacent_day(date(2026, 1, 5), featured=False, before=False) == date(2026, 1, 7)
    assert store.adjacent_day(date(2026, 1, 7), featured=False, before=True) == date(2026, 1, 5)
    assert store.adjacent_day(date(2026, 1, 5), featured=False, before=True) is None


def test_rate_limit_windows(store):
    t0 = 1_800_000_000.0  # a multiple of 60: the start of a window
    assert [store.hit_rate_limit("k", 2, 60, now=t0 + s) for s in (0, 10, 59)] == [True, True, False]
    assert store.hit_rate_limit("other", 2, 60, now=t0 + 59) is True  # keys are counted apart
    assert store.hit_rate_limit("k", 2, 60, now=t0 + 60) is True  # a new window
    assert store.hit_rate_limit("k", 2, 60, now=t0 + 61) is True
    assert store.hit_rate_limit("k", 2, 60, now=t0 + 62) is False
    # Counters of windows more than a day old are dropped when a new window starts.
    store.hit_rate_limit("k", 2, 60, now=t0 + 2 * 86400)
    windows = [w for (w,) in store._db.execute("SELECT window FROM rate_limits WHERE key = 'k'")]
    assert windows == [int(t0 + 2 * 86400)]
