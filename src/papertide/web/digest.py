"""E-mail digest pages: subscribe (double opt-in), confirm, preferences and one-click unsubscribe by signed link.

Every POST checks the CSRF token except the unsubscribe one: RFC 8058 one-click unsubscribe is a POST from
the recipient's mail provider (body `List-Unsubscribe=One-Click`) that cannot carry a token; the signed
link authenticates it. GETs never change anything (link scanners open them). The router's lifespan runs
the digest schedule when `digest_schedule_hour` is set.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import re
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from papertide.config import Settings
from papertide.digest.compose import ComposeError, parse_categories, parse_keywords
from papertide.digest.smtp import MailError, MailSetupError
from papertide.digest.subscriptions import DigestLinks, LinkError, confirm, subscribe
from papertide.store.digest import FREQUENCIES, Preferences, Subscriber
from papertide.web.deps import ServicesDep, UserDep, check_csrf, client_ip, flash, render
from papertide.web.security import Forbidden, check_rate

log = logging.getLogger(__name__)
MAX_PAPERS = 50
SCHEDULE_CHECK_SECONDS = 60.0
SCHEDULE_LOCK = "digest-schedule.lock"
SUGGESTED = ("cs.CL", "cs.LG", "cs.CV")  # the placeholder of the categories field
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Csrf = [Depends(check_csrf)]


@asynccontextmanager
async def lifespan(app: FastAPI):
    services = app.state.services
    hour = services.settings.digest_schedule_hour if services else None
    task = asyncio.create_task(_schedule_loop(app)) if hour is not None else None
    yield
    if task:
        task.cancel()


router = APIRouter(lifespan=lifespan)


def _sub(services, token: str, purpose: str = "manage") -> Subscriber:
    try:
        return DigestLinks(services.settings).read(services.store, token, purpose)
    except LinkError as e:
        raise Forbidden(str(e)) from e


# -- subscribe ------------------------------------------------------------------------------------
@router.get("/digest", response_class=HTMLResponse)
def digest_page(request: Request):
    return render(request, "digest_subscribe.html")


@router.post("/digest/subscribe", response_class=HTMLResponse, dependencies=Csrf)
def digest_subscribe(request: Request, services: ServicesDep, user: UserDep,
                     email: Annotated[str, Form(max_length=254)] = ""):
    email = email.strip().lower()
    settings = services.settings
    check_rate(services.store, f"digest-ip:{client_ip(request)}", settings.digest_subscribe_rate, "subscription requests")
    if not _EMAIL.match(email):
        return render(request, "digest_subscribe.html", status_code=400, error="Enter a valid e-mail address.")
    check_rate(services.store, f"digest:{email}", settings.digest_subscribe_rate, "subscription requests")
    user_id = user.id if user is not None and user.email == email else None
    try:
        subscribe(services.store, settings, email, user_id)
    except MailError as e:
        log.error("digest confirmation to %s failed: %s", email, e)
        return render(request, "digest_subscribe.html", status_code=503,
                      error="We could not send the confirmation e-mail just now. Please try again in a few minutes.")
    # One answer whatever the address's state: the form does not tell who is subscribed.
    return render(request, "digest_subscribe.html", sent=True, email=email)


@router.get("/digest/confirm/{token}", response_class=HTMLResponse)
def confirm_page(token: str, request: Request, services: ServicesDep):
    sub = _sub(services, token, "confirm")
    if sub.status == "confirmed":
        return RedirectResponse(DigestLinks(services.settings).links(sub).preferences, status_code=303)
    return render(request, "digest_confirm.html", sub=sub, token=token)


@router.post("/digest/confirm/{token}", dependencies=Csrf)
def confirm_post(token: str, request: Request, services: ServicesDep):
    sub = _sub(services, token, "confirm")
    try:
        if confirm(services.store, services.settings, sub):
            flash(request, "You are subscribed. A welcome e-mail is on its way; choose what you get below.", "success")
    except MailError as e:  # the subscription stands; only the welcome is lost
        log.error("digest welcome to %s failed: %s", sub.email, e)
        flash(request, "You are subscribed. Choose what you get below.", "success")
    sub = services.store.get_subscriber(sub.id)
    return RedirectResponse(DigestLinks(services.settings).links(sub).preferences, status_code=303)


# -- preferences ----------------------------------------------------------------------------------
def _form(prefs: Preferences) -> dict:
    return {"frequency": prefs.frequency, "categories": " ".join(prefs.categories),
            "keywords": ", ".join(prefs.keywords), "max_papers": prefs.max_papers, "for_you": prefs.for_you}


@router.get("/digest/preferences/{token}", response_class=HTMLResponse)
def preferences_page(token: str, request: Request, services: ServicesDep):
    sub = _sub(services, token)
    return render(request, "digest_preferences.html", sub=sub, token=token, form=_form(sub.prefs),
                  max_papers=MAX_PAPERS, suggestions=SUGGESTED)


@router.post("/digest/preferences/{token}", response_class=HTMLResponse, dependencies=Csrf)
def preferences_save(
    token: str, request: Request, services: ServicesDep,
    frequency: Annotated[str, Form()] = "daily", categories: Annotated[str, Form(max_length=400)] = "",
    keywords: Annotated[str, Form(max_length=1000)] = "", max_papers: Annotated[str, Form(max_length=4)] = "10",
    for_you: Annotated[str, Form(max_length=1)] = "",
):
    sub = _sub(services, token)
    form = {"frequency": frequency, "categories": categories, "keywords": keywords, "max_papers": max_papers,
            "for_you": for_you == "1"}
    try:
        if frequency not in FREQUENCIES:
            raise ComposeError("Choose daily or weekly.")
        try:
            n = int(max_papers)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_PAPERS:
            raise ComposeError(f"Choose between 1 and {MAX_PAPERS} papers per e-mail.")
        # "for you" needs a member's library: only a subscription tied to an account can have it
        prefs = Preferences(frequency, parse_categories(categories), parse_keywords(keywords), n,
                            for_you == "1" and sub.user_id is not None)
    except ComposeError as e:
        return render(request, "digest_preferences.html", status_code=400, sub=sub, token=token, form=form,
                      max_papers=MAX_PAPERS, suggestions=SUGGESTED, error=str(e))
    services.store.set_preferences(sub.id, prefs)
    flash(request, "Your preferences are saved.", "success")
    return RedirectResponse(f"/digest/preferences/{token}", status_code=303)


# -- unsubscribe ----------------------------------------------------------------------------------
@router.get("/digest/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, request: Request, services: ServicesDep):
    sub = _sub(services, token)
    return render(request, "digest_unsubscribe.html", sub=sub, token=token, done=sub.status == "unsubscribed")


@router.post("/digest/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_post(token: str, request: Request, services: ServicesDep):
    """RFC 8058 one-click: no CSRF token (a mail provider posts it); the signed link is the authority."""
    sub = _sub(services, token)
    services.store.unsubscribe(sub.id)
    return render(request, "digest_unsubscribe.html", sub=sub, token=token, done=True)


# -- the schedule (papertide serve) ---------------------------------------------------------------
def due_runs(settings: Settings, now: datetime, last_run: str | None) -> list[str]:
    """The frequencies to send at `now` (UTC), given the day of the last scheduled run (ISO date or None)."""
    hour = settings.digest_schedule_hour
    if hour is None or now.hour < hour or last_run == now.date().isoformat():
        return []
    return ["daily", "weekly"] if now.weekday() == settings.digest_weekly_day else ["daily"]


def run_schedule(services, now: datetime) -> list:
    """Send what is due at `now`, once per day (the day is recorded before sending, then each run is resumable)."""
    from papertide.digest.deliver import run_digest

    store, settings = services.store, services.settings
    todo = due_runs(settings, now, store.get_state("digest:scheduled"))
    if not todo:
        return []
    store.set_state("digest:scheduled", now.date().isoformat())
    reports = []
    for frequency in todo:
        rep = run_digest(store, settings, frequency, None, personal=_site_ranker(services))
        log.info("digest %s %s: sent %d, failed %d, skipped %d", frequency, rep.edition, rep.sent, rep.failed,
                 rep.skipped)
        reports.append(rep)
    return reports


def _site_ranker(services):
    """Members' "for you" order from the site's own model (built now if nobody visited /for-you yet)."""

    def rank(user_id: int) -> list[int]:
        fy = services.for_you()
        if fy is None or not fy.wait(600):
            return []
        return [p.doc_id for p in fy.ranking(user_id, trending_weight=0.0)]

    return rank


def scheduler_lock(home: Path) -> IO | None:
    """The digest schedule's lock (`<home>/digest-schedule.lock`, flock'd): an open file while this process
    holds it, None while another does. One `serve` worker of a host runs the schedule; if it exits, the OS
    drops its lock and another worker takes over at its next check. (Across hosts, leased claims in the
    store keep two schedulers from sending a message twice.)"""
    home.mkdir(parents=True, exist_ok=True)
    fh = open(home / SCHEDULE_LOCK, "a+")  # noqa: SIM115 - held open for the life of the process
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


async def _schedule_loop(app: FastAPI, every: float = SCHEDULE_CHECK_SECONDS) -> None:
    lock = None
    while True:
        services = app.state.services
        if services is not None and lock is None:
            lock = scheduler_lock(services.settings.home)
        if services is not None and lock is not None:
            try:
                await asyncio.to_thread(run_schedule, services, datetime.now(UTC))
            except MailSetupError as e:  # the operator's settings: one clear line, nothing marked failed
                log.error("scheduled digest run stopped: %s", e)
            except Exception:  # a failed run is retried by the next `papertide digest send` or day
                log.exception("scheduled digest run failed")
        await asyncio.sleep(every)
