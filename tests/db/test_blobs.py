"""Blob rows and repository links on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.db.records import A, B
from trustyard.db.index import Index


async def test_blob_links_are_per_repository(index: Index) -> None:
    await index.blobs.reserve_blob(A, 10)
    await index.blobs.link_blob("team/app", A, 10)
    await index.blobs.reserve_blob(A, 10)
    await index.blobs.link_blob("team/app", A, 10)  # idempotent
    assert await index.blobs.linked_blob_size("team/app", A) == 10
    assert await index.blobs.linked_blob_size("other", A) is None
    assert await index.blobs.blob_size(A) == 10
    assert await index.blobs.missing_blobs("team/app", [A, B]) == [B]
    assert await index.blobs.unlink_blob("team/app", A) is True
    assert await index.blobs.unlink_blob("team/app", A) is False
    assert await index.blobs.linked_blob_size("team/app", A) is None
