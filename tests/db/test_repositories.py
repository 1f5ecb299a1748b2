"""Repository rows on SQLite and PostgreSQL: the catalog, and the summaries the repository list shows in one query."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.db.records import A, B, M, N, manifest, put
from trustyard.db.index import Index
from trustyard.db.repositories import RepositorySummary

C = "sha256:" + "e" * 64


async def test_catalog_pagination(index: Index) -> None:
    for name in ("c", "a", "b"):
        await put(index, name, manifest(M, ()), ["t"])
    assert await index.repositories.list_repositories(2, None) == ["a", "b"]
    assert await index.repositories.list_repositories(2, "b") == ["c"]


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_tags_distinct_blob_size_and_last_push_in_one_query(index: Index) -> None:
    early, late = datetime(2024, 1, 2, 3, 4, tzinfo=UTC), datetime(2025, 6, 7, 8, 9, tzinfo=UTC)
    for digest, size in ((A, 1000), (B, 20), (C, 3)):
        await index.blobs.reserve_blob(digest, size)  # as a push does before writing the bytes
        await index.blobs.link_blob("team/app", digest, size)
    await index.blobs.link_blob("team/db", C, 3)
    await index.blobs.link_blob("team/unused", A, 1000)  # linked, but no manifest references it
    # Two manifests sharing the big layer A: it counts once.
    for record in (manifest(M, (A, B)), manifest(N, (A, C))):
        await index.blobs.reserve_blob(record.digest, len(record.payload))
    await index.manifests.put_manifest("team/app", manifest(M, (A, B)), ["1.0", "latest"], pushed_at=early)
    await index.manifests.put_manifest("team/app", manifest(N, (A, C)), ["2.0"], pushed_at=late)
    await index.manifests.put_manifest("team/db", manifest(M, (C,)), [], pushed_at=late)  # untagged
    store = index.repositories

    with statements(index.reader) as seen:
        found = await store.summaries(["team/app", "team/db", "team/unused", "no/such"])
    assert len(seen) == 1, seen

    assert set(found) == {"team/app", "team/db", "team/unused"}
    app = found["team/app"]
    assert (app.tags, app.size) == (3, 1023)
    assert app.pushed_at is not None
    assert app.pushed_at.replace(tzinfo=UTC) == late
    assert found["team/db"] == RepositorySummary("team/db", 0, 3, None)
    assert found["team/unused"] == RepositorySummary("team/unused", 0, 0, None)
    assert await store.summaries([]) == {}


async def test_which_names_are_public_for_one_name_and_for_several(index: Index) -> None:
    """One name is what every token request asks about (a prepared read); several go through one IN query."""
    for name in ("open", "closed"):
        await put(index, name, manifest(M, ()), ["t"])
    await index.repositories.set_public("open", True)
    await index.repositories.set_public("closed", False)
    assert await index.repositories.public(["open"]) == {"open"}
    assert await index.repositories.public(["closed"]) == set()
    assert await index.repositories.public(["missing"]) == set()
    assert await index.repositories.public(["open", "closed", "missing"]) == {"open"}
    assert await index.repositories.public([]) == set()
