"""Blob uploads: sessions kept in SQL, bytes streamed into storage parts, hashed once, verified, published.

A session's state (storage key, the driver's token, the parts written, and the running sha256 state after
each part) is a row in ``uploads``, so a PATCH or the final PUT can land on any worker, on another node or
after a restart, and every byte is still hashed exactly once, while it streams in. Only a final digest in
another algorithm (sha512) makes the PUT re-read the staged bytes.

Publishing a blob: staged bytes are assembled at the blob key when the running hash already proved their
digest (else assembled at the upload's key, verified, and moved there), or dropped when that blob already
exists; then the repository's ``_layers`` link is written, and only then is the blob recorded in the index.

A session remembers the storage backend generation it began on (``backend``): its PATCHes and PUT use that
backend's driver on any worker, even after a storage switch. A session that completes on a backend that is no
longer the active one is assembled there and stream-copied into the active backend, its digest verified while
copying, before it is published: the index never names a blob the active backend lacks. A session whose
backend is gone fails with BLOB_UPLOAD_UNKNOWN, and the client starts the upload again.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trustyard import metrics
from trustyard.db.index import Index
from trustyard.db.uploads import ParkedPiece, PartPiece, UploadPiece, UploadRow
from trustyard.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    RangeInvalid,
    SizeInvalid,
    StorageBackendGone,
    UploadOutOfOrder,
)
from trustyard.oci.digest import Digest, Hasher
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Action, Actor
from trustyard.services.blobs import BlobInfo, blob_target
from trustyard.services.hashing import hashed
from trustyard.services.repositories import Pullable
from trustyard.services.reservations import reserve
from trustyard.services.switch import StorageSwitch
from trustyard.services.webhooks import Webhooks
from trustyard.storage import layout
from trustyard.storage.driver import Part, StorageDriver, UploadState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Held:
    """A session's whole content in memory (``Uploads._last_piece``) and its running hash over it."""

    data: bytes
    hasher: Hasher


@dataclass(frozen=True, slots=True)
class UploadStatus:
    id: str
    repository: RepositoryName
    size: int


