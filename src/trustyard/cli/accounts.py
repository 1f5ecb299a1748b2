"""Account commands, run in-process as the operator: ``admin``, ``user``, ``org``, ``namespace``, ``team``, ``grant``,
``token``, ``repo`` and ``audit``. Each builds services through ``app`` and makes one service call."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from trustyard.app import open_services, prepare
from trustyard.config import load_settings
from trustyard.errors import TrustyardError
from trustyard.oci.names import RepositoryName
from trustyard.services import Services
from trustyard.services.actor import Actor

T = TypeVar("T")

CONFIG = click.option(
    "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="YAML config file."
)
DATA_DIR = click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Data directory.")


def run(config_file: Path | None, data_dir: Path | None, call: Callable[[Services, Actor], Awaitable[T]]) -> T:
    """Run one service call as the operator (``system``) against the configured index and storage."""
    try:
        settings = load_settings(config_file, data_dir=data_dir)

        async def go() -> T:
            await prepare(settings)
            async with open_services(settings) as services:
                return await call(services, Actor.system())

        return asyncio.run(go())
    except TrustyardError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)


def show(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


# admin ----------------------------------------------------------------------------------------------------


@click.group()
def admin() -> None:
    """The built-in administrator."""


@admin.command("reset-password")
@CONFIG
@DATA_DIR
@click.option("--user", default="admin", show_default=True, help="Whose password.")
def reset_password(config_file: Path | None, data_dir: Path | None, user: str) -> None:
    """Generate a new password and print it once."""
    password = run(config_file, data_dir, lambda s, a: s.accounts.reset_password(a, user))
    click.echo(password)


# users ----------------------------------------------------------------------------------------------------


@click.group()
def user() -> None:
    """Users."""


@user.command("list")
@CONFIG
@DATA_DIR
def user_list(config_file: Path | None, data_dir: Path | None) -> None:
    users = run(config_file, data_dir, lambda s, a: s.accounts.users(a))
    show([{"name": u.name, "admin": u.admin, "active": u.active} for u in users])


@user.command("create")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.option("--admin", "is_admin", is_flag=True, help="A site administrator.")
def user_create(config_file: Path | None, data_dir: Path | None, name: str, is_admin: bool) -> None:
    """Create a user with a generated password, printed once."""

    async def call(s: Services, a: Actor) -> str:
        await s.accounts.create_user(a, name, None, is_admin)
        return await s.accounts.reset_password(a, name)

    click.echo(run(config_file, data_dir, call))


@user.command("delete")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.option("--with-repositories", is_flag=True, help="Also delete the repositories in the user's namespace.")
def user_delete(config_file: Path | None, data_dir: Path | None, name: str, with_repositories: bool) -> None:
    """Delete a user (refused while they own repositories); their name stays reserved until released."""
    run(config_file, data_dir, lambda s, a: s.accounts.delete_user(a, name, with_repositories))


@user.command("set")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.option("--admin/--no-admin", default=None)
@click.option("--active/--inactive", default=None)
def user_set(
    config_file: Path | None, data_dir: Path | None, name: str, admin: bool | None, active: bool | None
) -> None:
    """Make a user (not) an administrator, or (de)activate them."""
    run(config_file, data_dir, lambda s, a: s.accounts.update_user(a, name, admin=admin, active=active))


# organizations and teams ------------------------------------------------------------------------------------


@click.group()
def org() -> None:
    """Organizations (namespaces shared by teams)."""


@org.command("list")
@CONFIG
@DATA_DIR
def org_list(config_file: Path | None, data_dir: Path | None) -> None:
    show(run(config_file, data_dir, lambda s, a: s.accounts.organizations(a)))


@org.command("create")
@CONFIG
@DATA_DIR
@click.argument("name")
def org_create(config_file: Path | None, data_dir: Path | None, name: str) -> None:
    """Create an organization and its `owners` team (admin on NAME/*)."""
    run(config_file, data_dir, lambda s, a: s.accounts.create_organization(a, name))


@org.command("delete")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.option("--with-repositories", is_flag=True, help="Also delete the organization's repositories.")
def org_delete(config_file: Path | None, data_dir: Path | None, name: str, with_repositories: bool) -> None:
    """Delete an organization (refused while it owns repositories); its name stays reserved until released."""
    run(config_file, data_dir, lambda s, a: s.accounts.delete_organization(a, name, with_repositories))


@click.group()
def namespace() -> None:
    """Names of deleted users and organizations, reserved so that nobody inherits their grants."""


@namespace.command("reserved")
@CONFIG
@DATA_DIR
def namespace_reserved(config_file: Path | None, data_dir: Path | None) -> None:
    """List the reserved names."""
    rows = run(config_file, data_dir, lambda s, a: s.accounts.reserved_names(a))
    show([{"name": r.name, "kind": r.kind, "reserved_at": r.reserved_at, "reserved_by": r.reserved_by} for r in rows])


@namespace.command("release")
@CONFIG
@DATA_DIR
@click.argument("name")
def namespace_release(config_file: Path | None, data_dir: Path | None, name: str) -> None:
    """Let NAME be registered again (as a user or an organization)."""
    run(config_file, data_dir, lambda s, a: s.accounts.release_name(a, name))
    click.echo(f"Released {name}: it can be registered again.")


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
def team_create(config_file: Path | None, data_dir: Path | None, team_name: str) -> None:
    run(config_file, data_dir, lambda s, a: s.accounts.create_team(a, *_team(team_name)))


@team.command("delete")
@CONFIG
@DATA_DIR
@click.argument("team_name", metavar="ORG/TEAM")
def team_delete(config_file: Path | None, data_dir: Path | None, team_name: str) -> None:
    run(config_file, data_dir, lambda s, a: s.accounts.delete_team(a, *_team(team_name)))


@team.command("list")
@CONFIG
@DATA_DIR
@click.argument("organization")
def team_list(config_file: Path | None, data_dir: Path | None, organization: str) -> None:
    teams = run(config_file, data_dir, lambda s, a: s.accounts.teams(a, organization))
    show([t.name for t in teams])


@team.command("members")
@CONFIG
@DATA_DIR
@click.argument("team_name", metavar="ORG/TEAM")
def team_members(config_file: Path | None, data_dir: Path | None, team_name: str) -> None:
    show(run(config_file, data_dir, lambda s, a: s.accounts.members(a, *_team(team_name))))


@team.command("add")
@CONFIG
@DATA_DIR
@click.argument("team_name", metavar="ORG/TEAM")
@click.argument("user_name", metavar="USER")
def team_add(config_file: Path | None, data_dir: Path | None, team_name: str, user_name: str) -> None:
    run(config_file, data_dir, lambda s, a: s.accounts.add_member(a, *_team(team_name), user_name))


@team.command("remove")
@CONFIG
@DATA_DIR
@click.argument("team_name", metavar="ORG/TEAM")
@click.argument("user_name", metavar="USER")
def team_remove(config_file: Path | None, data_dir: Path | None, team_name: str, user_name: str) -> None:
    run(config_file, data_dir, lambda s, a: s.accounts.remove_member(a, *_team(team_name), user_name))


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
def grant_add(
    config_file: Path | None,
    data_dir: Path | None,
    target: str,
    role: str,
    user_name: str | None,
    team_name: str | None,
) -> None:
    row = run(config_file, data_dir, lambda s, a: s.accounts.put_grant(a, target, role, user_name, team_name))
    click.echo(row.id)


@grant.command("list")
@CONFIG
@DATA_DIR
@click.option("--target", help="Only grants on this repository or namespace (team/*).")
def grant_list(config_file: Path | None, data_dir: Path | None, target: str | None) -> None:
    from trustyard.auth.policy import Role

    rows = run(config_file, data_dir, lambda s, a: s.accounts.grants(a, target))
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
def grant_remove(config_file: Path | None, data_dir: Path | None, grant_id: int) -> None:
    run(config_file, data_dir, lambda s, a: s.accounts.delete_grant(a, grant_id))


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
def token_create(config_file: Path | None, data_dir: Path | None, user_name: str, name: str, read_only: bool) -> None:
    """Create a token and print it once."""
    created = run(config_file, data_dir, lambda s, a: s.accounts.create_token(a, user_name, name, read_only))
    click.echo(created.secret)


@token.command("list")
@CONFIG
@DATA_DIR
@click.argument("user_name", metavar="USER")
def token_list(config_file: Path | None, data_dir: Path | None, user_name: str) -> None:
    rows = run(config_file, data_dir, lambda s, a: s.accounts.tokens(a, user_name))
    show([{"id": t.id, "name": t.name, "created_at": t.created_at, "last_used_at": t.last_used_at} for t in rows])


@token.command("revoke")
@CONFIG
@DATA_DIR
@click.argument("user_name", metavar="USER")
@click.argument("token_id", metavar="ID")
def token_revoke(config_file: Path | None, data_dir: Path | None, user_name: str, token_id: str) -> None:
    run(config_file, data_dir, lambda s, a: s.accounts.revoke_token(a, user_name, token_id))


# repositories and audit -----------------------------------------------------------------------------------


@click.group()
def repo() -> None:
    """Repositories: visibility and deletion."""


@repo.command("visibility")
@CONFIG
@DATA_DIR
@click.argument("name")
@click.argument("visibility", type=click.Choice(["public", "private"]))
def repo_visibility(config_file: Path | None, data_dir: Path | None, name: str, visibility: str) -> None:
    repository = RepositoryName.parse(name)
    run(config_file, data_dir, lambda s, a: s.repositories.set_public(a, repository, visibility == "public"))


@repo.command("delete")
@CONFIG
@DATA_DIR
@click.argument("name")
def repo_delete(config_file: Path | None, data_dir: Path | None, name: str) -> None:
    repository = RepositoryName.parse(name)
    run(config_file, data_dir, lambda s, a: s.repositories.delete(a, repository))


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
