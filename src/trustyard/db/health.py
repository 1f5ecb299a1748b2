"""``DatabaseProbe``: whether the SQL index answers (``SELECT 1`` on the reader and, where distinct, the writer)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


class DatabaseProbe:
    def __init__(self, reader: AsyncEngine, writer: AsyncEngine) -> None:
        self._engines = [reader] if writer is reader else [reader, writer]

    @property
    def dialect(self) -> str:
        return self._engines[0].dialect.name

    async def ping(self) -> None:
        """Raises the driver's own error when the database cannot be reached."""
        for engine in self._engines:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
