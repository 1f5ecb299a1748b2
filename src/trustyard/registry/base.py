"""``GET /v2/``: the API version check clients make first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.registry.http import actor


async def version_check(request: Request) -> Response:
    actor(request)  # authentication (when configured) answers 401 with its challenge from here
    return Response(b"{}", media_type="application/json")
