"""The public pages over HTTP: the trending feed, paper pages, search, submitting a paper, moderation."""

from __future__ import annotations

import http.server
import pathlib
import threading
from datetime import date, timedelta

import numpy as np
import pytest
from typer.testing import CliRunner
from webutil import (
    PASSWORD,
    card_ids,
    error_page,
    flashes,
    free_port,
    html,
    login,
    post,
    second_client,
    signup,
)

from papertide.models import Paper, SearchFilters, Version

RECORDED = pathlib.Path(__file__).parent / "fixtures" / "recorded"
# The featured days of the recorded HF pages, and their papers in trending order (HF upvotes 4, 3, 2).
AUG3 = ["2607.28229", "2607.26654", "2607.27851"]
JUL31 = {"2607.23193", "2607.27958", "2607.28582", "2607.28308", "2607.16922"}


@pytest.fixture
def member(client):
    signup(client)
    return client


def _card_days(page: str) -> list[date]:
    return [date.fromisoformat(n.text.strip()) for n in html(page).find_all("span", cls="day")]


def _nav(page: str) -> dict[str, str]:
    nav = html(page).find("nav", cls="day-nav")
    return {a.attrs["rel"]: a.attrs["href"] for a in nav.find_all("a")} if nav else {}


# -- feed ---------------------------------------------------------------------------------------------
def test_feed_shows_latest_featured_day_in_trending_order(client):
    r = client.get("/")
    assert r.status_code == 200
    assert card_ids(r.text) == AUG3
    assert html(r.text).find("h1").text.strip() == "Monday, 3 August 2026"
    current = {a.text.strip() for a in html(r.text).find_all("a", aria_current="page")}
    assert current == {"Featured", "Day", "Trending"}


def test_feed_prev_next_navigation_by_day(client):
    r = client.get("/")
    nav = _nav(r.text)
    assert "next" not in nav  # nothing is featured after the latest day
    r = client.get(nav["prev"])
    assert set(card_ids(r.text)) == JUL31
    nav = _nav(r.text)
    assert "prev" not in nav
    assert card_ids(client.get(nav["next"]).text) == AUG3


def test_feed_week_and_month(client):
    week = client.get("/?period=week&date=2026-07-29")  # a Wednesday: the ISO week is Mon 27 Jul - Sun 2 Aug
    assert set(card_ids(week.text)) == JUL31
    assert html(week.text).find("h1").text.strip() == "Week of 27 Jul – 2 Aug 2026"
    month = client.get("/?period=month&date=2026-08-31")
    assert card_ids(month.text) == AUG3
    assert html(month.text).find("h1").text.strip() == "August 2026"
    # Prev/next step to the nearest period that has papers, never into an empty future.
    nav = _nav(month.text)
    assert "next" not in nav
    assert set(card_ids(client.get(nav["prev"]).text)) == JUL31


def test_feed_all_papers_newest_and_paging(client, site):
    r = client.get("/?view=all")
    assert _card_days(r.text) == [date(2026, 7, 30)] * 5
    r = client.get("/?view=all&period=month&date=2025-05-01&sort=new")
    days = _card_days(r.text)
    assert len(days) == site.settings.page_size
    assert days == sorted(days, reverse=True)
    assert all(d.month == 5 and d.year == 2025 for d in days)
    pager = html(r.text).find("nav", cls="pager")
    nxt = pager.find("a")
    assert "page=2" in nxt.attrs["href"]
    page2 = client.get(nxt.attrs["href"])
    assert not set(card_ids(page2.text)) & set(card_ids(r.text))
    assert _card_days(page2.text)[0] <= days[-1]


def test_feed_counts_votes_in_trending_order(client, site):
    doc = site.store.doc_ids_for([AUG3[-1]])[AUG3[-1]]
    for i in range(3):  # 2 HF upvotes + 3 votes here beat 4 HF upvotes
        u = site.store.create_user(f"v{i}@example.org", f"V{i}", "x")
        site.store.toggle_vote(u.id, doc)
    assert card_ids(client.get("/").text)[0] == AUG3[-1]


