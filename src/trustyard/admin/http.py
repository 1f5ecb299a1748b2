"""Helpers every admin handler shares: the caller (HTTP Basic: password, or an app token for GETs), JSON in
and out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from trustyard.auth import proxies
from trustyard.errors import Denied, InvalidRequest, Unauthorized
from trustyard.oci import jsontext
from trustyard.services import Services
from trustyard.services.actor import Actor, Credential

BODY_LIMIT = 64 * 1024


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def client_address(request: Request) -> str | None:
    """The client's address: X-Forwarded-For only from a configured trusted proxy (auth/proxies.py)."""
    peer = request.client.host if request.client else None
    return proxies.client_address(peer, request.headers.getlist("x-forwarded-for"), request.app.state.trusted_proxies)


async def actor(request: Request) -> Actor:
    """The caller with their whole permission. Every request checks the credentials once (use an app token in
    scripts that read: it is checked in microseconds, a password takes an argon2 verification). An app token may
    only read (GET): changing anything, above all the account itself, needs the password."""
    # Cached per request: body() checks the caller before reading, the handler asks again. Whatever decides
    # who the caller is (the credentials, and the method for app tokens) must stay inside this function.
    known: Actor | None = getattr(request.state, "actor", None)
    if known is not None:
        return known
    tokens = services(request).tokens
    source = client_address(request)
    principal = await tokens.login_basic(request.headers.get("authorization"), source)
    if principal is None:
        found = Actor.anonymous(source)
    elif principal.credential is Credential.APP_TOKEN and request.method != "GET":
        raise Denied(
            "app tokens work for the registry, the token endpoint and read-only admin calls (GET); "
            "use the password to change anything"
        )
    else:
        found = await tokens.actor_for(principal, source)
    request.state.actor = found
    return found


async def require_account(request: Request) -> None:
    """Refuse anonymous callers before their body is read: every admin change needs an account."""
    if (await actor(request)).is_anonymous:
        raise Unauthorized("log in: the admin API takes HTTP Basic credentials (a password or an app token)")


async def raw_body(request: Request) -> bytes:
    """The body's bytes (at most BODY_LIMIT), read only once the caller is known to have an account."""
    await require_account(request)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > BODY_LIMIT:
            raise InvalidRequest(f"request body over {BODY_LIMIT} bytes")
    return raw


async def yaml_body(request: Request, what: str) -> object:
    """The body as JSON or YAML (JSON is YAML, so one parser reads both): Distribution's blocks are YAML."""
    raw = await raw_body(request)
    import yaml  # on the first YAML body: PyYAML is not loaded by a worker that never gets one

    try:
        return yaml.safe_load(raw or b"{}")
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"the body is neither JSON nor YAML: {exc}") from None
    except RecursionError:  # PyYAML recurses per nesting level; the blocks it reads are a few levels deep
        raise InvalidRequest(f"the body nests too deeply to be {what}") from None


async def body(request: Request) -> dict[str, Any]:
    """The JSON object sent (at most BODY_LIMIT bytes, MAX_DEPTH deep), read once the caller is known."""
    raw = await raw_body(request)
    try:
        parsed = jsontext.load(raw or b"{}", max_bytes=BODY_LIMIT)
    except jsontext.JsonRejected as exc:
        raise InvalidRequest(f"the request body is refused: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return parsed


def field(data: dict[str, Any], name: str, kind: type, required: bool = True) -> Any:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"missing field {name!r}")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidRequest(f"field {name!r} must be a {kind.__name__}")
    return value


def render(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(value, status_code=status)


def when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
