"""``/api/v1/users``, ``/organizations`` (with teams and members) and ``/users/{name}/tokens``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.admin.http import actor, body, field, render, services, when
from trustyard.services.app_tokens import AppTokenRow
from trustyard.services.users import UserRow


def _user(row: UserRow) -> dict[str, object]:
    return {"name": row.name, "admin": row.admin, "active": row.active, "created_at": when(row.created_at)}


def _token(row: AppTokenRow) -> dict[str, object]:
    return {
        "id": row.id,
        "user": row.user,
        "name": row.name,
        "read_only": row.read_only,
        "created_at": when(row.created_at),
        "last_used_at": when(row.last_used_at),
    }


async def me(request: Request) -> Response:
    caller = await actor(request)
    return render(_user(await services(request).users.get(caller, caller.name)))


async def list_users(request: Request) -> Response:
    users = await services(request).users.all(await actor(request))
    return render({"users": [_user(u) for u in users]})


async def create_user(request: Request) -> Response:
    """A new user; without ``password`` one is generated and returned once, as the CLI and the UI do."""
    data = await body(request)
    users, caller = services(request).users, await actor(request)
    given = field(data, "password", str, required=False)
    created = await users.create(
        caller, field(data, "name", str), given, bool(field(data, "admin", bool, required=False))
    )
    if given is not None:
        return render(_user(created), 201)
    return render({**_user(created), "password": await users.set_password(caller, created.name)}, 201)


async def get_user(request: Request) -> Response:
    user = await services(request).users.get(await actor(request), request.path_params["user"])
    return render(_user(user))


async def update_user(request: Request) -> Response:
    data = await body(request)
    updated = await services(request).users.update(
        await actor(request),
        request.path_params["user"],
        admin=field(data, "admin", bool, required=False),
        active=field(data, "active", bool, required=False),
    )
    return render(_user(updated))


def _with_repositories(request: Request) -> bool:
    """``?with_repositories=true``: delete a namespace's repositories along with it (else it is refused)."""
    return request.query_params.get("with_repositories", "").lower() in ("true", "1", "yes")


async def delete_user(request: Request) -> Response:
    name, everything = request.path_params["user"], _with_repositories(request)
    await services(request).users.delete(await actor(request), name, everything)
    return Response(status_code=204)


async def set_password(request: Request) -> Response:
    """Set a password (``{"password": ...}``), or generate one (``{}``) and return it once. Your own password
    changes only with ``current_password``."""
    data = await body(request)
    given = field(data, "password", str, required=False)
    current = field(data, "current_password", str, required=False)
    caller, name = await actor(request), request.path_params["user"]
    password = await services(request).users.set_password(caller, name, given, current)
    return render({} if given else {"password": password})


async def list_organizations(request: Request) -> Response:
    names = await services(request).organizations.all(await actor(request))
    return render({"organizations": names})


async def create_organization(request: Request) -> Response:
    name = field(await body(request), "name", str)
    await services(request).organizations.create(await actor(request), name)
    return render({"name": name}, 201)


async def delete_organization(request: Request) -> Response:
    name, everything = request.path_params["org"], _with_repositories(request)
    await services(request).organizations.delete(await actor(request), name, everything)
    return Response(status_code=204)


async def list_reserved(request: Request) -> Response:
    names = await services(request).namespaces.reserved(await actor(request))
    return render(
        {
            "reserved": [
                {"name": r.name, "kind": r.kind, "reserved_at": when(r.reserved_at), "reserved_by": r.reserved_by}
                for r in names
            ]
        }
    )


async def release_name(request: Request) -> Response:
    await services(request).namespaces.release(await actor(request), request.path_params["name"])
    return Response(status_code=204)


async def list_teams(request: Request) -> Response:
    teams = await services(request).teams.of(await actor(request), request.path_params["org"])
    return render({"teams": [{"name": t.name, "created_at": when(t.created_at)} for t in teams]})


async def create_team(request: Request) -> Response:
    name = field(await body(request), "name", str)
    await services(request).teams.create(await actor(request), request.path_params["org"], name)
    return render({"name": name}, 201)


async def delete_team(request: Request) -> Response:
    org, team = request.path_params["org"], request.path_params["team"]
    await services(request).teams.delete(await actor(request), org, team)
    return Response(status_code=204)


async def list_members(request: Request) -> Response:
    org, team = request.path_params["org"], request.path_params["team"]
    return render({"members": await services(request).teams.members(await actor(request), org, team)})


async def add_member(request: Request) -> Response:
    org, team, user = request.path_params["org"], request.path_params["team"], request.path_params["user"]
    await services(request).teams.add_member(await actor(request), org, team, user)
    return Response(status_code=204)


async def remove_member(request: Request) -> Response:
    org, team, user = request.path_params["org"], request.path_params["team"], request.path_params["user"]
    await services(request).teams.remove_member(await actor(request), org, team, user)
    return Response(status_code=204)


async def list_tokens(request: Request) -> Response:
    tokens = await services(request).app_tokens.of(await actor(request), request.path_params["user"])
    return render({"tokens": [_token(t) for t in tokens]})


async def create_token(request: Request) -> Response:
    """A new app token; its secret is in this response only (use it as the docker login password)."""
    data = await body(request)
    name, read_only = field(data, "name", str), bool(field(data, "read_only", bool, required=False))
    caller, user = await actor(request), request.path_params["user"]
    created = await services(request).app_tokens.create(caller, user, name, read_only)
    return render({**_token(created.row), "token": created.secret}, 201)


async def revoke_token(request: Request) -> Response:
    user, token_id = request.path_params["user"], request.path_params["token"]
    await services(request).app_tokens.revoke(await actor(request), user, token_id)
    return Response(status_code=204)