@dataclass(frozen=True, slots=True)
class ContentRange:
    """An inclusive byte range a PATCH says it carries."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


#: Repositories holding a blob that a mount without ``from`` considers (the first the caller may pull wins).
MOUNT_CANDIDATES = 100


class Uploads:
    def __init__(
        self, index: Index, storage: StorageDriver, switch: StorageSwitch, pullable: Pullable, events: Webhooks
    ) -> None:
        """``storage`` is the driver of the plan in force; ``switch`` gives each session the driver of the
        backend it began on; ``pullable`` answers, from the policy, which repositories an actor may pull
        (cross-repository mounts); ``events`` queues webhook events."""
        self._index = index
        self._storage = storage
        self._switch = switch
        self._pullable = pullable
        self._events = events

    @property
    def min_chunk_size(self) -> int:
        return self._storage.min_part_size

    async def start(self, actor: Actor, repository: RepositoryName) -> UploadStatus:
        """Open a session. On an object store its multipart upload waits for a first part (``_begun``): most
        blobs (configs, small layers) never fill one and are put whole, so opening it here and aborting it at
        the PUT would cost two requests per blob for nothing."""
        actor.require(repository, Action.PUSH)
        upload_id = str(uuid.uuid4())
        backend = self._switch.plan.active  # new writes go where they will stay
        driver = await self._switch.driver(backend)
        key = layout.upload_data(repository, upload_id)
        token = "" if driver.min_part_size > 1 else (await driver.start_upload(key)).token
        now = datetime.now(UTC)
        await self._index.uploads.create_upload(UploadRow(upload_id, repository.value, key, token, (), 0, now, backend))
        metrics.UPLOADS.labels("started").inc()
        return UploadStatus(upload_id, repository, 0)

    async def mount(
        self, actor: Actor, repository: RepositoryName, digest: Digest, source: RepositoryName | None
    ) -> BlobInfo | None:
        """Link a blob of ``source`` into ``repository``; None when it cannot be mounted (caller falls back).

        A token scoped to the destination only still mounts when its subject may pull ``source`` by its own
        grants (the policy, not the token, decides). A caller who may not pull ``source`` gets None before
        the index is asked, so it cannot tell an existing blob from a missing one. Without ``source`` (the
        spec's mount without ``from``) the blob is mounted from any repository holding it that the caller may
        pull; repositories it may not pull are never looked at, so nothing about them shows."""
        actor.require(repository, Action.PUSH)
        if source is None:
            source = await self._readable_source(actor, digest)
            if source is None:
                return None
        elif not await self._may_pull(actor, source.value):
            return None
        size = await self._index.blobs.linked_blob_size(source.value, str(digest))
        # Touch before writing the link file, so garbage collection keeps the blob (or we fall back).
        if size is None or not await self._index.blobs.touch_blob(str(digest)):
            return None
        await self._link(repository, digest, size)
        await self._events.emit(actor, "mount", blob_target(repository, BlobInfo(digest, size), source))
        return BlobInfo(digest, size)

    async def _may_pull(self, actor: Actor, name: str) -> bool:
        return actor.can(name, Action.PULL) or name in await self._pullable(actor, [name])

    async def _readable_source(self, actor: Actor, digest: Digest) -> RepositoryName | None:
        holders = await self._index.blobs.repositories_linking(str(digest), MOUNT_CANDIDATES)
        readable = await self._pullable(actor, holders)
        return RepositoryName.parse(readable[0]) if readable else None

    async def status(self, actor: Actor, repository: RepositoryName, upload_id: str) -> UploadStatus:
        actor.require(repository, Action.PUSH)
        row = await self._row(repository, upload_id)
        return UploadStatus(row.id, repository, row.size)

    async def append(
        self,
        actor: Actor,
        repository: RepositoryName,
        upload_id: str,
        chunks: AsyncIterable[bytes],
        content_range: ContentRange | None = None,
    ) -> UploadStatus:
        actor.require(repository, Action.PUSH)
        row = await self._row(repository, upload_id)
        _check_in_order(row, content_range)
        size = await self._write_part(await self._session_driver(row), row, chunks, content_range)
        return UploadStatus(row.id, repository, size)

    async def complete(
        self,
        actor: Actor,
        repository: RepositoryName,
        upload_id: str,
        digest: Digest,
        chunks: AsyncIterable[bytes] | None = None,
        content_range: ContentRange | None = None,
    ) -> BlobInfo:
        actor.require(repository, Action.PUSH)
        row = await self._row(repository, upload_id)
        driver = await self._session_driver(row)
        if chunks is not None:
            _check_in_order(row, content_range)
        held: _Held | None = None
        if chunks is not None or row.parked is not None:
            held = await self._last_piece(driver, row, chunks or _nothing(), content_range if chunks else None)
            if held is None:
                row = await self._row(repository, upload_id)
        size, hasher = (len(held.data), held.hasher) if held else (row.size, _running_hash(row))
        if hasher is not None and (hasher.size != size or hasher.algorithm != digest.algorithm):
            hasher = None  # the running hash does not cover the bytes, or is another algorithm: rehash them
        # Claim the session: of two racing PUTs only one goes on; the other finds no upload. When the running
        # hash already proves the digest (the usual case), the same transaction reserves the blob: its size is
        # known right, and the reservation only has to come before the bytes reach the blob key (``_assemble``).
        if hasher is not None and hasher.digest() == digest:
            claimed, reserved = await self._index.uploads.claim_and_reserve(upload_id, str(digest), size)
        else:
            claimed, reserved = await self._index.uploads.delete_upload(upload_id), False
        if not claimed:
            raise BlobUploadUnknown(f"upload {upload_id[:64]!r} was completed or cancelled by another request")
        state = _state(row)
        try:
            in_place = await self._assemble(driver, row, state, digest, size, hasher, reserved, held)
        except BaseException:
            metrics.UPLOADS.labels("failed").inc()
            await self._tidy(driver, layout.upload_dir(repository, upload_id), state)
            raise
        try:
            if in_place:
                await self._link(repository, digest, size)
            else:
                await self._publish(repository, digest, row.storage_key, size, driver, row.backend, reserved=reserved)
        finally:
            await self._tidy(driver, layout.upload_dir(repository, upload_id))
        metrics.UPLOADS.labels("completed").inc()
        await self._events.emit(actor, "push", blob_target(repository, BlobInfo(digest, size)))
        return BlobInfo(digest, size)

    async def monolithic(
        self, actor: Actor, repository: RepositoryName, digest: Digest, chunks: AsyncIterable[bytes]
    ) -> BlobInfo:
        """POST with ``?digest=``: the whole blob in one request, no session row needed."""
        actor.require(repository, Action.PUSH)
        upload_id = str(uuid.uuid4())
        key = layout.upload_data(repository, upload_id)
        hasher = Hasher(digest.algorithm)
        metrics.UPLOADS.labels("started").inc()
        # One backend for the whole request, as a session has: a switch while the body streams must not leave
        # the staged bytes on one backend and the move looking for them on another.
        generation = self._switch.plan.active
        driver = await self._switch.driver(generation)
        try:
            size = await driver.write(key, hashed(chunks, hasher))
            self._check(digest, hasher.digest())
            await self._publish(repository, digest, key, size, driver, generation)
            metrics.UPLOADS.labels("completed").inc()
        except BaseException:
            metrics.UPLOADS.labels("failed").inc()
            raise
        finally:
            await self._tidy(driver, layout.upload_dir(repository, upload_id))
        await self._events.emit(actor, "push", blob_target(repository, BlobInfo(digest, size)))
        return BlobInfo(digest, size)

    async def cancel(self, actor: Actor, repository: RepositoryName, upload_id: str) -> None:
        actor.require(repository, Action.PUSH)
        row = await self._row(repository, upload_id)
        await self._index.uploads.delete_upload(upload_id)
        metrics.UPLOADS.labels("cancelled").inc()
        driver = await self._session_driver(row)
        if (state := _state(row)) is not None:
            await driver.abort_upload(state)
        await driver.delete_prefix(layout.upload_dir(repository, upload_id))

    async def purge(self, actor: Actor, older_than: timedelta) -> int:
        """Cancel sessions idle for longer than ``older_than`` (clients that gave up); returns how many.

        Safe on several workers at once: each session is claimed by deleting its row first.
        """
        actor.require_system()
        purged = 0
        for row in await self._index.uploads.stale_uploads(datetime.now(UTC) - older_than):
            if not await self._index.uploads.delete_upload(row.id):
                continue  # another worker purged or finished it
            try:
                driver = await self._switch.driver(row.backend)
            except StorageBackendGone:
                driver = None  # nothing to remove where nothing can be reached
            if driver is not None:
                if (state := _state(row)) is not None:
                    await driver.abort_upload(state)
                await driver.delete_prefix(row.storage_key.rpartition("/")[0])
            purged += 1
            metrics.UPLOADS.labels("expired").inc()
        return purged

    async def sweep_interrupted(self, actor: Actor) -> int:
        """Remove staged bytes that uploads cut off by a crash left behind (what no session records); returns
        how many files went. Only ``serve`` calls it, at start, when the data-dir lock says nothing else
        writes; the sessions themselves stay, so their clients resume where the recorded parts end."""
        actor.require_system()
        sessions = await self._index.uploads.stale_uploads(datetime.max.replace(tzinfo=UTC))  # all of them
        active = self._switch.plan.active
        recorded = {row.token: {part.etag for part in row.parts} for row in sessions if row.backend == active}
        return await self._storage.sweep_staging(recorded)

    async def _tidy(self, driver: StorageDriver, upload_dir: str, state: UploadState | None = None) -> None:
        """Remove what a finished or failed upload left in storage. Failures here are logged, never raised:
        they must not hide the error that ended the upload (a storage outage fails both), and what stays
        behind is invisible staging that the purge of idle sessions and garbage collection remove."""
        try:
            if state is not None:
                await driver.abort_upload(state)
            await driver.delete_prefix(upload_dir)
        except Exception as exc:
            log.warning("could not remove upload staging %s: %s", upload_dir, exc)

    async def _row(self, repository: RepositoryName, upload_id: str) -> UploadRow:
        row = await self._index.uploads.upload(repository.value, upload_id)
        if row is None:
            raise BlobUploadUnknown(f"upload {upload_id[:64]!r} is not in progress in {repository}")
        return row

    async def _session_driver(self, row: UploadRow) -> StorageDriver:
        """The driver of the backend the session began on; a session whose backend is gone is unknown (the
        client starts the upload again, on the active backend)."""
        try:
            return await self._switch.driver(row.backend)
        except StorageBackendGone as exc:
            raise BlobUploadUnknown(
                f"upload {row.id[:64]!r} began on a storage backend that is gone ({exc.message}); "
                "start the upload again"
            ) from None

    async def _copy_to_active(
        self, source: StorageDriver, key: str, target: StorageDriver, blob_key: str, digest: Digest
    ) -> None:
        """Stream the assembled blob from the backend it was staged on into the active one, verifying its digest
        on the way; a mismatch (the old backend changed the bytes) fails the upload and keeps nothing."""
        hasher = Hasher(digest.algorithm)
        staged = f"{key}.copy"  # written next to the staging, moved into place only once verified
        await target.write(staged, hashed(source.read(key), hasher))
        try:
            self._check(digest, hasher.digest())
            await target.move(staged, blob_key)
        finally:
            with contextlib.suppress(Exception):
                await target.delete(staged)

    async def _write_part(
        self,
        driver: StorageDriver,
        row: UploadRow,
        chunks: AsyncIterable[bytes],
        content_range: ContentRange | None,
        final: bool = False,
    ) -> int:
        """Stream one request body into the session; returns the session's new size.

        Object stores refuse parts under ``min_part_size`` (S3: 5 MiB) except the last, and we learn which
        part is last only at the final PUT. So a body that leaves fewer bytes than that is *parked* as a small
        object of its own and sent, ahead of the next body, as the start of the next part.
        """
        hasher = _running_hash(row)
        if content_range is not None:
            # Checked while the bytes flow: a short or long body fails the part, so the driver discards it.
            chunks = _exactly(chunks, content_range.length, row.size)
        body: AsyncIterable[bytes] = chunks if hasher is None else hashed(chunks, hasher)
        parts, parked = row.parts, row.parked
        committed = row.size - (parked.size if parked else 0)
        prefix = await driver.get(parked.key) if parked else b""
        head, rest = await _lookahead(body, driver.min_part_size - len(prefix))
        if rest is None and not head and (parked is None or not final):
            return row.size  # an empty body changes nothing
        pending = len(prefix) + len(head)
        piece: UploadPiece
        if rest is None and pending < driver.min_part_size and not final:
            key = layout.upload_parked(row.storage_key, uuid.uuid4().hex)
            await driver.put(key, prefix + head)
            piece = ParkedPiece(key, committed, pending, _saved(hasher))
        else:
            state = await self._begun(driver, row)
            part = await driver.write_part(state, len(parts) + 1, committed, _chain(prefix + head, rest))
            piece = PartPiece(part.number, part.offset, part.size, part.etag, _saved(hasher))
        if not await self._index.uploads.advance_upload(row.id, row.size, (*parts, piece), committed + piece.size):
            raise RangeInvalid("the upload was advanced by another request at the same time; ask for its status")
        if parked is not None:
            await driver.delete(parked.key)
        return committed + piece.size

    async def _begun(self, driver: StorageDriver, row: UploadRow) -> UploadState:
        """The session's storage upload, begun now if this is its first part (object stores, ``start``). Its
        token is recorded before the part is written: garbage collection aborts open uploads that no session
        names, and a first part may stream for longer than its grace period."""
        if (state := _state(row)) is not None:
            return state
        state = await driver.start_upload(row.storage_key)
        if not await self._index.uploads.begin_upload(row.id, state.token):
            with contextlib.suppress(Exception):  # what is left, garbage collection aborts: it is named nowhere
                await driver.abort_upload(state)
            raise RangeInvalid("the upload was advanced by another request at the same time; ask for its status")
        return state

    async def _rehash(self, driver: StorageDriver, key: str, algorithm: str) -> Hasher:
        hasher = Hasher(algorithm)
        async for chunk in driver.read(key):
            hasher.update(chunk)
        return hasher

    @staticmethod
    def _check(expected: Digest, actual: Digest) -> None:
        if expected != actual:
            raise DigestInvalid(
                f"the uploaded content has digest {actual}, not {expected}; nothing was stored",
                detail={"expected": str(expected), "actual": str(actual)},
            )

    async def _last_piece(
        self, driver: StorageDriver, row: UploadRow, chunks: AsyncIterable[bytes], content_range: ContentRange | None
    ) -> _Held | None:
        """Take the session's last body. On an object store, a session that never filled a part (a config, a
        small layer: under ``min_part_size``, which S3 refuses but as the last part and which costs Swift more
        requests than an object) comes back whole with its running hash, to be put as one object: as a one-part
        multipart upload, completed and then moved, its PUT cost 11 requests on S3 instead of 6 (no upload is
        begun for it either, ``_begun``). Else the body is written as the last part (None)."""
        parked = row.parked
        hasher = _running_hash(row)
        if row.parts or hasher is None or driver.min_part_size <= 1:
            await self._write_part(driver, row, chunks, content_range, final=True)
            return None
        if content_range is not None:
            chunks = _exactly(chunks, content_range.length, row.size)
        head, rest = await _lookahead(chunks, driver.min_part_size - (parked.size if parked else 0))
        if rest is not None:
            await self._write_part(driver, row, _chain(head, rest), None, final=True)
            return None
        hasher.update(head)
        return _Held((await driver.get(parked.key) if parked else b"") + head, hasher)

    async def _assemble(
        self,
        driver: StorageDriver,
        row: UploadRow,
        state: UploadState | None,
        digest: Digest,
        size: int,
        hasher: Hasher | None,
        reserved: bool,
        held: _Held | None,
    ) -> bool:
        """Assemble the session's bytes (its parts, or ``held``) and check their digest. True when they went
        straight to the blob's key (the running hash proved the digest, the blob is reserved, and the
        session's backend is still the active one): one step, where assembling at the upload's key and moving
        after took two (on the filesystem two directories made and removed per blob, on Swift five requests).
        False when they are at the upload's key, for ``_publish``. (A storage switch between reading the plan
        and the assembly is the window ``_publish`` leaves open too: one call.)"""
        parts = _driver_parts(row)
        if state is not None and not parts:
            await driver.abort_upload(state)  # begun at POST without a part (a session of an earlier release)
            state = None
        assert state is not None or not parts, "a session's upload begins before its first part is recorded"
        if reserved and self._switch.plan.active == row.backend:
            blob_key = layout.blob_data(digest)
            existing = await driver.stat(blob_key)
            if existing is not None and existing.size == size:
                if state is not None:
                    await driver.abort_upload(state)  # the blob is there already: nothing to assemble
            elif state is not None:
                await driver.complete_upload(state, parts, blob_key)
            else:  # the bytes held, or an empty blob
                await driver.put(blob_key, held.data if held is not None else b"")
            return True
        if held is not None:
            # Checked before anything is written: by the running hash, or (another algorithm) over the bytes held.
            self._check(digest, hasher.digest() if hasher is not None else Digest.of(held.data, digest.algorithm))
            await driver.put(row.storage_key, held.data)
            return False
        if state is not None:
            await driver.complete_upload(state, parts)
        else:  # an empty blob: object stores refuse a multipart upload without parts
            await driver.put(row.storage_key, b"")
        if hasher is None:
            hasher = await self._rehash(driver, row.storage_key, digest.algorithm)
        self._check(digest, hasher.digest())
        return False

    async def _publish(
        self,
        repository: RepositoryName,
        digest: Digest,
        staged_key: str,
        size: int,
        driver: StorageDriver,
        generation: int,
        *,
        reserved: bool = False,
    ) -> None:
        """Put the staged bytes in place on the active backend: a move when they were written to it (``driver``
        is generation ``generation``), else, the storage plan having switched meanwhile, a copy from where they
        were written, digest verified, that leaves the old backend as it was. (Still open: a switch between
        reading the plan here and the move; the window is this one call, not the whole body.) ``reserved``:
        the caller reserved the blob already (with the claim of its session)."""
        # Reserve first: garbage collection then leaves the blob's bytes alone (or has finished deleting them).
        if not reserved:
            await reserve(self._index, self._storage, digest, size)
        blob_key = layout.blob_data(digest)
        active = self._switch.plan.active
        target = driver if active == generation else await self._switch.driver(active)
        existing = await target.stat(blob_key)
        if existing is None or existing.size != size:
            if target is driver:
                await driver.move(staged_key, blob_key)
            else:
                await self._copy_to_active(driver, staged_key, target, blob_key, digest)
        await self._link(repository, digest, size)

    async def _link(self, repository: RepositoryName, digest: Digest, size: int) -> None:
        await self._storage.put(layout.layer_link(repository, digest), layout.link_body(digest))
        await self._index.blobs.link_blob(repository.value, str(digest), size)


def _check_in_order(row: UploadRow, content_range: ContentRange | None) -> None:
    """A chunk must start where the upload's bytes end; a chunk without Content-Range is appended there."""
    if content_range is not None and content_range.start != row.size:
        raise UploadOutOfOrder(
            f"chunk starts at byte {content_range.start} but the upload holds {row.size} bytes; "
            f"send the range starting at byte {row.size}",
            repository=row.repository,
            upload_id=row.id,
            size=row.size,
        )


