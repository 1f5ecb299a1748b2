"""Account commands, run in-process as the operator: ``admin``, ``user``, ``org``, ``namespace``, ``team``, ``grant``,
``token``, ``repo`` and ``audit``. Each builds services through ``app`` and makes one service call."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from trustyard.cli.command import CONFIG, DATA_DIR, JSON, done, run, show
from trustyard.oci.names import RepositoryName
from trustyard.services import Services
from trustyard.services.actor import Actor

# admin ----------------------------------------------------------------------------------------------------


@click.group()
def admin() -> None:
    """The built-in administrator."""


@admin.command("reset-password")
@CONFIG
@DATA_DIR
@click.option("--user", default="admin", show_default=True, help="Whose password.")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input (first line).")
@JSON
def reset_password(
    config_file: Path | None, data_dir: Path | None, user: str, password_stdin: bool, as_json: bool
) -> None:
    """Set a new password: the one given on standard input, else a generated one printed once."""
    given = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    if password_stdin and not given:
        raise click.UsageError("--password-stdin: standard input held no password")
    password = run(config_file, data_dir, lambda s, a: s.users.set_password(a, user, given))
    if given is not None:
        done(as_json, f"set the password of {user}", user=user)
    else:
        done(as_json, f"new password of {user} (shown once): {password}", user=user, password=password)


# users ----------------------------------------------------------------------------------------------------


@click.group()
def user() -> None:
    """Users."""


@user.command("list")
@CONFIG
@DATA_DIR
def user_list(config_file: Path | None, data_dir: Path | None) -> None:
    users = run(config_file, data_dir, lambda s, a: s.users.all(a))
    show([{"name": u.name, "admin": u.admin, "active": u.active} for u in users])


@user.command("create")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.option("--admin", "is_admin", is_flag=True, help="A site administrator.")
@JSON
def user_create(config_file: Path | None, data_dir: Path | None, name: str, is_admin: bool, as_json: bool) -> None:
    """Create a user with a generated password, printed once."""

    async def call(s: Services, a: Actor) -> str:
        await s.users.create(a, name, None, is_admin)
        return await s.users.set_password(a, name)

    password = run(config_file, data_dir, call)
    kind = "administrator" if is_admin else "user"
    done(as_json, f"created {kind} {name} with password (shown once): {password}", user=name, password=password)


@user.command("delete")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.option("--with-repositories", is_flag=True, help="Also delete the repositories in the user's namespace.")
@JSON
def user_delete(
    config_file: Path | None, data_dir: Path | None, name: str, with_repositories: bool, as_json: bool
) -> None:
    """Delete a user (refused while they own repositories); their name stays reserved until released."""
    run(config_file, data_dir, lambda s, a: s.users.delete(a, name, with_repositories))
    done(as_json, f"deleted user {name}; the name stays reserved until released", user=name, deleted=True)


@user.command("set")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.option("--admin/--no-admin", default=None)
@click.option("--active/--inactive", default=None)
@JSON
def user_set(
    config_file: Path | None, data_dir: Path | None, name: str, admin: bool | None, active: bool | None, as_json: bool
) -> None:
    """Make a user (not) an administrator, or (de)activate them."""
    row = run(config_file, data_dir, lambda s, a: s.users.update(a, name, admin=admin, active=active))
    state = f"{'an administrator' if row.admin else 'not an administrator'}, {'active' if row.active else 'inactive'}"
    done(as_json, f"user {name} is {state}", user=name, admin=row.admin, active=row.active)


# organizations and teams ------------------------------------------------------------------------------------


@click.group()
def org() -> None:
    """Organizations (namespaces shared by teams)."""


@org.command("list")
@CONFIG
@DATA_DIR
def org_list(config_file: Path | None, data_dir: Path | None) -> None:
    show(run(config_file, data_dir, lambda s, a: s.organizations.all(a)))


@org.command("create")
@CONFIG
@DATA_DIR
@click.argument("name")
@JSON
def org_create(config_file: Path | None, data_dir: Path | None, name: str, as_json: bool) -> None:
    """Create an organization and its `owners` team (admin on NAME/*)."""
    run(config_file, data_dir, lambda s, a: s.organizations.create(a, name))
    done(as_json, f"created organization {name} with team {name}/owners (admin on {name}/*)", organization=name)


@org.command("delete")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.option("--with-repositories", is_flag=True, help="Also delete the organization's repositories.")
@JSON
def org_delete(
    config_file: Path | None, data_dir: Path | None, name: str, with_repositories: bool, as_json: bool
) -> None:
    """Delete an organization (refused while it owns repositories); its name stays reserved until released."""
    run(config_file, data_dir, lambda s, a: s.organizations.delete(a, name, with_repositories))
    done(
        as_json, f"deleted organization {name}; the name stays reserved until released", organization=name, deleted=True
    )


@click.group()
def namespace() -> None:
    """Names of deleted users and organizations, reserved so that nobody inherits their grants."""


@namespace.command("reserved")
@CONFIG
@DATA_DIR
def namespace_reserved(config_file: Path | None, data_dir: Path | None) -> None:
    """List the reserved names."""
    rows = run(config_file, data_dir, lambda s, a: s.namespaces.reserved(a))
    show([{"name": r.name, "kind": r.kind, "reserved_at": r.reserved_at, "reserved_by": r.reserved_by} for r in rows])


@namespace.command("release")
@CONFIG
@DATA_DIR
@click.argument("name")
@JSON
def namespace_release(config_file: Path | None, data_dir: Path | None, name: str, as_json: bool) -> None:
    """Let NAME be registered again (as a user or an organization)."""
    run(config_file, data_dir, lambda s, a: s.namespaces.release(a, name))
    done(as_json, f"Released {name}: it can be registered again.", name=name, released=True)


@click.group()
def team() -> None:
    """Teams of an organization (ORG/TEAM) and their members."""


def _team(text: str) -> tuple[str, str]:
    organization, sep, name = text.partition("/")
    if not sep:
        raise click.BadParameter(f"{text!r}: write ORG/TEAM")
    return organization, name


@team.command("create")
@CONFIG
@DATA_DIR
@click.argument("team_name", metavar="ORG/TEAM")
@JSON
def team_create(config_file: Path | None, data_dir: Path | None, team_name: str, as_json: bool) -> None:
    run(config_file, data_dir, lambda s, a: s.teams.create(a, *_team(team_name)))
    done(as_json, f"created team {team_name}", team=team_name)


@team.command("delete")
@CONFIG
@DATA_DIR
@click.argument("team_name", metavar="ORG/TEAM")
@JSON
def team_delete(config_file: Path | None, data_dir: Path | None, team_name: str, as_json: bool) -> None:
    run(config_file, data_dir, lambda s, a: s.teams.delete(a, *_team(team_name)))
    done(as_json, f"deleted team {team_name}", team=team_name, deleted=True)


@team.command("list")
@CONFIG
@DATA_DIR
@click.argument("organization")
def team_list(config_file: Path | None, data_dir: Path | None, organization: str) -> None:
    teams = run(config_file, data_dir, lambda s, a: s.teams.of(a, organization))
    show([t.name for t in teams])


@team.command("members")
@CONFIG
@DATA_DIR
@click.argument("team_name", metavar="ORG/TEAM")
def team_members(config_file: Path | None, data_dir: Path | None, team_name: str) -> None:
    show(run(config_file, data_dir, lambda s, a: s.teams.members(a, *_team(team_name))))


@team.command("add")
@CONFIG
@DATA_DIR
@click.argument("team_name", metavar="ORG/TEAM")
@click.argument("user_name", metavar="USER")
@JSON
def team_add(config_file: Path | None, data_dir: Path | None, team_name: str, user_name: str, as_json: bool) -> None:
    run(config_file, data_dir, lambda s, a: s.teams.add_member(a, *_team(team_name), user_name))
    done(as_json, f"{user_name} is a member of {team_name}", team=team_name, user=user_name)


@team.command("remove")
@CONFIG
@DATA_DIR
@click.argument("team_name", metavar="ORG/TEAM")
@click.argument("user_name", metavar="USER")
@JSON
def team_remove(config_file: Path | None, data_dir: Path | None, team_name: str, user_name: str, as_json: bool) -> None:
    run(config_file, data_dir, lambda s, a: s.teams.remove_member(a, *_team(team_name), user_name))
    done(as_json, f"removed {user_name} from {team_name}", team=team_name, user=user_name, removed=True)


# grants ---------------------------------------------------------------------------------------------------


@click.group()
def grant() -> None:
    """Roles (read, read-write, admin) on a repository (team/app) or a namespace (team/*)."""


@grant.command("add")
@CONFIG
@DATA_DIR
@click.argument("target")
@click.argument("role", type=click.Choice(["read", "read-write", "admin"]))
@click.option("--user", "user_name", help="Grant to this user.")
@click.option("--team", "team_name", help="Grant to this team (ORG/TEAM).")
@JSON
def grant_add(
    config_file: Path | None,
    data_dir: Path | None,
    target: str,
    role: str,
    user_name: str | None,
    team_name: str | None,
    as_json: bool,
) -> None:
    """Give ROLE on TARGET to a user or a team (replacing what they held there)."""
    row = run(config_file, data_dir, lambda s, a: s.grants.put(a, target, role, user_name, team_name))
    who = f"user {user_name}" if user_name else f"team {team_name}"
    done(
        as_json,
        f"granted {role} on {target} to {who} (grant {row.id})",
        id=row.id,
        target=target,
        role=role,
        user=user_name,
        team=team_name,
    )


@grant.command("list")
@CONFIG
@DATA_DIR
@click.option("--target", help="Only grants on this repository or namespace (team/*).")
def grant_list(config_file: Path | None, data_dir: Path | None, target: str | None) -> None:
    from trustyard.auth.policy import Role

    rows = run(config_file, data_dir, lambda s, a: s.grants.all(a, target))
    show(
        [
            {
                "id": g.id,
                "target": f"{g.target}/*" if g.namespace else g.target,
                "role": Role(g.role).label,
                "user": g.user,
                "team": g.team,
            }
            for g in rows
        ]
    )


@grant.command("remove")
@CONFIG
@DATA_DIR
@click.argument("grant_id", type=int)
@JSON
def grant_remove(config_file: Path | None, data_dir: Path | None, grant_id: int, as_json: bool) -> None:
    run(config_file, data_dir, lambda s, a: s.grants.delete(a, grant_id))
    done(as_json, f"removed grant {grant_id}", id=grant_id, removed=True)


# app tokens -----------------------------------------------------------------------------------------------


@click.group()
def token() -> None:
    """App tokens: named, revocable passwords for docker login and scripts."""


@token.command("create")
@CONFIG
@DATA_DIR
@click.argument("user_name", metavar="USER")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="The token may only pull, whatever the user may do.")
@JSON
def token_create(
    config_file: Path | None, data_dir: Path | None, user_name: str, name: str, read_only: bool, as_json: bool
) -> None:
    """Create a token and print it once."""
    created = run(config_file, data_dir, lambda s, a: s.app_tokens.create(a, user_name, name, read_only))
    kind = "read-only app token" if read_only else "app token"
    done(
        as_json,
        f"created {kind} {name} for {user_name} (shown once; the docker login password): {created.secret}",
        user=user_name,
        name=name,
        id=created.row.id,
        token=created.secret,
        read_only=read_only,
    )


@token.command("list")
@CONFIG
@DATA_DIR
@click.argument("user_name", metavar="USER")
def token_list(config_file: Path | None, data_dir: Path | None, user_name: str) -> None:
    rows = run(config_file, data_dir, lambda s, a: s.app_tokens.of(a, user_name))
    show([{"id": t.id, "name": t.name, "created_at": t.created_at, "last_used_at": t.last_used_at} for t in rows])


@token.command("revoke")
@CONFIG
@DATA_DIR
@click.argument("user_name", metavar="USER")
@click.argument("token_id", metavar="ID")
@JSON
def token_revoke(config_file: Path | None, data_dir: Path | None, user_name: str, token_id: str, as_json: bool) -> None:
    run(config_file, data_dir, lambda s, a: s.app_tokens.revoke(a, user_name, token_id))
    done(as_json, f"revoked app token {token_id} of {user_name}", user=user_name, id=token_id, revoked=True)


# repositories and audit -----------------------------------------------------------------------------------


@click.group()
def repo() -> None:
    """Repositories: visibility and deletion."""


@repo.command("visibility")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.argument("visibility", type=click.Choice(["public", "private"]))
@JSON
def repo_visibility(config_file: Path | None, data_dir: Path | None, name: str, visibility: str, as_json: bool) -> None:
    repository = RepositoryName.parse(name)
    run(config_file, data_dir, lambda s, a: s.repositories.set_public(a, repository, visibility == "public"))
    done(as_json, f"repository {name} is {visibility}", repository=name, visibility=visibility)


@repo.command("delete")
@CONFIG
@DATA_DIR
@click.argument("name")
@JSON
def repo_delete(config_file: Path | None, data_dir: Path | None, name: str, as_json: bool) -> None:
    repository = RepositoryName.parse(name)
    run(config_file, data_dir, lambda s, a: s.repositories.delete(a, repository))
    done(as_json, f"deleted repository {name}", repository=name, deleted=True)


@click.command()
@CONFIG
@DATA_DIR
@click.option("--limit", default=50, show_default=True)
@click.option("--action", help="Only this action, e.g. login.failed, manifest.push, grant.put.")
@click.option("--actor", "by", help="Only events by this user.")
def audit(config_file: Path | None, data_dir: Path | None, limit: int, action: str | None, by: str | None) -> None:
    """The audit log, newest first, one JSON object a line."""
    events = run(config_file, data_dir, lambda s, a: s.audit.events(a, limit, None, action, by))
    for e in events:
        line = {"id": e.id, "at": e.at, "actor": e.actor, "source": e.source, "action": e.action}
        click.echo(json.dumps({**line, "target": e.target, "detail": e.detail}, default=str))


COMMANDS = [admin, user, org, namespace, team, grant, token, repo, audit]
