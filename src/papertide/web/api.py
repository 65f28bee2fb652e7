"""JSON API under /api/: the feed, papers, search, similar papers, and upvotes with a bearer token.

Read calls are anonymous and see what an anonymous visitor sees. The one write call (upvote) is
authenticated by `Authorization: Bearer <token>` only and ignores the session cookie, which is why
this router carries no CSRF check: a cross-site form cannot attach a bearer token.
The response models below are the public shape of a paper; the store's columns never pass through.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from papertide.models import InvalidIdError, Paper, SearchFilters, parse_arxiv_id
from papertide.rank.trending import Period, Sort
from papertide.web.deps import ApiUserDep, ServicesDep
from papertide.web.pages import feed_page, lookup, ranking_cards, run_search, search_depth
from papertide.web.security import WebError, check_rate
from papertide.web.services import Services
from papertide.web.views import Card, cards

MAX_SIMILAR = 50
SINCE_DAYS = {"all": None, "year": 365, "month": 31}  # the paper page's "similar since" choices


class SearchUnavailable(WebError):
    status, title = 503, "Search unavailable"


class InvalidParameter(WebError):
    status, title = 422, "Invalid request"


# -- public shapes ------------------------------------------------------------------------------------
class LinksOut(BaseModel):
    abs: str = Field(description="The paper's arXiv abstract page.")
    pdf: str
    code: list[str] = Field(description="Code and project pages mentioned by the paper.")


class PaperOut(BaseModel):
    arxiv_id: str = Field(description="Canonical arXiv id, without version.", examples=["2401.12345"])
    version: int = Field(description="Latest version known here.")
    title: str = Field(description="As on arXiv: LaTeX is left as it is.")
    abstract: str
    authors: list[str]
    categories: list[str] = Field(description="Primary category first.")
    primary_category: str | None
    submitted: date | None = Field(description="Date of v1.")
    updated: date | None = Field(description="Date of the latest version.")
    listed: date | None = Field(description="Day arXiv first announced it.")
    comments: str | None
    journal_ref: str | None
    doi: str | None
    links: LinksOut
    upvotes: int = Field(description="Upvotes here plus upvotes on Hugging Face.")
    featured_on: date | None = Field(description="Day the paper was featured (HF daily papers or a submission).")
    submitted_by: str | None = Field(description="Member who submitted it here, else arXiv's submitter.")


class VersionOut(BaseModel):
    version: int
    created: str | None = Field(description="ISO 8601 time (UTC), when known.")
    size: str | None


class PaperDetail(PaperOut):
    versions: list[VersionOut]


class SearchHitOut(BaseModel):
    paper: PaperOut
    score: float | None = Field(description="Ranking score (higher is closer); null for an exact id match.")


class FeedOut(BaseModel):
    day: date | None = Field(description="The day shown (its week or month for longer periods); null if empty.")
    period: Period
    sort: Sort
    view: Literal["featured", "all"]
    page: int
    pages: int
    items: list[PaperOut]


class SearchOut(BaseModel):
    q: str
    sort: str
    page: int
    has_next: bool
    items: list[SearchHitOut]


class SimilarOut(BaseModel):
    arxiv_id: str
    since: str
    items: list[SearchHitOut]


class VoteOut(BaseModel):
    arxiv_id: str
    voted: bool = Field(description="Whether your upvote is on the paper now.")
    votes: int = Field(description="Upvotes here.")
    upvotes: int = Field(description="Upvotes here plus upvotes on Hugging Face, as in PaperOut.")


class ErrorOut(BaseModel):
    error: str
    detail: str


M = TypeVar("M", bound=PaperOut)


def paper_out(card: Card) -> PaperOut:
    return _paper(PaperOut, card)


def paper_detail(card: Card) -> PaperDetail:
    versions = [VersionOut(version=v.version, created=v.created, size=v.size) for v in card.paper.versions]
    return _paper(PaperDetail, card, versions=versions)


def _paper(model: type[M], card: Card, **extra) -> M:
    p: Paper = card.paper
    return model(
        arxiv_id=p.arxiv_id, version=p.version, title=p.title, abstract=p.abstract, authors=p.authors,
        categories=p.categories, primary_category=p.primary_category, submitted=p.submitted, updated=p.updated,
        listed=p.listed, comments=p.comments, journal_ref=p.journal_ref, doi=p.doi,
        links=LinksOut(abs=p.abs_url, pdf=p.pdf_url, code=p.code_urls),
        upvotes=card.votes + (p.hf_upvotes or 0), featured_on=p.featured_on, submitted_by=card.submitted_by,
        **extra,
    )


# -- helpers shared with the feeds ---------------------------------------------------------------------
def parse_day(value: str | None, name: str) -> date | None:
    """A YYYY-MM-DD parameter; empty means unset (search forms send empty fields)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise InvalidParameter(f"{name}: {value!r} is not a date; use YYYY-MM-DD.") from e


def search_filters(from_: str | None, to: str | None, cat: str, code: bool) -> SearchFilters:
    categories = tuple(c for c in cat.replace(",", " ").split() if c)
    return SearchFilters(date_from=parse_day(from_, "from"), date_to=parse_day(to, "to"),
                         categories=categories, has_code=code or None)


def search_cards(services: Services, q: str, filters: SearchFilters, sort: str, page: int) -> tuple[list[Card], bool]:
    """One page of search hits as cards and whether a next page exists. An arXiv id finds that paper (or 404)."""
    if _is_arxiv_id(q):
        doc_id, _ = lookup(services, q)
        return (cards(services.store, [doc_id], None) if page == 1 else []), False
    if services.engine is None:
        raise SearchUnavailable("Search is off on this server until its index is built (`papertide index`).")
    found, has_next, _ = run_search(services, q, filters, sort, page, services.settings.page_size, None)
    return found, has_next


