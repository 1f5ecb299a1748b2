"""``Database``: the engines of the SQL index and the helpers every store's queries share.

Reads use ``reader``; transactions that write use ``writer``, or better ``write``: one synchronous function
run as one transaction, in one hop off the event loop (see ``Database.write``). On SQLite the writers begin
``IMMEDIATE`` transactions (see ``engine.open_index``) so that a read-then-write never fails on a stale
snapshot; on PostgreSQL both are the same pool and conflicting inserts are resolved with ``ON CONFLICT``.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable, Insert

E = TypeVar("E", bound=Executable)
T = TypeVar("T")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A hot SELECT compiled once for SQLite: its SQL, its parameters in order (with the values of literals),
    and what SQLAlchemy would do to each bound value and each result column (e.g. text -> datetime)."""

    query: Executable  # kept alive: plans are found by id(query)
    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    binds: tuple[Callable[[Any], Any] | None, ...]
    columns: tuple[Callable[[Any], Any] | None, ...]
    row: Any  # the namedtuple type of a result row


def _plan(query: Executable, engine: Engine) -> _Plan | None:
    """None when the statement needs what only SQLAlchemy's executor does (expanding IN lists)."""
    dialect = engine.dialect
    compiled: Any = query.compile(dialect=dialect)  # type: ignore[attr-defined]
    sql = str(compiled)
    if "POSTCOMPILE" in sql or not compiled.positiontup:
        return None
    names = tuple(compiled.positiontup)
    bind_processors = compiled._bind_processors
    binds = tuple(bind_processors.get(name) for name in names)
    entries = compiled._result_columns
    columns = tuple(dialect.type_descriptor(e.type)._cached_result_processor(dialect, None) for e in entries)
    row = namedtuple("row", [e.keyname for e in entries], rename=True)  # type: ignore[misc]
    return _Plan(query, sql, names, dict(compiled.params), binds, columns, row)