def test_feed_empty_period_and_bad_parameters(client):
    r = client.get("/?date=2020-01-01")
    assert r.status_code == 200 and card_ids(r.text) == []
    assert html(r.text).find(cls="empty") is not None
    r = client.get("/?date=yesterday")
    assert r.status_code == 400
    assert error_page(r.text) == ("Bad request", "'yesterday' is not a date; use YYYY-MM-DD.")
    for qs in ("period=year", "view=mine", "page=0", "sort=random"):
        r = client.get(f"/?{qs}")
        assert r.status_code == 422, qs
        assert error_page(r.text)[0] == "Invalid request"


# -- paper page ---------------------------------------------------------------------------------------
def _versioned_paper(site) -> str:
    site.store.upsert_papers([Paper(
        "2611.00001", "A Paper With History", "An abstract.\n\nA second paragraph.", ["A. Author", "B. Author"],
        ["cs.IR", "cs.CL"], version=2, submitted=date(2026, 11, 2), listed=date(2026, 11, 3),
        comments="12 pages", doi="10.1000/xyz", versions=[Version(1, "2026-11-02T10:00:00Z", "100kb"),
                                                          Version(2, "2026-11-20T10:00:00Z", "120kb")],
    )])
    return "2611.00001"


def test_paper_page_metadata_versions_and_bibtex(client, site):
    pid = _versioned_paper(site)
    r = client.get(f"/papers/{pid}")
    assert r.status_code == 200
    doc = html(r.text)
    art = doc.find("article", cls="paper")
    assert art.find("h1").text == "A Paper With History"
    assert [a.text for a in art.find("p", cls="authors").find_all("a")] == ["A. Author", "B. Author"]
    assert [t.text for t in art.find("section", cls="details").find_all("a", cls="tag")] == ["cs.IR", "cs.CL"]
    assert [p.text for p in art.find("section", cls="abstract-full").find_all("p")] == [
        "An abstract.", "A second paragraph."]
    versions = [li.text for li in art.find("ol", cls="versions").find_all("li")]
    assert [v.split(" · ")[0] for v in versions] == ["v1", "v2"]
    assert "2026-11-20T10:00:00Z" in versions[1]
    assert "arXiv:2611.00001v2" in art.find("p", cls="eyebrow").text
    bib_on_page = art.find("pre", id="bibtex").text
    assert doc.find("button", data_copy="#bibtex") is not None
    dl = client.get(f"/papers/{pid}/bibtex")
    assert dl.status_code == 200
    assert dl.headers["content-type"].startswith("application/x-bibtex")
    assert dl.headers["content-disposition"] == 'attachment; filename="2611.00001.bib"'
    assert dl.text == bib_on_page
    assert dl.text.startswith("@") and "A Paper With History" in dl.text and "10.1000/xyz" in dl.text


