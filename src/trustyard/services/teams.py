"""Teams: an organization's groups of users, managed by site administrators; a grant to a team reaches every
member (services/grants.py). Each change is audited."""

from __future__ import annotations

from trustyard.db.teams import TeamRow, TeamStore
from trustyard.errors import NotFound
from trustyard.services.actor import Actor
from trustyard.services.audit import Audit
from trustyard.services.namespaces import check_name

__all__ = ["TeamRow", "Teams"]  # TeamRow: the row the edges render


class Teams:
    def __init__(self, store: TeamStore, audit: Audit) -> None:
        self._store = store
        self._audit = audit

    async def of(self, actor: Actor, organization: str) -> list[TeamRow]:
        actor.require_admin()
        return await self._store.of(organization)

    async def create(self, actor: Actor, organization: str, name: str) -> None:
        actor.require_admin()
        check_name("team", name)
        await self._store.create(organization, name)
        await self._audit.record(actor, "team.create", f"{organization}/{name}")

    async def delete(self, actor: Actor, organization: str, name: str) -> None:
        actor.require_admin()
        await self._store.delete(organization, name)
        await self._audit.record(actor, "team.delete", f"{organization}/{name}")

    async def members(self, actor: Actor, organization: str, team: str) -> list[str]:
        actor.require_admin()
        return await self._store.members(organization, team)

    async def add_member(self, actor: Actor, organization: str, team: str, user: str) -> None:
        actor.require_admin()
        if await self._store.add_member(organization, team, user):
            await self._audit.record(actor, "team.member.add", f"{organization}/{team}", user=user)

    async def remove_member(self, actor: Actor, organization: str, team: str, user: str) -> None:
        actor.require_admin()
        if not await self._store.remove_member(organization, team, user):
            raise NotFound(f"{user} is not a member of {organization}/{team}")
        await self._audit.record(actor, "team.member.remove", f"{organization}/{team}", user=user)
