"""Logging in and out of the web UI, the signed-in actor of each request, and CSRF checks on every form.

Sessions are held server-side (``services/sessions.py``): the cookie carries only the session's secret, and
every request resolves it, so logging out, a new password, a deactivated or deleted user ends the session at
once, copies of the cookie included. Only a password opens a session: an app token is for the registry.
Every POST carries the session's CSRF token (``form``).
"""

from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from trustyard.auth import proxies
from trustyard.errors import LoginFailed, TooManyRequests, Unauthorized
from trustyard.services.actor import Actor
from trustyard.web.errors import CsrfRejected
from trustyard.web.http import flash, local_path, redirect, render, services, session

FORM_LIMIT = 1024 * 1024  # the largest form accepted (a YAML storage block is the biggest)


def client_address(request: Request) -> str | None:
    """The client's address: X-Forwarded-For only from a configured trusted proxy (auth/proxies.py)."""
    peer = request.client.host if request.client else None
    return proxies.client_address(peer, request.headers.getlist("x-forwarded-for"), request.app.state.trusted_proxies)


async def optional_actor(request: Request) -> Actor:
    """The signed-in user with their whole permission, or the anonymous actor."""
    current = session(request)
    resolved = None
    if current.sid:
        resolved = await services(request).sessions.resume(current.sid, client_address(request))
        if resolved is None:  # ended (logout, new password), expired, or the user is gone: forget it
            current.sid, current.changed = "", True
    actor = resolved or Actor.anonymous(client_address(request))
    request.state.actor = actor
    return actor


async def actor(request: Request) -> Actor:
    """The signed-in user; Unauthorized (the login page) when nobody is."""
    found = await optional_actor(request)
    if found.is_anonymous:
        raise Unauthorized("log in to see this page")
    return found


async def form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches this session's."""
    if int(request.headers.get("content-length") or 0) > FORM_LIMIT:
        raise CsrfRejected(f"the form is larger than {FORM_LIMIT // 1024} KiB")
    data = await request.form(max_part_size=FORM_LIMIT)
    token = data.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(token, session(request).csrf):
        raise CsrfRejected()
    return data


def text(data: FormData, name: str) -> str:
    """A text field of a form, stripped ("" when absent or a file)."""
    value = data.get(name)
    return value.strip() if isinstance(value, str) else ""


async def home(request: Request) -> Response:
    signed_in = not (await optional_actor(request)).is_anonymous
    return redirect(request, "/repositories" if signed_in else "/login")


async def login_page(request: Request) -> Response:
    caller = await optional_actor(request)
    target = local_path(request.query_params.get("next"), "/repositories")
    if not caller.is_anonymous:
        return redirect(request, target)
    return render(request, "login.html", None, next=target)


async def login(request: Request) -> Response:
    """Check the user name and password (app tokens are for the registry), then start a new session."""
    data = await form(request)
    username, target = text(data, "username"), local_path(text(data, "next"), "/repositories")
    password = data.get("password")
    secret = password if isinstance(password, str) else ""
    try:
        principal = await services(request).tokens.login(username, secret, client_address(request), app_tokens=False)
    except LoginFailed as failed:
        error = failed.message if "app token" in failed.message else "Wrong user name or password."
        return render(request, "login.html", None, 401, next=target, error=error, username=username)
    except TooManyRequests as slow:
        error = f"{slow.message[:1].upper()}{slow.message[1:]}."
        return render(request, "login.html", None, 429, next=target, error=error, username=username)
    current = session(request)
    await services(request).sessions.end(current.sid)  # a login replaces whatever session this browser had
    current.sid = await services(request).sessions.start(principal)
    current.csrf = secrets.token_urlsafe(32)  # a new token for the new session
    current.changed = True
    return redirect(request, target)


async def logout(request: Request) -> Response:
    await form(request)
    current = session(request)
    await services(request).sessions.end(current.sid)  # server-side: a copied cookie stops working too
    current.sid, current.changed = "", True
    flash(request, "ok", "You are logged out.")
    return redirect(request, "/login")
