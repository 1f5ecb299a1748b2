"""MemoryDriver: the whole StorageDriver protocol over in-process dicts, for fast unit tests.

It follows the filesystem driver's rules (same key validation, same errors, same segmented-upload checks)
so a test that passes here means something for the real backends. Several driver instances may share one
``MemoryStore`` to play "another node on the same bucket".
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field

from trustyard.errors import ObjectNotFound, StorageUnavailable
from trustyard.storage.driver import ObjectInfo, Part, UploadState, check_key, check_prefix, check_range

_CHUNK = 1024 * 1024


@dataclass
class MemoryStore:
    """The shared state: objects by key, and the parts of each open upload by token and part number."""

    objects: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    # token -> etag -> (offset, bytes): every write attempt is its own entry, so a racing retry of the same
    # part number can never change the bytes a recorded part stands for.
    uploads: dict[str, dict[str, tuple[int, bytes]]] = field(default_factory=dict)
    started: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (key, when it began)


class MemoryDriver:
    name = "memory"
    max_part_size = 5 * 1024**3

    def __init__(self, store: MemoryStore | None = None, min_part_size: int = 1) -> None:
        self.store = store if store is not None else MemoryStore()
        # Tests set an object store's minimum (S3: 5 MiB) to exercise the callers' handling of it.
        self.min_part_size = min_part_size

    async def stat(self, key: str) -> ObjectInfo | None:
        check_key(key)
        entry = self.store.objects.get(key)
        return None if entry is None else ObjectInfo(key, len(entry[0]), entry[1])

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        check_key(key)
        check_range(offset, length)
        data = self._data(key)
        end = len(data) if length is None else min(len(data), offset + length)
        for start in range(offset, end, _CHUNK):
            yield data[start : min(start + _CHUNK, end)]

    async def get(self, key: str) -> bytes:
        check_key(key)
        return self._data(key)

    async def put(self, key: str, data: bytes) -> None:
        check_key(key)
        self.store.objects[key] = (bytes(data), time.time())

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        check_key(key)
        # Collect first, publish once: a failing iterator leaves the previous object untouched.
        data = b"".join([bytes(chunk) async for chunk in chunks])
        self.store.objects[key] = (data, time.time())
        return len(data)

    async def delete(self, key: str) -> None:
        check_key(key)
        self.store.objects.pop(key, None)

    async def delete_prefix(self, prefix: str) -> None:
        for key in self._keys(check_prefix(prefix)):
            self.store.objects.pop(key, None)

    async def list(self, prefix: str) -> AsyncIterator[str]:
        for key in self._keys(check_prefix(prefix)):
            yield key

    async def move(self, source: str, destination: str) -> None:
        check_key(source)
        check_key(destination)
        entry = self.store.objects.get(source)
        if entry is None:
            raise ObjectNotFound(f"memory: {source}")
        self.store.objects[destination] = entry
        if source != destination:
            del self.store.objects[source]

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        return None

    def local_path(self, key: str) -> str | None:
        return None

    async def start_upload(self, key: str) -> UploadState:
        check_key(key)
        token = uuid.uuid4().hex
        self.store.uploads[token] = {}
        self.store.started[token] = (key, time.time())
        return UploadState(key, token)

    async def write_part(self, upload: UploadState, number: int, offset: int, chunks: AsyncIterable[bytes]) -> Part:
        parts = self._parts(upload)
        data = b"".join([bytes(chunk) async for chunk in chunks])
        etag = uuid.uuid4().hex
        parts[etag] = (offset, data)
        return Part(number, offset, len(data), etag)

    async def complete_upload(self, upload: UploadState, parts: builtins.list[Part], key: str | None = None) -> None:
        target = upload.key if key is None else check_key(key)
        stored = self._parts(upload)
        expected = 0
        for part in parts:
            have = stored.get(part.etag)
            if part.offset != expected or have is None or have[0] != part.offset or len(have[1]) != part.size:
                raise StorageUnavailable(
                    f"memory: upload {upload.token}: part {part.number} (offset {part.offset}, "
                    f"size {part.size}) does not continue the object at byte {expected} or was not written so"
                )
            if part is not parts[-1] and part.size < self.min_part_size:
                raise StorageUnavailable(
                    f"memory: part {part.number} is {part.size} bytes; parts but the last need {self.min_part_size}"
                )
            expected += part.size
        self.store.objects[target] = (b"".join(stored[p.etag][1] for p in parts), time.time())
        del self.store.uploads[upload.token]
        self.store.started.pop(upload.token, None)

    async def abort_upload(self, upload: UploadState) -> None:
        self.store.uploads.pop(upload.token, None)
        self.store.started.pop(upload.token, None)

    async def open_uploads(self, started_before: float) -> AsyncIterator[UploadState]:
        for token in list(self.store.uploads):
            key, at = self.store.started.get(token, ("", 0.0))
            if at < started_before:
                yield UploadState(key, token)

    async def sweep_staging(self, recorded: Mapping[str, Collection[str]]) -> int:
        return 0  # nothing outlives the process

    async def close(self) -> None:
        pass

    def _data(self, key: str) -> bytes:
        entry = self.store.objects.get(key)
        if entry is None:
            raise ObjectNotFound(f"memory: {key}")
        return entry[0]

    def _keys(self, prefix: str) -> builtins.list[str]:
        # A snapshot, so callers may delete while iterating.
        if not prefix:
            return sorted(self.store.objects)
        return sorted(k for k in self.store.objects if k.startswith(prefix + "/"))

    def _parts(self, upload: UploadState) -> dict[str, tuple[int, bytes]]:
        parts = self.store.uploads.get(upload.token)
        if parts is None:
            raise ObjectNotFound(f"memory: upload {upload.token} for {upload.key} is unknown (completed or aborted)")
        return parts
