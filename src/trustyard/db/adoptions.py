"""``AdoptionStore``: background adoptions of a storage backend (``storage_adoptions``): indexing what a
backend already holds after a switch or at first start, with progress any worker and the edges can read.

An adoption is ``running`` until its holder (the ``storage-adoption`` lease) finishes it (``done``), fails
(``failed``, with the error), or a later switch makes it moot (``superseded``). Reindexing is idempotent, so
a worker that takes the lease over from a dead holder simply starts the listing again, and a failed adoption
is retried as a new row (``services/adoption.py``), so the table keeps each attempt's error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from trustyard.db import tables as t
from trustyard.db.database import Database, now

COUNTERS = ("repositories", "manifests", "tags", "blobs", "objects_listed", "skipped")


@dataclass(frozen=True, slots=True)
class AdoptionRow:
    id: int
    generation: int
    state: str  # running, done, failed, superseded
    repositories: int
    manifests: int
    tags: int
    blobs: int
    objects_listed: int
    skipped: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None


class AdoptionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    async def start_in(conn: AsyncConnection, generation: int) -> int:
        """Begin adopting ``generation`` inside the caller's transaction; running adoptions are superseded."""
        at = now()
        await conn.execute(
            update(t.storage_adoptions)
            .where(t.storage_adoptions.c.state == "running")
            .values(state="superseded", finished_at=at, updated_at=at)
        )
        result = await conn.execute(
            t.storage_adoptions.insert()
            .values(generation=generation, state="running", started_at=at, updated_at=at, **dict.fromkeys(COUNTERS, 0))
            .returning(t.storage_adoptions.c.id)
        )
        return int(result.scalar_one())

    async def start(self, generation: int) -> int:
        async with self._db.writer.begin() as conn:
            return await self.start_in(conn, generation)

    async def progress(self, adoption_id: int, counts: dict[str, int]) -> bool:
        """Record counts of a running adoption; False when it is no longer running (superseded)."""
        values = {name: counts[name] for name in COUNTERS if name in counts}
        async with self._db.writer.begin() as conn:
            result = await conn.execute(
                update(t.storage_adoptions)
                .where(t.storage_adoptions.c.id == adoption_id, t.storage_adoptions.c.state == "running")
                .values(updated_at=now(), **values)
            )
            return bool(result.rowcount)

    async def finish(self, adoption_id: int, state: str, counts: dict[str, int], error: str | None = None) -> None:
        values = {name: counts[name] for name in COUNTERS if name in counts}
        at = now()
        async with self._db.writer.begin() as conn:
            await conn.execute(
                update(t.storage_adoptions)
                .where(t.storage_adoptions.c.id == adoption_id, t.storage_adoptions.c.state == "running")
                .values(state=state, updated_at=at, finished_at=at, error=error, **values)
            )

    async def running(self) -> AdoptionRow | None:
        row = await self._db.first(
            select(t.storage_adoptions)
            .where(t.storage_adoptions.c.state == "running")
            .order_by(t.storage_adoptions.c.id.desc())
        )
        return None if row is None else _row(row)

    async def latest(self) -> AdoptionRow | None:
        row = await self._db.first(select(t.storage_adoptions).order_by(t.storage_adoptions.c.id.desc()).limit(1))
        return None if row is None else _row(row)

    async def failed_in_a_row(self, generation: int, limit: int) -> int:
        """How many of the latest adoptions, newest first and at most ``limit``, failed adopting ``generation``
        before any other ended otherwise: what a retry backs off by."""
        rows = await self._db.rows(
            select(t.storage_adoptions.c.state, t.storage_adoptions.c.generation)
            .order_by(t.storage_adoptions.c.id.desc())
            .limit(limit)
        )
        count = 0
        for row in rows:
            if row.state != "failed" or row.generation != generation:
                break
            count += 1
        return count

    async def get(self, adoption_id: int) -> AdoptionRow | None:
        row = await self._db.first(select(t.storage_adoptions).where(t.storage_adoptions.c.id == adoption_id))
        return None if row is None else _row(row)


def _row(r: Any) -> AdoptionRow:
    return AdoptionRow(
        r.id,
        r.generation,
        r.state,
        r.repositories,
        r.manifests,
        r.tags,
        r.blobs,
        r.objects_listed,
        r.skipped,
        r.started_at,
        r.updated_at,
        r.finished_at,
        r.error,
    )
