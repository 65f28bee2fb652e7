"""A member's library: named collections of saved papers, with BibTeX export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from papertide.bibtex import collection_bibtex
from papertide.store.community import Collection, Conflict
from papertide.web.deps import ServicesDep, SignedInDep, check_csrf, flash, render
from papertide.web.pages import _back, lookup
from papertide.web.security import NotFound
from papertide.web.views import cards

router = APIRouter(dependencies=[Depends(check_csrf)])


def _own(services, user, collection_id: int) -> Collection:
    c = services.store.get_collection(collection_id)
    if c is None or c.user_id != user.id:  # someone else's collection is not found, not forbidden
        raise NotFound("There is no such collection in your library.")
    return c


@router.get("/library", response_class=HTMLResponse)
def library(request: Request, services: ServicesDep, user: SignedInDep):
    return render(request, "library.html", collections=services.store.collections(user.id))


@router.post("/library")
def create_collection(request: Request, services: ServicesDep, user: SignedInDep,
                      name: Annotated[str, Form(max_length=80)] = ""):
    name = " ".join(name.split())
    if not name:
        flash(request, "Give the collection a name.", "error")
        return RedirectResponse("/library", status_code=303)
    try:
        c = services.store.create_collection(user.id, name)
    except Conflict as e:
        flash(request, str(e), "error")
        return RedirectResponse("/library", status_code=303)
    return RedirectResponse(f"/library/{c.id}", status_code=303)


@router.get("/library/{collection_id}", response_class=HTMLResponse)
def collection(collection_id: int, request: Request, services: ServicesDep, user: SignedInDep):
    c = _own(services, user, collection_id)
    ids = services.store.collection_papers(c.id)
    hidden = services.store.hidden_among(ids) if ids else set()  # removed by moderators: their pages are 404
    return render(request, "collection.html", collection=c,
                  cards=cards(services.store, [d for d in ids if d not in hidden], user))


@router.get("/library/{collection_id}/bibtex")
def collection_export(collection_id: int, services: ServicesDep, user: SignedInDep):
    c = _own(services, user, collection_id)
    ids = services.store.collection_papers(c.id)
    papers = services.store.get_papers(ids)
    safe = "".join(ch if ch.isalnum() else "-" for ch in c.name).strip("-") or "collection"
    return Response(collection_bibtex(papers[d] for d in ids if d in papers),
                    media_type="application/x-bibtex; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{safe}.bib"'})


@router.post("/library/{collection_id}/delete")
def delete_collection(collection_id: int, request: Request, services: ServicesDep, user: SignedInDep):
    c = _own(services, user, collection_id)
    services.store.delete_collection(c.id)
    flash(request, f"Deleted the collection {c.name!r}.")
    return RedirectResponse("/library", status_code=303)


@router.post("/papers/{arxiv_id:path}/save")
def save(arxiv_id: str, request: Request, services: ServicesDep, user: SignedInDep,
         collection_id: Annotated[int | None, Form()] = None,
         new_collection: Annotated[str, Form(max_length=80)] = "",
         saved: Annotated[str, Form(pattern="^(0|1|toggle)$")] = "toggle"):
    """Save a paper to a collection (the default one unless named), or take it out again."""
    doc_id, paper = lookup(services, arxiv_id, user)
    store = services.store
    if new_collection.strip():
        try:
            c = store.create_collection(user.id, " ".join(new_collection.split()))
        except Conflict:
            c = next(x for x in store.collections(user.id) if x.name == " ".join(new_collection.split()))
    elif collection_id is not None:
        c = _own(services, user, collection_id)
    else:
        c = store.default_collection(user.id)
    now_saved = (c.id not in store.collections_with(user.id, doc_id)) if saved == "toggle" else saved == "1"
    store.set_saved(c.id, doc_id, now_saved)
    if "application/json" in request.headers.get("accept", ""):
        return {"arxiv_id": paper.arxiv_id, "collection": c.name, "saved": now_saved,
                "saved_anywhere": bool(store.collections_with(user.id, doc_id))}
    flash(request, f"{'Saved to' if now_saved else 'Removed from'} {c.name}.", "success")
    return RedirectResponse(_back(request, f"/papers/{paper.arxiv_id}"), status_code=303)