def test_paper_page_redirects_versions_and_refuses_unknown_ids(client):
    r = client.get("/papers/2503.11792v1", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (301, "/papers/2503.11792")
    r = client.get("/papers/arXiv:2503.11792", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (301, "/papers/2503.11792")
    r = client.get("/papers/2501.99999")
    assert r.status_code == 404
    assert "not in this library yet. You can submit it." in error_page(r.text)[1]
    r = client.get("/papers/not-an-id")
    assert r.status_code == 404 and "is not an arXiv id" in error_page(r.text)[1]
    assert client.get("/papers/2501.99999/bibtex").status_code == 404
    assert client.get("/papers/2503.11792?since=decade").status_code == 422


def test_similar_papers_by_period(client, site):
    pid = "2607.28582"  # an HF paper of 2026-07-31: similar papers exist from several periods
    sections = {}
    for since in ("all", "year", "month"):
        page = client.get(f"/papers/{pid}?since={since}").text
        sec = html(page).find("section", cls="similar")
        assert sec.find("a", aria_current="page").attrs["href"] == f"?since={since}#similar-h"
        sections[since] = sec
    all_ids = card_ids_of(sections["all"])
    assert 0 < len(all_ids) <= 8 and pid not in all_ids
    cutoff = date.today() - timedelta(days=365)
    for day in sections["year"].find_all("span", cls="day"):
        assert date.fromisoformat(day.text) >= cutoff
    month_ids = card_ids_of(sections["month"])
    month_cutoff = date.today() - timedelta(days=31)
    if not month_ids:
        assert "No similar papers in this period." in sections["month"].text
    for day in sections["month"].find_all("span", cls="day"):
        assert date.fromisoformat(day.text) >= month_cutoff


def card_ids_of(node) -> list[str]:
    return [a.attrs["data-arxiv-id"] for a in node.find_all("article", cls="card")]


def test_upvote_toggles_and_shows_on_the_page(member, site):
    pid = "2503.11792"
    before = site.store.vote_counts([site.store.doc_ids_for([pid])[pid]])
    r = post(member, f"/papers/{pid}/upvote", headers={"referer": f"http://testserver/papers/{pid}"})
    assert (r.status_code, r.headers["location"]) == (303, f"/papers/{pid}")
    button = html(member.get(f"/papers/{pid}").text).find("article", cls="paper").find("button", cls="vote-button")
    assert button.attrs["aria-pressed"] == "true"
    doc = site.store.doc_ids_for([pid])[pid]
    assert site.store.vote_counts([doc])[doc] == before[doc] + 1
    r = post(member, f"/papers/{pid}/upvote", headers={"accept": "application/json"})
    assert r.json() == {"arxiv_id": pid, "voted": False, "votes": before[doc]}
    button = html(member.get(f"/papers/{pid}").text).find("article", cls="paper").find("button", cls="vote-button")
    assert button.attrs["aria-pressed"] == "false"


def test_upvote_needs_an_account(client, site):
    r = post(client, "/papers/2503.11792/upvote", headers={"referer": "http://testserver/?view=all&sort=new"})
    # Back to the page the button was on after signing in, not to the POST-only upvote address.
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/%3Fview%3Dall%26sort%3Dnew")
    assert html(client.get(r.headers["location"]).text).find("input", name="next").attrs["value"] == "/?view=all&sort=new"
    r = post(client, "/papers/2503.11792/upvote")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/")
    doc = site.store.doc_ids_for(["2503.11792"])["2503.11792"]
    assert site.store.vote_counts([doc])[doc] == 0


# -- search -------------------------------------------------------------------------------------------
def test_search_highlights_matched_terms(client):
    r = client.get("/search?q=neural+networks")
    doc = html(r.text)
    cards = doc.find_all("article", cls="card")
    assert len(cards) == 30
    marks = [m.text.lower() for m in doc.find_all("mark")]
    assert marks and all(m.startswith(("neur", "netwo")) for m in marks)
    assert doc.find("input", id="q").attrs["value"] == "neural networks"


@pytest.mark.parametrize("q", ["2503.11792", "arXiv:2503.11792v2", "https://arxiv.org/abs/2503.11792v1",
                               "https://arxiv.org/pdf/2503.11792"])
def test_search_for_an_arxiv_id_or_url_opens_the_paper(client, q):
    r = client.get("/search", params={"q": q}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/papers/2503.11792")


def test_search_filters(client, site):
    ids = card_ids(client.get("/search?q=language+models&cat=cs.CL").text)
    assert ids and all("cs.CL" in site.store.get_paper(i).categories for i in ids)
    unfiltered = card_ids(client.get("/search?q=language+models").text)
    assert any("cs.CL" not in site.store.get_paper(i).categories for i in unfiltered)
    r = client.get("/search?q=learning&code=1")
    cards = html(r.text).find_all("article", cls="card")
    assert cards and all(c.find("a", cls="code") for c in cards)
    r = client.get("/search?q=learning&from=2025-05-20&to=2025-05-22")
    days = _card_days(r.text)
    assert days and all(date(2025, 5, 20) <= d <= date(2025, 5, 22) for d in days)
    doc = html(r.text)
    assert doc.find("input", name="from").attrs["value"] == "2025-05-20"
    r = client.get("/search?q=learning&from=last+week")
    assert r.status_code == 400 and "is not a date" in error_page(r.text)[1]


def test_search_sorts(client, site):
    r = client.get("/search?q=learning&sort=new")
    days = _card_days(r.text)
    assert days == sorted(days, reverse=True)
    assert html(r.text).find("option", value="new").attrs.get("selected") is not None
    r = client.get("/search?q=learning&sort=votes")
    counts = [int(n.text) for n in html(r.text).find_all("span", cls="count")]
    assert counts == sorted(counts, reverse=True)
    assert client.get("/search?q=learning&sort=random").status_code == 422


def test_search_pagination(client):
    p1 = client.get("/search?q=learning")
    nxt = [a for a in html(p1.text).find("nav", cls="pager").find_all("a") if "Next" in a.text]
    assert nxt and "page=2" in nxt[0].attrs["href"]
    p2 = client.get(nxt[0].attrs["href"])
    assert card_ids(p2.text) and not set(card_ids(p1.text)) & set(card_ids(p2.text))
    prev = [a for a in html(p2.text).find("nav", cls="pager").find_all("a") if "Previous" in a.text]
    assert prev and card_ids(client.get(prev[0].attrs["href"]).text) == card_ids(p1.text)
    assert client.get("/search?q=learning&page=101").status_code == 422


def test_search_partial_and_empty(client):
    r = client.get("/search?q=neural&partial=1")
    assert "<html" not in r.text and card_ids(r.text)
    r = client.get("/search?q=neural&from=2030-01-01")
    assert card_ids(r.text) == [] and html(r.text).find(cls="empty") is not None
    r = client.get("/search")
    assert r.status_code == 200 and card_ids(r.text) == []


# -- submit -------------------------------------------------------------------------------------------
@pytest.fixture
def arxiv_server():
    """A local stand-in for export.arxiv.org replaying a recorded Atom answer (one old-style paper)."""
    body = (RECORDED / "arxiv_atom_query_delmaestro_checkerboard_2016.xml").read_bytes()
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/query", seen
    server.shutdown()
    server.server_close()


def _point_arxiv_at(site, url: str) -> None:
    from papertide.web.services import arxiv_fetcher

    site.settings = site.settings.model_copy(update={"arxiv_api_url": url})
    site.fetch_arxiv = arxiv_fetcher(site.settings)


def test_submit_needs_an_account(client):
    r = client.get("/submit", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=/submit")


def test_submit_refuses_what_is_not_an_id(member):
    r = post(member, "/submit", {"arxiv_id": "not a paper"})
    assert r.status_code == 400
    assert html(r.text).find(id="form-error").text.startswith("That is not an arXiv id or URL")
    assert html(r.text).find("input", id="arxiv_id").attrs["value"] == "not a paper"


def test_submit_a_known_paper_features_it_today(member, site):
    pid = "2503.11792"
    r = post(member, "/submit", {"arxiv_id": f"https://arxiv.org/abs/{pid}v1"})
    assert (r.status_code, r.headers["location"]) == (303, f"/papers/{pid}")
    page = member.get(f"/papers/{pid}").text
    assert "Thanks! The paper is on today's page." in flashes(page)
    assert site.store.get_paper(pid).featured_on == date.today()
    assert pid in card_ids(member.get(f"/?date={date.today()}").text)
    details = html(page).find("section", cls="details").text
    assert "Submitted by" in details and "Ada" in details
    r = post(member, "/submit", {"arxiv_id": pid})
    assert "You had already submitted this paper." in flashes(member.get(r.headers["location"]).text)


def test_submit_offline_is_a_clear_503(member, site):
    _point_arxiv_at(site, f"http://127.0.0.1:{free_port()}/api/query")  # nothing listens there
    r = post(member, "/submit", {"arxiv_id": "2501.00001"})
    assert r.status_code == 503
    assert "arXiv cannot be reached" in html(r.text).find(id="form-error").text
    assert site.store.get_paper("2501.00001") is None


def test_submit_fetches_a_new_paper_from_arxiv(member, site, arxiv_server):
    url, seen = arxiv_server
    _point_arxiv_at(site, url)
    r = post(member, "/submit", {"arxiv_id": "cond-mat/0603029"})
    assert (r.status_code, r.headers["location"]) == (303, "/papers/cond-mat/0603029")
    assert len(seen) == 1 and "id_list=cond-mat%2F0603029" in seen[0]
    paper = site.store.get_paper("cond-mat/0603029")
    assert paper is not None and paper.featured_on == date.today()
    page = html(member.get("/papers/cond-mat/0603029").text)
    assert "checkerboard" in page.find("h1").text.lower()
    # The new paper is indexed at once: searchable by its title.
    hits = card_ids(member.get("/search", params={"q": paper.title}).text)
    assert "cond-mat/0603029" in hits[:3]


# -- moderation ---------------------------------------------------------------------------------------
@pytest.fixture
def admin(client, site, monkeypatch):
    """An administrator made the documented way (`papertide user create EMAIL --admin`), signed in."""
    from papertide.cli import app

    monkeypatch.setenv("PAPERTIDE_HOME", str(site.settings.home))
    monkeypatch.setenv("PAPERTIDE_NEW_PASSWORD", PASSWORD)
    monkeypatch.setenv("PAPERTIDE_SECRET_KEY", "test-secret-key")
    r = CliRunner().invoke(app, ["user", "create", "mod@example.org", "--name", "Mod", "--admin"])
    assert r.exit_code == 0, r.output
    assert login(client, "mod@example.org").status_code == 303
    return client


def test_admin_hides_a_paper_everywhere(admin, site):
    pid = AUG3[0]
    doc = html(admin.get(f"/papers/{pid}").text)
    assert doc.find("section", cls="admin") is not None
    r = post(admin, f"/admin/papers/{pid}/hide", {"hidden": "1"})
    assert r.status_code == 303
    assert site.store.curation(site.store.doc_ids_for([pid])[pid]) == (True, None)
    page = admin.get(f"/papers/{pid}").text  # admins still see it, with a banner
    assert "Hidden by moderators" in page
    visitor = second_client(admin)
    assert visitor.get(f"/papers/{pid}").status_code == 404
    assert pid not in card_ids(visitor.get("/").text)
    title = site.store.get_paper(pid).title
    assert pid not in card_ids(visitor.get("/search", params={"q": title}).text)
    post(admin, f"/admin/papers/{pid}/hide", {"hidden": "0"})
    assert visitor.get(f"/papers/{pid}").status_code == 200


def test_admin_merges_a_duplicate(admin, site):
    dup, target = AUG3[2], AUG3[1]
    voter = second_client(admin)
    signup(voter, "v@example.org", "Voter")
    post(voter, f"/papers/{dup}/upvote")
    post(voter, f"/papers/{dup}/save")
    r = post(admin, f"/admin/papers/{dup}/merge", {"into": f"https://arxiv.org/abs/{target}"})
    assert (r.status_code, r.headers["location"]) == (303, f"/papers/{target}")
    ids = site.store.doc_ids_for([dup, target])
    assert site.store.voted_among(2, [ids[target]]) == {ids[target]}
    assert site.store.saved_among(2, [ids[dup], ids[target]]) == {ids[target]}
    # Visitors following the old address land on the paper it was merged into.
    r = voter.get(f"/papers/{dup}", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (301, f"/papers/{target}")
    assert dup not in card_ids(voter.get("/").text)


def test_merge_refusals(admin, site):
    a, b = AUG3[0], AUG3[1]
    r = post(admin, f"/admin/papers/{a}/merge", {"into": ""})
    assert r.status_code == 400 and "Say which paper" in error_page(r.text)[1]
    r = post(admin, f"/admin/papers/{a}/merge", {"into": a})
    assert r.status_code == 400 and "cannot be merged into itself" in error_page(r.text)[1]
    assert post(admin, f"/admin/papers/{a}/merge", {"into": b}).status_code == 303
    # Merging the target back into the duplicate would make a loop; it is refused, and pages still work.
    r = post(admin, f"/admin/papers/{b}/merge", {"into": a})
    assert r.status_code == 400, r.text[:300]
    assert second_client(admin).get(f"/papers/{a}", follow_redirects=False).status_code == 301
    assert site.store.curation(site.store.doc_ids_for([b])[b]) == (False, None)


def test_moderation_is_for_admins_only(member, site):
    pid = AUG3[0]
    assert html(member.get(f"/papers/{pid}").text).find("section", cls="admin") is None
    r = post(member, f"/admin/papers/{pid}/hide", {"hidden": "1"})
    assert r.status_code == 403
    assert error_page(r.text) == ("Forbidden", "Only administrators can do that.")
    assert post(member, f"/admin/papers/{pid}/merge", {"into": AUG3[1]}).status_code == 403
    assert site.store.curation(site.store.doc_ids_for([pid])[pid]) == (False, None)



def test_submitting_a_hidden_paper_is_refused(member, site):
    pid = "2503.11792"
    doc = site.store.doc_ids_for([pid])[pid]
    site.store.set_hidden(doc, True)
    r = post(member, "/submit", {"arxiv_id": pid})
    assert r.status_code == 403
    assert "removed by the moderators" in html(r.text).find(id="form-error").text
    assert site.store.get_paper(pid).featured_on is None and site.store.submitted_papers(1) == []


def test_submitting_a_merged_duplicate_submits_its_target(member, site):
    dup, target = "2503.11792", "2503.11979"
    ids = site.store.doc_ids_for([dup, target])
    site.store.merge_papers(ids[dup], ids[target])
    r = post(member, "/submit", {"arxiv_id": dup})
    assert (r.status_code, r.headers["location"]) == (303, f"/papers/{target}")
    assert site.store.submitted_papers(1) == [ids[target]]
    assert site.store.get_paper(dup).featured_on is None


def test_a_loop_of_merges_is_a_404_not_a_crash(client, site):
    a, b = "2503.11792", "2503.11979"
    ids = site.store.doc_ids_for([a, b])
    site.store.merge_papers(ids[a], ids[b])
    site.store._db.execute("UPDATE papers SET hidden = 1, merged_into = ? WHERE id = ?", (a, ids[b]))
    r = client.get(f"/papers/{a}")
    assert r.status_code == 404


def test_similar_lists_are_remembered_until_the_indexes_change(site, sample_papers, embedder):
    """A paper's similar list is computed once per index generation, then served from memory."""
    from papertide.index.build import update_index

    doc = site.store.doc_ids_for([sample_papers[0].arxiv_id])[sample_papers[0].arxiv_id]
    first = site.similar(doc, 8)
    assert site.similar(doc, 8) is first  # the cached list itself
    site.store.upsert_papers([sample_papers[1700]])
    update_index(site.store, site.settings.index_dir, embedder)
    assert site.refresh_indexes()
    assert site.similar(doc, 8) is not first  # recomputed over the new indexes


def test_search_rankings_are_remembered_until_the_indexes_change(client, site, sample_papers, embedder, monkeypatch):
    """A query's ranking is computed once per index generation; a paper indexed later still shows up,
    and a paper hidden meanwhile disappears at once (moderation is checked after the cache)."""
    from papertide.index.build import update_index

    new = sample_papers[1750]
    f = SearchFilters()
    first = site.search_hits(new.title, 31, f)
    assert site.search_hits(new.title, 31, f) is first  # served from memory
    assert site.search_hits(new.title, 31, SearchFilters(has_code=True)) is not first  # other filters, other key
    assert first.ids.dtype == np.int64 and len(first.ids) == len(first.scores) == 31
    import papertide.web.services as services_module

    monkeypatch.setattr(services_module, "SEARCH_CACHE", 3)
    for q in ("speech", "robots", "graphs", "proteins"):
        site.search_hits(q, 31, f)
    assert len(site._ranked["search"]) == 3  # bounded: the least recently used went first
    assert site.search_hits(new.title, 31, f) is not first
    assert new.arxiv_id not in card_ids(client.get("/search", params={"q": new.title}).text)
    site.store.upsert_papers([new])
    update_index(site.store, site.settings.index_dir, embedder)
    assert site.refresh_indexes()
    ids = card_ids(client.get("/search", params={"q": new.title}).text)
    assert ids[0] == new.arxiv_id
    doc = site.store.doc_ids_for([new.arxiv_id])[new.arxiv_id]
    site.store.set_hidden(doc, True)
    assert new.arxiv_id not in card_ids(client.get("/search", params={"q": new.title}).text)