async def search_cards_pooled(services: Services, q: str, filters: SearchFilters, sort: str, page: int,
                              ) -> tuple[list[Card], bool]:
    """`search_cards`, the ranking in the search pool (as the search page: queries batch their dense pass)."""
    if _is_arxiv_id(q) or services.engine is None:
        return await run_in_threadpool(search_cards, services, q, filters, sort, page)
    size = services.settings.page_size
    ranking = await services.search_hits_pooled(q, search_depth(sort, page, size), filters)
    return await run_in_threadpool(ranking_cards, services, ranking, q, sort, page, size, None)


def _is_arxiv_id(q: str) -> bool:
    try:
        parse_arxiv_id(q)
    except InvalidIdError:
        return False
    return True


def default_view(services: Services) -> str:
    # As the home page: the curated feed, unless nothing was ever featured here.
    return "featured" if services.store.latest_day(True) else "all"


# -- routes -------------------------------------------------------------------------------------------
_ERRORS = {code: {"model": ErrorOut} for code in (404, 422)}
router = APIRouter(tags=["papers"], responses=_ERRORS)  # no check_csrf: see the module docstring
# Declares the bearer scheme in the OpenAPI spec (the docs' "Authorize" button); ApiUserDep does the checking.
_bearer = HTTPBearer(auto_error=False, description="An API token from your profile page.")


@router.get("/papers", response_model=FeedOut, summary="The trending feed (the home page)")
def feed(
    services: ServicesDep,
    date_: Annotated[date | None, Query(alias="date", description="Day to show (default: the latest).")] = None,
    period: Period = Period.day,
    sort: Sort = Sort.trending,
    view: Annotated[Literal["featured", "all"] | None, Query(description="Default: featured, if anything is.")] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
):
    view = view or default_view(services)
    day, ids, pages = feed_page(services, date_, period, sort, view == "featured", page, services.settings.page_size)
    items = [paper_out(c) for c in cards(services.store, ids, None)]
    return FeedOut(day=day, period=period, sort=sort, view=view, page=page, pages=pages, items=items)


@router.get("/search", response_model=SearchOut, summary="Search papers",
            responses={503: {"model": ErrorOut, "description": "No search index on this server."}})
async def search(
    services: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=500, description="Words, or an arXiv id or URL.")],
    from_: Annotated[str | None, Query(alias="from", description="Listed on or after (YYYY-MM-DD).")] = None,
    to: Annotated[str | None, Query(description="Listed on or before (YYYY-MM-DD).")] = None,
    cat: Annotated[str, Query(max_length=100, description="arXiv categories, any of (e.g. `cs.CL cs.LG`).")] = "",
    code: Annotated[bool, Query(description="Only papers with a code link.")] = False,
    sort: Literal["relevance", "new", "votes"] = "relevance",
    page: Annotated[int, Query(ge=1, le=100)] = 1,
):
    q = q.strip()
    if not q:
        raise InvalidParameter("q: give some words to search for.")
    found, has_next = await search_cards_pooled(services, q, search_filters(from_, to, cat, code), sort, page)
    items = [SearchHitOut(paper=paper_out(c), score=c.score) for c in found]
    return SearchOut(q=q, sort=sort, page=page, has_next=has_next, items=items)


@router.get("/papers/{arxiv_id:path}/similar", response_model=SimilarOut, summary="Papers similar to one paper",
            responses={503: {"model": ErrorOut, "description": "No search index on this server."}})
def similar(
    arxiv_id: str, services: ServicesDep,
    since: Literal["all", "year", "month"] = "all",
    k: Annotated[int, Query(ge=1, le=MAX_SIMILAR)] = 10,
):
    doc_id, paper = lookup(services, arxiv_id)
    if services.engine is None:
        raise SearchUnavailable("Similar papers need the search index, which this server has not built yet.")
    days = SINCE_DAYS[since]
    start = date.today() - timedelta(days=days) if days else None
    hits = services.similar(doc_id, k + 10, start)  # a margin for hidden papers
    hidden = services.store.hidden_among([d for d, _ in hits]) if hits else set()
    kept = [(d, s) for d, s in hits if d not in hidden][:k]
    found = cards(services.store, [d for d, _ in kept], None, scores=dict(kept))
    items = [SearchHitOut(paper=paper_out(c), score=c.score) for c in found]
    return SimilarOut(arxiv_id=paper.arxiv_id, since=since, items=items)


@router.post("/papers/{arxiv_id:path}/upvote", response_model=VoteOut, summary="Toggle your upvote",
             dependencies=[Depends(_bearer)],
             responses={401: {"model": ErrorOut, "description": "No API token, or not a valid one."},
                        429: {"model": ErrorOut, "description": "Too many votes; wait a minute."}})
def upvote(arxiv_id: str, services: ServicesDep, user: ApiUserDep):
    doc_id, paper = lookup(services, arxiv_id, user)
    check_rate(services.store, f"vote:{user.id}", services.settings.vote_rate, "votes")  # the page's budget too
    voted, count = services.store.toggle_vote(user.id, doc_id)
    return VoteOut(arxiv_id=paper.arxiv_id, voted=voted, votes=count, upvotes=count + (paper.hf_upvotes or 0))


@router.get("/papers/{arxiv_id:path}", response_model=PaperDetail, summary="One paper",
            description="Any id form works (`2401.12345v2`, `arXiv:2401.12345`); a merged duplicate answers "
                        "with the paper it was merged into.")
def paper(arxiv_id: str, services: ServicesDep):
    doc_id, _ = lookup(services, arxiv_id)
    return paper_detail(cards(services.store, [doc_id], None)[0])
