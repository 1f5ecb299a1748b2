"""Blobs in a repository: existence and size, reading (local file, redirect or stream), unlinking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from trustyard.db.index import Index
from trustyard.errors import BlobInUse, BlobUnknown
from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Action, Actor
from trustyard.services.audit import Audit
from trustyard.services.webhooks import Target, Webhooks
from trustyard.storage import layout
from trustyard.storage.driver import StorageDriver

OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int


@dataclass(frozen=True, slots=True)
class BlobContent:
    """How to deliver a blob: a local ``path`` (the HTTP edge reads the file), a ``redirect`` URL, or ``stream()``."""

    info: BlobInfo
    path: str | None
    redirect: str | None
    key: str


class Blobs:
    def __init__(self, index: Index, storage: StorageDriver, audit: Audit, events: Webhooks) -> None:
        self._index = index
        self._storage = storage
        self._audit = audit
        self._events = events

    async def stat(self, actor: Actor, repository: RepositoryName, digest: Digest) -> BlobInfo:
        actor.require(repository, Action.PULL)
        size = await self._index.blobs.linked_blob_size(repository.value, str(digest))
        if size is None:
            raise BlobUnknown(f"blob {digest} is not in repository {repository}", detail={"digest": str(digest)})
        return BlobInfo(digest, size)

    async def open(self, actor: Actor, repository: RepositoryName, digest: Digest) -> BlobContent:
        info = await self.stat(actor, repository, digest)
        key = layout.blob_data(digest)
        path = self._storage.local_path(key)
        redirect = None if path else await self._storage.redirect_url(key)
        if path is None and redirect is None and await self._storage.stat(key) is None:
            raise BlobUnknown(f"blob {digest} is indexed but missing from storage; run `trustyard storage reindex`")
        await self._events.emit(actor, "pull", blob_target(repository, info))
        return BlobContent(info, path, redirect, key)

    def stream(self, content: BlobContent, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._storage.read(content.key, offset, length)

    async def delete(self, actor: Actor, repository: RepositoryName, digest: Digest) -> None:
        actor.require(repository, Action.DELETE)
        user = await self._index.blobs.blob_referenced_by(repository.value, str(digest))
        if user is not None:
            raise BlobInUse(
                f"blob {digest} is used by manifest {user} in {repository}; delete that manifest first",
                detail={"manifest": user},
            )
        # Index first, then storage: the index must never point at a link that is gone.
        if not await self._index.blobs.unlink_blob(repository.value, str(digest)):
            raise BlobUnknown(f"blob {digest} is not in repository {repository}", detail={"digest": str(digest)})
        await self._storage.delete(layout.layer_link(repository, digest))
        await self._audit.record(actor, "blob.delete", repository.value, digest=str(digest))
        await self._events.emit(actor, "delete", Target("blobs", repository.value, str(digest)))


def blob_target(repository: RepositoryName, info: BlobInfo, source: RepositoryName | None = None) -> Target:
    """A blob as webhook events describe it (Distribution gives blobs the octet-stream media type)."""
    source_name = source.value if source else None
    return Target("blobs", repository.value, str(info.digest), OCTET_STREAM, info.size, None, source_name)
