"""Moderation by administrators (made with `papertide user create --admin`): hide and merge papers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from papertide.web.deps import AdminDep, ServicesDep, check_csrf, flash
from papertide.web.pages import lookup
from papertide.web.security import WebError

router = APIRouter(prefix="/admin", dependencies=[Depends(check_csrf)])


@router.post("/papers/{arxiv_id:path}/hide")
def hide(arxiv_id: str, request: Request, services: ServicesDep, user: AdminDep,
         hidden: Annotated[str, Form(pattern="^(0|1)$")] = "1"):
    doc_id, paper = lookup(services, arxiv_id, user)
    services.store.set_hidden(doc_id, hidden == "1")
    flash(request, f"arXiv:{paper.arxiv_id} is {'hidden' if hidden == '1' else 'visible again'}.", "success")
    return RedirectResponse(f"/papers/{paper.arxiv_id}", status_code=303)


@router.post("/papers/{arxiv_id:path}/merge")
def merge(arxiv_id: str, request: Request, services: ServicesDep, user: AdminDep,
          into: Annotated[str, Form(max_length=200)] = ""):
    dup_id, dup = lookup(services, arxiv_id, user)
    if not into.strip():
        raise WebError("Say which paper this one duplicates.")
    target_id, target = lookup(services, into.strip(), user)
    if target_id == dup_id:
        raise WebError("A paper cannot be merged into itself.")
    hidden, merged_into = services.store.curation(target_id)
    if hidden:  # merging into a hidden paper could close a loop of merges that no page could resolve
        where = f"merged into arXiv:{merged_into}" if merged_into else "hidden"
        raise WebError(f"arXiv:{target.arxiv_id} is {where}; merge into a visible paper.")
    services.store.merge_papers(dup_id, target_id)
    flash(request, f"arXiv:{dup.arxiv_id} is merged into arXiv:{target.arxiv_id}.", "success")
    return RedirectResponse(f"/papers/{target.arxiv_id}", status_code=303)
