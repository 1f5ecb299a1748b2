"""``/v2/<name>/tags/list``: the tags of a repository, paginated with ``n``/``last`` and a Link header."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.registry.http import actor, next_link, page_size, repository, services
from trustyard.registry.responses import json_response
from trustyard.services.repositories import MAX_PAGE


async def list_tags(request: Request) -> Response:
    name = repository(request)
    n, last = None, None
    if request.scope["query_string"]:  # most lists ask for every tag: no query string to parse
        n = page_size(request, None, MAX_PAGE)
        last = request.query_params.get("last") or None
    tags = await services(request).tags.list(actor(request), name, None if n is None else n + 1, last)
    link = None
    if n is not None and len(tags) > n:
        tags = tags[:n]
        if tags:  # n=0 asks for an empty page: nothing to continue after
            link = next_link(request, tags[-1], n)
    return json_response({"name": name.value, "tags": tags}, link)
