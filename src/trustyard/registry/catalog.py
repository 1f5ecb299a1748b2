"""``/v2/_catalog``: repositories the caller may pull, paginated with ``n``/``last`` and a Link header."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.registry.http import actor, next_link, page_size, services
from trustyard.registry.responses import json_response
from trustyard.services.repositories import DEFAULT_PAGE, MAX_PAGE


async def catalog(request: Request) -> Response:
    n = page_size(request, DEFAULT_PAGE, MAX_PAGE) or 0
    last = request.query_params.get("last") or None
    names = await services(request).repositories.catalog(actor(request), n + 1, last) if n else []
    link = None
    if len(names) > n:
        names = names[:n]
        link = next_link(request, names[-1], n)
    return json_response({"repositories": names}, link)
