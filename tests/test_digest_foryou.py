"""Digest subscribers with an account can have their papers ordered "for you" (issue 4 x issue 5)."""

from __future__ import annotations

import pytest
from test_foryou_web import SPEECH, is_speech, save
from webutil import signup

from papertide.digest.compose import Composer, edition_period, for_you_order
from papertide.store.digest import Preferences
from papertide.web.digest import _site_ranker


def test_for_you_order_keeps_trending_order_for_unranked_papers():
    assert for_you_order([1, 2, 3, 4], [3, 1]) == [3, 1, 2, 4]
    assert for_you_order([1, 2, 3], []) == [1, 2, 3]
    assert for_you_order([5, 6], [7, 6]) == [6, 5]


@pytest.fixture
def fy(site):
    f = site.for_you()
    f.candidate_days = 3650  # the fixture's papers span months; every one of them is a candidate
    assert f.wait(300), f.state
    return f


def test_a_members_digest_follows_their_library(client, site, fy):
    signup(client)  # ada@example.org
    for a in SPEECH[:3]:
        save(client, a)
    user = site.store.get_user_by_email("ada@example.org")
    store = site.store
    later = SPEECH[3]  # a speech paper they did not save: its week's edition should lead with speech
    period = edition_period("weekly", store.get_paper(later).listed)
    plain = Preferences(frequency="weekly", max_papers=3)
    personal = Preferences(frequency="weekly", max_papers=3, for_you=True)
    a = store.create_subscriber("ada@example.org", "k1", user.id, personal)
    b = store.create_subscriber("bob@example.org", "k2", None, personal)  # asked for it, but has no account

    composer = Composer(store, period, personal=_site_ranker(site))
    trending = composer.qualifying(plain)
    ours = composer.papers_for(a)
    theirs = composer.papers_for(b)
    assert theirs == trending[:3]  # no account: trending order
    ids = store.arxiv_ids_for(ours)
    assert is_speech(site, ids[ours[0]]), [ids[d] for d in ours]
    assert ours != trending[:3]


def test_only_a_members_subscription_can_ask_for_for_you(client, site):
    from webutil import csrf_of, post

    from papertide.digest.subscriptions import DigestLinks

    signup(client)
    user = site.store.get_user_by_email("ada@example.org")
    links = DigestLinks(site.settings)
    member = site.store.create_subscriber("ada@example.org", "k1", user.id, Preferences())
    stranger = site.store.create_subscriber("bob@example.org", "k2", None, Preferences())
    for sub, allowed in ((member, True), (stranger, False)):
        path = links.links(sub).preferences.replace("http://testserver", "")
        page = client.get(path).text
        box = 'name="for_you" value="1" disabled' in page
        assert box is (not allowed)
        r = post(client, path, {"frequency": "daily", "categories": "", "keywords": "", "max_papers": "10",
                                "for_you": "1", "csrf": csrf_of(page)})
        assert r.status_code == 303, r.text[:300]
        assert site.store.get_subscriber(sub.id).prefs.for_you is allowed


def test_the_cli_ranker_builds_on_first_use_and_needs_an_index(site, tmp_path):
    from papertide.config import Settings
    from papertide.digest.personal import personal_ranker
    from papertide.store import SqliteStore

    bare = Settings(home=tmp_path / "bare", secret_key="x")
    store = SqliteStore(tmp_path / "bare.db")
    assert personal_ranker(store, bare)(1) == []  # no index: trending order, no error
    store.close()

    user = site.store.create_user("cy@example.org", "Cy", "not-a-hash")
    for a in SPEECH[:3]:
        d = site.store.doc_ids_for([a])[a]
        site.store.set_saved(site.store.default_collection(user.id).id, d, True)
    ranked = personal_ranker(site.store, site.settings)(user.id)
    assert all(isinstance(d, int) for d in ranked)
    assert not {site.store.doc_ids_for([a])[a] for a in SPEECH[:3]} & set(ranked)  # saved papers not re-offered
