"""``AuditStore``: the append-only audit trail in SQL, and the counts that rate-limit failed logins."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from trustyard.db import tables as t


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An event to append, in the transaction of the change it records (``append_in``) or on its own."""

    at: datetime
    actor: str
    source: str | None
    action: str
    target: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditRow(AuditEntry):
    """An entry as stored, with the id that orders the trail and pages it."""

    id: int


def append_in(conn: Connection, entry: AuditEntry) -> None:
    """Append ``entry`` in the caller's transaction (``Database.write``): it commits with the change."""
    conn.execute(_INSERT, _row(entry))


#: Built once: a manifest push appends an event in its transaction (building costs more than running it).
_INSERT = t.audit_events.insert()


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "actor": entry.actor[:64],
        "source": (entry.source or None) and entry.source[:64],
        "action": entry.action,
        "target": entry.target[:512],
        "detail": json.dumps(entry.detail, sort_keys=True, default=str) if entry.detail else None,
    }


class AuditStore:
    def __init__(self, reader: AsyncEngine, writer: AsyncEngine | None = None) -> None:
        self.reader = reader
        self.writer = writer or reader

    async def append(self, entry: AuditEntry) -> None:
        async with self.writer.begin() as conn:
            await conn.execute(_INSERT, _row(entry))

    async def events(
        self, limit: int, before: int | None = None, action: str | None = None, actor: str | None = None
    ) -> list[AuditRow]:
        """Newest first; ``before`` pages by id."""
        query = select(t.audit_events).order_by(t.audit_events.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(t.audit_events.c.id < before)
        if action:
            query = query.where(t.audit_events.c.action == action)
        if actor:
            query = query.where(t.audit_events.c.actor == actor)
        async with self.reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AuditRow(
                at=r.at,
                actor=r.actor,
                source=r.source,
                action=r.action,
                target=r.target,
                detail=json.loads(r.detail) if r.detail else {},
                id=r.id,
            )
            for r in rows
        ]

    async def failures_since(
        self, action: str, since: datetime, actor: str | None, source: str | None
    ) -> tuple[int, datetime | None]:
        """How many events of ``action`` since ``since``, and the latest one's time, for ``actor`` (None: any)
        from ``source`` (None: any); both None counts nothing."""
        matches = [t.audit_events.c.action == action, t.audit_events.c.at >= since]
        if actor is None and source is None:
            return 0, None
        if actor is not None:
            matches.append(t.audit_events.c.actor == actor[:64])
        if source is not None:
            matches.append(t.audit_events.c.source == source[:64])
        query = select(func.count(), func.max(t.audit_events.c.at)).where(*matches)
        async with self.reader.connect() as conn:
            count, latest = (await conn.execute(query)).one()
        return int(count or 0), latest
