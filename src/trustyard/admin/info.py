"""``/api/v1/info``: the registry at a glance for site admins (what ``trustyard info --json`` prints)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.admin.http import actor, render, services


async def get_info(request: Request) -> Response:
    found = await services(request).info.info(await actor(request))
    return render(found.as_document())
