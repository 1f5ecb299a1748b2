"""``/api/v1/repositories``: the repositories the caller may pull, visibility, deleting one whole."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.admin.http import actor, body, field, render, services
from trustyard.oci.names import RepositoryName
from trustyard.services.repositories import MAX_PAGE


async def list_repositories(request: Request) -> Response:
    caller = await actor(request)
    last = request.query_params.get("last") or None
    names = await services(request).repositories.catalog(caller, MAX_PAGE, last)
    return render({"repositories": names})


async def get_repository(request: Request) -> Response:
    name = RepositoryName.parse(request.path_params["name"])
    public = await services(request).repositories.public(await actor(request), name)
    return render({"name": name.value, "public": public})


async def update_repository(request: Request) -> Response:
    """``{"public": true|false}``: public repositories can be pulled by anyone, without logging in."""
    name = RepositoryName.parse(request.path_params["name"])
    public = field(await body(request), "public", bool)
    await services(request).repositories.set_public(await actor(request), name, public)
    return render({"name": name.value, "public": public})


async def delete_repository(request: Request) -> Response:
    name = RepositoryName.parse(request.path_params["name"])
    await services(request).repositories.delete(await actor(request), name)
    return Response(status_code=204)
