"""The JSON API: feed, papers, search, similar, upvotes with a bearer token, and every refusal as JSON."""

import re
import shutil
from datetime import date

import pytest
from fastapi.testclient import TestClient

from papertide.models import Paper, Version
from papertide.rank.trending import Period, Sort
from papertide.web import create_app
from papertide.web.deps import check_csrf
from papertide.web.pages import feed_page
from papertide.web.security import new_api_token

PUBLIC_KEYS = {
    "arxiv_id", "version", "title", "abstract", "authors", "categories", "primary_category", "submitted", "updated",
    "listed", "comments", "journal_ref", "doi", "links", "upvotes", "featured_on", "submitted_by",
}
INTERNAL = ("content_hash", "text_hash", "seq", "doc_id", "hidden", "merged_into", "source", "password")


def make_token(store, email="reader@example.org", name="Reader") -> tuple[int, str]:
    user = store.create_user(email, name, "not-a-real-hash")
    token, token_hash = new_api_token()
    store.set_api_token_hash(user.id, token_hash)
    return user.id, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    return body


def featured_paper(site):
    """An HF-featured paper (it has HF upvotes) and its doc id."""
    rows = site.store.feed_rows(date(1990, 1, 1), date(2100, 1, 1), True)
    row = max(rows, key=lambda r: r.hf_upvotes)
    return row.doc_id, site.store.get_papers([row.doc_id])[row.doc_id]


def plain_paper(site, index=5):
    rows = sorted(site.store.feed_rows(date(1990, 1, 1), date(2100, 1, 1), False), key=lambda r: r.doc_id)
    rows = [r for r in rows if r.featured_on is None]
    doc_id = rows[index].doc_id
    return doc_id, site.store.get_papers([doc_id])[doc_id]


# -- feed ---------------------------------------------------------------------------------------------
def test_feed_is_the_home_feed_in_public_shape(client, site):
    r = client.get("/api/papers")
    assert r.status_code == 200
    body = r.json()
    day = site.store.latest_day(True)
    assert body["day"] == day.isoformat()
    assert (body["period"], body["sort"], body["view"], body["page"]) == ("day", "trending", "featured", 1)
    _, ids, pages = feed_page(site, day, Period.day, Sort.trending, True, 1, site.settings.page_size)
    expected = site.store.arxiv_ids_for(ids)
    assert [p["arxiv_id"] for p in body["items"]] == [expected[d] for d in ids]
    assert body["pages"] == pages and body["items"]
    for item in body["items"]:
        assert set(item) == PUBLIC_KEYS
        assert set(item["links"]) == {"abs", "pdf", "code"}
        assert item["links"]["abs"] == f"https://arxiv.org/abs/{item['arxiv_id']}"
        assert item["featured_on"] == day.isoformat()
    assert not any(k in r.text for k in ('"content_hash"', '"seq"', '"doc_id"'))


def test_feed_parameters(client, site):
    day = site.store.latest_day(False)
    r = client.get("/api/papers", params={"view": "all", "period": "week", "sort": "new", "date": day.isoformat()})
    body = r.json()
    assert (body["view"], body["period"], body["sort"], body["day"]) == ("all", "week", "new", day.isoformat())
    _, ids, _ = feed_page(site, day, Period.week, Sort.new, False, 1, site.settings.page_size)
    expected = site.store.arxiv_ids_for(ids)
    assert [p["arxiv_id"] for p in body["items"]] == [expected[d] for d in ids]
    listed = [p["listed"] or p["submitted"] for p in body["items"]]
    assert listed == sorted(listed, reverse=True)

    past_end = client.get("/api/papers", params={"view": "all", "page": body["pages"] + 1}).json()
    assert past_end["items"] == [] and past_end["page"] == body["pages"] + 1


@pytest.mark.parametrize("params", [
    {"date": "yesterday"}, {"date": "2024-13-01"}, {"period": "year"}, {"sort": "random"}, {"view": "mine"},
    {"page": "0"}, {"page": "x"},
])
def test_feed_refuses_bad_parameters(client, params):
    body = assert_error(client.get("/api/papers", params=params), 422)
    assert body["error"] == "Invalid request"


# -- one paper ----------------------------------------------------------------------------------------
def test_paper_detail_any_id_form(client, site):
    _, paper = featured_paper(site)
    r = client.get(f"/api/papers/{paper.arxiv_id}")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == PUBLIC_KEYS | {"versions"}
    assert body["arxiv_id"] == paper.arxiv_id and body["title"] == paper.title
    assert body["upvotes"] == paper.hf_upvotes > 0
    assert body["authors"] == paper.authors and body["categories"] == paper.categories
    assert [v["version"] for v in body["versions"]] == [v.version for v in paper.versions]
    for form in (f"{paper.arxiv_id}v1", f"arXiv:{paper.arxiv_id}"):
        assert client.get(f"/api/papers/{form}").json()["arxiv_id"] == paper.arxiv_id


