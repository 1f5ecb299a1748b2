"""The catalog: repositories the actor may pull, in lexical order with ``n``/``last`` pagination."""

from __future__ import annotations

from trustyard.db.index import Index
from trustyard.services.actor import Action, Actor

#: Page size when a client asks for none, and the most a client may ask for.
DEFAULT_PAGE = 100
MAX_PAGE = 10_000


class Repositories:
    def __init__(self, index: Index) -> None:
        self._index = index

    async def catalog(self, actor: Actor, limit: int, last: str | None) -> list[str]:
        names: list[str] = []
        # Filtering by permission after the query can shorten a page; keep reading until it is full.
        while len(names) < limit:
            batch = await self._index.list_repositories(limit, last)
            names.extend(n for n in batch if actor.can(n, Action.PULL))
            if len(batch) < limit:
                break
            last = batch[-1]
        return names[:limit]
