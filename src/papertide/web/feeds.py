"""Atom and RSS 2.0 feeds of the trending papers and of any search, built with ElementTree.

ElementTree escapes text and attributes; what it does not do is drop the characters XML 1.0 forbids
(C0 controls, lone surrogates), which arXiv metadata does carry now and then, so `_xml_text` does.
Titles stay plain text in both formats. RSS readers treat <description> as HTML, so the abstract is
HTML-escaped before it goes there; Atom says `type="text"` and needs no such step.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from email.utils import format_datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from papertide.rank.trending import Period, Sort, period_range
from papertide.web.api import search_cards, search_filters
from papertide.web.deps import ServicesDep
from papertide.web.pages import feed_page
from papertide.web.views import Card, cards

router = APIRouter()

ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
RSS_TYPE = "application/rss+xml; charset=utf-8"
CACHE = "public, max-age=300"  # feed readers poll; five minutes keeps them off the ranking code
MAX_AUTHORS = 20  # per entry: collaboration papers list thousands
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str | None) -> str:
    return _NOT_XML.sub("", text or "")


class Feed:
    """What both formats need: a title, links, and the papers in order."""

    def __init__(self, title: str, subtitle: str, self_url: str, html_url: str, base_url: str, items: Sequence[Card]):
        self.title, self.subtitle, self.self_url, self.html_url = title, subtitle, self_url, html_url
        self.base_url = base_url
        self.items = list(items)

    def paper_url(self, card: Card) -> str:
        return f"{self.base_url}/papers/{card.paper.arxiv_id}"

    def updated(self) -> datetime:
        stamps = [_entry_updated(c) for c in self.items]
        return max(stamps) if stamps else datetime.now(UTC).replace(microsecond=0)


def _entry_updated(card: Card) -> datetime:
    p = card.paper
    days = [d for d in (p.updated, p.listed, p.submitted, p.featured_on) if d]
    return _midnight(max(days) if days else date(1991, 8, 14))  # arXiv's first day, for a paper without dates


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=UTC)


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = _xml_text(text)
    return el


def to_atom(feed: Feed, site_name: str) -> bytes:
    root = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(root, "title", feed.title, type="text")
    _sub(root, "subtitle", feed.subtitle, type="text")
    _sub(root, "id", feed.self_url)
    _sub(root, "link", rel="self", type="application/atom+xml", href=feed.self_url)
    _sub(root, "link", rel="alternate", type="text/html", href=feed.html_url)
    _sub(root, "updated", _rfc3339(feed.updated()))
    _sub(_sub(root, "author"), "name", site_name)  # entries without authors inherit it, as Atom requires
    _sub(root, "generator", "papertide")
    for card in feed.items:
        p = card.paper
        entry = _sub(root, "entry")
        _sub(entry, "id", f"urn:arxiv:{p.arxiv_id}")
        _sub(entry, "title", p.title, type="text")
        _sub(entry, "link", rel="alternate", type="text/html", href=feed.paper_url(card))
        _sub(entry, "link", rel="related", type="text/html", href=p.abs_url, title="arXiv")
        _sub(entry, "link", rel="related", type="application/pdf", href=p.pdf_url, title="PDF")
        _sub(entry, "updated", _rfc3339(_entry_updated(card)))
        if p.submitted:
            _sub(entry, "published", _rfc3339(_midnight(p.submitted)))
        for name in p.authors[:MAX_AUTHORS]:
            _sub(_sub(entry, "author"), "name", name)
        for cat in p.categories:
            _sub(entry, "category", term=_xml_text(cat))
        _sub(entry, "summary", p.abstract, type="text")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def to_rss(feed: Feed) -> bytes:
    root = ET.Element("rss", {"version": "2.0", "xmlns:atom": ATOM_NS, "xmlns:dc": DC_NS})
    channel = _sub(root, "channel")
    _sub(channel, "title", feed.title)
    _sub(channel, "link", feed.html_url)
    _sub(channel, "description", feed.subtitle)
    _sub(channel, "atom:link", rel="self", type="application/rss+xml", href=feed.self_url)
    _sub(channel, "lastBuildDate", format_datetime(feed.updated(), usegmt=True))
    _sub(channel, "generator", "papertide")
    for card in feed.items:
        p = card.paper
        item = _sub(channel, "item")
        _sub(item, "title", p.title)
        _sub(item, "link", feed.paper_url(card))
        _sub(item, "guid", f"urn:arxiv:{p.arxiv_id}", isPermaLink="false")
        _sub(item, "pubDate", format_datetime(_entry_updated(card), usegmt=True))
        for name in p.authors[:MAX_AUTHORS]:
            _sub(item, "dc:creator", name)
        for cat in p.categories:
            _sub(item, "category", cat)
        _sub(item, "description", html.escape(_xml_text(p.abstract), quote=False))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _self_url(request: Request, base_url: str) -> str:
    query = request.url.query
    return base_url + request.url.path + (f"?{query}" if query else "")


def _respond(body: bytes, media_type: str) -> Response:
    return Response(body, media_type=media_type, headers={"Cache-Control": CACHE})


# -- trending -----------------------------------------------------------------------------------------
def _trending(request: Request, services, period: Literal["day", "week"]) -> Feed:
    settings = services.settings
    base = settings.base_url.rstrip("/")
    featured = services.store.latest_day(True) is not None  # else every paper, as the home page falls back
    per = Period(period)
    day, ids, _ = feed_page(services, None, per, Sort.trending, featured, 1, settings.page_size)
    view = "featured" if featured else "all"
    if day is None:
        when, html_url = "nothing yet", f"{base}/"
    else:
        start, end = period_range(day, per)
        when = day.isoformat() if per is Period.day else f"{start.isoformat()} to {end.isoformat()}"
        html_url = f"{base}/?" + urlencode({"date": day.isoformat(), "period": period, "view": view})
    what = "featured papers" if featured else "new papers"
    return Feed(f"{settings.site_name}: trending papers", f"Trending {what}, {when}.",
                _self_url(request, base), html_url, base, cards(services.store, ids, None))


@router.get("/feeds/trending.atom", summary="Trending papers (Atom)")
def trending_atom(request: Request, services: ServicesDep, period: Literal["day", "week"] = "day"):
    return _respond(to_atom(_trending(request, services, period), services.settings.site_name), ATOM_TYPE)


@router.get("/feeds/trending.rss", summary="Trending papers (RSS 2.0)")
def trending_rss(request: Request, services: ServicesDep, period: Literal["day", "week"] = "day"):
    return _respond(to_rss(_trending(request, services, period)), RSS_TYPE)


# -- search -------------------------------------------------------------------------------------------
@router.get("/feeds/search.atom", summary="A search, as an Atom feed")
def search_atom(
    request: Request, services: ServicesDep,
    q: Annotated[str, Query(max_length=500)] = "",
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    cat: Annotated[str, Query(max_length=100)] = "",
    code: bool = False,
    sort: Literal["relevance", "new", "votes"] = "relevance",
):
    settings = services.settings
    base = settings.base_url.rstrip("/")
    q = q.strip()
    filters = search_filters(from_, to, cat, code)  # checks the dates even when q is empty
    found = search_cards(services, q, filters, sort, 1)[0] if q else []
    params = {"q": q, "from": from_ or "", "to": to or "", "cat": cat, "code": "1" if code else "", "sort": sort}
    html_url = f"{base}/search?" + urlencode({k: v for k, v in params.items() if v})
    feed = Feed(f"{settings.site_name}: search for {q}" if q else f"{settings.site_name}: search",
                f"Papers matching {q!r}, sorted by {sort}." if q else "An empty search finds nothing.",
                _self_url(request, base), html_url, base, found)
    return _respond(to_atom(feed, settings.site_name), ATOM_TYPE)