def test_paper_with_versions_lists_them(client, site):
    versions = [Version(1, "2026-07-01T10:00:00Z", "812kb"), Version(2, "2026-07-09T16:30:00Z", "1020kb")]
    site.store.upsert_papers([Paper("2607.01234", "A versioned paper", "Abstract.", ["A. Author"], ["cs.LG"],
                                    version=2, submitted=date(2026, 7, 1), updated=date(2026, 7, 9),
                                    versions=versions)])
    body = client.get("/api/papers/2607.01234v1").json()
    assert body["version"] == 2 and body["updated"] == "2026-07-09"
    assert body["versions"] == [{"version": 1, "created": "2026-07-01T10:00:00Z", "size": "812kb"},
                                {"version": 2, "created": "2026-07-09T16:30:00Z", "size": "1020kb"}]


def test_unknown_invalid_and_hidden_papers_are_404_json(client, site):
    assert "not in this library" in assert_error(client.get("/api/papers/2999.99999"), 404)["detail"]
    assert_error(client.get("/api/papers/not-an-id"), 404)
    doc_id, paper = plain_paper(site)
    site.store.set_hidden(doc_id, True)
    assert_error(client.get(f"/api/papers/{paper.arxiv_id}"), 404)
    assert_error(client.get(f"/api/papers/{paper.arxiv_id}/similar"), 404)
    assert_error(client.get("/api/no/such/thing"), 404)


def test_merged_paper_resolves_to_its_target(client, site):
    dup_id, dup = plain_paper(site, 5)
    into_id, into = plain_paper(site, 6)
    site.store.merge_papers(dup_id, into_id)
    assert client.get(f"/api/papers/{dup.arxiv_id}").json()["arxiv_id"] == into.arxiv_id


# -- search -------------------------------------------------------------------------------------------
def test_search_returns_scored_hits(client):
    r = client.get("/api/search", params={"q": "neural networks", "sort": "relevance"})
    assert r.status_code == 200
    body = r.json()
    assert body["q"] == "neural networks" and body["page"] == 1 and body["has_next"] is True
    hits = body["items"]
    assert len(hits) == 30 and all(set(h) == {"paper", "score"} for h in hits)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert set(hits[0]["paper"]) == PUBLIC_KEYS
    page2 = client.get("/api/search", params={"q": "neural networks", "page": 2}).json()["items"]
    assert not {h["paper"]["arxiv_id"] for h in hits} & {h["paper"]["arxiv_id"] for h in page2}


