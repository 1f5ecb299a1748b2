"""Logging in and out of the web UI, the signed-in actor of each request, and CSRF checks on every form.

A session keeps only the user name and a stamp of the credential that opened it; every request re-resolves
the user through ``services.tokens.resume``, so a deleted or deactivated user, a changed password or a
revoked app token ends the session at once. Every POST carries the session's CSRF token (``form``).
"""

from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from trustyard.errors import LoginFailed, Unauthorized
from trustyard.services.actor import Action, Actor
from trustyard.web.errors import CsrfRejected
from trustyard.web.http import flash, local_path, redirect, render, services, session

FORM_LIMIT = 1024 * 1024  # the largest form accepted (a YAML storage block is the biggest)


def _nothing(_repository: str, _action: Action) -> bool:
    return False


def _source(request: Request) -> str | None:
    return request.client.host if request.client else None


async def optional_actor(request: Request) -> Actor:
    """The signed-in user with their whole permission, or the anonymous actor."""
    current = session(request)
    resolved = None
    if current.user:
        resolved = await services(request).tokens.resume(current.user, current.stamp, _source(request))
        if resolved is None:  # the user or the credential is gone: the session ends
            current.user, current.stamp, current.changed = None, "", True
    actor = resolved or Actor(name="anonymous", anonymous=True, allowed=_nothing, source=_source(request))
    request.state.actor = actor
    return actor


async def actor(request: Request) -> Actor:
    """The signed-in user; Unauthorized (the login page) when nobody is."""
    found = await optional_actor(request)
    if found.anonymous:
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
    signed_in = not (await optional_actor(request)).anonymous
    return redirect(request, "/repositories" if signed_in else "/login")


async def login_page(request: Request) -> Response:
    caller = await optional_actor(request)
    target = local_path(request.query_params.get("next"), "/repositories")
    if not caller.anonymous:
        return redirect(request, target)
    return render(request, "login.html", None, next=target)


async def login(request: Request) -> Response:
    """Check the user name and password (or app token) as ``docker login`` does, then start a new session."""
    data = await form(request)
    username, target = text(data, "username"), local_path(text(data, "next"), "/repositories")
    password = data.get("password")
    tokens = services(request).tokens
    try:
        principal = await tokens.login(username, password if isinstance(password, str) else "", _source(request))
    except LoginFailed:
        error = "Wrong user name or password (or app token)."
        return render(request, "login.html", None, 401, next=target, error=error, username=username)
    current = session(request)
    current.user, current.stamp = principal.user.name, tokens.session_stamp(principal)
    current.csrf = secrets.token_urlsafe(32)  # a new token for the new session
    current.changed = True
    return redirect(request, target)


async def logout(request: Request) -> Response:
    await form(request)
    current = session(request)
    current.user, current.stamp, current.changed = None, "", True
    flash(request, "ok", "You are logged out.")
    return redirect(request, "/login")
