"""Accounts: sign-up, sign-in, sign-out, password reset by e-mail, profiles and API tokens."""

from __future__ import annotations

import logging
import re
import smtplib
from email.message import EmailMessage
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from papertide.digest.smtp import MailError, connect, send_message
from papertide.store.community import Conflict, User
from papertide.web.deps import ServicesDep, SignedInDep, UserDep, check_csrf, client_ip, flash, render
from papertide.web.security import (
    NotFound,
    burn_verify,
    check_rate,
    hash_password,
    new_api_token,
    password_problem,
    session_fingerprint,
    verify_password,
)
from papertide.web.views import cards

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(check_csrf)])
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def sign_in(request: Request, user: User) -> None:
    csrf = request.session.get("csrf")
    request.session.clear()  # a new session on sign-in: no fixation
    request.session.update({"uid": user.id, "fp": session_fingerprint(user)})
    if csrf:
        request.session["csrf"] = csrf


def _next(value: str | None) -> str:
    """Only a path on this site: never an open redirect.

    Browsers read a backslash as a slash (`/\\evil.example` is `//evil.example`) and drop tabs and
    newlines from URLs, so those are refused too, not left to the redirect's URL quoting.
    """
    if not value or not value.startswith("/") or "\\" in value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "/"
    return "/" if value.startswith("//") else value


@router.get("/signup", response_class=HTMLResponse)
def signup_form(request: Request, next: str = "/"):
    return render(request, "signup.html", next=_next(next), email="", name="")


@router.post("/signup", response_class=HTMLResponse)
def signup(
    request: Request, services: ServicesDep,
    email: Annotated[str, Form(max_length=254)] = "", name: Annotated[str, Form(max_length=80)] = "",
    password: Annotated[str, Form(max_length=1024)] = "", next: Annotated[str, Form()] = "/",
):
    check_rate(services.store, f"signup:{client_ip(request)}", services.settings.signup_rate, "sign-ups")
    email, name = email.strip(), " ".join(name.split())
    error = None
    if not _EMAIL.match(email):
        error = "Enter a valid e-mail address."
    elif not name:
        error = "Enter a name to show beside your submissions."
    else:
        error = password_problem(password)
    if error is None:
        try:
            user = services.store.create_user(email, name, hash_password(password))
        except Conflict:
            error = "An account with this e-mail address already exists. Sign in, or reset your password."
    if error:
        return render(request, "signup.html", status_code=400, error=error, email=email, name=name, next=_next(next))
    sign_in(request, user)
    flash(request, f"Welcome, {user.name}!", "success")
    return RedirectResponse(_next(next), status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/"):
    return render(request, "login.html", next=_next(next), email="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, services: ServicesDep,
    email: Annotated[str, Form(max_length=254)] = "", password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form()] = "/",
):
    email = email.strip().lower()
    check_rate(services.store, f"login-ip:{client_ip(request)}", services.settings.login_rate, "sign-in attempts")
    check_rate(services.store, f"login:{email}", services.settings.login_account_rate, "sign-in attempts")
    user = services.store.get_user_by_email(email)
    if user is None:
        burn_verify()
    if user is None or not verify_password(user.password_hash, password):
        return render(request, "login.html", status_code=400, email=email, next=_next(next),
                      error="That e-mail address and password do not match an account.")
    sign_in(request, user)
    return RedirectResponse(_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request):
    request.session.clear()
    flash(request, "You are signed out.")
    return RedirectResponse("/", status_code=303)


@router.get("/reset", response_class=HTMLResponse)
def reset_form(request: Request):
    return render(request, "reset_request.html", email="")


