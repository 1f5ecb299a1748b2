"""SwitchableDriver: the storage driver services hold, whose backend can be replaced while the process runs.

Operators change storage at run time (Settings > Storage, the admin API, the CLI); every worker swaps its
backend when it sees the new settings. Requests already streaming keep the driver they started with (a call
binds ``current`` once); the old driver is closed after a grace period so they can finish.

Calls are measured by the backend drivers themselves (storage/metered.py), not here: upload sessions reach their
backend without this driver.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Collection, Mapping

from trustyard.storage.driver import ObjectInfo, Part, StorageDriver, UploadState

#: How long a replaced driver stays open for requests that were already using it.
GRACE_SECONDS = 600.0


class SwitchableDriver:
    def __init__(self, current: StorageDriver) -> None:
        self.current = current
        self._retiring: dict[asyncio.Task[None], StorageDriver] = {}

    def swap(self, replacement: StorageDriver, *, retire: bool = True) -> StorageDriver:
        """Serve from ``replacement`` from now on; the previous driver closes after the grace period (unless
        ``retire`` is False: its owner, e.g. services/backends.py, keeps it for other uses and closes it)."""
        previous, self.current = self.current, replacement
        if not retire:
            return previous
        task = asyncio.get_running_loop().create_task(self._retire(previous))
        self._retiring[task] = previous
        task.add_done_callback(lambda done: self._retiring.pop(done, None))
        return previous

    async def _retire(self, driver: StorageDriver) -> None:
        await asyncio.sleep(GRACE_SECONDS)
        with contextlib.suppress(Exception):
            await driver.close()

    @property
    def name(self) -> str:
        return self.current.name

    @property
    def min_part_size(self) -> int:
        return self.current.min_part_size

    @property
    def max_part_size(self) -> int:
        return self.current.max_part_size

    async def stat(self, key: str) -> ObjectInfo | None:
        return await self.current.stat(key)

    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self.current.read(key, offset, length)

    async def get(self, key: str) -> bytes:
        return await self.current.get(key)

    async def put(self, key: str, data: bytes) -> None:
        await self.current.put(key, data)

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await self.current.write(key, chunks)

    async def delete(self, key: str) -> None:
        await self.current.delete(key)

    async def delete_prefix(self, prefix: str) -> None:
        await self.current.delete_prefix(prefix)

    def list(self, prefix: str) -> AsyncIterator[str]:
        return self.current.list(prefix)

    async def move(self, source: str, destination: str) -> None:
        await self.current.move(source, destination)

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        return await self.current.redirect_url(key, method)  # signs locally: no call to the backend

    def local_path(self, key: str) -> str | None:
        return self.current.local_path(key)

    async def start_upload(self, key: str) -> UploadState:
        return await self.current.start_upload(key)

    async def write_part(self, upload: UploadState, number: int, offset: int, chunks: AsyncIterable[bytes]) -> Part:
        return await self.current.write_part(upload, number, offset, chunks)

    async def complete_upload(self, upload: UploadState, parts: builtins.list[Part], key: str | None = None) -> None:
        await self.current.complete_upload(upload, parts, key)

    async def abort_upload(self, upload: UploadState) -> None:
        await self.current.abort_upload(upload)

    async def sweep_staging(self, recorded: Mapping[str, Collection[str]]) -> int:
        return await self.current.sweep_staging(recorded)

    def open_uploads(self, started_before: float) -> AsyncIterator[UploadState]:
        return self.current.open_uploads(started_before)

    async def close(self) -> None:
        for task, driver in list(self._retiring.items()):
            task.cancel()
            with contextlib.suppress(Exception):
                await driver.close()
        await self.current.close()
