"""``GET /v2/``: the API version check clients make first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.registry.http import authenticated


async def version_check(request: Request) -> Response:
    authenticated(request)  # without a valid token: 401 with the Bearer challenge that starts docker login
    return Response(b"{}", media_type="application/json")
