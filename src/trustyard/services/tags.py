"""Tags of a repository, listed in lexical order with ``n``/``last`` pagination."""

from __future__ import annotations

from trustyard.db.index import Index
from trustyard.errors import NameUnknown
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Action, Actor


class Tags:
    def __init__(self, index: Index) -> None:
        self._index = index

    async def list(self, actor: Actor, repository: RepositoryName, limit: int | None, last: str | None) -> list[str]:
        actor.require(repository, Action.PULL)
        tags = await self._index.list_tags(repository.value, limit, last)
        if tags is None:
            raise NameUnknown(f"repository {repository} is not known to this registry")
        return tags
