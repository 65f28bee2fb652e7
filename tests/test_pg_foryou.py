"""The "for you" feed on PostgreSQL: the site's model over a PostgresStore (corpus side, saves, the feed
page), as tests/test_foryou_web.py checks it on SQLite."""

from __future__ import annotations

import uuid

import pytest
from webutil import card_ids, html, post, signup

# Papers of the fixture on one clear theme (as tests/test_foryou_web.py): speech.
SPEECH = ["2503.14928", "2504.01519", "2504.02604", "2504.15509", "2505.04457", "2505.11200", "2505.17320"]


@pytest.fixture
def pg_site(tmp_path, pg_indexed, embedder):
    from papertide.config import Settings
    from papertide.web.services import build_services

    store, _, _ = pg_indexed
    settings = Settings(home=tmp_path / "home", database_url=store.url, secret_key="test-secret-key",
                        base_url="http://testserver", smtp_host="127.0.0.1", smtp_port=1)
    services = build_services(settings, embedder=embedder)
    yield services
    services.close()


def test_the_feed_follows_the_library_on_postgres(pg_site):
    from fastapi.testclient import TestClient

    from papertide.web import create_app

    fy = pg_site.for_you()
    assert fy is not None
    fy.candidate_days = 3650  # the fixture's papers span months; every one of them is a candidate
    assert fy.wait(300), fy.state
    assert len(fy.corpus.ids) > 100 and fy.corpus.categories.nnz >= len(fy.corpus.ids)
    with TestClient(create_app(services=pg_site), base_url="http://testserver") as client:
        signup(client, email=f"pg-{uuid.uuid4().hex[:8]}@example.org")  # the database is shared by the session
        for a in SPEECH[:3]:
            r = post(client, f"/papers/{a}/save", {"saved": "1"})
            assert r.status_code == 303, r.text[:300]
        post(client, "/for-you/settings", {"trending": "0"})
        r = client.get("/for-you")
        assert r.status_code == 200, r.text[:500]
        ids = card_ids(r.text)
        assert ids and not set(ids) & set(SPEECH[:3])
        assert len(set(SPEECH[3:]) & set(ids[:10])) >= 3
        why = html(r.text).find(cls="why")
        assert why is not None and why.find(cls="because").find_all("a")
        # "not interested" sticks
        gone = ids[0]
        r = post(client, f"/papers/{gone}/not-interested", {})
        assert r.status_code in (200, 303), r.text[:300]
        assert gone not in card_ids(client.get("/for-you").text)
