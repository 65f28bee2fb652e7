"""The site's application factory: `create_app(settings)` wires services, routes, templates and errors."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from datetime import date
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from threadpoolctl import threadpool_limits

from papertide.config import Settings
from papertide.web.security import RateLimited, Unauthorized, WebError
from papertide.web.services import Services, build_services

log = logging.getLogger(__name__)
WEB_DIR = Path(str(resources.files("papertide.web")))
SESSION_MAX_AGE = 30 * 24 * 3600


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The site. Pass `services` to share a store and engine (tests); otherwise they open at startup."""
    settings = settings or (services.settings if services else Settings())
    own = services is None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # One BLAS/OpenMP thread per request: a server's parallelism is its concurrent requests, and
        # nested thread pools on 2 cores made dense-search p95 ~1.6x worse under load (measured).
        threadpool_limits(1)
        import torch  # the dense scan's kernel: torch's own pool is process-wide, not an OpenMP setting

        torch.set_num_threads(1)
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        if app.state.services is None:
            app.state.services = build_services(settings)
            if settings.foryou_warm and app.state.services.engine is not None:
                # the corpus side of "for you" (seconds with the term space `papertide index` saved),
                # in the background: the first member to open the feed does not wait for it
                app.state.services.for_you().start()
        refresher = asyncio.create_task(_refresh_loop(app, settings.index_refresh_seconds))
        yield
        refresher.cancel()
        if own and app.state.services is not None:
            app.state.services.close()
            app.state.services = None

    app = FastAPI(
        title=f"{settings.site_name} API", version="1", lifespan=lifespan,
        description="Trending papers, search and similar papers. Write calls take `Authorization: Bearer <token>`.",
        docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json",
    )
    app.state.services = services
    app.state.templates = _templates(settings)
    app.add_middleware(
        SessionMiddleware, secret_key=settings.signing_key(), session_cookie="papertide_session",
        max_age=SESSION_MAX_AGE, same_site="lax", https_only=settings.base_url.startswith("https://"),
    )

    app.add_middleware(SecurityHeaders)

    from papertide.web import account, admin, api, digest, feeds, foryou, library, pages

    for module in (pages, account, library, foryou, admin, feeds, digest):
        app.include_router(module.router)
    app.include_router(api.router, prefix="/api")
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    _error_handlers(app)
    return app


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     (b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
      b"font-src 'self' data:; frame-ancestors 'none'; form-action 'self'")),
]


class SecurityHeaders:
    """Adds the security headers to every response that does not set its own (plain ASGI: Starlette's
    BaseHTTPMiddleware costs a task group and a stream per request, a tenth of a cached page's time)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refresh_loop(app: FastAPI, every: float) -> None:
    """Pick up papers that `papertide ingest` + `papertide index` added while the site runs."""
    if every <= 0:
        return
    while True:
        await asyncio.sleep(every)
        services = app.state.services
        if services is None:
            continue
        try:
            if await asyncio.to_thread(services.refresh_indexes):
                log.info("indexes refreshed: the store changed")
        except Exception:  # a failed refresh keeps the old indexes; try again later
            log.exception("index refresh failed")


def _templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    env = templates.env
    env.auto_reload = False  # the templates ship with the package: no stat() of each one per render
    env.globals["site_name"] = settings.site_name
    env.globals["today"] = date.today
    env.filters["short_authors"] = __import__("papertide.web.views", fromlist=["short_authors"]).short_authors
    return templates


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _same_site_referer(request: Request) -> str:
    ref, base = request.headers.get("referer", ""), str(request.base_url)
    return ref[len(base) - 1 :] if ref.startswith(base) else "/"


def _error_handlers(app: FastAPI) -> None:
    from papertide.web.deps import render

    def respond(request: Request, status: int, title: str, message: str):
        if _wants_json(request):
            return JSONResponse({"error": title, "detail": message}, status_code=status)
        return render(request, "error.html", status_code=status, title=title, message=message, status=status)

    @app.exception_handler(WebError)
    async def web_error(request: Request, exc: WebError):
        if isinstance(exc, Unauthorized) and not _wants_json(request):
            from papertide.web.deps import flash

            flash(request, exc.message, "info")
            # After signing in, a form post goes back to the page it was sent from, not to its action URL.
            target = request.url.path if request.method == "GET" else _same_site_referer(request)
            return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
        response = respond(request, exc.status, exc.title, exc.message)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return respond(request, 404, "Not found", "There is no page at this address.")
        if exc.status_code == 405:
            return respond(request, 405, "Method not allowed", "This address does not accept that kind of request.")
        return respond(request, exc.status_code, "Error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
        return respond(request, 422, "Invalid request", problems or "The request was not understood.")

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return respond(request, 500, "Something went wrong",
                       "The server hit an error it did not expect. It has been logged; please try again.")
