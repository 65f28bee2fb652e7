"""The signed-in member's "for you" feed, with reasons, "not interested", the trending blend, and cold start
(importing a .bib / .ris file or a list of arXiv ids, or picking an author's papers)."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from papertide.rank.foryou import DEFAULT_TRENDING
from papertide.sources.bibtex import ImportReport, match_references, parse_id_list, parse_references
from papertide.store.community import Collection, Conflict, User
from papertide.web.deps import ServicesDep, SignedInDep, check_csrf, flash, render
from papertide.web.library import _own
from papertide.web.pages import _back, lookup
from papertide.web.services import Services
from papertide.web.views import cards

router = APIRouter(dependencies=[Depends(check_csrf)])

WARM_WAIT_S = 2.0  # a first visit waits this long for the build before showing "warming up"
MAX_IMPORT_BYTES = 5_000_000
PAGE_SIZE = 20


@router.get("/for-you", response_class=HTMLResponse)
def for_you(request: Request, services: ServicesDep, user: SignedInDep,
            page: Annotated[int, Query(ge=1, le=500)] = 1):
    fy = services.for_you()
    weight = services.store.foryou_trending(user.id)
    ctx = {"weight": round(weight * 100), "collections": services.store.collections(user.id)}
    has_library = bool(services.store.foryou_positives(user.id))
    if fy is None:
        return render(request, "foryou.html", state="off", **ctx)
    if not has_library:
        return render(request, "foryou.html", state="empty", **ctx)
    if not fy.wait(WARM_WAIT_S):
        return render(request, "foryou.html", state=fy.state, **ctx)
    picks = fy.ranking(user.id, weight)
    pages = max(1, math.ceil(len(picks) / PAGE_SIZE))
    chosen = picks[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    ids = [p.doc_id for p in chosen]
    hidden = services.store.hidden_among(ids) if ids else set()
    ids = [d for d in ids if d not in hidden]
    why = fy.explain(user.id, ids)
    library = services.store.get_papers(sorted({d for e in why.values() for d, _ in e.nearest}))
    return render(
        request, "foryou.html", state="ready" if ids or page > 1 else "nothing", page=page, pages=pages,
        cards=cards(services.store, ids, user, scores={p.doc_id: p.score for p in chosen}), why=why,
        library=library, **ctx,
    )


@router.post("/for-you/settings")
def settings(request: Request, services: ServicesDep, user: SignedInDep,
             trending: Annotated[int, Form(ge=0, le=100)] = round(DEFAULT_TRENDING * 100)):
    services.store.set_foryou_trending(user.id, trending / 100)
    flash(request, f"Your feed now mixes in trending papers at {trending}%.", "success")
    return RedirectResponse("/for-you", status_code=303)


@router.post("/papers/{arxiv_id:path}/not-interested")
def not_interested(arxiv_id: str, request: Request, services: ServicesDep, user: SignedInDep,
                   undo: Annotated[str, Form(pattern="^(0|1)$")] = "0"):
    """Mark a paper "not interested": it leaves the feed, and the user's model learns from it."""
    doc_id, paper = lookup(services, arxiv_id, user)
    services.store.set_not_interested(user.id, doc_id, undo != "1")
    if "application/json" in request.headers.get("accept", ""):
        return {"arxiv_id": paper.arxiv_id, "not_interested": undo != "1"}
    if undo != "1":
        flash(request, f"You will not see “{paper.title}” in your feed again.", "info")
    return RedirectResponse(_back(request, "/for-you"), status_code=303)


# -- cold start -------------------------------------------------------------------------------------
@router.get("/for-you/import", response_class=HTMLResponse)
def import_form(request: Request, services: ServicesDep, user: SignedInDep):
    return render(request, "foryou_import.html", collections=services.store.collections(user.id), report=None)


