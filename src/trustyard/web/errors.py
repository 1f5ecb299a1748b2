"""The one place domain errors become what a person sees: the login page when not signed in, a flash message
on the page a form came from, or an error page with the status and the service's own message."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from trustyard import errors as e
from trustyard.web.http import flash, local_path, redirect, render

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]


class CsrfRejected(e.Denied):
    """A form came without this session's CSRF token (a forged cross-site request, or an expired session)."""

    default_message = "the form had expired or did not come from this site; reload the page and try again"


STATUS: dict[type[e.TrustyardError], int] = {
    e.Unauthorized: 401,
    e.Denied: 403,
    e.NotFound: 404,
    e.NameUnknown: 404,
    e.ManifestUnknown: 404,
    e.AlreadyExists: 409,
    e.SettingPinned: 409,
    e.TooManyRequests: 429,
    e.StorageProbeFailed: 422,
    e.StorageUnavailable: 503,
}


def status_of(error: e.TrustyardError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500 if type(error) is e.TrustyardError else 400  # the rest are the caller's mistakes


def message_of(error: e.TrustyardError) -> str:
    """The service's own message, as it is (it may start with a user name: no capitalising)."""
    return error.message


async def handle(request: Request, error: e.TrustyardError) -> Response:
    status = status_of(error)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, error.message)
    signed_in = getattr(request.state, "actor", None)
    if status == 401 and (signed_in is None or signed_in.is_anonymous):
        target = "/login" if request.method != "GET" else f"/login?next={quote(request.url.path)}"
        return redirect(request, target)
    back = local_path(_referer_path(request), "")
    if request.method == "POST" and back and status < 500 and not isinstance(error, CsrfRejected):
        flash(request, "error", message_of(error))
        return redirect(request, back)
    return render(request, "error.html", signed_in, status, status=status, message=message_of(error))


def _referer_path(request: Request) -> str | None:
    """The page a form was posted from, when it is on this site."""
    referer = request.headers.get("referer")
    if not referer:
        return None
    base = f"{request.url.scheme}://{request.url.netloc}"
    return referer[len(base) :] or "/" if referer.startswith(base + "/") or referer == base else None


def page(handler: Handler) -> Handler:
    """Wrap a page handler so that its domain errors are shown as this module says."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except e.TrustyardError as error:
            return await handle(request, error)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def not_found(request: Request) -> Response:
    """Unknown paths outside the registry and admin APIs."""
    return render(request, "error.html", None, 404, status=404, message=f"There is no page at {request.url.path}.")