def test_search_sorts_and_filters(client):
    new = client.get("/api/search", params={"q": "language models", "sort": "new"}).json()["items"]
    days = [h["paper"]["listed"] or h["paper"]["submitted"] for h in new]
    assert days == sorted(days, reverse=True)
    votes = client.get("/api/search", params={"q": "language models", "sort": "votes"}).json()["items"]
    ups = [h["paper"]["upvotes"] for h in votes]
    assert ups == sorted(ups, reverse=True)

    cat = client.get("/api/search", params={"q": "learning", "cat": "cs.CV"}).json()["items"]
    assert cat and all("cs.CV" in h["paper"]["categories"] for h in cat)
    code = client.get("/api/search", params={"q": "learning", "code": "true"}).json()["items"]
    assert code and all(h["paper"]["links"]["code"] for h in code)
    some = client.get("/api/search", params={"q": "learning"}).json()["items"]
    cut = sorted(h["paper"]["listed"] or h["paper"]["submitted"] for h in some)[len(some) // 2]
    dated = client.get("/api/search", params={"q": "learning", "from": cut}).json()["items"]
    assert dated and all((h["paper"]["listed"] or h["paper"]["submitted"]) >= cut for h in dated)


def test_search_by_arxiv_id(client, site):
    _, paper = plain_paper(site)
    body = client.get("/api/search", params={"q": f"https://arxiv.org/abs/{paper.arxiv_id}v2"}).json()
    assert [h["paper"]["arxiv_id"] for h in body["items"]] == [paper.arxiv_id]
    assert body["items"][0]["score"] is None and body["has_next"] is False
    assert_error(client.get("/api/search", params={"q": "2999.99999"}), 404)


@pytest.mark.parametrize("params", [
    {}, {"q": ""}, {"q": "   "}, {"q": "x", "sort": "best"}, {"q": "x", "page": "0"}, {"q": "x", "page": "101"},
    {"q": "x", "from": "last week"}, {"q": "x", "to": "2024-02-30"}, {"q": "x" * 501},
])
def test_search_refuses_bad_parameters(client, params):
    assert_error(client.get("/api/search", params=params), 422)


def test_search_without_index_is_503(client, site):
    site.engine = None
    body = assert_error(client.get("/api/search", params={"q": "neural networks"}), 503)
    assert "index" in body["detail"]
    _, paper = plain_paper(site)
    assert_error(client.get(f"/api/papers/{paper.arxiv_id}/similar"), 503)
    # an id needs no index
    assert client.get("/api/search", params={"q": paper.arxiv_id}).json()["items"][0]["paper"]["arxiv_id"] \
        == paper.arxiv_id


# -- similar ------------------------------------------------------------------------------------------
def test_similar_papers(client, site):
    _, paper = plain_paper(site)
    r = client.get(f"/api/papers/{paper.arxiv_id}/similar", params={"k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["arxiv_id"] == paper.arxiv_id and body["since"] == "all"
    ids = [h["paper"]["arxiv_id"] for h in body["items"]]
    assert len(ids) == 5 and paper.arxiv_id not in ids and len(set(ids)) == 5
    scores = [h["score"] for h in body["items"]]
    assert scores == sorted(scores, reverse=True)

    hidden = site.store.doc_ids_for([ids[0]])[ids[0]]
    site.store.set_hidden(hidden, True)
    again = [h["paper"]["arxiv_id"] for h in
             client.get(f"/api/papers/{paper.arxiv_id}/similar", params={"k": 5}).json()["items"]]
    assert ids[0] not in again and len(again) == 5


def test_similar_since_filters_old_papers(client, site):
    _, paper = plain_paper(site)
    body = client.get(f"/api/papers/{paper.arxiv_id}/similar", params={"since": "month"}).json()
    cutoff = date.today().toordinal() - 31
    assert body["since"] == "month"
    assert all(date.fromisoformat(h["paper"]["listed"] or h["paper"]["submitted"]).toordinal() >= cutoff
               for h in body["items"])


@pytest.mark.parametrize("params", [{"since": "decade"}, {"k": "0"}, {"k": "51"}, {"k": "many"}])
def test_similar_refuses_bad_parameters(client, site, params):
    _, paper = plain_paper(site)
    assert_error(client.get(f"/api/papers/{paper.arxiv_id}/similar", params=params), 422)


# -- upvotes ------------------------------------------------------------------------------------------
def test_upvote_toggles_and_counts(client, site):
    _, token = make_token(site.store)
    _, other = make_token(site.store, "other@example.org", "Other")
    _, paper = featured_paper(site)
    url = f"/api/papers/{paper.arxiv_id}/upvote"
    hf = paper.hf_upvotes

    r = client.post(url, headers=bearer(token))
    assert r.status_code == 200
    assert r.json() == {"arxiv_id": paper.arxiv_id, "voted": True, "votes": 1, "upvotes": hf + 1}
    assert client.get(f"/api/papers/{paper.arxiv_id}").json()["upvotes"] == hf + 1
    assert client.post(f"/api/papers/arXiv:{paper.arxiv_id}v1/upvote", headers=bearer(other)).json()["votes"] == 2
    assert client.post(url, headers=bearer(token)).json() == {
        "arxiv_id": paper.arxiv_id, "voted": False, "votes": 1, "upvotes": hf + 1}
    assert client.get(f"/api/papers/{paper.arxiv_id}").json()["upvotes"] == hf + 1
    assert client.post(url, headers=bearer(other)).json()["votes"] == 0


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer "}, {"Authorization": "Bearer pt_not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="},
    {"Authorization": "pt_no_scheme"},
])
def test_upvote_without_a_valid_token_is_401(client, site, headers):
    _, paper = featured_paper(site)
    body = assert_error(client.post(f"/api/papers/{paper.arxiv_id}/upvote", headers=headers), 401)
    assert "token" in body["detail"]
    assert site.store.vote_counts([site.store.doc_ids_for([paper.arxiv_id])[paper.arxiv_id]]) == {
        site.store.doc_ids_for([paper.arxiv_id])[paper.arxiv_id]: 0}


def test_replaced_token_stops_working(client, site):
    uid, old = make_token(site.store)
    new, new_hash = new_api_token()
    site.store.set_api_token_hash(uid, new_hash)
    _, paper = featured_paper(site)
    assert_error(client.post(f"/api/papers/{paper.arxiv_id}/upvote", headers=bearer(old)), 401)
    assert client.post(f"/api/papers/{paper.arxiv_id}/upvote", headers=bearer(new)).json()["voted"] is True


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_token_from_profile_page_works_and_session_alone_does_not(client, site):
    signup = client.get("/signup")
    r = client.post("/signup", data={"email": "member@example.org", "name": "Member", "password": "long enough pw",
                                     "csrf": _csrf(signup.text), "next": "/"}, follow_redirects=False)
    assert r.status_code == 303
    uid = site.store.get_user_by_email("member@example.org").id
    page = client.get(f"/users/{uid}")
    r = client.post("/account/token", data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    token = re.search(r'<code id="new-token">([^<]+)</code>', client.get(f"/users/{uid}").text).group(1)

    _, paper = featured_paper(site)
    url = f"/api/papers/{paper.arxiv_id}/upvote"
    # Signed in by cookie, even with the session's CSRF token: the API wants the bearer token.
    csrf = _csrf(client.get(f"/users/{uid}").text)
    for headers in ({}, {"X-CSRF-Token": csrf}, {"Accept": "application/json", "X-CSRF-Token": csrf}):
        assert "papertide_session" in client.cookies
        assert_error(client.post(url, headers=headers), 401)
    assert client.post(url, headers=bearer(token)).json()["voted"] is True
    # and the same token works from a client with no cookies at all
    with TestClient(client.app, base_url="http://testserver") as fresh:
        assert fresh.post(url, headers=bearer(token)).json()["voted"] is False


def test_upvote_unknown_paper_is_404(client, site):
    _, token = make_token(site.store)
    assert_error(client.post("/api/papers/2999.99999/upvote", headers=bearer(token)), 404)
    assert_error(client.post("/api/papers/nonsense/upvote", headers=bearer(token)), 404)


def test_upvote_rate_limit_is_429(tmp_path, site_template):
    from papertide.config import Settings
    from papertide.web.services import build_services

    home = tmp_path / "home"
    shutil.copytree(site_template, home)
    settings = Settings(home=home, secret_key="test-secret-key", base_url="http://testserver",
                        smtp_host="127.0.0.1", smtp_port=1, vote_rate="3/3600")
    services = build_services(settings, load_engine=False)
    try:
        _, token = make_token(services.store)
        _, other = make_token(services.store, "other@example.org", "Other")
        _, paper = featured_paper(services)
        url = f"/api/papers/{paper.arxiv_id}/upvote"
        with TestClient(create_app(services=services), base_url="http://testserver") as c:
            assert [c.post(url, headers=bearer(token)).json()["voted"] for _ in range(3)] == [True, False, True]
            body = assert_error(c.post(url, headers=bearer(token)), 429)
            assert "votes" in body["detail"]
            assert c.get(f"/api/papers/{paper.arxiv_id}").json()["upvotes"] == paper.hf_upvotes + 1
            assert c.post(url, headers=bearer(other)).status_code == 200  # the limit is per member
    finally:
        services.close()


# -- the router and the spec --------------------------------------------------------------------------
def test_api_routes_carry_no_csrf_check(client, site):
    from papertide.web import api, pages

    def calls(dependant):
        for d in dependant.dependencies:
            yield d.call
            yield from calls(d)

    assert check_csrf not in [d.dependency for d in api.router.dependencies]
    assert len(api.router.routes) == 5
    for route in api.router.routes:
        assert check_csrf not in set(calls(route.dependant)), route.path
    assert check_csrf in [d.dependency for d in pages.router.dependencies]  # the page's own upvote keeps it

    # In effect: a bearer call with no session and no CSRF token goes through, where the page refuses.
    _, token = make_token(site.store)
    _, paper = featured_paper(site)
    assert client.post(f"/api/papers/{paper.arxiv_id}/upvote", headers=bearer(token)).status_code == 200
    assert client.post(f"/papers/{paper.arxiv_id}/upvote", headers=bearer(token),
                       follow_redirects=False).status_code == 403


def test_openapi_lists_the_endpoints(client):
    spec = client.get("/api/openapi.json").json()
    paths = spec["paths"]
    assert {"get"} <= set(paths["/api/papers"]) and {"get"} <= set(paths["/api/search"])
    assert "get" in paths["/api/papers/{arxiv_id}"] and "get" in paths["/api/papers/{arxiv_id}/similar"]
    assert set(paths["/api/papers/{arxiv_id}/upvote"]) == {"post"}
    assert paths["/api/papers/{arxiv_id}/upvote"]["post"]["security"] == [{"HTTPBearer": []}]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    schemas = spec["components"]["schemas"]
    assert set(schemas["PaperOut"]["properties"]) == PUBLIC_KEYS
    assert set(schemas["PaperDetail"]["properties"]) == PUBLIC_KEYS | {"versions"}
    for name in ("PaperOut", "PaperDetail", "SearchHitOut", "FeedOut", "VoteOut"):
        assert not any(k in schemas[name]["properties"] for k in INTERNAL), name
    assert client.get("/api/docs").status_code == 200