@router.post("/reset", response_class=HTMLResponse)
def reset_request(request: Request, services: ServicesDep, email: Annotated[str, Form(max_length=254)] = ""):
    email = email.strip().lower()
    check_rate(services.store, f"reset-ip:{client_ip(request)}", services.settings.reset_rate, "reset requests")
    check_rate(services.store, f"reset:{email}", services.settings.reset_rate, "reset requests")
    user = services.store.get_user_by_email(email)
    try:
        if user is not None:
            send_message(services.settings, _reset_mail(services, user))
        else:
            # Reach the mail server all the same, so that a mail outage answers every address alike
            # (a 503 for accounts only would tell which addresses have one).
            with connect(services.settings, timeout=30.0):
                pass
    except (MailError, smtplib.SMTPException, OSError) as e:
        log.error("password reset mail for %s failed: %s", email, e)
        return render(request, "reset_request.html", status_code=503, email=email,
                      error="We could not send the e-mail just now. Please try again in a few minutes.")
    # The same answer whether or not the address has an account: no account discovery.
    return render(request, "reset_request.html", sent=True, email=email)


def _reset_mail(services, user: User) -> EmailMessage:
    link = f"{services.settings.base_url.rstrip('/')}/reset/{services.links.reset_token(user)}"
    msg = EmailMessage()
    msg["To"] = user.email
    msg["Subject"] = f"Reset your {services.settings.site_name} password"
    msg.set_content(
        f"Hello {user.name},\n\nSomeone (hopefully you) asked to reset the password of your "
        f"{services.settings.site_name} account. Open this link within an hour to choose a new one:\n\n"
        f"{link}\n\nIf it was not you, ignore this e-mail: your password stays as it is.\n"
    )
    return msg


@router.get("/reset/{token}", response_class=HTMLResponse)
def reset_form_token(token: str, request: Request, services: ServicesDep):
    _reset_user(services, token)
    return render(request, "reset_password.html", token=token)


@router.post("/reset/{token}", response_class=HTMLResponse)
def reset_password(token: str, request: Request, services: ServicesDep,
                   password: Annotated[str, Form(max_length=1024)] = ""):
    user = _reset_user(services, token)
    problem = password_problem(password)
    if problem:
        return render(request, "reset_password.html", status_code=400, token=token, error=problem)
    services.store.set_password(user.id, hash_password(password))
    sign_in(request, services.store.get_user(user.id))  # type: ignore[arg-type]
    flash(request, "Your password is changed and you are signed in.", "success")
    return RedirectResponse("/", status_code=303)


def _reset_user(services, token: str) -> User:
    from papertide.web.security import Forbidden

    uid, fp = services.links.read_reset(token)
    user = services.store.get_user(uid)
    if user is None or session_fingerprint(user) != fp:
        raise Forbidden("This reset link was already used. Ask for a new one if you need it.")
    return user


@router.get("/users/{user_id}", response_class=HTMLResponse)
def profile(user_id: int, request: Request, services: ServicesDep, user: UserDep):
    owner = services.store.get_user(user_id)
    if owner is None:
        raise NotFound("There is no such member.")
    store = services.store
    submitted_ids, voted_ids = store.submitted_papers(owner.id), store.voted_papers(owner.id)
    hidden = store.hidden_among(submitted_ids + voted_ids)  # papers the moderators removed are gone everywhere
    submitted = cards(store, [d for d in submitted_ids if d not in hidden], user)
    upvoted = cards(store, [d for d in voted_ids if d not in hidden], user)
    return render(request, "profile.html", owner=owner, submitted=submitted, upvoted=upvoted,
                  is_me=user is not None and user.id == owner.id,
                  has_token=store.has_api_token(owner.id) if user and user.id == owner.id else False,
                  new_token=request.session.pop("new_token", None) if user and user.id == owner.id else None)


@router.post("/account/token")
def create_token(request: Request, services: ServicesDep, user: SignedInDep):
    token, token_hash = new_api_token()
    services.store.set_api_token_hash(user.id, token_hash)
    request.session["new_token"] = token  # shown once, on the next page view
    return RedirectResponse(f"/users/{user.id}#api", status_code=303)
