"""``/v2/_catalog``: repositories the caller may pull, paginated with ``n``/``last`` and a Link header."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trustyard.registry.http import actor, next_link, page_size, services
from trustyard.services.repositories import DEFAULT_PAGE, MAX_PAGE


async def catalog(request: Request) -> Response:
    n = page_size(request, DEFAULT_PAGE, MAX_PAGE) or 0
    last = request.query_params.get("last") or None
    names = await services(request).repositories.catalog(actor(request), n + 1, last) if n else []
    headers = {}
    if len(names) > n:
        names = names[:n]
        headers["Link"] = next_link(request, names[-1], n)
    return JSONResponse({"repositories": names}, headers=headers)
