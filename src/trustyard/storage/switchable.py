"""SwitchableDriver: the storage driver services hold, whose backend can be replaced while the process runs.

Operators change storage at run time (Settings > Storage, the admin API, the CLI); every worker swaps its
backend when it sees the new settings. Requests already streaming keep the driver they started with (a call
binds ``current`` once); the old driver is closed after a grace period so they can finish.

Every call is measured here, once for all backends: ``trustyard_storage_operations_total``, ``..._errors_total``
and ``..._operation_duration_seconds`` by backend and operation (trustyard/metrics.py). A missing object is an
answer, not an error.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Collection, Mapping
from time import perf_counter
from typing import TypeVar

from prometheus_client import Counter, Histogram

from trustyard import metrics
from trustyard.errors import ObjectNotFound
from trustyard.storage.driver import ObjectInfo, Part, StorageDriver, UploadState

T = TypeVar("T")

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
        return await self._call("stat", lambda driver: driver.stat(key))

    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        driver = self.current
        return self._stream(driver, "read", driver.read(key, offset, length))

    async def get(self, key: str) -> bytes:
        return await self._call("get", lambda driver: driver.get(key))

    async def put(self, key: str, data: bytes) -> None:
        await self._call("put", lambda driver: driver.put(key, data))

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await self._call("write", lambda driver: driver.write(key, chunks))

    async def delete(self, key: str) -> None:
        await self._call("delete", lambda driver: driver.delete(key))

    async def delete_prefix(self, prefix: str) -> None:
        await self._call("delete_prefix", lambda driver: driver.delete_prefix(prefix))

    def list(self, prefix: str) -> AsyncIterator[str]:
        driver = self.current
        return self._stream(driver, "list", driver.list(prefix))

    async def move(self, source: str, destination: str) -> None:
        await self._call("move", lambda driver: driver.move(source, destination))

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        return await self.current.redirect_url(key, method)  # signs locally: no call to the backend

    def local_path(self, key: str) -> str | None:
        return self.current.local_path(key)

    async def start_upload(self, key: str) -> UploadState:
        return await self._call("start_upload", lambda driver: driver.start_upload(key))

    async def write_part(self, upload: UploadState, number: int, offset: int, chunks: AsyncIterable[bytes]) -> Part:
        return await self._call("write_part", lambda driver: driver.write_part(upload, number, offset, chunks))

    async def complete_upload(self, upload: UploadState, parts: builtins.list[Part]) -> None:
        await self._call("complete_upload", lambda driver: driver.complete_upload(upload, parts))

    async def abort_upload(self, upload: UploadState) -> None:
        await self._call("abort_upload", lambda driver: driver.abort_upload(upload))

    async def _call(self, operation: str, call: Callable[[StorageDriver], Awaitable[T]]) -> T:
        driver = self.current
        count, errors, latency = _meters(driver.name, operation)
        count.inc()
        started = perf_counter()
        try:
            return await call(driver)
        except ObjectNotFound:
            raise
        except Exception:
            errors.inc()
            raise
        finally:
            latency.observe(perf_counter() - started)

    @staticmethod
    async def _stream(driver: StorageDriver, operation: str, items: AsyncIterator[T]) -> AsyncIterator[T]:
        count, errors, latency = _meters(driver.name, operation)
        count.inc()
        started = perf_counter()
        try:
            first = True
            async for item in items:
                if first:
                    latency.observe(perf_counter() - started)
                    first = False
                yield item
        except ObjectNotFound:
            raise
        except Exception:
            errors.inc()
            raise

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


_METERS: dict[tuple[str, str], tuple[Counter, Counter, Histogram]] = {}


def _meters(backend: str, operation: str) -> tuple[Counter, Counter, Histogram]:
    """The (calls, errors, latency) children for one backend and operation, looked up once per process."""
    found = _METERS.get((backend, operation))
    if found is None:
        found = _METERS[(backend, operation)] = (
            metrics.STORAGE_OPERATIONS.labels(backend, operation),
            metrics.STORAGE_ERRORS.labels(backend, operation),
            metrics.STORAGE_LATENCY.labels(backend, operation),
        )
    return found
