"""Creating the async engine for the configured URL, and bringing its schema to the newest migration.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout, so several worker
processes share one file safely. PostgreSQL is used through asyncpg.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from trustyard.db.database import Database
from trustyard.db.index import Index

MIGRATIONS = Path(__file__).with_name("migrations")
#: The PostgreSQL advisory lock that serialises migrations of nodes starting at once ("trustyar" in ASCII).
MIGRATION_LOCK = 0x7472757374796172


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def create_engine(url: str, *, pool: bool = True) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if not pool:
        return create_async_engine(url, poolclass=NullPool)
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def open_index(url: str) -> Index:
    """The ``Index`` for ``url``: on SQLite a reader engine and a writer engine whose transactions begin
    IMMEDIATE (a deferred transaction that reads and then writes fails with "database is locked" when
    another process wrote in between; IMMEDIATE waits for the lock instead)."""
    reader = create_engine(url)
    if not url.startswith("sqlite"):
        return Index(Database(reader))
    writer = create_engine(url)
    event.listen(writer.sync_engine, "connect", _manual_transactions)
    event.listen(writer.sync_engine, "begin", _begin_immediate)
    # Reads run on this thread (see Database.rows); the pool keeps a few connections for nested reads.
    local = create_sync_engine(url.replace("+aiosqlite", "+pysqlite"), pool_reset_on_return=None)
    event.listen(local, "connect", _sqlite_pragmas)
    # ``Database.write`` runs whole transactions on this one, on its writer thread, beginning IMMEDIATE too.
    local_writer = create_sync_engine(url.replace("+aiosqlite", "+pysqlite"), connect_args={"timeout": 30})
    event.listen(local_writer, "connect", _sqlite_pragmas)
    event.listen(local_writer, "connect", _manual_transactions)
    event.listen(local_writer, "begin", _begin_immediate)
    return Index(Database(reader, writer, local, local_writer))


def _manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN instead of the sqlite3 module's implicit deferred BEGIN.
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


async def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema (idempotent)."""
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
    engine = create_engine(url, pool=False)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Nodes started together (compose up, a rolling restart) migrate one after the other: the
                # others wait for this transaction's lock, then find the schema at head and do nothing.
                await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask, often 0644), and tighten one
    an older version left readable: it holds password hashes and sealed storage secrets. SQLite gives its
    -wal and -shm files the database file's mode."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            file.chmod(0o600)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _upgrade(connection: Connection) -> None:
    # Imported here: only `serve` and the commands migrate; workers never load Alembic (~6 MiB each).
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
