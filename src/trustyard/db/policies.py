"""``PolicyStore``: tag policies per repository pattern (``tag_policies``): immutability and retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from trustyard.db import tables as t
from trustyard.db.database import Database, now


@dataclass(frozen=True, slots=True)
class PolicyRow:
    pattern: str
    immutable: bool
    keep_last: int | None
    keep_days: int | None
    keep_tags: str | None
    updated_at: datetime | None = None
    updated_by: str | None = None


class PolicyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def policies(self) -> list[PolicyRow]:
        rows = await self._db.rows(select(t.tag_policies).order_by(t.tag_policies.c.pattern))
        return [
            PolicyRow(r.pattern, bool(r.immutable), r.keep_last, r.keep_days, r.keep_tags, r.updated_at, r.updated_by)
            for r in rows
        ]

    async def put_policy(self, policy: PolicyRow, by: str) -> None:
        values = {
            "immutable": policy.immutable,
            "keep_last": policy.keep_last,
            "keep_days": policy.keep_days,
            "keep_tags": policy.keep_tags,
            "updated_at": now(),
            "updated_by": by,
        }
        statement = (
            self._db.upsert(t.tag_policies)
            .values(pattern=policy.pattern, **values)
            .on_conflict_do_update(index_elements=["pattern"], set_=values)
        )
        async with self._db.writer.begin() as conn:
            await conn.execute(statement)

    async def delete_policy(self, pattern: str) -> bool:
        async with self._db.writer.begin() as conn:
            result = await conn.execute(delete(t.tag_policies).where(t.tag_policies.c.pattern == pattern))
            return bool(result.rowcount)
