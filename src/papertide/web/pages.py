"""The public pages: the trending feed, paper pages, search, submitting a paper."""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from papertide.bibtex import to_bibtex
from papertide.models import InvalidIdError, Paper, SearchFilters, parse_arxiv_id
from papertide.rank.trending import Period, Sort, end_of, period_range, rank_feed
from papertide.store.community import User
from papertide.web.deps import ServicesDep, SignedInDep, UserDep, check_csrf, client_ip, flash, render
from papertide.web.security import NotFound, WebError, check_rate
from papertide.web.services import ArxivUnavailable, Ranking, Services
from papertide.web.views import cards, query_terms

router = APIRouter(dependencies=[Depends(check_csrf)])

SIMILAR_K = 8
SEARCH_SORTS = ("relevance", "new", "votes")
SEARCH_DEPTH = 300  # hits ranked before sorting by date or votes


# -- feed ---------------------------------------------------------------------------------------------
def feed_page(
    services: Services, day: date | None, period: Period, sort: Sort, featured: bool, page: int, page_size: int,
) -> tuple[date | None, list[int], int]:
    """The resolved day, the page's doc ids in feed order, and the number of pages."""
    store = services.store
    if day is None:
        day = store.latest_day(featured) or store.latest_day(not featured)
    if day is None:
        return None, [], 0
    start, end = period_range(day, period)
    rows = store.feed_rows(start, end, featured)
    ordered = rank_feed(rows, sort, min(end_of(end), datetime.now(UTC)), featured)
    pages = max(1, math.ceil(len(ordered) / page_size))
    return day, ordered[(page - 1) * page_size : page * page_size], pages


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise WebError(f"{value!r} is not a date; use YYYY-MM-DD.") from e


def _nav_days(services: Services, day: date, period: Period, featured: bool) -> tuple[date | None, date | None]:
    """The nearest earlier and later days with papers outside the viewed period (None: there are none).

    Stepping to a day that has papers, not just the neighbouring period, never lands on an empty
    future week or skips over gaps one empty page at a time.
    """
    start, end = period_range(day, period)
    return (services.store.adjacent_day(start, featured, before=True),
            services.store.adjacent_day(end, featured, before=False))


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, services: ServicesDep, user: UserDep,
    date_: Annotated[str | None, Query(alias="date")] = None,
    period: Period = Period.day, sort: Sort = Sort.trending,
    view: Annotated[str | None, Query(pattern="^(featured|all)$")] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
):
    if view is None:  # the curated page, as on HF Papers - unless nothing was ever featured here
        view = "featured" if services.store.latest_day(True) else "all"
    featured = view == "featured"
    day, ids, pages = feed_page(services, _parse_day(date_), period, sort, featured,
                                page, services.settings.page_size)
    prev_day, next_day = _nav_days(services, day, period, featured) if day else (None, None)
    start, end = period_range(day, period) if day else (None, None)
    base = {"period": period.value, "sort": sort.value, "view": view}
    return render(
        request, "home.html", cards=cards(services.store, ids, user), day=day, start=start, end=end,
        period=period.value, sort=sort.value, view=view, page=page, pages=pages, prev_day=prev_day,
        next_day=next_day, base=base, qs=lambda **kw: "?" + urlencode({**base, **{k: v for k, v in kw.items()}}),
    )


# -- paper page ---------------------------------------------------------------------------------------
MAX_MERGE_HOPS = 8  # a chain of merges longer than this is treated as a loop


def lookup(services: Services, raw_id: str, user: User | None = None, _hops: int = 0) -> tuple[int, Paper]:
    """A paper by arXiv id (any form); hidden papers exist only for admins, merged ones lead to their target."""
    try:
        arxiv_id, _ = parse_arxiv_id(raw_id)
    except InvalidIdError as e:
        raise NotFound(f"{raw_id!r} is not an arXiv id.") from e
    doc_id = services.store.doc_ids_for([arxiv_id]).get(arxiv_id)
    if doc_id is None:
        raise NotFound(f"arXiv:{arxiv_id} is not in this library yet. You can submit it.")
    hidden, merged = services.store.curation(doc_id)
    if hidden and not (user and user.is_admin):
        if merged and _hops < MAX_MERGE_HOPS:
            return lookup(services, merged, user, _hops + 1)
        raise NotFound(f"arXiv:{arxiv_id} was removed by the moderators.")
    paper = services.store.get_papers([doc_id])[doc_id]
    return doc_id, paper


