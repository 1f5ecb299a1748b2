"""The copier of an online migration (services/migration.py owns the rest: starting, the plan, the lease,
resuming): one pass over the SQL index from the migration's cursor to the end, in phases.

``blobs`` (manifests included), a page at a time in digest order, each streamed source → target with its
digest computed on the way; ``links``, a repository at a time, written from the index, read back and
re-checked against it; ``recent``, what requests running across the switch wrote to the source after the copy
had passed it, and blobs found in neither backend when copied. The cursor and the report are saved after
every page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from trustyard.db.index import Index
from trustyard.db.storage_migrations import MigrationRow, Progress, StoredBlob
from trustyard.errors import ObjectNotFound, StorageUnavailable
from trustyard.oci.digest import Digest, Hasher
from trustyard.oci.names import RepositoryName, Tag
from trustyard.storage import layout
from trustyard.storage.driver import StorageDriver

#: Blobs per page (the cursor moves a page at a time) and objects copied at once.
PAGE = 64
PARALLEL = 16
#: Repositories whose links are written per page.
REPOSITORY_PAGE = 16
#: Tries per object before a storage error stops the copy (it resumes from the last page).
ATTEMPTS = 3
#: Blobs and repositories recorded this long before the migration began are looked at again at the end too:
#: the rows a request running across the switch records are stamped after it, by the clock of the node that
#: served it, which may lag this one's by seconds.
CATCH_UP_MARGIN = timedelta(seconds=15)
#: Missing and mismatched objects named in the report (the counts are always complete).
REPORT_LIMIT = 200

#: Called with the migration as it stands: after every page (saved) and every object (not saved yet).
Watcher = Callable[[MigrationRow], None]


@dataclass
class CopyReport:
    """What the copy did; stored as the migration's report (JSON) after every page."""

    blobs_copied: int = 0
    blobs_present: int = 0  # already in the target with the right digest
    bytes_copied: int = 0
    links_written: int = 0
    links_removed: int = 0  # their index row vanished while the copy ran
    caught_up: int = 0  # blobs and links written to the source by requests running when the plan switched
    deferred: list[str] = field(default_factory=list)  # in neither backend when copied: looked at again at the end
    missing: list[str] = field(default_factory=list)  # in the index, not in the source
    mismatched: list[str] = field(default_factory=list)  # bytes whose digest is not their name
    missing_count: int = 0
    mismatched_count: int = 0

    @classmethod
    def load(cls, document: dict[str, Any]) -> CopyReport:
        known = {k: v for k, v in document.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def document(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["summary"] = (
            f"{self.blobs_copied} blobs copied ({self.bytes_copied} bytes), {self.blobs_present} already there; "
            f"{self.links_written} links written and read back, {self.links_removed} removed; "
            f"{self.caught_up} caught up after the copy; "
            f"{self.missing_count} missing from the source, {self.mismatched_count} not matching their digest"
        )
        return out

    def lost(self, kind: str, what: str) -> None:
        names = self.missing if kind == "missing" else self.mismatched
        if len(names) < REPORT_LIMIT:
            names.append(what)
        if kind == "missing":
            self.missing_count += 1
        else:
            self.mismatched_count += 1


class Copy:
    """One copier's pass over the index, from the migration's cursor to the end."""

    def __init__(
        self,
        index: Index,
        source: StorageDriver,
        target: StorageDriver,
        migration: MigrationRow,
        renew: Callable[[], Any],
        watcher: Watcher,
    ) -> None:
        self._index = index
        self._source = source
        self._target = target
        self._id = migration.id
        self._row = migration
        self._phase, self._cursor = migration.phase, migration.cursor
        self._objects, self._bytes = migration.objects_done, migration.bytes_done
        self._verified, self._failed = migration.verified, migration.failed
        self._report = CopyReport.load(migration.report)
        #: Blobs this migration found missing or corrupt in the source: not tried again when catching up.
        self._lost = {entry.split(" ")[0] for entry in [*self._report.missing, *self._report.mismatched]}
        self._renew = renew
        self._watcher = watcher
        self._gate = asyncio.Semaphore(PARALLEL)

    async def run(self) -> None:
        if self._phase == "blobs":
            await self._blobs()
            await self._save("links", "")
        if self._phase == "links":
            await self._links()
            await self._save("recent", "")
        if self._phase == "recent":
            await self._recent()
            await self._save("done", "")

    async def catch_up(self) -> None:
        """Only the last pass: what was recorded since the migration began, from this copy's source to its
        target. A cancelled migration runs it from the target back to the source (services/migration.py)."""
        await self._recent()

    async def _save(self, phase: str, cursor: str) -> None:
        self._phase, self._cursor = phase, cursor
        await self._renew()
        progress = Progress(
            phase,
            cursor,
            self._objects,
            self._bytes,
            self._verified,
            self._failed,
            self._report.document(),
        )
        await self._index.migrations.record(self._id, progress)
        row = await self._index.migrations.get(self._id)
        if row is not None:
            self._row = row
            self._watcher(row)

    # Blobs.

    async def _blobs(self) -> None:
        while page := await self._index.migrations.blobs_after(self._cursor, PAGE):
            await asyncio.gather(*(self._blob(blob) for blob in page))
            await self._save("blobs", page[-1].digest)

    async def _blob(self, blob: StoredBlob) -> None:
        async with self._gate:
            await _retrying(f"copying blob {blob.digest}", lambda: self._copy_blob(blob))

    async def _copy_blob(self, blob: StoredBlob) -> None:
        digest, digest_text = Digest.parse(blob.digest), blob.digest
        key = layout.blob_data(digest)
        held = await self._target.stat(key)
        if held is not None and held.size == blob.size and await _digest_of(self._target, key, digest) == digest:
            self._report.blobs_present += 1
            self._done(blob.size, verified=True)
            return
        hasher = Hasher(digest.algorithm)
        try:
            written = await self._target.write(key, _hashing(self._source.read(key), hasher))
        except ObjectNotFound:
            # In neither backend: a push reserves a blob's row before it writes the bytes (to the target), so
            # this may be one under way. Looked at again when catching up; missing only if still nowhere.
            if digest_text not in self._report.deferred:
                self._report.deferred.append(digest_text)
            self._done(0, verified=False)
            return
        if hasher.digest() != digest or written != blob.size:
            await self._target.delete(key)  # never leave bytes under a name they do not have
            self._lost.add(blob.digest)
            self._report.lost(
                "mismatched",
                f"{blob.digest} (read {written} bytes hashing to {hasher.digest()})",
            )
            self._failed += 1
            self._done(0, verified=False)
            return
        self._report.blobs_copied += 1
        self._report.bytes_copied += written
        self._done(written, verified=True)

    def _done(self, size: int, *, verified: bool) -> None:
        self._objects += 1
        self._bytes += size
        self._verified += int(verified)
        # Between pages too, so a progress bar moves with every object (only pages are saved).
        self._watcher(
            replace(
                self._row,
                phase=self._phase,
                objects_done=self._objects,
                bytes_done=self._bytes,
                verified=self._verified,
                failed=self._failed,
                updated_at=datetime.now(UTC),
            )
        )

    # What changed while the copy ran.

    async def _recent(self) -> None:
        """A request that was already running when the plan switched still wrote to the source (it holds the
        driver it began with) and may have been indexed after the copy passed its digest or repository: go
        over what was recorded since the migration began once more. (Everything recorded from now on was
        written by a request that began after the switch, so to the target.)"""
        since = _aware(self._row.started_at) - CATCH_UP_MARGIN
        after = ""
        while page := await self._index.migrations.blobs_touched_since(since, after, PAGE):
            await asyncio.gather(*(self._recent_blob(blob) for blob in page))
            after = page[-1].digest
            await self._save("recent", "")
        for name in await self._index.migrations.repositories_changed_since(since):
            await self._repository(name, catching_up=True)
        await asyncio.gather(*(self._deferred(digest) for digest in list(self._report.deferred)))
        self._report.deferred.clear()

    async def _deferred(self, text: str) -> None:
        """A blob the copy found in neither backend: there by now (its push finished), or missing."""
        async with self._gate:
            key = layout.blob_data(Digest.parse(text))
            if await self._target.stat(key) is not None:
                return
            size = await self._index.blobs.blob_size(text)
            if size is None or not await self._index.migrations.blob_referenced(text):
                # Its row is gone, or nothing references it yet: a push still under way (its bytes go to the
                # target), or one that died (garbage for the next collection). Nothing to serve is lost.
                return
            blob = StoredBlob(text, size)
            await _retrying(f"copying blob {text}", lambda: self._copy_blob(blob))
            if text not in self._lost and await self._target.stat(key) is None:
                self._lost.add(text)
                self._report.lost("missing", text)
                self._failed += 1

    async def _recent_blob(self, blob: StoredBlob) -> None:
        async with self._gate:
            held = await self._target.stat(layout.blob_data(Digest.parse(blob.digest)))
            if (held is not None and held.size == blob.size) or blob.digest in self._lost:
                return  # a push wrote it there (and verified it), or the copy did (or reported it lost)
            self._report.caught_up += 1
            await _retrying(f"copying blob {blob.digest}", lambda: self._copy_blob(blob))

    # Links.

    async def _links(self) -> None:
        while page := await self._index.migrations.repositories_after(self._cursor, REPOSITORY_PAGE):
            for name in page:
                await self._repository(name)
            await self._save("links", page[-1])

    async def _repository(self, name: str, *, catching_up: bool = False) -> None:
        repository = RepositoryName(name)
        before = _link_files(repository, await self._index.migrations.links(name))
        await asyncio.gather(*(self._link(key, body, catching_up) for key, body in before.items()))
        # Re-read the index: a delete that raced the writes above removed its row after we read it, and its
        # storage delete may have run before our write. Storage first, index second means the index now says
        # what must stay: remove what it no longer names, rewrite what moved (a tag pushed meanwhile).
        after = _link_files(repository, await self._index.migrations.links(name))
        for key in before.keys() - after.keys():
            await self._target.delete(key)
            self._report.links_removed += 1
        for key, body in after.items():
            if before.get(key) != body:
                await self._link(key, body, catching_up)

    async def _link(self, key: str, body: bytes, catching_up: bool = False) -> None:
        async with self._gate:
            await _retrying(
                f"writing the link {key}",
                lambda: self._write_link(key, body, catching_up),
            )

    async def _write_link(self, key: str, body: bytes, catching_up: bool) -> None:
        if catching_up:
            # Most links are there already (the copy or a push wrote them): look before writing.
            try:
                if await self._target.get(key) == body:
                    return
            except ObjectNotFound:
                pass
        # Written whatever the target holds (a link is a few bytes: writing costs what checking would), then
        # read back and compared.
        await self._target.put(key, body)
        if await self._target.get(key) != body:
            raise StorageUnavailable(f"the link {key} read back different bytes from the target")
        if catching_up:
            self._report.caught_up += 1
            return
        self._report.links_written += 1
        self._done(0, verified=True)


async def _retrying(what: str, attempt: Callable[[], Awaitable[None]]) -> None:
    """``attempt`` up to ``ATTEMPTS`` times over storage errors (a store's hiccup); then the copy stops (and
    resumes from its last page)."""
    for number in range(1, ATTEMPTS + 1):
        try:
            await attempt()
            return
        except (StorageUnavailable, OSError) as exc:
            if number == ATTEMPTS:
                raise StorageUnavailable(f"{what} failed {ATTEMPTS} times: {exc}") from exc
            await asyncio.sleep(0.5 * number)


def _link_files(repository: RepositoryName, links: Any) -> dict[str, bytes]:
    """Distribution's link files for what the index says of ``repository``: key -> body."""
    files: dict[str, bytes] = {}
    for text in links.layers:
        digest = Digest.parse(text)
        files[layout.layer_link(repository, digest)] = layout.link_body(digest)
    for text in links.revisions:
        digest = Digest.parse(text)
        files[layout.revision_link(repository, digest)] = layout.link_body(digest)
    for name, text in links.tags.items():
        tag, digest = Tag(name), Digest.parse(text)
        files[layout.tag_current_link(repository, tag)] = layout.link_body(digest)
        files[layout.tag_index_link(repository, tag, digest)] = layout.link_body(digest)
    return files


async def _hashing(chunks: AsyncIterator[bytes], hasher: Hasher) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        hasher.update(chunk)
        yield chunk


async def _digest_of(driver: StorageDriver, key: str, expected: Digest) -> Digest:
    """The digest (in ``expected``'s algorithm) of the bytes ``driver`` holds at ``key``."""
    hasher = Hasher(expected.algorithm)
    async for chunk in driver.read(key):
        hasher.update(chunk)
    return hasher.digest()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
