"""Grants: a role (read, read-write, admin) on a repository or a whole namespace, given to a user or a team.
Site administrators manage every grant; a repository's (or namespace's) admins manage the grants on it. Each
change is audited."""

from __future__ import annotations

from dataclasses import dataclass

from trustyard.auth.policy import Role
from trustyard.db.grants import GrantRow, GrantStore
from trustyard.errors import InvalidRequest, NotFound
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Action, Actor
from trustyard.services.audit import Audit
from trustyard.services.namespaces import check_name

__all__ = ["GrantRow", "Grants", "Target"]  # GrantRow: the row the edges render


@dataclass(frozen=True, slots=True)
class Target:
    """What a grant applies to: ``team/app`` (a repository) or ``team/*`` (the namespace ``team``)."""

    name: str
    namespace: bool

    @classmethod
    def parse(cls, text: str) -> Target:
        if text.endswith("/*"):
            return cls(check_name("namespace", text[:-2]), True)
        return cls(RepositoryName.parse(text).value, False)

    def __str__(self) -> str:
        return f"{self.name}/*" if self.namespace else self.name

    @property
    def probe(self) -> str:
        """A repository name the target covers, to ask the policy about the whole target."""
        return f"{self.name}/" if self.namespace else self.name


class Grants:
    def __init__(self, store: GrantStore, audit: Audit) -> None:
        self._store = store
        self._audit = audit

    async def all(self, actor: Actor, target: str | None = None) -> list[GrantRow]:
        """Every grant (site administrators), or those on ``target`` (its admins too)."""
        if target is None:
            actor.require_admin()
            return await self._store.all()
        parsed = Target.parse(target)
        _require_target_admin(actor, parsed)
        return await self._store.all(parsed.name)

    async def put(
        self, actor: Actor, target: str, role: str, user: str | None = None, team: str | None = None
    ) -> GrantRow:
        """Give ``role`` (read, read-write, admin) on a repository or ``namespace/*`` to a user or a team."""
        parsed = Target.parse(target)
        _require_target_admin(actor, parsed)
        try:
            level = Role.parse(role)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        if (user is None) == (team is None):
            raise InvalidRequest("a grant goes to exactly one of: a user, a team (organization/team)")
        team_key = None
        if team is not None:
            organization, sep, team_name = team.partition("/")
            if not sep:
                raise InvalidRequest(f"team {team!r}: write organization/team")
            team_key = (organization, team_name)
        row = await self._store.put(user, team_key, parsed.name, parsed.namespace, level)
        await self._audit.record(actor, "grant.put", str(parsed), role=level.label, user=user, team=team, grant=row.id)
        return row

    async def delete(self, actor: Actor, grant_id: int) -> None:
        row = await self._store.get(grant_id)
        if row is None:
            raise NotFound(f"no grant {grant_id}")
        target = Target(row.target, row.namespace)
        _require_target_admin(actor, target)
        await self._store.delete(grant_id)
        await self._audit.record(actor, "grant.delete", str(target), user=row.user, team=row.team, grant=row.id)


def _require_target_admin(actor: Actor, target: Target) -> None:
    if actor.admin or actor.can(target.probe, Action.ADMIN):
        return
    actor.require_admin()  # raises with the right error for anonymous and authenticated callers
