"""What every page handler shares: the signed session cookie, the templates, rendering and redirects.

The session is a cookie signed with the cluster's session key (kept sealed in the database, the same on every
node, so a session survives hopping nodes: ``services/shared_secrets.py``): it holds the secret of a
server-side session (``services/sessions.py``), a CSRF token and at most one flash message. It is HttpOnly,
SameSite=Lax, Secure when the registry speaks HTTPS, and lives 12 hours. It never grants anything by itself:
``sessions.actor`` resolves the server-side session and its user on every request.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from trustyard import __version__
from trustyard.services import Services
from trustyard.services.actor import Actor

if TYPE_CHECKING:
    from itsdangerous import URLSafeTimedSerializer
    from jinja2 import Environment

COOKIE = "trustyard_session"
SESSION_SECONDS = 12 * 3600
STATIC = Path(__file__).parent / "static"
#: Pages load only their own stylesheet and script; nothing may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def templates() -> Environment:
    """The page templates, loaded on the first page a worker renders: Jinja2 and its compiled templates (~2 MiB per
    worker) are not imported by a worker that only serves ``/v2/``."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(
        loader=PackageLoader("trustyard.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass
class Session:
    sid: str = ""  # the server-side session's secret; "" when nobody is signed in
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    flash: tuple[str, str] | None = None  # (kind: "ok" | "error", message)
    changed: bool = False


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def _serializer(request: Request) -> URLSafeTimedSerializer:
    from itsdangerous import URLSafeTimedSerializer  # on the first page, like the templates

    return URLSafeTimedSerializer(request.app.state.session_key, salt="trustyard-session")


def session(request: Request) -> Session:
    """This request's session: from the cookie when its signature holds and it is not too old, else a new one."""
    cached: Session | None = getattr(request.state, "session", None)
    if cached is not None:
        return cached
    found = Session(changed=True)
    raw = request.cookies.get(COOKIE)
    if raw:
        from itsdangerous import BadSignature

        try:
            data = _serializer(request).loads(raw, max_age=SESSION_SECONDS)
            flash = data.get("flash")
            found = Session(str(data.get("sid") or ""), data["csrf"], tuple(flash) if flash else None)
        except (BadSignature, KeyError, TypeError, ValueError):
            pass
    request.state.session = found
    return found


def flash(request: Request, kind: str, message: str) -> None:
    current = session(request)
    current.flash, current.changed = (kind, message), True


def _finish(request: Request, response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    current = session(request)
    if current.changed:
        data = {k: v for k, v in asdict(current).items() if k != "changed"}
        secure = request.url.scheme == "https" or str(request.app.state.public_url or "").startswith("https:")
        response.set_cookie(
            COOKIE,
            _serializer(request).dumps(data),
            max_age=SESSION_SECONDS,
            httponly=True,
            secure=secure,
            samesite="lax",
            path="/",
        )
    return response


def render(request: Request, template: str, actor: Actor | None, status_code: int = 200, **context: Any) -> Response:
    """A page: the template with the signed-in user, the CSRF token, the pending flash message (shown once), and
    what the footer shows on every page: trustyard's version and the address clients pull from."""
    current = session(request)
    shown, current.flash = current.flash, None
    current.changed = current.changed or shown is not None
    page = templates().get_template(template)
    html = page.render(
        user=actor if actor is not None and not actor.is_anonymous else None,
        csrf=current.csrf,
        flash={"kind": shown[0], "message": shown[1]} if shown else None,
        path=request.url.path,
        version=__version__,
        registry_host=registry_host(request),
        **context,
    )
    return _finish(request, HTMLResponse(html, status_code=status_code))


def redirect(request: Request, url: str) -> Response:
    """303 See Other (after a POST the browser GETs ``url``), carrying session changes."""
    return _finish(request, RedirectResponse(url, status_code=303))


def local_path(url: str | None, default: str) -> str:
    """``url`` when it is a path on this site (no scheme, no host, no ``//``), else ``default``: no open redirects."""
    if not url:
        return default
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url


def registry_host(request: Request) -> str:
    """The host:port clients use for this registry (``public_url`` when set, else what the browser used)."""
    public = request.app.state.public_url
    return urlsplit(str(public)).netloc if public else request.url.netloc
