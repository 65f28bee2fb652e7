"""Request-scoped dependencies: services, the signed-in user, CSRF checks, rendering."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from papertide.store.community import User
from papertide.web.security import (
    CsrfError,
    Forbidden,
    Unauthorized,
    csrf_ok,
    hash_api_token,
    new_csrf_token,
    session_fingerprint,
)
from papertide.web.services import Services

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def get_services(request: Request) -> Services:
    return request.app.state.services


def current_user(request: Request) -> User | None:
    """The signed-in user of this browser session, if the session is still valid."""
    if "user" in request.state._state:
        return request.state.user
    user = None
    uid = request.session.get("uid")
    if uid is not None:
        user = get_services(request).store.get_user(int(uid))
        if user is None or request.session.get("fp") != session_fingerprint(user):
            request.session.pop("uid", None)  # the account is gone or its password changed
            user = None
    request.state.user = user
    return user


def require_user(user: Annotated[User | None, Depends(current_user)], request: Request) -> User:
    if user is None:
        raise Unauthorized("Sign in to do that.")
    return user


def require_admin(user: Annotated[User, Depends(require_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Only administrators can do that.")
    return user


def api_user(request: Request) -> User:
    """The user of an API request, from `Authorization: Bearer <token>`."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send your API token as `Authorization: Bearer <token>` (create one on your profile page).")
    user = get_services(request).store.get_user_by_token_hash(hash_api_token(token.strip()))
    if user is None:
        raise Unauthorized("That API token is not valid.")
    return user


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = new_csrf_token()
    return token


async def check_csrf(request: Request) -> None:
    """Every state-changing request from a browser must carry the session's CSRF token (form field or header)."""
    if request.method not in UNSAFE:
        return
    given = request.headers.get("x-csrf-token")
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        given = (await request.form()).get("csrf")
    if not csrf_ok(request.session.get("csrf"), given if isinstance(given, str) else None):
        raise CsrfError("This form has expired or did not come from this site. Reload the page and try again.")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def flash(request: Request, message: str, kind: str = "info") -> None:
    request.session.setdefault("flash", []).append([kind, message])


def render(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    services = get_services(request)
    ctx.setdefault("user", current_user(request))
    ctx["csrf_token"] = csrf_token(request)
    ctx["flashes"] = request.session.pop("flash", [])
    ctx["settings"] = services.settings
    ctx["request"] = request
    return request.app.state.templates.TemplateResponse(request, template, ctx, status_code=status_code)


ServicesDep = Annotated[Services, Depends(get_services)]
UserDep = Annotated[User | None, Depends(current_user)]
SignedInDep = Annotated[User, Depends(require_user)]
AdminDep = Annotated[User, Depends(require_admin)]
ApiUserDep = Annotated[User, Depends(api_user)]