@router.get("/papers/{arxiv_id:path}/bibtex")
def paper_bibtex(arxiv_id: str, services: ServicesDep, user: UserDep):
    _, paper = lookup(services, arxiv_id, user)
    return Response(
        to_bibtex(paper), media_type="application/x-bibtex; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{paper.arxiv_id.replace("/", "_")}.bib"'},
    )


@router.post("/papers/{arxiv_id:path}/upvote")
def upvote(arxiv_id: str, request: Request, services: ServicesDep, user: SignedInDep):
    doc_id, paper = lookup(services, arxiv_id, user)
    check_rate(services.store, f"vote:{user.id}", services.settings.vote_rate, "votes")
    voted, count = services.store.toggle_vote(user.id, doc_id)
    if "application/json" in request.headers.get("accept", ""):
        return {"arxiv_id": paper.arxiv_id, "voted": voted, "votes": count}
    return RedirectResponse(_back(request, f"/papers/{paper.arxiv_id}"), status_code=303)


@router.get("/papers/{arxiv_id:path}", response_class=HTMLResponse)
def paper_page(
    arxiv_id: str, request: Request, services: ServicesDep, user: UserDep,
    since: Annotated[str, Query(pattern="^(all|year|month)$")] = "all",
):
    canonical = arxiv_id
    try:
        canonical, version = parse_arxiv_id(arxiv_id)
    except InvalidIdError:
        version = None
    doc_id, paper = lookup(services, arxiv_id, user)
    if version is not None or canonical != arxiv_id or paper.arxiv_id != canonical:
        return RedirectResponse(f"/papers/{paper.arxiv_id}", status_code=301)
    card = cards(services.store, [doc_id], user)[0]
    similar = []
    if services.engine is not None:
        start = {"all": None, "year": date.today() - timedelta(days=365), "month": date.today() - timedelta(days=31)}
        hits = services.similar(doc_id, SIMILAR_K + 4, start[since])
        hidden = services.store.hidden_among([d for d, _ in hits])
        similar = cards(services.store, [d for d, _ in hits if d not in hidden][:SIMILAR_K], user)
    hidden_flag, merged_into = services.store.curation(doc_id)
    collections = services.store.collections(user.id) if user else []
    in_collections = services.store.collections_with(user.id, doc_id) if user else set()
    return render(
        request, "paper.html", card=card, paper=paper, similar=similar, since=since, bibtex=to_bibtex(paper),
        collections=collections, in_collections=in_collections, hidden=hidden_flag, merged_into=merged_into,
        search_ready=services.engine is not None,
    )


# -- search -------------------------------------------------------------------------------------------
@router.get("/search", response_class=HTMLResponse)
async def search_page(
    request: Request, services: ServicesDep, user: UserDep,
    q: Annotated[str, Query(max_length=500)] = "",
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    cat: Annotated[str, Query(max_length=100)] = "",
    code: bool = False,
    sort: Annotated[str, Query(pattern="^(relevance|new|votes)$")] = "relevance",
    page: Annotated[int, Query(ge=1, le=100)] = 1,
    partial: bool = False,
):
    # Async, so that ranking a query waits in the search pool (PAPERTIDE_SEARCH_THREADS at once: concurrent
    # queries batch their dense pass) without holding one of the page pool's threads; the page itself is
    # built in the page pool like any other.
    q = q.strip()
    if q:
        try:  # an arXiv id or URL goes straight to the paper
            arxiv_id, _ = parse_arxiv_id(q)
            return RedirectResponse(f"/papers/{arxiv_id}", status_code=303)
        except InvalidIdError:
            pass
    filters = SearchFilters(
        date_from=_parse_day(from_), date_to=_parse_day(to),
        categories=[c for c in cat.replace(",", " ").split() if c] or None, has_code=code or None,
    )
    results, has_next, took = [], False, None
    size = services.settings.page_size
    if q and services.engine is not None:
        t0 = time.perf_counter()
        ranking = await services.search_hits_pooled(q, search_depth(sort, page, size), filters)
        results, has_next = await run_in_threadpool(ranking_cards, services, ranking, q, sort, page, size, user)
        took = (time.perf_counter() - t0) * 1e3
    params = {"q": q, "from": from_ or "", "to": to or "", "cat": cat, "code": "1" if code else "", "sort": sort}
    return await run_in_threadpool(
        render, request, "search_results.html" if partial else "search.html", q=q, cards=results, page=page,
        has_next=has_next, took=took, sort=sort, params=params, from_=from_ or "", to=to or "", cat=cat, code=code,
        search_ready=services.engine is not None,
        page_url=lambda n: "/search?" + urlencode({**{k: v for k, v in params.items() if v}, "page": n}),
    )


