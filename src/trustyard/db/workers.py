"""``WorkerStore``: the worker processes serving this registry (``workers``), on every node.

Each worker heartbeats its row every few seconds and records the storage plan version it serves (its *ack*).
A storage switch waits until every worker with a fresh heartbeat has acked the new plan; a worker whose
heartbeat went stale fences itself (it re-reads the plan before serving). ``trustyard info`` lists the nodes
seen recently from the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from trustyard.db import tables as t
from trustyard.db.database import Database, now


@dataclass(frozen=True, slots=True)
class WorkerRow:
    id: str  # "<node>:<pid>"
    node: str
    pid: int
    version: str
    started_at: datetime
    seen_at: datetime
    plan_acked: int


class WorkerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def heartbeat(self, worker: WorkerRow) -> None:
        """Insert or refresh the worker's row: seen now, serving ``worker.plan_acked``."""
        at = now()
        values = {
            "id": worker.id,
            "node": worker.node,
            "pid": worker.pid,
            "version": worker.version,
            "started_at": worker.started_at,
            "seen_at": at,
            "plan_acked": worker.plan_acked,
        }
        statement = (
            self._db.upsert(t.workers)
            .values(**values)
            .on_conflict_do_update(index_elements=["id"], set_={"seen_at": at, "plan_acked": worker.plan_acked})
        )
        async with self._db.writer.begin() as conn:
            await conn.execute(statement)

    async def ack(self, worker_id: str, plan_version: int) -> None:
        """Record that the worker serves ``plan_version`` (and is alive)."""
        async with self._db.writer.begin() as conn:
            await conn.execute(
                update(t.workers).where(t.workers.c.id == worker_id).values(plan_acked=plan_version, seen_at=now())
            )

    async def lagging(self, plan_version: int, fresh: timedelta, exclude: str | None = None) -> list[WorkerRow]:
        """Workers seen within ``fresh`` that have not acked ``plan_version`` yet."""
        query = select(t.workers).where(t.workers.c.seen_at >= now() - fresh, t.workers.c.plan_acked < plan_version)
        if exclude is not None:
            query = query.where(t.workers.c.id != exclude)
        return [_row(r) for r in await self._db.rows(query)]

    async def recent(self, within: timedelta) -> list[WorkerRow]:
        """Workers seen within ``within``, by node and pid."""
        query = (
            select(t.workers).where(t.workers.c.seen_at >= now() - within).order_by(t.workers.c.node, t.workers.c.pid)
        )
        return [_row(r) for r in await self._db.rows(query)]

    async def forget(self, worker_id: str) -> None:
        """A worker stopping removes its row (a switch need not wait for its heartbeat to go stale)."""
        async with self._db.writer.begin() as conn:
            await conn.execute(delete(t.workers).where(t.workers.c.id == worker_id))

    async def prune(self, older_than: timedelta) -> int:
        async with self._db.writer.begin() as conn:
            result = await conn.execute(delete(t.workers).where(t.workers.c.seen_at < now() - older_than))
            return int(result.rowcount)


def _row(r: Any) -> WorkerRow:
    return WorkerRow(r.id, r.node, r.pid, r.version, r.started_at, r.seen_at, r.plan_acked)