class Database:
    def __init__(
        self,
        reader: AsyncEngine,
        writer: AsyncEngine | None = None,
        local: Engine | None = None,
        local_writer: Engine | None = None,
    ) -> None:
        """``local`` (SQLite): a synchronous engine for reads on the caller's thread; ``local_writer``
        (SQLite): a synchronous engine whose transactions begin IMMEDIATE, for ``write``."""
        self.reader = reader
        self.writer = writer or reader
        self.local = local
        self._local_writer = local_writer
        self._write_thread: ThreadPoolExecutor | None = None
        self._write_pid = 0
        self._write_conn: Connection | None = None  # the writer thread's, kept open (see _write_now)
        self.dialect = reader.dialect.name
        self._plans: dict[int, _Plan] = {}
        self._raw = threading.local()
        database = local.url.database if local is not None else None
        self._file = database if database and database != ":memory:" else None

    def hot(self, query: E) -> E:
        """Mark a prebuilt statement of a hot path (a pull, a HEAD, a tags list): on SQLite ``rows`` runs it
        on a plain ``sqlite3`` connection with its SQL compiled once, skipping SQLAlchemy's per-execution
        work (~60 µs against ~4 µs for the query itself). Only for statements built once: plans live as long
        as the ``Database``."""
        if self.local is not None and self._file is not None:
            plan = _plan(query, self.local)
            if plan is not None:
                self._plans[id(query)] = plan
        return query

    def _run_plan(self, plan: _Plan, params: dict[str, Any]) -> list[Any]:
        conn: sqlite3.Connection | None = getattr(self._raw, "conn", None)
        if conn is None:
            # Autocommit: each SELECT is its own read transaction and sees every commit (WAL: never waits).
            conn = sqlite3.connect(self._file or "", timeout=30, isolation_level=None)
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._raw.conn = conn
        values = []
        for name, bind in zip(plan.names, plan.binds, strict=True):
            value = params[name] if name in params else plan.defaults[name]
            values.append(bind(value) if bind is not None else value)
        rows = conn.execute(plan.sql, values).fetchall()
        make, columns = plan.row, plan.columns
        return [make(*[c(v) if c is not None else v for c, v in zip(columns, r, strict=True)]) for r in rows]

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` with a synchronous connection as one write transaction (committed when it returns,
        rolled back when it raises) and return what it returns.

        On SQLite it runs on a thread of its own, the process's one SQLite writer: the whole transaction is
        one hop off the event loop (through aiosqlite every statement is a round trip to its thread, ~100 µs
        each way), SQLite's busy waiting for another process's write lock happens there, never on the loop,
        and this process's writes queue in order instead of polling each other's lock. On PostgreSQL it runs
        through the writer engine's ``run_sync``: the same function, one code path for both dialects.
        ``fn`` must not block on anything but the database (it holds the write lock while it runs)."""
        if self._local_writer is None:
            async with self.writer.begin() as conn:
                return await conn.run_sync(fn)
        if self._write_thread is None or self._write_pid != os.getpid():
            if self._write_thread is not None:
                # A forked child: the writer thread stayed in the parent, and its pooled connection is the
                # parent's to close. Start afresh (never used like this today: workers open their own index).
                self._local_writer.dispose(close=False)
                self._write_conn = None
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="trustyard-sqlite-writer")
            self._write_pid = os.getpid()
        context = contextvars.copy_context()  # as asyncio.to_thread does: the caller's context vars hold there
        return await asyncio.get_running_loop().run_in_executor(self._write_thread, context.run, self._write_now, fn)

    def _write_now(self, fn: Callable[[Connection], T]) -> T:
        # One connection for the writer thread's whole life: checking one out of the pool and back in for
        # every transaction was a quarter of this thread's CPU in a small push (ten transactions per image).
        conn = self._write_conn
        if conn is None:
            assert self._local_writer is not None
            conn = self._write_conn = self._local_writer.connect()
        try:
            with conn.begin():
                return fn(conn)
        except BaseException:
            # After any failure the next transaction starts on a fresh connection, as it did from the pool.
            self._write_conn = None
            conn.close()
            raise

    def _local_conn(self) -> Connection:
        """This thread's connection for ``rows``, kept open for the same reason as the writer's."""
        conn: Connection | None = getattr(self._raw, "local", None)
        if conn is None:
            assert self.local is not None
            conn = self._raw.local = self.local.connect()
        return conn

    async def dispose(self) -> None:
        if self._write_thread is not None:
            if self._write_pid == os.getpid():
                # Waits for a transaction under way (it ends in a commit or a rollback), in a thread: not on
                # the loop.
                await asyncio.to_thread(self._write_thread.shutdown)
            self._write_thread = None
        if self._write_conn is not None:
            self._write_conn.close()
            self._write_conn = None
        conn = getattr(self._raw, "conn", None)
        if conn is not None:
            conn.close()
            self._raw.conn = None
        local = getattr(self._raw, "local", None)
        if local is not None:
            local.close()
            self._raw.local = None
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()
        if self.local is not None:
            self.local.dispose()
        if self._local_writer is not None:
            self._local_writer.dispose()

    # Reads. With a ``local`` engine (SQLite) they run synchronously on this thread: an indexed SQLite read
    # takes microseconds and never waits for writers in WAL mode, while a trip through aiosqlite's thread
    # costs ~100 µs each way. Elsewhere (PostgreSQL) they run on the async reader.

    async def rows(self, query: Executable, **params: Any) -> Sequence[Row[Any]]:
        plan = self._plans.get(id(query))
        if plan is not None:
            return self._run_plan(plan, params)
        if self.local is not None:
            local = self._local_conn()
            try:
                found = local.execute(query, params).all()
            except BaseException:
                self._raw.local = None
                local.close()
                raise
            # Ends what SQLAlchemy began (pysqlite opened no transaction for a SELECT): the next read sees
            # every commit.
            local.rollback()
            return found
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
        if self.dialect == "postgresql":
            # Imported here: on SQLite, a worker does not load the PostgreSQL dialect (~2 MiB per worker).
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table)
        return sqlite.insert(table)

    def insert_ignore(self, table: Table, index_elements: Sequence[str]) -> Insert:
        insert: Insert = self.upsert(table).on_conflict_do_nothing(index_elements=list(index_elements))
        return insert
