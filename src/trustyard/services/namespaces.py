"""Namespaces: the names users, organizations and teams may have (one repository path component each), the
names of deleted users and organizations (reserved until an administrator releases them, so nobody inherits
their repositories or grants), and emptying a namespace of its repositories before its owner is deleted."""

from __future__ import annotations

import re

from trustyard.db.namespaces import NamespaceStore, ReservedName
from trustyard.db.repositories import RepositoryStore
from trustyard.errors import InvalidRequest
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Actor
from trustyard.services.audit import Audit
from trustyard.services.policies import TagPolicies
from trustyard.services.repositories import remove_repository
from trustyard.storage.driver import StorageDriver

__all__ = ["Namespaces", "ReservedName", "check_name"]  # ReservedName: the row the edges render
RESERVED = frozenset({"anonymous", "system"})  # names actors use for themselves
_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def check_name(kind: str, name: str) -> str:
    """User, organization and team names are one repository path component (they name namespaces)."""
    if not _NAME.fullmatch(name) or len(name) > 64:
        raise InvalidRequest(
            f"invalid {kind} name {name[:80]!r}: use lower-case letters, digits and . _ - between them (at most 64)"
        )
    if name in RESERVED:
        raise InvalidRequest(f"{name} is reserved")
    return name


class Namespaces:
    def __init__(
        self,
        store: NamespaceStore,
        repositories: RepositoryStore,
        storage: StorageDriver,
        policies: TagPolicies,
        audit: Audit,
    ) -> None:
        """``policies`` keep a namespace deleted with its repositories from taking immutable tags along."""
        self._store = store
        self._repositories = repositories
        self._storage = storage
        self._policies = policies
        self._audit = audit

    async def reserved(self, actor: Actor) -> list[ReservedName]:
        """Names of deleted users and organizations, which nobody may register until released."""
        actor.require_admin()
        return await self._store.reserved()

    async def release(self, actor: Actor, name: str) -> None:
        """Let a reserved name be registered again (by whoever the administrator means it for)."""
        actor.require_admin()
        await self._store.release(name)
        await self._audit.record(actor, "namespace.release", name)

    async def empty(self, actor: Actor, kind: str, name: str, with_repositories: bool) -> int:
        """Before the ``kind`` (user, organization) ``name`` is deleted: refuse to orphan its repositories,
        or with ``with_repositories`` delete them (returns how many)."""
        held = await self._repositories.names_under(name)
        if held and not with_repositories:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise InvalidRequest(
                f"the {kind} {name} still owns {len(held)} {'repository' if len(held) == 1 else 'repositories'} "
                f"({shown}): delete them first, or delete "
                f"the {kind} together with its repositories (with_repositories=true, --with-repositories)"
            )
        for repository in held:  # every one first: refused before anything is deleted
            await self._policies.check_repository_delete(repository)
        for repository in held:
            await remove_repository(self._repositories, self._storage, RepositoryName.parse(repository))
            await self._audit.record(actor, "repository.delete", repository)
        return len(held)
