"""The SQL index on SQLite and PostgreSQL: migrations, links, manifests and tags, uploads, constraints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from trustyard.db.engine import migrate, open_index
from trustyard.db.index import Index, NewManifest, UploadRow
from trustyard.errors import ManifestBlobUnknown

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
M = "sha256:" + "c" * 64
N = "sha256:" + "d" * 64


@pytest.fixture
async def index(database_url: str) -> AsyncIterator[Index]:
    await migrate(database_url)
    await migrate(database_url)  # idempotent
    index = open_index(database_url)
    try:
        yield index
    finally:
        await index.dispose()


def manifest(digest: str = M, blobs: tuple[str, ...] = (A, B), subject: str | None = None) -> NewManifest:
    return NewManifest(
        digest=digest,
        media_type="application/vnd.oci.image.manifest.v1+json",
        payload=b"{}" + digest.encode(),
        artifact_type="application/x-test" if subject else None,
        subject_digest=subject,
        annotations={"k": "v"} if subject else None,
        blob_digests=blobs,
        child_digests=(),
    )


async def test_blob_links_are_per_repository(index: Index) -> None:
    await index.link_blob("team/app", A, 10)
    await index.link_blob("team/app", A, 10)  # idempotent
    assert await index.linked_blob_size("team/app", A) == 10
    assert await index.linked_blob_size("other", A) is None
    assert await index.blob_size(A) == 10
    assert await index.missing_blobs("team/app", [A, B]) == [B]
    assert await index.unlink_blob("team/app", A) is True
    assert await index.unlink_blob("team/app", A) is False
    assert await index.linked_blob_size("team/app", A) is None


async def test_manifest_with_tags_and_lookup(index: Index) -> None:
    await index.link_blob("r", A, 1)
    await index.link_blob("r", B, 2)
    await index.put_manifest("r", manifest(), ["v1", "latest"])
    by_tag = await index.manifest_by_tag("r", "latest")
    assert by_tag is not None
    assert by_tag.digest == M
    assert by_tag.payload.startswith(b"{}")
    assert (await index.manifest_by_digest("r", M)) == by_tag
    assert await index.list_tags("r", None, None) == ["latest", "v1"]
    assert await index.list_tags("r", 1, "latest") == ["v1"]
    assert await index.list_tags("nope", None, None) is None
    assert await index.list_repositories(10, None) == ["r"]
    assert await index.blob_referenced_by("r", A) == M


async def test_tag_moves_to_new_manifest(index: Index) -> None:
    await index.link_blob("r", A, 1)
    await index.put_manifest("r", manifest(M, (A,)), ["v1"])
    await index.put_manifest("r", manifest(N, (A,)), ["v1"])
    found = await index.manifest_by_tag("r", "v1")
    assert found is not None
    assert found.digest == N
    assert await index.tags_of("r", M) == []


async def test_manifest_must_reference_linked_blobs(index: Index) -> None:
    await index.link_blob("r", A, 1)
    with pytest.raises(ManifestBlobUnknown):
        await index.put_manifest("r", manifest(M, (A, B)), ["v1"])
    assert await index.manifest_by_digest("r", M) is None
    assert await index.list_tags("r", None, None) == []


async def test_delete_manifest_removes_its_tags(index: Index) -> None:
    await index.link_blob("r", A, 1)
    await index.put_manifest("r", manifest(M, (A,)), ["v1", "v2"])
    assert await index.delete_manifest("r", M) == ["v1", "v2"]
    assert await index.manifest_by_tag("r", "v1") is None
    with pytest.raises(LookupError):
        await index.delete_manifest("r", M)
    assert await index.list_repositories(10, None) == []


async def test_delete_tag_keeps_manifest(index: Index) -> None:
    await index.link_blob("r", A, 1)
    await index.put_manifest("r", manifest(M, (A,)), ["v1"])
    assert await index.delete_tag("r", "v1") == M
    assert await index.delete_tag("r", "v1") is None
    assert await index.manifest_by_digest("r", M) is not None


async def test_referrers_filter_by_artifact_type(index: Index) -> None:
    await index.put_manifest("r", manifest(M, (), subject=N), [])
    rows = await index.referrers("r", N, None)
    assert [r.digest for r in rows] == [M]
    assert rows[0].annotations == {"k": "v"}
    assert await index.referrers("r", N, "application/x-test") == rows
    assert await index.referrers("r", N, "application/other") == []


async def test_upload_rows_advance_optimistically(index: Index) -> None:
    now = datetime.now(UTC)
    await index.create_upload(UploadRow("u1", "r", "key", "token", [], 0, now))
    row = await index.upload("r", "u1")
    assert row is not None
    assert row.size == 0
    assert row.parts == []
    assert await index.upload("other", "u1") is None
    part = {"number": 1, "offset": 0, "size": 5, "etag": "x"}
    assert await index.advance_upload("u1", 0, [part], 5) is True
    assert await index.advance_upload("u1", 0, [part], 5) is False  # someone else already advanced it
    row = await index.upload("r", "u1")
    assert row is not None
    assert row.size == 5
    assert row.parts == [part]
    assert [r.id for r in await index.stale_uploads(datetime.now(UTC) + timedelta(seconds=1))] == ["u1"]
    await index.delete_upload("u1")
    assert await index.upload("r", "u1") is None


async def test_catalog_pagination(index: Index) -> None:
    for name in ("c", "a", "b"):
        await index.put_manifest(name, manifest(M, ()), ["t"])
    assert await index.list_repositories(2, None) == ["a", "b"]
    assert await index.list_repositories(2, "b") == ["c"]


async def test_concurrent_pushes_of_one_manifest_all_succeed(database_url: str) -> None:
    # Several writers (separate Index objects, as separate worker processes have) race on the same manifest
    # with different tags, and on one tag: every push succeeds and every tag ends up on the manifest.
    await migrate(database_url)
    indexes = [open_index(database_url) for _ in range(4)]
    try:
        await indexes[0].link_blob("r", A, 1)
        pushes = [idx.put_manifest("r", manifest(M, (A,)), [f"t{n}", "shared"]) for n, idx in enumerate(indexes * 3)]
        await asyncio.gather(*pushes)
        assert await indexes[0].list_tags("r", None, None) == sorted([*(f"t{n}" for n in range(12)), "shared"])
        for tag in ("t0", "t11", "shared"):
            found = await indexes[1].manifest_by_tag("r", tag)
            assert found is not None
            assert found.digest == M
    finally:
        for idx in indexes:
            await idx.dispose()
