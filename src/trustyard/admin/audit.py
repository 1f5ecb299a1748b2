"""``/api/v1/audit``: the audit log, newest first (``limit``, ``before`` an id, ``action``, ``actor``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.admin.http import actor, render, services, when
from trustyard.errors import InvalidRequest


async def list_events(request: Request) -> Response:
    query = request.query_params
    try:
        limit = int(query.get("limit", "100"))
        before = int(query["before"]) if query.get("before") else None
    except ValueError:
        raise InvalidRequest("limit and before must be integers") from None
    events = await services(request).audit.events(
        await actor(request), limit, before, query.get("action") or None, query.get("actor") or None
    )
    rendered = [
        {
            "id": e.id,
            "at": when(e.at),
            "actor": e.actor,
            "source": e.source,
            "action": e.action,
            "target": e.target,
            "detail": e.detail,
        }
        for e in events
    ]
    return render({"events": rendered})
