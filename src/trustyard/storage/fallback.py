"""FallbackDriver: the storage a worker serves while a migration copies one backend into another.

Reads go to the *primary* (the backend being migrated to) and, on a miss, to the *fallback* (the backend
being migrated from), so everything not copied yet is still served. Everything that writes goes to the
primary only: new pushes land where they will stay, and the old backend keeps what it held (the operator
deletes it once the migration's report says everything arrived).

Deletes reach both backends. What a user deletes during a migration (a tag, a manifest, a repository's links)
must stay deleted whichever way the migration ends: a cancelled one goes back to the old backend, and a
completed one leaves the old backend for the operator to fall back on or adopt again, where a link deleted
only from the new backend would bring the deleted image back. The fallback's delete is best effort: the index
row is gone and the primary's copy with it, so nothing serves the key whatever the fallback says; a failure
there is logged, not returned to the client as if the delete had not happened. (While the delete runs, a read
may still find the fallback's copy; every read of a blob, a manifest or a tag is checked against the SQL index
first.)
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Collection, Mapping

from trustyard.errors import ObjectNotFound, StorageUnavailable
from trustyard.storage.driver import ObjectInfo, Part, StorageDriver, UploadState

log = logging.getLogger(__name__)


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

    # Everything that writes: the primary only. Deletes: both.

    async def put(self, key: str, data: bytes) -> None:
        await self.primary.put(key, data)

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await self.primary.write(key, chunks)

    async def delete(self, key: str) -> None:
        await self.primary.delete(key)
        await self._from_fallback(key, self.fallback.delete(key))

    async def delete_prefix(self, prefix: str) -> None:
        await self.primary.delete_prefix(prefix)
        await self._from_fallback(f"{prefix}/", self.fallback.delete_prefix(prefix))

    async def _from_fallback(self, what: str, deleting: Awaitable[None]) -> None:
        try:
            await deleting
        except (StorageUnavailable, OSError) as exc:
            log.warning(
                "deleted %s from the active backend (%s) but not from the migration's other one (%s): %s",
                what,
                self.primary.name,
                self.fallback.name,
                exc,
            )

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
