"""The self-service account page: every user changes their own password (with the current one) and lists,
creates (the secret shown once) and revokes their app tokens; administrators do the same for any user."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.errors import InvalidRequest
from trustyard.services.app_tokens import CreatedToken
from trustyard.services.tokens import Principal
from trustyard.web.http import flash, redirect, render, services, session
from trustyard.web.sessions import actor, form, text


def _path(user: str) -> str:
    return f"/account/{user}"


async def account_page(request: Request, created: CreatedToken | None = None, password: str | None = None) -> Response:
    """``/account`` (your own) or ``/account/{user}`` (an administrator's view of anybody's)."""
    caller = await actor(request)
    name = request.path_params.get("user", caller.name)
    shown = await services(request).users.get(caller, name)  # self or administrator, else refused
    tokens = await services(request).app_tokens.of(caller, name)
    context = {"account": shown, "own": name == caller.name, "tokens": tokens, "created": created}
    return render(request, "account.html", caller, section="account", new_password=password, **context)


async def change_password(request: Request) -> Response:
    """Your own password: the current one, and the new one twice. Somebody else's (administrators): a new one,
    or an empty field to generate one, shown once. Either way every session of that user ends; yours goes on
    with the new password."""
    data = await form(request)
    caller, name = await actor(request), request.path_params["user"]
    new, again = text(data, "new_password"), text(data, "confirm_password")
    if name == caller.name and not new:
        raise InvalidRequest("type the new password (at least 12 characters)")
    if new != again:
        raise InvalidRequest("the new password and its confirmation differ")
    current = text(data, "current_password") or None
    password = await services(request).users.set_password(caller, name, new or None, current)
    if name != caller.name:
        return await account_page(request, password=None if new else password)
    # The change ended every session of yours, this one too: this browser goes on in a new one.
    user = await services(request).users.get(caller, name)
    session(request).sid = await services(request).sessions.start(Principal(user))
    flash(request, "ok", "Your password is changed. Every other session of yours has ended.")
    return redirect(request, _path(name))


async def create_token(request: Request) -> Response:
    """A new app token; its secret is on the page that follows, and only there."""
    data = await form(request)
    caller, name = await actor(request), request.path_params["user"]
    read_only = text(data, "read_only") == "on"
    created = await services(request).app_tokens.create(caller, name, text(data, "name"), read_only)
    return await account_page(request, created=created)


async def revoke_token(request: Request) -> Response:
    await form(request)
    caller, name, token = await actor(request), request.path_params["user"], request.path_params["token"]
    await services(request).app_tokens.revoke(caller, name, token)
    flash(request, "ok", "Revoked the token: it no longer works for docker login or the registry.")
    return redirect(request, _path(name))
