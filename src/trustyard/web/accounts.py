"""Account pages for site administrators: users (create, reset password, admin and active flags, delete),
organizations with their teams and members, and grants (give and take roles on repositories and namespaces)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from trustyard.auth.policy import Role
from trustyard.errors import InvalidRequest
from trustyard.web.http import flash, redirect, render, services
from trustyard.web.sessions import actor, form, text

ROLES = [role.label for role in Role]
USER_CHANGES = {  # the buttons of the users page: (admin, active) to set, and what to say
    "make-admin": ({"admin": True}, "is now an administrator"),
    "revoke-admin": ({"admin": False}, "is no longer an administrator"),
    "activate": ({"active": True}, "is active again"),
    "deactivate": ({"active": False}, "is deactivated: they cannot log in or use their tokens"),
}


def role_label(role: int) -> str:
    return Role(role).label


async def users_page(request: Request, shown_password: tuple[str, str] | None = None) -> Response:
    caller = await actor(request)
    users = await services(request).users.all(caller)
    return render(request, "users.html", caller, section="users", users=users, shown_password=shown_password)


async def list_users(request: Request) -> Response:
    return await users_page(request)


async def create_user(request: Request) -> Response:
    """Create a user; a password left empty is generated and shown once on the page that follows."""
    data = await form(request)
    name, password = text(data, "name"), text(data, "password") or None
    caller = await actor(request)
    await services(request).users.create(caller, name, password, text(data, "admin") == "on")
    if password is None:
        new = await services(request).users.set_password(caller, name)
        return await users_page(request, (name, new))
    flash(request, "ok", f"Created the user {name}.")
    return redirect(request, "/admin/users")


async def reset_password(request: Request) -> Response:
    await form(request)
    name = request.path_params["user"]
    new = await services(request).users.set_password(await actor(request), name)
    return await users_page(request, (name, new))


async def update_user(request: Request) -> Response:
    data = await form(request)
    name, change = request.path_params["user"], USER_CHANGES.get(text(data, "change"))
    if change is None:
        raise InvalidRequest("unknown change")
    flags, said = change
    await services(request).users.update(await actor(request), name, **flags)
    flash(request, "ok", f"{name} {said}.")
    return redirect(request, "/admin/users")


async def delete_user(request: Request) -> Response:
    everything = text(await form(request), "with_repositories") == "on"
    name = request.path_params["user"]
    await services(request).users.delete(await actor(request), name, everything)
    flash(request, "ok", f"Deleted the user {name}{' and their repositories' if everything else ''}.")
    return redirect(request, "/admin/users")


async def list_organizations(request: Request) -> Response:
    caller = await actor(request)
    names = await services(request).organizations.all(caller)
    return render(request, "organizations.html", caller, section="organizations", organizations=names)


async def create_organization(request: Request) -> Response:
    name = text(await form(request), "name")
    await services(request).organizations.create(await actor(request), name)
    flash(request, "ok", f"Created the organization {name} and its team owners (admin on {name}/*).")
    return redirect(request, f"/admin/organizations/{name}")


async def show_organization(request: Request) -> Response:
    caller, org = await actor(request), request.path_params["org"]
    teams = await services(request).teams.of(caller, org)
    return render(request, "organization.html", caller, section="organizations", org=org, teams=teams)


async def delete_organization(request: Request) -> Response:
    everything = text(await form(request), "with_repositories") == "on"
    org = request.path_params["org"]
    await services(request).organizations.delete(await actor(request), org, everything)
    flash(request, "ok", f"Deleted the organization {org}, its teams{' and repositories' if everything else ''}.")
    return redirect(request, "/admin/organizations")


async def create_team(request: Request) -> Response:
    org, name = request.path_params["org"], text(await form(request), "name")
    await services(request).teams.create(await actor(request), org, name)
    flash(request, "ok", f"Created the team {org}/{name}.")
    return redirect(request, f"/admin/organizations/{org}/teams/{name}")


async def show_team(request: Request) -> Response:
    caller, org, team = await actor(request), request.path_params["org"], request.path_params["team"]
    members = await services(request).teams.members(caller, org, team)
    grants = [g for g in await services(request).grants.all(caller) if g.team == f"{org}/{team}"]
    context = {"org": org, "team": team, "members": members, "grants": grants, "role_label": role_label}
    return render(request, "team.html", caller, section="organizations", **context)


async def delete_team(request: Request) -> Response:
    await form(request)
    org, team = request.path_params["org"], request.path_params["team"]
    await services(request).teams.delete(await actor(request), org, team)
    flash(request, "ok", f"Deleted the team {org}/{team}.")
    return redirect(request, f"/admin/organizations/{org}")


async def add_member(request: Request) -> Response:
    org, team = request.path_params["org"], request.path_params["team"]
    user = text(await form(request), "user")
    await services(request).teams.add_member(await actor(request), org, team, user)
    flash(request, "ok", f"Added {user} to {org}/{team}.")
    return redirect(request, f"/admin/organizations/{org}/teams/{team}")


async def remove_member(request: Request) -> Response:
    await form(request)
    org, team, user = request.path_params["org"], request.path_params["team"], request.path_params["user"]
    await services(request).teams.remove_member(await actor(request), org, team, user)
    flash(request, "ok", f"Removed {user} from {org}/{team}.")
    return redirect(request, f"/admin/organizations/{org}/teams/{team}")


async def list_grants(request: Request) -> Response:
    caller = await actor(request)
    grants = await services(request).grants.all(caller)
    return render(request, "grants.html", caller, section="grants", grants=grants, roles=ROLES, role_label=role_label)


async def create_grant(request: Request) -> Response:
    """Give a role on ``team/app`` or ``team/*`` to a user or a team (the subject field says which)."""
    data = await form(request)
    target, role, kind, subject = text(data, "target"), text(data, "role"), text(data, "kind"), text(data, "subject")
    if not subject:
        raise InvalidRequest("name the user or team (organization/team) to give the role to")
    user, team = (subject, None) if kind != "team" else (None, subject)
    await services(request).grants.put(await actor(request), target, role, user=user, team=team)
    flash(request, "ok", f"Gave {role} on {target} to the {'team' if team else 'user'} {subject}.")
    return redirect(request, "/admin/grants")


async def delete_grant(request: Request) -> Response:
    await form(request)
    await services(request).grants.delete(await actor(request), request.path_params["grant"])
    flash(request, "ok", "Removed the grant.")
    return redirect(request, "/admin/grants")
