"""``GcRunStore``: the history of garbage collection runs (``gc_runs``): who started each, with which
options, when it ended and what it removed (or, for a dry run, would remove)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from trustyard.db import tables as t
from trustyard.db.database import Database, now


@dataclass(frozen=True, slots=True)
class GcRunRow:
    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str  # running, succeeded, failed, interrupted
    started_by: str
    dry_run: bool
    untagged: bool
    grace_seconds: int
    report: dict[str, Any]
    error: str | None


class GcRunStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(self, started_by: str, dry_run: bool, untagged: bool, grace_seconds: int) -> int:
        async with self._db.writer.begin() as conn:
            result = await conn.execute(
                t.gc_runs.insert()
                .values(
                    started_at=now(),
                    status="running",
                    started_by=started_by,
                    dry_run=dry_run,
                    untagged=untagged,
                    grace_seconds=grace_seconds,
                )
                .returning(t.gc_runs.c.id)
            )
            return int(result.scalar_one())

    async def finish(self, run_id: int, status: str, report: dict[str, Any], error: str | None = None) -> None:
        async with self._db.writer.begin() as conn:
            await conn.execute(
                update(t.gc_runs)
                .where(t.gc_runs.c.id == run_id)
                .values(finished_at=now(), status=status, report=json.dumps(report), error=error)
            )

    async def interrupt_running(self) -> int:
        """Mark runs still "running" as interrupted: called by the holder of the collection lease, so no
        other collector is alive; they died (killed, crashed) without finishing."""
        async with self._db.writer.begin() as conn:
            result = await conn.execute(
                update(t.gc_runs)
                .where(t.gc_runs.c.status == "running")
                .values(status="interrupted", finished_at=now(), error="the collector stopped before finishing")
            )
            return int(result.rowcount)

    async def get(self, run_id: int) -> GcRunRow:
        return self._row(await self._db.first(select(t.gc_runs).where(t.gc_runs.c.id == run_id)))

    async def recent(self, limit: int) -> list[GcRunRow]:
        query = select(t.gc_runs).order_by(t.gc_runs.c.id.desc()).limit(limit)
        return [self._row(r) for r in await self._db.rows(query)]

    @staticmethod
    def _row(r: Any) -> GcRunRow:
        return GcRunRow(
            id=r.id,
            started_at=r.started_at,
            finished_at=r.finished_at,
            status=r.status,
            started_by=r.started_by,
            dry_run=bool(r.dry_run),
            untagged=bool(r.untagged),
            grace_seconds=r.grace_seconds,
            report=json.loads(r.report) if r.report else {},
            error=r.error,
        )
