"""Organizations: namespaces no single user owns, managed by site administrators. Each is created with its
``owners`` team holding admin on the whole namespace; deleting one takes its teams along and reserves its
name (services/namespaces.py). Each change is audited."""

from __future__ import annotations

from trustyard.auth.policy import Role
from trustyard.db.organizations import OrganizationStore
from trustyard.errors import NotFound
from trustyard.services.actor import Actor
from trustyard.services.audit import Audit
from trustyard.services.namespaces import Namespaces, check_name

OWNERS = "owners"  # every organization's first team: admin on the organization's namespace


class Organizations:
    def __init__(self, store: OrganizationStore, namespaces: Namespaces, audit: Audit) -> None:
        self._store = store
        self._namespaces = namespaces
        self._audit = audit

    async def all(self, actor: Actor) -> list[str]:
        actor.require_admin()
        return await self._store.all()

    async def create(self, actor: Actor, name: str) -> None:
        """Create an organization and its ``owners`` team, which holds admin on the organization's namespace."""
        actor.require_admin()
        check_name("organization", name)
        await self._store.create(name, OWNERS, Role.ADMIN)
        await self._audit.record(actor, "organization.create", name)

    async def delete(self, actor: Actor, name: str, with_repositories: bool = False) -> None:
        """Delete an organization; refused while it holds repositories unless ``with_repositories``."""
        actor.require_admin()
        if name not in await self._store.all():
            raise NotFound(f"no organization {name}")
        removed = await self._namespaces.empty(actor, "organization", name, with_repositories)
        await self._store.delete(name, actor.name)
        await self._audit.record(actor, "organization.delete", name, repositories=removed)