def _driver_parts(row: UploadRow) -> list[Part]:
    """The session's parts as its driver wrote them (for ``complete_upload``)."""
    return [Part(p.number, p.offset, p.size, p.etag) for p in row.parts]


def _state(row: UploadRow) -> UploadState | None:
    """The session's storage upload; None while it has not begun (an object store before the first part)."""
    return UploadState(row.storage_key, row.token) if row.token else None


def _running_hash(row: UploadRow) -> Hasher | None:
    """The session's sha256 so far, restored from the last piece; None when it cannot be (then: rehash)."""
    if not row.pieces:
        return Hasher()
    saved = row.pieces[-1].hash_state
    return None if saved is None else Hasher.resume("sha256", saved, row.size)


def _saved(hasher: Hasher | None) -> bytes | None:
    """The running hash's state to keep with a piece; None when there is none to keep."""
    return hasher.state() if hasher is not None else None


async def _lookahead(chunks: AsyncIterable[bytes], need: int) -> tuple[bytes, AsyncIterator[bytes] | None]:
    """Read at least ``need`` bytes (or to the end): the bytes read, and the rest (None when it ended)."""
    iterator = aiter(chunks)
    read: list[bytes] = []
    size = 0
    while size < need:
        try:
            chunk = await anext(iterator)
        except StopAsyncIteration:
            return _joined(read), None
        read.append(chunk)
        size += len(chunk)
    return _joined(read), iterator


