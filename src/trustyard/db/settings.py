"""``RuntimeSettings``: named JSON settings rows with a generation number that grows on every change.

Workers compare the generation they run with to the stored one (a primary-key read) to notice a change
made by another worker or node, then load the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from trustyard.db import tables as t


@dataclass(frozen=True, slots=True)
class StoredSetting:
    value: str
    generation: int
    updated_at: datetime
    updated_by: str


class RuntimeSettings:
    def __init__(self, reader: AsyncEngine, writer: AsyncEngine) -> None:
        self._reader = reader
        self._writer = writer

    async def get(self, name: str) -> StoredSetting | None:
        query = select(
            t.runtime_settings.c.value,
            t.runtime_settings.c.generation,
            t.runtime_settings.c.updated_at,
            t.runtime_settings.c.updated_by,
        ).where(t.runtime_settings.c.name == name)
        async with self._reader.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else StoredSetting(row.value, row.generation, row.updated_at, row.updated_by)

    async def generation(self, name: str) -> int:
        """0 when the setting was never stored."""
        query = select(t.runtime_settings.c.generation).where(t.runtime_settings.c.name == name)
        async with self._reader.connect() as conn:
            found = await conn.scalar(query)
        return 0 if found is None else int(found)

    async def put(self, name: str, value: str, by: str) -> int:
        """Store ``value`` and return the new generation."""
        now = datetime.now(UTC)
        async with self._writer.begin() as conn:
            current = await conn.scalar(
                select(t.runtime_settings.c.generation).where(t.runtime_settings.c.name == name)
            )
            if current is None:
                await conn.execute(
                    t.runtime_settings.insert().values(
                        name=name, value=value, generation=1, updated_at=now, updated_by=by
                    )
                )
                return 1
            await conn.execute(
                update(t.runtime_settings)
                .where(t.runtime_settings.c.name == name)
                .values(value=value, generation=current + 1, updated_at=now, updated_by=by)
            )
            return int(current) + 1
