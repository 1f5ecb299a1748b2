"""The audit log page for site administrators: newest first, filtered by action and actor, paginated."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from trustyard.errors import InvalidRequest
from trustyard.web.http import render, services
from trustyard.web.sessions import actor

PAGE = 50
#: Actions services record, offered in the filter (any other text filters too).
ACTIONS = [
    "manifest.push",
    "manifest.delete",
    "blob.delete",
    "login.failed",
    "user.create",
    "user.update",
    "user.delete",
    "user.password",
    "organization.create",
    "organization.delete",
    "team.create",
    "team.delete",
    "team.member.add",
    "team.member.remove",
    "grant.put",
    "grant.delete",
    "token.create",
    "token.revoke",
    "repository.visibility",
    "repository.delete",
    "settings.storage",
    "webhook.save",
    "webhook.delete",
    "settings.gc",
    "gc.run",
    "policy.put",
    "policy.delete",
]


def _detail(detail: Any) -> str:
    if not detail:
        return ""
    if isinstance(detail, dict):
        return ", ".join(f"{k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in detail.items())
    return str(detail)


async def list_events(request: Request) -> Response:
    caller, query = await actor(request), request.query_params
    action, by = query.get("action", "").strip(), query.get("actor", "").strip()
    try:
        before = int(query["before"]) if query.get("before") else None
    except ValueError:
        raise InvalidRequest("before must be an event number") from None
    events = await services(request).audit.events(caller, PAGE + 1, before, action or None, by or None)
    filters = {k: v for k, v in {"action": action, "actor": by}.items() if v}
    next_url = None
    if len(events) > PAGE:
        events = events[:PAGE]
        next_url = "/admin/audit?" + urlencode({**filters, "before": events[-1].id})
    return render(
        request,
        "audit.html",
        caller,
        section="audit",
        events=[(event, _detail(event.detail)) for event in events],
        action=action,
        actor_filter=by,
        actions=ACTIONS,
        next_url=next_url,
        first_url="/admin/audit" + (f"?{urlencode(filters)}" if filters else "") if before is not None else None,
    )
