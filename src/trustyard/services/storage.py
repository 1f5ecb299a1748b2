"""Storage-wide operations: rebuilding the SQL index from what storage holds (``reindex``).

Reindex reads Distribution's layout (``_layers`` links, ``_manifests/revisions`` links, tag ``current``
links) under the root, so it adopts roots written by trustyard, CNCF Distribution, DTR or Harbor alike. It
only adds to the index; running it twice changes nothing. Storage does not record who pushed, but it knows
when: a tag's push time is its ``current`` link's modification time, a manifest's that of its revision link.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from trustyard.db.index import Index
from trustyard.errors import TrustyardError
from trustyard.oci.digest import Digest
from trustyard.oci.manifest import Manifest, parse_manifest
from trustyard.oci.names import RepositoryName, Tag
from trustyard.services.actor import Actor
from trustyard.services.manifests import manifest_record
from trustyard.storage import layout
from trustyard.storage.driver import StorageDriver

log = logging.getLogger(__name__)


@dataclass
class ReindexReport:
    repositories: int = 0
    blobs: int = 0
    manifests: int = 0
    tags: int = 0
    objects_listed: int = 0  # keys listed under repositories/ so far
    skipped: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "repositories": self.repositories,
            "blobs": self.blobs,
            "manifests": self.manifests,
            "tags": self.tags,
            "objects_listed": self.objects_listed,
            "skipped": len(self.skipped),
        }


#: Called with the report so far, while listing (every ``PROGRESS_EVERY`` keys) and after each repository;
#: returns False to stop (the adoption was superseded or its lease lost).
Progress = Callable[[ReindexReport], Awaitable[bool]]
PROGRESS_EVERY = 1000


class ReindexStopped(Exception):
    """Reindexing was stopped by its progress callback."""


@dataclass
class _Found:
    layers: set[Digest] = field(default_factory=set)
    revisions: set[Digest] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    linked: set[Digest] = field(default_factory=set)  # blobs linked into the index by this run (link once)


class StorageAdmin:
    def __init__(self, index: Index, storage: StorageDriver) -> None:
        self._index = index
        self._storage = storage

    async def index_is_empty(self) -> bool:
        return (await self._index.counts())["repositories"] == 0

    async def holds_repositories(self) -> bool:
        async for _key in self._storage.list(layout.REPOSITORIES):
            return True
        return False

    async def reindex(self, actor: Actor, progress: Progress | None = None) -> ReindexReport:
        """Index what storage holds; ``progress`` hears how far it got (and may stop it: ReindexStopped)."""
        actor.require_system()
        found: dict[str, _Found] = defaultdict(_Found)
        report = ReindexReport()
        async for key in self._storage.list(layout.REPOSITORIES):
            report.objects_listed += 1
            if progress is not None and report.objects_listed % PROGRESS_EVERY == 0 and not await progress(report):
                raise ReindexStopped()
            kind = layout.classify(key)
            if isinstance(kind, layout.LayerLink):
                found[kind.repository].layers.add(kind.digest)
            elif isinstance(kind, layout.RevisionLink):
                found[kind.repository].revisions.add(kind.digest)
            elif isinstance(kind, layout.TagLink):
                found[kind.repository].tags.add(kind.tag)
        for name in sorted(found):
            try:
                repository = RepositoryName.parse(name)
            except TrustyardError:
                report.skipped.append(f"{name}: not a valid repository name")
                continue
            await self._reindex_repository(repository, found[name], report)
            if progress is not None and not await progress(report):
                raise ReindexStopped()
        return report

    async def _reindex_repository(self, repository: RepositoryName, found: _Found, report: ReindexReport) -> None:
        report.repositories += 1
        for digest in sorted(found.layers):
            if await self._link_if_stored(repository, digest, found):
                report.blobs += 1
        manifests: dict[Digest, tuple[bytes, Manifest]] = {}
        for digest in sorted(found.revisions):
            try:
                payload = await self._storage.get(layout.blob_data(digest))
                manifests[digest] = (payload, parse_manifest(payload, None))
            except TrustyardError as exc:
                report.skipped.append(f"{repository}@{digest}: {exc}")
        for digest, (payload, manifest) in manifests.items():
            stored_at = await self._modified(layout.revision_link(repository, digest))
            if await self._record(repository, digest, payload, manifest, (), stored_at, report, found):
                report.manifests += 1
        for tag in sorted(found.tags):
            try:
                link = layout.tag_current_link(repository, Tag.parse(tag))
                digest = layout.parse_link(await self._storage.get(link))
            except TrustyardError as exc:
                report.skipped.append(f"{repository}:{tag}: {exc}")
                continue
            if digest not in manifests:
                report.skipped.append(f"{repository}:{tag}: points at {digest}, which has no revision link")
                continue
            payload, manifest = manifests[digest]
            pushed_at = await self._modified(link)
            if await self._record(repository, digest, payload, manifest, (tag,), pushed_at, report, found):
                report.tags += 1

    async def _modified(self, key: str) -> datetime | None:
        """When storage last wrote ``key`` (None when it is gone: the index then says now)."""
        info = await self._storage.stat(key)
        return None if info is None else datetime.fromtimestamp(info.modified, UTC)

    async def _link_if_stored(self, repository: RepositoryName, digest: Digest, found: _Found) -> bool:
        if digest in found.linked:
            return True
        info = await self._storage.stat(layout.blob_data(digest))
        if info is None:
            return False
        if not await self._index.blobs.reserve_blob(str(digest), info.size):
            return False  # garbage collection is deleting it
        await self._index.blobs.link_blob(repository.value, str(digest), info.size)
        found.linked.add(digest)
        return True

    async def _record(
        self,
        repository: RepositoryName,
        digest: Digest,
        payload: bytes,
        manifest: Manifest,
        tags: tuple[str, ...],
        pushed_at: datetime | None,
        report: ReindexReport,
        found: _Found,
    ) -> bool:
        blobs = [d.digest for d in manifest.blobs]
        for blob in blobs:
            # Some writers reference blobs without a _layers link in the repository; link what is stored.
            if not await self._link_if_stored(repository, blob, found):
                report.skipped.append(f"{repository}@{digest}: blob {blob} is not in storage")
                return False
        record = manifest_record(digest, payload, manifest, blobs)
        if not await self._index.blobs.reserve_blob(str(digest), len(payload)):
            report.skipped.append(f"{repository}@{digest}: being deleted by garbage collection")
            return False
        await self._index.manifests.put_manifest(repository.value, record, tags, pushed_at=pushed_at)
        return True
