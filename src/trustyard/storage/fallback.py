"""FallbackDriver: the storage a worker serves while a migration copies one backend into another.

Reads go to the *primary* (the backend being migrated to) and, on a miss, to the *fallback* (the backend
being migrated from), so everything not copied yet is still served. Everything that writes goes to the
primary only: new pushes land where they will stay, and the old backend is left exactly as it was (the
operator deletes it once the migration's report says everything arrived).

Deleting a key removes it from the primary only, so a read of a key deleted during the migration may still
find the fallback's copy. Nothing the registry serves depends on that: every read of a blob, a manifest or a
tag is checked against the SQL index first, and the migration writes links from the index, not from the old
backend (services/migration.py).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, AsyncIterator, Collection, Mapping

from trustyard.errors import ObjectNotFound
from trustyard.storage.driver import ObjectInfo, Part, StorageDriver, UploadState


class FallbackDriver:
    def __init__(self, primary: StorageDriver, fallback: StorageDriver) -> None:
        self.primary = primary
        self.fallback = fallback

    @property
    def name(self) -> str:
        return self.primary.name  # metrics and logs: writes, and most reads once copied, are the primary's

    @property
    def min_part_size(self) -> int:
        return self.primary.min_part_size

    @property
    def max_part_size(self) -> int:
        return self.primary.max_part_size

    async def stat(self, key: str) -> ObjectInfo | None:
        found = await self.primary.stat(key)
        return found if found is not None else await self.fallback.stat(key)

    async def get(self, key: str) -> bytes:
        try:
            return await self.primary.get(key)
        except ObjectNotFound:
            return await self.fallback.get(key)

    async def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        chunks = self.primary.read(key, offset, length)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            return  # an empty object (or an empty range) in the primary
        except ObjectNotFound:
            # Missing from the primary before a byte was sent: not copied yet. (A miss after bytes went out
            # is a real error: the object vanished mid-read.)
            async for chunk in self.fallback.read(key, offset, length):
                yield chunk
            return
        yield first
        async for chunk in chunks:
            yield chunk

    async def list(self, prefix: str) -> AsyncIterator[str]:
        seen: set[str] = set()
        async for key in self.primary.list(prefix):
            seen.add(key)
            yield key
        async for key in self.fallback.list(prefix):
            if key not in seen:
                yield key

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        # Redirect only to the primary, and only when it holds the key; otherwise serve through us, which
        # falls back. (A presigned URL cannot fall back by itself.)
        if await self.primary.stat(key) is None:
            return None
        return await self.primary.redirect_url(key, method)

    def local_path(self, key: str) -> str | None:
        return self.primary.local_path(key) or self.fallback.local_path(key)

    # Everything that writes: the primary only.

    async def put(self, key: str, data: bytes) -> None:
        await self.primary.put(key, data)

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await self.primary.write(key, chunks)

    async def delete(self, key: str) -> None:
        await self.primary.delete(key)

    async def delete_prefix(self, prefix: str) -> None:
        await self.primary.delete_prefix(prefix)

    async def move(self, source: str, destination: str) -> None:
        await self.primary.move(source, destination)

    async def start_upload(self, key: str) -> UploadState:
        return await self.primary.start_upload(key)

    async def write_part(self, upload: UploadState, number: int, offset: int, chunks: AsyncIterable[bytes]) -> Part:
        return await self.primary.write_part(upload, number, offset, chunks)

    async def complete_upload(self, upload: UploadState, parts: builtins.list[Part], key: str | None = None) -> None:
        await self.primary.complete_upload(upload, parts, key)

    async def abort_upload(self, upload: UploadState) -> None:
        await self.primary.abort_upload(upload)

    async def sweep_staging(self, recorded: Mapping[str, Collection[str]]) -> int:
        return await self.primary.sweep_staging(recorded)

    def open_uploads(self, started_before: float) -> AsyncIterator[UploadState]:
        return self.primary.open_uploads(started_before)

    async def close(self) -> None:
        """Closes neither backend: each is a driver of its own generation, owned (and closed) by whoever built it."""
