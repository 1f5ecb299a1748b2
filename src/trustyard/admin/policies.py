"""``/api/v1/policies``: tag policies per repository pattern (immutable tags, retention rules), and the
retention plan (what applying retention now would remove)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from trustyard.admin.http import actor, body, field, render, services, when
from trustyard.services.policies import TagPolicy


async def list_policies(request: Request) -> Response:
    policies = await services(request).policies.policies(await actor(request))
    return render({"policies": [policy_document(p) for p in policies]})


async def put_policy(request: Request) -> Response:
    """``{"immutable": true, "keep_last": 10, "keep_days": 30, "keep_tags": "v*"}`` (all optional)."""
    data = await body(request)
    policy = TagPolicy.parse(
        request.path_params["pattern"],
        bool(field(data, "immutable", bool, required=False)),
        field(data, "keep_last", int, required=False),
        field(data, "keep_days", int, required=False),
        field(data, "keep_tags", str, required=False),
    )
    saved = await services(request).policies.put(await actor(request), policy)
    return render(policy_document(saved))


async def delete_policy(request: Request) -> Response:
    await services(request).policies.delete(await actor(request), request.path_params["pattern"])
    return Response(status_code=204)


async def retention_plan(request: Request) -> Response:
    expired = await services(request).gc.retention_plan(await actor(request))
    return render(
        {"expired": [{"repository": e.repository, "tag": e.tag, "pushed_at": when(e.pushed_at)} for e in expired]}
    )


def policy_document(policy: TagPolicy) -> dict[str, Any]:
    return {
        "pattern": policy.pattern,
        "immutable": policy.immutable,
        "keep_last": policy.keep_last,
        "keep_days": policy.keep_days,
        "keep_tags": policy.keep_tags,
        "updated_at": when(policy.updated_at),
        "updated_by": policy.updated_by,
    }
