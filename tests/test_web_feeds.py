"""Atom and RSS feeds: well-formed XML, the trending order, absolute links, and hostile text kept as text."""

import html
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from papertide.models import Paper
from papertide.rank.trending import Period, Sort
from papertide.web.pages import feed_page

A = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
BASE = "http://testserver"
HOSTILE_TITLE = r"<script>alert(1)</script> & $\alpha<\beta$"
HOSTILE_ABSTRACT = "We show <b>bold</b> claims & \x00nulls\x0b, ]]> and &amp; zorblaxian $x_{i}<y^2$.\x1f"
CLEAN_ABSTRACT = "We show <b>bold</b> claims & nulls, ]]> and &amp; zorblaxian $x_{i}<y^2$."


def atom(r) -> ET.Element:
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/atom+xml")
    assert r.headers["cache-control"] == "public, max-age=300"
    root = ET.fromstring(r.content)
    assert root.tag == f"{A}feed"
    return root


def rss(r) -> ET.Element:
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/rss+xml")
    assert r.headers["cache-control"] == "public, max-age=300"
    root = ET.fromstring(r.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    return root


def rfc3339(text: str) -> datetime:
    assert text.endswith("Z")
    return datetime.fromisoformat(text)


def expected_ids(site, period: Period, featured: bool = True) -> list[str]:
    _, ids, _ = feed_page(site, None, period, Sort.trending, featured, 1, site.settings.page_size)
    names = site.store.arxiv_ids_for(ids)
    return [names[d] for d in ids]


def add_hostile_paper(site) -> Paper:
    """A paper featured on the latest featured day, so it is on the trending feed."""
    day = site.store.latest_day(True)
    paper = Paper("2608.04242", HOSTILE_TITLE, HOSTILE_ABSTRACT, ["Ada <Lovelace>", "B. & Co"], ["cs.LG"],
                  submitted=day - timedelta(days=2), listed=day - timedelta(days=1), featured_on=day, hf_upvotes=999)
    site.store.upsert_papers([paper])
    return paper


# -- trending -----------------------------------------------------------------------------------------
def test_trending_atom(client, site):
    root = atom(client.get("/feeds/trending.atom"))
    entries = root.findall(f"{A}entry")
    assert [e.findtext(f"{A}id") for e in entries] == [f"urn:arxiv:{i}" for i in expected_ids(site, Period.day)]
    assert entries
    assert root.findtext(f"{A}id") == f"{BASE}/feeds/trending.atom"
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{A}link")}
    assert links["self"] == f"{BASE}/feeds/trending.atom"
    day = site.store.latest_day(True)
    assert links["alternate"] == f"{BASE}/?date={day.isoformat()}&period=day&view=featured"
    assert root.findtext(f"{A}author/{A}name") == site.settings.site_name
    feed_updated = rfc3339(root.findtext(f"{A}updated"))
    for e in entries:
        arxiv_id = e.findtext(f"{A}id").removeprefix("urn:arxiv:")
        paper = site.store.get_paper(arxiv_id)
        assert e.findtext(f"{A}title") == paper.title
        assert e.find(f"{A}title").get("type") == "text"
        assert e.findtext(f"{A}summary") == paper.abstract
        alt = [link.get("href") for link in e.findall(f"{A}link") if link.get("rel") == "alternate"]
        assert alt == [f"{BASE}/papers/{arxiv_id}"]
        related = {link.get("type"): link.get("href") for link in e.findall(f"{A}link") if link.get("rel") == "related"}
        assert related == {"text/html": paper.abs_url, "application/pdf": paper.pdf_url}
        assert [a.findtext(f"{A}name") for a in e.findall(f"{A}author")] == paper.authors[:20]
        assert [c.get("term") for c in e.findall(f"{A}category")] == paper.categories
        assert rfc3339(e.findtext(f"{A}updated")).date() >= paper.featured_on
        assert rfc3339(e.findtext(f"{A}updated")) <= feed_updated


def test_trending_week_and_base_url(client, site):
    root = atom(client.get("/feeds/trending.atom", params={"period": "week"}))
    ids = [e.findtext(f"{A}id") for e in root.findall(f"{A}entry")]
    assert ids == [f"urn:arxiv:{i}" for i in expected_ids(site, Period.week)]
    assert len(ids) >= len(expected_ids(site, Period.day))
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{A}link")}
    assert links["self"] == f"{BASE}/feeds/trending.atom?period=week"
    assert "period=week" in links["alternate"]


def test_trending_rss(client, site):
    root = rss(client.get("/feeds/trending.rss"))
    channel = root.find("channel")
    assert channel.findtext("link").startswith(f"{BASE}/?date=")
    assert channel.find("{http://www.w3.org/2005/Atom}link").get("href") == f"{BASE}/feeds/trending.rss"
    parsedate_to_datetime(channel.findtext("lastBuildDate"))
    items = channel.findall("item")
    assert [i.findtext("guid") for i in items] == [f"urn:arxiv:{i}" for i in expected_ids(site, Period.day)]
    for item in items:
        arxiv_id = item.findtext("guid").removeprefix("urn:arxiv:")
        paper = site.store.get_paper(arxiv_id)
        assert item.find("guid").get("isPermaLink") == "false"
        assert item.findtext("link") == f"{BASE}/papers/{arxiv_id}"
        assert item.findtext("title") == paper.title
        assert html.unescape(item.findtext("description")) == paper.abstract
        assert [c.text for c in item.findall(f"{DC}creator")] == paper.authors[:20]
        assert parsedate_to_datetime(item.findtext("pubDate")).tzinfo is not None


@pytest.mark.parametrize("path", ["/feeds/trending.atom", "/feeds/trending.rss"])
@pytest.mark.parametrize("period", ["month", "hour", ""])
def test_trending_refuses_other_periods(client, path, period):
    assert client.get(path, params={"period": period}).status_code == 422


def test_trending_falls_back_to_all_papers_without_featured_days(client, site):
    for row in site.store.feed_rows(date(1990, 1, 1), date(2100, 1, 1), True):
        site.store.set_hidden(row.doc_id, True)  # hidden papers leave every feed, so no featured day is left
    assert site.store.latest_day(True) is None
    root = atom(client.get("/feeds/trending.atom"))
    ids = [e.findtext(f"{A}id") for e in root.findall(f"{A}entry")]
    assert ids and ids == [f"urn:arxiv:{i}" for i in expected_ids(site, Period.day, featured=False)]
    alt = next(link.get("href") for link in root.findall(f"{A}link") if link.get("rel") == "alternate")
    assert "view=all" in alt
    assert rss(client.get("/feeds/trending.rss")).find("channel").findall("item")


def test_empty_site_gives_a_valid_empty_feed(client, site):
    for row in site.store.feed_rows(date(1900, 1, 1), date(2100, 1, 1), False):
        site.store.set_hidden(row.doc_id, True)
    root = atom(client.get("/feeds/trending.atom"))
    assert root.findall(f"{A}entry") == [] and root.findtext(f"{A}updated")
    assert rss(client.get("/feeds/trending.rss")).find("channel").findall("item") == []


# -- hostile text -------------------------------------------------------------------------------------
def test_hostile_text_is_escaped_in_atom(client, site):
    paper = add_hostile_paper(site)
    r = client.get("/feeds/trending.atom")
    root = atom(r)
    assert b"<script>" not in r.content and b"\x00" not in r.content and b"\x0b" not in r.content
    entry = next(e for e in root.findall(f"{A}entry") if e.findtext(f"{A}id") == f"urn:arxiv:{paper.arxiv_id}")
    assert entry.findtext(f"{A}title") == HOSTILE_TITLE
    assert list(entry.find(f"{A}title")) == []  # text, not markup
    assert entry.findtext(f"{A}summary") == CLEAN_ABSTRACT
    assert list(entry.find(f"{A}summary")) == []
    assert [a.findtext(f"{A}name") for a in entry.findall(f"{A}author")] == ["Ada <Lovelace>", "B. & Co"]


def test_hostile_text_is_escaped_in_rss(client, site):
    paper = add_hostile_paper(site)
    r = client.get("/feeds/trending.rss")
    root = rss(r)
    assert b"<script>" not in r.content and b"<b>" not in r.content
    item = next(i for i in root.iter("item") if i.findtext("guid") == f"urn:arxiv:{paper.arxiv_id}")
    assert item.findtext("title") == HOSTILE_TITLE and list(item.find("title")) == []
    # RSS readers render <description> as HTML: the abstract arrives HTML-escaped, so it shows as text.
    assert item.findtext("description") == html.escape(CLEAN_ABSTRACT, quote=False)
    assert "<b>" not in item.findtext("description")


def test_hostile_text_in_search_feed(client, site):
    paper = add_hostile_paper(site)
    site.index_new_papers()
    for q in ("zorblaxian", paper.arxiv_id):
        root = atom(client.get("/feeds/search.atom", params={"q": q}))
        entries = root.findall(f"{A}entry")
        assert entries[0].findtext(f"{A}id") == f"urn:arxiv:{paper.arxiv_id}"
        assert entries[0].findtext(f"{A}title") == HOSTILE_TITLE
    hostile_q = "<script>&amp; zorblaxian"
    root = atom(client.get("/feeds/search.atom", params={"q": hostile_q}))
    assert root.findtext(f"{A}title").endswith(hostile_q)


# -- search -------------------------------------------------------------------------------------------
def test_search_feed_matches_the_api(client):
    params = {"q": "neural networks", "sort": "new", "cat": "cs.LG", "from": "", "to": ""}
    r = client.get("/feeds/search.atom", params=params)
    root = atom(r)
    ids = [e.findtext(f"{A}id").removeprefix("urn:arxiv:") for e in root.findall(f"{A}entry")]
    api = client.get("/api/search", params={"q": "neural networks", "sort": "new", "cat": "cs.LG"}).json()
    assert ids and ids == [h["paper"]["arxiv_id"] for h in api["items"]]
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{A}link")}
    assert links["alternate"] == f"{BASE}/search?q=neural+networks&cat=cs.LG&sort=new"
    assert links["self"].startswith(f"{BASE}/feeds/search.atom?q=neural+networks")
    assert root.findtext(f"{A}id") == links["self"]


def test_search_feed_filters(client):
    root = atom(client.get("/feeds/search.atom", params={"q": "learning", "code": "1", "to": "2100-01-01"}))
    entries = root.findall(f"{A}entry")
    api = client.get("/api/search", params={"q": "learning", "code": "true"}).json()["items"]
    assert [e.findtext(f"{A}id") for e in entries] == [f"urn:arxiv:{h['paper']['arxiv_id']}" for h in api]


def test_search_feed_without_query_is_empty_and_valid(client):
    root = atom(client.get("/feeds/search.atom"))
    assert root.findall(f"{A}entry") == []
    assert atom(client.get("/feeds/search.atom", params={"q": "  "})).findall(f"{A}entry") == []


@pytest.mark.parametrize("params", [
    {"q": "x", "from": "soon"}, {"q": "x", "to": "2024-02-30"}, {"q": "x", "sort": "best"}, {"q": "x" * 501},
])
def test_search_feed_refuses_bad_parameters(client, params):
    assert client.get("/feeds/search.atom", params=params).status_code == 422


def test_search_feed_unknown_id_and_no_index(client, site):
    assert client.get("/feeds/search.atom", params={"q": "2999.99999"}).status_code == 404
    site.engine = None
    assert client.get("/feeds/search.atom", params={"q": "neural networks"}).status_code == 503
