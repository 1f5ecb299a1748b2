"""``/api/v1/grants``: roles (read, read-write, admin) on repositories and namespaces for users and teams."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.admin.http import actor, body, field, render, services, when
from trustyard.auth.policy import Role
from trustyard.services.grants import GrantRow


def grant_json(row: GrantRow) -> dict[str, object]:
    return {
        "id": row.id,
        "target": f"{row.target}/*" if row.namespace else row.target,
        "role": Role(row.role).label,
        "user": row.user,
        "team": row.team,
        "created_at": when(row.created_at),
    }


async def list_grants(request: Request) -> Response:
    target = request.query_params.get("target")
    grants = await services(request).grants.all(await actor(request), target)
    return render({"grants": [grant_json(g) for g in grants]})


async def put_grant(request: Request) -> Response:
    data = await body(request)
    row = await services(request).grants.put(
        await actor(request),
        field(data, "target", str),
        field(data, "role", str),
        user=field(data, "user", str, required=False),
        team=field(data, "team", str, required=False),
    )
    return render(grant_json(row), 201)


async def delete_grant(request: Request) -> Response:
    await services(request).grants.delete(await actor(request), request.path_params["grant"])
    return Response(status_code=204)