def search_depth(sort: str, page: int, size: int) -> int:
    """Hits to rank for a page: relevance needs one past the page to know whether a next page exists; the
    other sorts reorder the best SEARCH_DEPTH hits."""
    return min(SEARCH_DEPTH, page * size + 1) if sort == "relevance" else SEARCH_DEPTH


def ranking_cards(services: Services, ranking: Ranking, q: str, sort: str, page: int, size: int, user: User | None,
                 ) -> tuple[list, bool]:
    """One page of a ranking as cards (hidden papers dropped, re-sorted for "new" and "votes"), and whether
    there is a next page."""
    ids = ranking.ids.tolist()
    scores = dict(zip(ids, ranking.scores.tolist(), strict=True))
    hidden = services.store.hidden_among(ids) if ids else set()
    ids = [d for d in ids if d not in hidden]
    if sort != "relevance" and ids:
        papers = services.store.get_papers(ids)
        if sort == "new":
            ids.sort(key=lambda d: papers[d].listed or papers[d].submitted or date.min, reverse=True)
        else:
            votes = services.store.vote_counts(ids)
            ids.sort(key=lambda d: votes.get(d, 0) + (papers[d].hf_upvotes or 0), reverse=True)
    page_ids = ids[(page - 1) * size : page * size]
    return cards(services.store, page_ids, user, query_terms(q), scores), len(ids) > page * size


def run_search(
    services: Services, q: str, filters: SearchFilters, sort: str, page: int, size: int, user: User | None,
) -> tuple[list, bool, float]:
    """One page of search results as cards, whether there is a next page, and the time taken in ms."""
    assert services.engine is not None
    t0 = time.perf_counter()
    ranking = services.search_hits(q, search_depth(sort, page, size), filters)
    found, has_next = ranking_cards(services, ranking, q, sort, page, size, user)
    return found, has_next, (time.perf_counter() - t0) * 1e3


# -- submit -------------------------------------------------------------------------------------------
@router.get("/submit", response_class=HTMLResponse)
def submit_form(request: Request, user: SignedInDep):
    return render(request, "submit.html", value="")


@router.post("/submit", response_class=HTMLResponse)
def submit(request: Request, services: ServicesDep, user: SignedInDep,
           arxiv_id: Annotated[str, Form(max_length=200)] = ""):
    try:
        canonical, _ = parse_arxiv_id(arxiv_id.strip())
    except InvalidIdError:
        return render(request, "submit.html", status_code=400, value=arxiv_id,
                      error="That is not an arXiv id or URL (for example 2401.12345 or https://arxiv.org/abs/2401.12345).")
    check_rate(services.store, f"submit:{user.id}", services.settings.submit_rate, "submissions")
    doc_id = services.store.doc_ids_for([canonical]).get(canonical)
    if doc_id is None:
        try:
            paper = services.fetch_arxiv(canonical) if services.fetch_arxiv else None
        except ArxivUnavailable:
            return render(request, "submit.html", status_code=503, value=arxiv_id,
                          error=f"arXiv:{canonical} is not in this library and arXiv cannot be reached from this "
                                "server right now. Try again later.")
        if paper is None:
            return render(request, "submit.html", status_code=404, value=arxiv_id,
                          error=f"arXiv has no paper with the id {canonical}.")
        services.store.upsert_papers([paper])
        services.index_new_papers()
        doc_id = services.store.doc_ids_for([canonical])[canonical]
    elif services.store.curation(doc_id)[0]:
        # A paper the moderators hid stays hidden: submitting it again must not feature it.
        try:
            doc_id, found = lookup(services, canonical)  # a merged duplicate stands for its target
        except NotFound:
            return render(request, "submit.html", status_code=403, value=arxiv_id,
                          error=f"arXiv:{canonical} was removed by the moderators and cannot be submitted.")
        canonical = found.arxiv_id
    new = services.store.submit_paper(user.id, doc_id, date.today())
    flash(request, "Thanks! The paper is on today's page." if new else "You had already submitted this paper.",
          "success" if new else "info")
    return RedirectResponse(f"/papers/{canonical}", status_code=303)


def _back(request: Request, default: str) -> str:
    """Where to go after a form post: the page it came from, if it is on this site."""
    ref = request.headers.get("referer", "")
    base = str(request.base_url)
    return ref[len(base) - 1 :] if ref.startswith(base) else default


__all__ = ["client_ip", "feed_page", "lookup", "ranking_cards", "router", "run_search", "search_depth"]
