"""``Database.hot``: a prebuilt statement run on a plain ``sqlite3`` connection gives exactly the rows
SQLAlchemy gives (types converted the same way), sees every commit at once, and is used only where it can be."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import String, bindparam, select
from sqlalchemy.engine import Connection

from tests.db.records import A, B, M, manifest, put
from trustyard.db import tables as t
from trustyard.db.engine import migrate, open_index, sqlite_url
from trustyard.db.manifests import _MANIFEST_COLUMNS


async def test_hot_statements_give_what_sqlalchemy_gives(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "index.db")
    await migrate(url)
    index = open_index(url)
    try:
        db = index.db
        by_digest = select(*_MANIFEST_COLUMNS).where(t.manifests.c.digest == bindparam("digest", type_=String()))
        plain = select(*_MANIFEST_COLUMNS).where(t.manifests.c.digest == bindparam("digest", type_=String()))
        assert db.hot(by_digest) is by_digest
        assert id(by_digest) in db._plans
        assert id(plain) not in db._plans
        assert await db.rows(by_digest, digest=M) == []
        for digest, size in ((A, 1), (B, 2)):
            await index.blobs.reserve_blob(digest, size)
            await index.blobs.link_blob("r", digest, size)
        await put(index, "r", manifest(), ["v1"])  # committed by the writer: the next read sees it
        [fast] = await db.rows(by_digest, digest=M)
        [slow] = await db.rows(plain, digest=M)
        assert tuple(fast) == tuple(slow)
        assert [type(v) for v in fast] == [type(v) for v in slow]  # created_at a datetime, payload bytes
        assert fast.digest == M
        assert fast.created_at == slow.created_at
        # The stores' hot reads go this way and give the same rows.
        assert await index.manifests.manifest_by_tag("r", "v1") == await index.manifests.manifest_by_digest("r", M)
        assert await index.blobs.linked_blob_size("r", A) == 1
        assert await index.manifests.list_tags("r", None, None) == ["v1"]
    finally:
        await index.dispose()


async def test_statements_that_expand_lists_stay_on_sqlalchemy(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "index.db")
    await migrate(url)
    index = open_index(url)
    try:
        expanding = select(t.blobs.c.digest).where(t.blobs.c.digest.in_(bindparam("digests", expanding=True)))
        index.db.hot(expanding)
        assert id(expanding) not in index.db._plans
        assert await index.db.rows(expanding, digests=[A, B]) == []
    finally:
        await index.dispose()


async def test_write_is_one_transaction_off_the_event_loop(database_url: str) -> None:
    """``Database.write`` commits what the function did when it returns and nothing when it raises; on SQLite
    it runs on the writer thread, not the event loop's."""
    await migrate(database_url)
    index = open_index(database_url)
    try:
        threads = []

        def add(conn: Connection, name: str, fail: bool) -> int:
            threads.append(threading.get_ident())
            repository_id = index.repositories.ensure(conn, name)
            if fail:
                raise RuntimeError("rolled back")
            return repository_id

        assert await index.db.write(lambda conn: add(conn, "kept", False)) > 0
        with pytest.raises(RuntimeError):
            await index.db.write(lambda conn: add(conn, "dropped", True))
        assert await index.repositories.repository_id("kept") is not None
        assert await index.repositories.repository_id("dropped") is None
        assert await index.db.write(lambda conn: add(conn, "after", False)) > 0  # a failure ends nothing
        assert await index.repositories.repository_id("after") is not None
        if index.db.dialect == "sqlite":
            assert threading.get_ident() not in threads
            assert len(set(threads)) == 1  # the one writer thread
    finally:
        await index.dispose()


async def test_kept_connections_hold_no_transaction_between_calls(tmp_path: Path) -> None:
    """The writer thread's connection and the readers' stay open between calls (see ``Database._write_now``),
    but no transaction does: another process writes right after a write here, and a read here sees what it
    wrote."""
    path = tmp_path / "index.db"
    await migrate(sqlite_url(path))
    index = open_index(sqlite_url(path))
    other = sqlite3.connect(path, timeout=0, isolation_level=None)  # fails at once if a lock is held
    try:
        names = select(t.repositories.c.name).order_by(t.repositories.c.name)
        await index.db.write(lambda conn: index.repositories.ensure(conn, "ours"))
        assert await index.db.scalars(names) == ["ours"]
        other.execute("BEGIN IMMEDIATE")  # the write lock: free, though our writer's connection is open
        other.execute("INSERT INTO repositories (name, created_at) VALUES ('theirs', '2026-01-01 00:00:00')")
        other.execute("COMMIT")
        assert await index.db.scalars(names) == ["ours", "theirs"]  # no old snapshot held by the reader
        await index.db.write(lambda conn: index.repositories.ensure(conn, "more"))
        assert await index.db.scalars(names) == ["more", "ours", "theirs"]
    finally:
        other.close()
        await index.dispose()


async def test_a_forked_child_writes_on_a_writer_thread_of_its_own(tmp_path: Path) -> None:
    """The writer thread belongs to the process that started it: after a fork (seen as another pid) the next
    write starts a new one instead of queueing for a thread that is not there."""
    url = sqlite_url(tmp_path / "index.db")
    await migrate(url)
    index = open_index(url)
    try:
        first = await index.db.write(lambda _conn: threading.get_ident())
        parents = index.db._write_thread  # kept alive here, so its thread's id is not reused
        assert parents is not None
        index.db._write_pid = -1  # as in a child forked after that write
        second = await index.db.write(lambda conn: (index.repositories.ensure(conn, "r"), threading.get_ident())[1])
        assert second != first
        assert await index.repositories.repository_id("r") is not None
        parents.shutdown()
    finally:
        await index.dispose()
