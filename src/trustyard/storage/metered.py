"""MeteredDriver: one backend's driver, with every call measured.

``trustyard_storage_operations_total``, ``..._errors_total`` and ``..._operation_duration_seconds`` by backend
and operation (trustyard/metrics.py). The factory wraps every driver it builds, so a call is counted whichever
way it reaches the backend: through the plan's switchable driver, through a migration's fallback, or straight
from an upload session bound to the backend it began on. A missing object is an answer, not an error.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Collection, Mapping
from time import perf_counter
from typing import TypeVar

from prometheus_client import Counter, Histogram

from trustyard import metrics
from trustyard.errors import ObjectNotFound
from trustyard.storage.driver import ObjectInfo, Part, StorageDriver, UploadState

T = TypeVar("T")


class MeteredDriver:
    def __init__(self, inner: StorageDriver) -> None:
        self.inner = inner
        self.name = inner.name
        self.min_part_size = inner.min_part_size
        self.max_part_size = inner.max_part_size

    async def stat(self, key: str) -> ObjectInfo | None:
        return await self._call("stat", self.inner.stat(key))

    def read(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._stream("read", self.inner.read(key, offset, length))

    async def get(self, key: str) -> bytes:
        return await self._call("get", self.inner.get(key))

    async def put(self, key: str, data: bytes) -> None:
        await self._call("put", self.inner.put(key, data))

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await self._call("write", self.inner.write(key, chunks))

    async def delete(self, key: str) -> None:
        await self._call("delete", self.inner.delete(key))

    async def delete_prefix(self, prefix: str) -> None:
        await self._call("delete_prefix", self.inner.delete_prefix(prefix))

    def list(self, prefix: str) -> AsyncIterator[str]:
        return self._stream("list", self.inner.list(prefix))

    async def move(self, source: str, destination: str) -> None:
        await self._call("move", self.inner.move(source, destination))

    async def redirect_url(self, key: str, method: str = "GET") -> str | None:
        return await self.inner.redirect_url(key, method)  # signs locally: no call to the backend

    def local_path(self, key: str) -> str | None:
        return self.inner.local_path(key)

    async def start_upload(self, key: str) -> UploadState:
        return await self._call("start_upload", self.inner.start_upload(key))

    async def write_part(self, upload: UploadState, number: int, offset: int, chunks: AsyncIterable[bytes]) -> Part:
        return await self._call("write_part", self.inner.write_part(upload, number, offset, chunks))

    async def complete_upload(self, upload: UploadState, parts: builtins.list[Part], key: str | None = None) -> None:
        await self._call("complete_upload", self.inner.complete_upload(upload, parts, key))

    async def abort_upload(self, upload: UploadState) -> None:
        await self._call("abort_upload", self.inner.abort_upload(upload))

    async def sweep_staging(self, recorded: Mapping[str, Collection[str]]) -> int:
        return await self.inner.sweep_staging(recorded)

    def open_uploads(self, started_before: float) -> AsyncIterator[UploadState]:
        return self.inner.open_uploads(started_before)

    async def close(self) -> None:
        await self.inner.close()

    async def _call(self, operation: str, call: Awaitable[T]) -> T:
        count, errors, latency = _meters(self.name, operation)
        count.inc()
        started = perf_counter()
        try:
            return await call
        except ObjectNotFound:
            raise
        except Exception:
            errors.inc()
            raise
        finally:
            latency.observe(perf_counter() - started)

    async def _stream(self, operation: str, items: AsyncIterator[T]) -> AsyncIterator[T]:
        count, errors, latency = _meters(self.name, operation)
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
