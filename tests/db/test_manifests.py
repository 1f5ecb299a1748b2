"""Manifests, their references and tags on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.db.records import A, B, M, N, manifest, put
from trustyard.db.audit import AuditEntry, AuditStore
from trustyard.db.engine import migrate, open_index
from trustyard.db.index import Index
from trustyard.errors import ManifestBlobUnknown


async def test_manifest_with_tags_and_lookup(index: Index) -> None:
    await index.blobs.reserve_blob(A, 1)
    await index.blobs.link_blob("r", A, 1)
    await index.blobs.reserve_blob(B, 2)
    await index.blobs.link_blob("r", B, 2)
    await put(index, "r", manifest(), ["v1", "latest"])
    by_tag = await index.manifests.manifest_by_tag("r", "latest")
    assert by_tag is not None
    assert by_tag.digest == M
    assert by_tag.payload.startswith(b"{}")
    assert (await index.manifests.manifest_by_digest("r", M)) == by_tag
    assert await index.manifests.list_tags("r", None, None) == ["latest", "v1"]
    assert await index.manifests.list_tags("r", 1, "latest") == ["v1"]
    assert await index.manifests.list_tags("nope", None, None) is None
    assert await index.repositories.list_repositories(10, None) == ["r"]
    assert await index.blobs.blob_referenced_by("r", A) == M


async def test_tag_moves_to_new_manifest(index: Index) -> None:
    await index.blobs.reserve_blob(A, 1)
    await index.blobs.link_blob("r", A, 1)
    await put(index, "r", manifest(M, (A,)), ["v1"])
    await put(index, "r", manifest(N, (A,)), ["v1"])
    found = await index.manifests.manifest_by_tag("r", "v1")
    assert found is not None
    assert found.digest == N
    assert await index.manifests.tags_of("r", M) == []


async def test_manifest_must_reference_linked_blobs(index: Index) -> None:
    await index.blobs.reserve_blob(A, 1)
    await index.blobs.link_blob("r", A, 1)
    with pytest.raises(ManifestBlobUnknown):
        await put(index, "r", manifest(M, (A, B)), ["v1"])
    assert await index.manifests.manifest_by_digest("r", M) is None
    assert await index.manifests.list_tags("r", None, None) == []


async def test_delete_manifest_removes_its_tags(index: Index) -> None:
    await index.blobs.reserve_blob(A, 1)
    await index.blobs.link_blob("r", A, 1)
    await put(index, "r", manifest(M, (A,)), ["v1", "v2"])
    assert await index.manifests.delete_manifest("r", M) == ["v1", "v2"]
    assert await index.manifests.manifest_by_tag("r", "v1") is None
    with pytest.raises(LookupError):
        await index.manifests.delete_manifest("r", M)
    assert await index.repositories.list_repositories(10, None) == []


async def test_delete_tag_keeps_manifest(index: Index) -> None:
    await index.blobs.reserve_blob(A, 1)
    await index.blobs.link_blob("r", A, 1)
    await put(index, "r", manifest(M, (A,)), ["v1"])
    assert await index.manifests.delete_tag("r", "v1") == M
    assert await index.manifests.delete_tag("r", "v1") is None
    assert await index.manifests.manifest_by_digest("r", M) is not None


async def test_referrers_filter_by_artifact_type(index: Index) -> None:
    await put(index, "r", manifest(M, (), subject=N), [])
    rows = await index.manifests.referrers("r", N, None)
    assert [r.digest for r in rows] == [M]
    assert rows[0].annotations == {"k": "v"}
    assert await index.manifests.referrers("r", N, "application/x-test") == rows
    assert await index.manifests.referrers("r", N, "application/other") == []


async def test_concurrent_pushes_of_one_manifest_all_succeed(database_url: str) -> None:
    # Several writers (separate Index objects, as separate worker processes have) race on the same manifest
    # with different tags, and on one tag: every push succeeds and every tag ends up on the manifest.
    await migrate(database_url)
    indexes = [open_index(database_url) for _ in range(4)]
    try:
        await indexes[0].blobs.reserve_blob(A, 1)
        await indexes[0].blobs.reserve_blob(M, 1)
        await indexes[0].blobs.link_blob("r", A, 1)
        pushes = [
            idx.manifests.put_manifest("r", manifest(M, (A,)), [f"t{n}", "shared"]) for n, idx in enumerate(indexes * 3)
        ]
        await asyncio.gather(*pushes)
        assert await indexes[0].manifests.list_tags("r", None, None) == sorted(
            [*(f"t{n}" for n in range(12)), "shared"]
        )
        for tag in ("t0", "t11", "shared"):
            found = await indexes[1].manifests.manifest_by_tag("r", tag)
            assert found is not None
            assert found.digest == M
    finally:
        for idx in indexes:
            await idx.dispose()


async def test_audit_entry_commits_with_the_manifest_only(index: Index) -> None:
    """The push's audit event is written in the manifest's transaction: with it, and not when it fails."""
    audit = AuditStore(index.reader, index.writer)
    for digest in (A, B):
        await index.blobs.reserve_blob(digest, 1)
        await index.blobs.link_blob("r", digest, 1)
    at = datetime.now(UTC)
    failed = AuditEntry(at, "alice", None, "manifest.push", "r", {"digest": N})
    await index.blobs.reserve_blob(N, 10)
    with pytest.raises(ManifestBlobUnknown):
        await index.manifests.put_manifest("r", manifest(N, (A, "sha256:" + "e" * 64)), ["v0"], audit=failed)
    assert await audit.events(10) == []
    pushed = AuditEntry(at, "alice", "10.0.0.1", "manifest.push", "r", {"digest": M, "tags": ["v1", "v2"]})
    await index.blobs.reserve_blob(M, 10)
    await index.manifests.put_manifest("r", manifest(M, (A, B)), ["v1", "v2", "v1"], audit=pushed)
    [event] = await audit.events(10)
    assert (event.actor, event.source, event.action, event.target) == ("alice", "10.0.0.1", "manifest.push", "r")
    assert event.detail == {"digest": M, "tags": ["v1", "v2"]}
    assert await index.manifests.list_tags("r", None, None) == ["v1", "v2"]
