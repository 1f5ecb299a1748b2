"""``LeaseStore``: named leases in SQL, so a background job (garbage collection, and any later one) runs on
one worker of one node at a time. A lease has a holder and an expiry the holder keeps pushing forward; an
expired lease may be taken by anyone, and a holder's writes are conditional on still holding it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from trustyard.db import tables as t
from trustyard.db.database import Database, now


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    expires_at: datetime


class LeaseStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def acquire(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take the lease when it is free, expired or already ours; False when someone else holds it."""
        at = now()
        insert = self._db.upsert(t.leases).values(name=name, holder=holder, expires_at=at + ttl)
        statement = insert.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": holder, "expires_at": at + ttl},
            where=or_(t.leases.c.expires_at < at, t.leases.c.holder == holder),
        ).returning(t.leases.c.name)
        async with self._db.writer.begin() as conn:
            return (await conn.execute(statement)).first() is not None

    async def take_if_free(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take the lease only when it is free or expired, even from ourselves: a job that keeps its lease for
        ``ttl`` after running (``services/upkeep.py``) then runs once per ``ttl`` across all workers and nodes."""
        at = now()
        insert = self._db.upsert(t.leases).values(name=name, holder=holder, expires_at=at + ttl)
        statement = insert.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": holder, "expires_at": at + ttl},
            where=t.leases.c.expires_at < at,
        ).returning(t.leases.c.name)
        async with self._db.writer.begin() as conn:
            return (await conn.execute(statement)).first() is not None

    async def take_over(self, name: str, previous: str, holder: str, ttl: timedelta) -> bool:
        """Take the lease from ``previous`` (a holder known to be dead), unless it changed hands meanwhile."""
        async with self._db.writer.begin() as conn:
            result = await conn.execute(
                update(t.leases)
                .where(t.leases.c.name == name, t.leases.c.holder == previous)
                .values(holder=holder, expires_at=now() + ttl)
            )
            return bool(result.rowcount)

    async def renew(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Push the expiry forward; False when the lease was lost (expired and taken by another holder)."""
        async with self._db.writer.begin() as conn:
            result = await conn.execute(
                update(t.leases)
                .where(t.leases.c.name == name, t.leases.c.holder == holder)
                .values(expires_at=now() + ttl)
            )
            return bool(result.rowcount)

    async def release(self, name: str, holder: str) -> None:
        async with self._db.writer.begin() as conn:
            await conn.execute(delete(t.leases).where(t.leases.c.name == name, t.leases.c.holder == holder))

    async def current(self, name: str) -> Lease | None:
        """The lease if anyone holds it now."""
        row = await self._db.first(select(t.leases).where(t.leases.c.name == name, t.leases.c.expires_at >= now()))
        return None if row is None else Lease(row.name, row.holder, row.expires_at)