def _joined(chunks: list[bytes]) -> bytes:
    # One copy, and none for a single chunk: the head of an object-store part is megabytes.
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _chain(head: bytes, rest: AsyncIterator[bytes] | None) -> AsyncIterator[bytes]:
    if head:
        yield head
    if rest is not None:
        async for chunk in rest:
            yield chunk


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing


async def _exactly(chunks: AsyncIterable[bytes], length: int, offset: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > length:
            break
        yield chunk
    if size != length:
        raise SizeInvalid(
            f"Content-Range says {length} bytes but the body had {'more' if size > length else size}; chunk discarded",
            detail={"size": offset},
        )


def parse_content_range(header: str) -> ContentRange:
    """``start-end`` (what the spec asks for) or ``bytes start-end/*`` (what some clients send)."""
    text = header.strip()
    if text.startswith("bytes "):
        text = text[len("bytes ") :].split("/", 1)[0].strip()
    start_text, sep, end_text = text.partition("-")
    if not sep or not (start_text + end_text).isascii() or not start_text.isdigit() or not end_text.isdigit():
        raise BlobUploadInvalid(f"invalid Content-Range {header[:100]!r}: expected START-END, e.g. 0-1023")
    start, end = int(start_text), int(end_text)
    if end < start:
        raise RangeInvalid(f"invalid Content-Range {header[:100]!r}: end before start")
    return ContentRange(start, end)
