"""Repositories: the catalog (only what the actor may pull, in lexical order with ``n``/``last`` pagination),
summaries for the web UI's list, visibility, and deleting a repository whole."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from trustyard.db.index import Index
from trustyard.db.repositories import RepositoryStore, RepositorySummary
from trustyard.errors import InsufficientScope, NameUnknown, Unauthorized
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Action, Actor
from trustyard.services.audit import Audit
from trustyard.services.policies import TagPolicies
from trustyard.storage import layout
from trustyard.storage.driver import StorageDriver

#: Page size when a client asks for none, and the most a client may ask for.
DEFAULT_PAGE = 100
MAX_PAGE = 10_000
CATALOG_SCOPE = "registry:catalog:*"

#: Which of some repository names an actor may pull (``Permissions.pullable``; cross-repository mounts).
Pullable = Callable[[Actor, Sequence[str]], Awaitable[list[str]]]
#: Resolves once per request whether an actor may pull a repository given its visibility
#: (``Permissions.pull_filter``): ``(name, public) -> bool``.
PullFilterFor = Callable[[Actor], Awaitable[Callable[[str, bool], bool]]]


class Repositories:
    def __init__(
        self,
        index: Index,
        policies: TagPolicies,
        storage: StorageDriver,
        audit: Audit,
        pull_filter: PullFilterFor,
    ) -> None:
        self._index = index
        self._policies = policies
        self._storage = storage
        self._audit = audit
        self._pull_filter = pull_filter

    async def catalog(self, actor: Actor, limit: int, last: str | None, contains: str | None = None) -> list[str]:
        """Names the actor may pull, after ``last``; with ``contains``, only names containing that text."""
        if not actor.catalog:
            if actor.is_anonymous:
                raise Unauthorized("authentication required to list the catalog", scope=CATALOG_SCOPE)
            raise InsufficientScope("the token does not cover the catalog", scope=CATALOG_SCOPE)
        may_pull = await self._pull_filter(actor)  # once per request, not per page or per name
        names: list[str] = []
        # Filtering by permission after the query can shorten a page; keep reading until it is full.
        while len(names) < limit:
            batch = await self._index.repositories.catalog_page(limit, last, contains)
            names.extend(name for name, public in batch if may_pull(name, public))
            if len(batch) < limit:
                break
            last = batch[-1][0]
        return names[:limit]

    async def summaries(self, actor: Actor, names: Sequence[str]) -> list[RepositorySummary]:
        """Tag count, size and last push of each of ``names`` the actor may pull, in the order given."""
        may_pull = await self._pull_filter(actor)
        public = await self._index.repositories.public(names)
        allowed = [name for name in names if may_pull(name, name in public)]
        found = await self._index.repositories.summaries(allowed)
        return [found.get(name) or RepositorySummary(name, 0, 0, None) for name in allowed]

    async def public(self, actor: Actor, repository: RepositoryName) -> bool:
        actor.require(repository, Action.PULL)
        return repository.value in await self._index.repositories.public([repository.value])

    async def set_public(self, actor: Actor, repository: RepositoryName, public: bool) -> None:
        actor.require(repository, Action.ADMIN)
        before = await self._index.repositories.set_public(repository.value, public)
        if before != public:
            await self._audit.record(actor, "repository.visibility", repository.value, public=public, was=before)

    async def delete(self, actor: Actor, repository: RepositoryName) -> None:
        """Remove a repository: index first, then its links in storage (blobs stay for garbage collection)."""
        actor.require(repository, Action.ADMIN)
        await self._policies.check_repository_delete(repository.value)
        await remove_repository(self._index.repositories, self._storage, repository)
        await self._audit.record(actor, "repository.delete", repository.value)


async def remove_repository(store: RepositoryStore, storage: StorageDriver, repository: RepositoryName) -> None:
    """Remove a repository: index first, then its links in storage (blobs stay for garbage collection)."""
    if not await store.delete_repository(repository.value):
        raise NameUnknown(f"repository {repository} is not known to this registry")
    # Only this repository's own directories: a nested repository (team/app/sub) lives inside them.
    for part in ("_manifests", "_layers", "_uploads"):
        await storage.delete_prefix(f"{layout.repository(repository)}/{part}")