def _target(services: Services, user: User, collection_id: int | None, new_collection: str) -> Collection:
    name = " ".join(new_collection.split())
    if name:
        try:
            return services.store.create_collection(user.id, name)
        except Conflict:
            return next(c for c in services.store.collections(user.id) if c.name == name)
    if collection_id is not None:
        return _own(services, user, collection_id)
    return services.store.default_collection(user.id)


def _add(services: Services, collection: Collection, doc_ids: list[int]) -> int:
    already = set(services.store.collection_papers(collection.id))
    new = [d for d in doc_ids if d not in already]
    for d in new:
        services.store.set_saved(collection.id, d, True)
    return len(new)


def run_import(services: Services, filename: str, text: str, ids_text: str) -> ImportReport:
    refs = parse_references(filename, text) if text.strip() else []
    refs += parse_id_list(ids_text) if ids_text.strip() else []
    store = services.store
    report = match_references(refs, store.doc_ids_for, store.ids_for_dois, store.iter_titles)
    hidden = store.hidden_among(report.doc_ids) if report.doc_ids else set()
    if hidden:  # papers the moderators removed are not imported: they are reported as not found
        report.unmatched += [r for r, d, _ in report.matched if d in hidden]
        report.matched = [m for m in report.matched if m[1] not in hidden]
    return report


@router.post("/for-you/import", response_class=HTMLResponse)
async def import_library(
    request: Request, services: ServicesDep, user: SignedInDep,
    file: Annotated[UploadFile | None, File()] = None,
    ids: Annotated[str, Form(max_length=200_000)] = "",
    collection_id: Annotated[int | None, Form()] = None,
    new_collection: Annotated[str, Form(max_length=80)] = "",
):
    text, filename = "", ""
    if file is not None and file.filename:
        raw = await file.read(MAX_IMPORT_BYTES + 1)
        if len(raw) > MAX_IMPORT_BYTES:
            return render(request, "foryou_import.html", status_code=413, report=None,
                          collections=services.store.collections(user.id),
                          error=f"That file is larger than {MAX_IMPORT_BYTES // 1_000_000} MB.")
        text, filename = raw.decode("utf-8", errors="replace"), file.filename
    if not text.strip() and not ids.strip():
        return render(request, "foryou_import.html", status_code=400, report=None,
                      collections=services.store.collections(user.id),
                      error="Choose a .bib or .ris file, or paste arXiv ids or URLs.")
    report = run_import(services, filename, text, ids)
    target = _target(services, user, collection_id, new_collection)
    added = _add(services, target, report.doc_ids)
    return render(request, "foryou_import.html", collections=services.store.collections(user.id),
                  report=report, added=added, target=target,
                  papers=services.store.get_papers(report.doc_ids) if report.doc_ids else {})


@router.get("/for-you/author", response_class=HTMLResponse)
def author_search(request: Request, services: ServicesDep, user: SignedInDep,
                  name: Annotated[str, Query(max_length=200)] = ""):
    ids = services.store.papers_by_author(name) if name.strip() else []
    return render(request, "foryou_author.html", name=name.strip(), cards=cards(services.store, ids, user),
                  collections=services.store.collections(user.id))


@router.post("/for-you/author")
def author_add(request: Request, services: ServicesDep, user: SignedInDep,
               name: Annotated[str, Form(max_length=200)] = "",
               collection_id: Annotated[int | None, Form()] = None,
               new_collection: Annotated[str, Form(max_length=80)] = ""):
    ids = services.store.papers_by_author(name)
    if not ids:
        flash(request, f"No papers by “{name.strip()}” here.", "error")
        return RedirectResponse("/for-you/author", status_code=303)
    target = _target(services, user, collection_id, new_collection)
    added = _add(services, target, ids)
    flash(request, f"Added {added} paper{'s' if added != 1 else ''} by {name.strip()} to {target.name}.", "success")
    return RedirectResponse("/for-you", status_code=303)


__all__ = ["router", "run_import"]
