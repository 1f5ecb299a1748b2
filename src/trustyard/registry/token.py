"""``/auth/token`` (the Docker token endpoint: GET with Basic credentials, OAuth2 POST form with refresh
tokens) and ``/auth/jwks`` (the public keys that verify its tokens)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trustyard.auth.scopes import format_scopes, parse_scopes
from trustyard.errors import InvalidRequest, LoginFailed
from trustyard.registry.http import client_address, read_limited, services
from trustyard.services.tokens import IssuedToken

FORM_LIMIT = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # tokens must not land in caches


async def get_token(request: Request) -> Response:
    """Docker's token request: ``?service=&scope=...&offline_token=true``, Basic credentials or anonymous."""
    tokens = services(request).tokens
    _check_service(request.query_params.get("service"), tokens.service)
    principal = await tokens.login_basic(request.headers.get("authorization"), client_address(request))
    scopes = parse_scopes(request.query_params.getlist("scope"))
    offline = request.query_params.get("offline_token") == "true"
    issued = await tokens.issue(principal, scopes, offline)
    body = {"token": issued.token, "access_token": issued.token, **_common(issued)}
    return JSONResponse(body, headers=NO_STORE)


async def post_token(request: Request) -> Response:
    """OAuth2 form: ``grant_type=password`` (username, password) or ``refresh_token``; what containerd sends."""
    tokens, source = services(request).tokens, client_address(request)
    form = parse_qs((await read_limited(request, FORM_LIMIT)).decode(errors="replace"))
    _check_service(_one(form, "service"), tokens.service)
    scopes = parse_scopes(form.get("scope", []))
    grant_type = _one(form, "grant_type")
    if grant_type == "password":
        principal = await tokens.login(_one(form, "username") or "", _one(form, "password") or "", source)
        issued = await tokens.issue(principal, scopes, offline=_one(form, "access_type") == "offline")
    elif grant_type == "refresh_token":
        issued = await tokens.refresh(_one(form, "refresh_token") or "", scopes, source)
    else:
        raise InvalidRequest(f"unsupported grant_type {str(grant_type)[:40]!r}: use password or refresh_token")
    body = {"access_token": issued.token, "token_type": "Bearer", "scope": format_scopes(issued.scopes)}
    return JSONResponse({**body, **_common(issued)}, headers=NO_STORE)


async def jwks(request: Request) -> Response:
    return JSONResponse(services(request).tokens.authority.jwks)


def _common(issued: IssuedToken) -> dict[str, object]:
    body: dict[str, object] = {
        "expires_in": issued.expires_in,
        "issued_at": datetime.fromtimestamp(issued.issued_at, UTC).isoformat().replace("+00:00", "Z"),
    }
    if issued.refresh_token:
        body["refresh_token"] = issued.refresh_token
    return body


def _one(form: dict[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


def _check_service(requested: str | None, ours: str) -> None:
    if requested and requested != ours:
        raise LoginFailed(f"this token endpoint serves {ours!r}, not {requested[:60]!r}")
