"""Helpers every admin handler shares: the caller (HTTP Basic: password or app token), JSON in and out."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from trustyard.errors import InvalidRequest
from trustyard.services import Services
from trustyard.services.actor import Action, Actor

BODY_LIMIT = 64 * 1024


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def _nothing(_repository: str, _action: Action) -> bool:
    return False


async def actor(request: Request) -> Actor:
    """The caller with their whole permission. Every call checks the credentials (use an app token in scripts:
    it is checked in microseconds, a password takes an argon2 verification)."""
    tokens = services(request).tokens
    source = request.client.host if request.client else None
    principal = await tokens.login_basic(request.headers.get("authorization"), source)
    if principal is None:
        return Actor(name="anonymous", anonymous=True, allowed=_nothing, source=source)
    return await tokens.actor_for(principal, source)


async def body(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > BODY_LIMIT:
            raise InvalidRequest(f"request body over {BODY_LIMIT} bytes")
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        raise InvalidRequest("the request body is not JSON") from None
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
