"""``Health``: is this node ready to serve? The database and storage each answer a cheap probe, with a timeout,
and the failing part is named with its own error (``/readyz``, ``/debug/health``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter

from trustyard.db.health import DatabaseProbe
from trustyard.storage import layout
from trustyard.storage.driver import StorageDriver

#: A probe slower than this counts as down: a load balancer must not wait on a hung backend.
PROBE_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str  # "database" or "storage"
    ok: bool
    detail: str  # the backend ("sqlite", "s3", ...) when ok, else what went wrong
    seconds: float


class Health:
    def __init__(self, database: DatabaseProbe, storage: StorageDriver) -> None:
        self._database = database
        self._storage = storage

    async def checks(self) -> list[Check]:
        """Both probes, run concurrently."""
        return list(
            await asyncio.gather(
                _probe("database", self._database.dialect, self._database.ping),
                _probe("storage", self._storage.name, self._stat_root),
            )
        )

    async def _stat_root(self) -> None:
        # A stat reaches the backend (a HEAD on object stores) without writing: missing is fine, errors are not.
        await self._storage.stat(layout.ROOT)


async def _probe(name: str, backend: str, call: Callable[[], Awaitable[None]]) -> Check:
    started = perf_counter()
    try:
        await asyncio.wait_for(call(), PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        return Check(name, False, f"{backend}: no answer within {PROBE_TIMEOUT_SECONDS:g}s", perf_counter() - started)
    except Exception as exc:  # any failure means not ready; say which and why
        return Check(name, False, f"{backend}: {_message(exc)}", perf_counter() - started)
    return Check(name, True, backend, perf_counter() - started)


def _message(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0][:300]
