"""``Database``: the engines of the SQL index and the helpers every store's queries share.

Reads use ``reader``; transactions that write use ``writer``. On SQLite the writer begins ``IMMEDIATE``
transactions (see ``engine.open_index``) so that a read-then-write never fails on a stale snapshot; on
PostgreSQL both are the same pool and conflicting inserts are resolved with ``ON CONFLICT``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, Row
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable, Insert


def now() -> datetime:
    return datetime.now(UTC)


class Database:
    def __init__(self, reader: AsyncEngine, writer: AsyncEngine | None = None, local: Engine | None = None) -> None:
        self.reader = reader
        self.writer = writer or reader
        self.local = local
        self.dialect = reader.dialect.name

    async def dispose(self) -> None:
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()
        if self.local is not None:
            self.local.dispose()

    # Reads. With a ``local`` engine (SQLite) they run synchronously on this thread: an indexed SQLite read
    # takes microseconds and never waits for writers in WAL mode, while a trip through aiosqlite's thread
    # costs ~100 µs each way. Elsewhere (PostgreSQL) they run on the async reader.

    async def rows(self, query: Executable, **params: Any) -> Sequence[Row[Any]]:
        if self.local is not None:
            with self.local.connect() as conn:
                return conn.execute(query, params).all()
        async with self.reader.connect() as conn:
            return (await conn.execute(query, params)).all()

    async def first(self, query: Executable, **params: Any) -> Row[Any] | None:
        rows = await self.rows(query, **params)
        return rows[0] if rows else None

    async def scalar(self, query: Executable, **params: Any) -> Any:
        row = await self.first(query, **params)
        return None if row is None else row[0]

    async def scalars(self, query: Executable, **params: Any) -> list[Any]:
        return [row[0] for row in await self.rows(query, **params)]

    def bytewise(self, column: Any) -> Any:
        """``column`` compared byte by byte, the lexical order the spec (and Distribution) pages in."""
        return column.collate("C") if self.dialect == "postgresql" else column  # SQLite's default is BINARY

    def upsert(self, table: Table) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL spell it the same)."""
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    def insert_ignore(self, table: Table, index_elements: Sequence[str]) -> Insert:
        insert: Insert = self.upsert(table).on_conflict_do_nothing(index_elements=list(index_elements))
        return insert
