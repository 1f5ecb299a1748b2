"""Digests and manifest records the db tests share."""

from __future__ import annotations

from trustyard.db.index import Index
from trustyard.db.manifests import NewManifest

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
M = "sha256:" + "c" * 64
N = "sha256:" + "d" * 64


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


async def put(index: Index, repository: str, record: NewManifest, tags: list[str]) -> None:
    """Push a manifest as the service does: reserve its bytes' digest, then record it."""
    await index.blobs.reserve_blob(record.digest, len(record.payload))
    await index.manifests.put_manifest(repository, record, tags)
