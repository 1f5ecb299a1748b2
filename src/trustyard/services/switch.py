"""``StorageSwitch``: this worker's side of the atomic storage switch. It follows the storage *plan*
(db/storage_backends.py), fences itself when it cannot, acks the plan it serves and heartbeats (db/workers.py),
and, for a save, waits until every live worker serves the new plan.

Why a switch is atomic (docs/architecture.md, "Storage plan"): every worker reads the plan every
``POLL_SECONDS``. Before serving a request that touches storage or the index, a worker whose last successful
read *began* more than ``FENCE_SECONDS`` ago reads it again first (``fence``: a monotonic-clock compare on the
hot path). A save changes the plan at time t and returns once every worker with a fresh heartbeat has acked
the new plan, or after ``FENCE_SECONDS`` + 1 s at most: any worker still on the old plan by then last read it
before t, more than ``FENCE_SECONDS`` ago, so it re-reads before its next request. The acks only let a save
return early (usually within a poll interval).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from trustyard.db.index import Index
from trustyard.db.storage_backends import StoragePlan
from trustyard.db.workers import WorkerRow
from trustyard.services.backends import Backends
from trustyard.storage.driver import StorageDriver
from trustyard.storage.plan import plan_driver
from trustyard.storage.switchable import SwitchableDriver

log = logging.getLogger(__name__)

#: How often each worker reads the plan (a primary-key read).
POLL_SECONDS = 0.5
#: A worker that has not read the plan for this long re-reads it before serving storage or the index.
FENCE_SECONDS = 5.0
#: How often each worker refreshes its row in ``workers``.
HEARTBEAT_SECONDS = 2.0
#: Rows of workers not seen for this long are removed (they stopped without saying so).
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    """Who this worker is in ``workers``: ``<node>:<pid>``, the node's public address (or host and port)."""

    node: str
    pid: int
    version: str
    started_at: datetime

    @property
    def id(self) -> str:
        return f"{self.node}:{self.pid}"

    @classmethod
    def here(cls, node: str, version: str) -> WorkerIdentity:
        return cls(node, os.getpid(), version, datetime.now(UTC))


class StorageSwitch:
    def __init__(
        self,
        index: Index,
        backends: Backends,
        driver: SwitchableDriver,
        worker: WorkerIdentity | None,
        *,
        pinned: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``driver`` is what the services hold (its ``current`` is swapped); ``worker`` is None in a one-off
        command (it serves nothing, so it neither heartbeats nor acks); ``pinned`` storage (config file or
        environment) never follows the plan."""
        self._index = index
        self._backends = backends
        self._driver = driver
        self._worker = worker
        self._pinned = pinned
        self._clock = clock
        self._plan = StoragePlan(0, None, 0)
        self._polled = float("-inf")  # when the last successful read of the plan began
        self._lock = asyncio.Lock()

    @property
    def plan(self) -> StoragePlan:
        """The plan this worker serves."""
        return self._plan

    async def driver(self, generation: int) -> StorageDriver:
        """The driver of backend ``generation``; raises ``StorageBackendGone`` when it cannot be built."""
        return await self._backends.driver(generation)

    async def refresh(self) -> bool:
        """Read the plan and serve it; True when it changed. Safe to call from many requests at once."""
        began = self._clock()
        async with self._lock:
            if self._polled >= began:
                return False  # a read that began after ours finished while we waited: it is as fresh
            plan = await self._index.backends.plan()
            if self._pinned:  # the config file or environment decides: serve the startup storage, ack the plan
                plan = StoragePlan(0, None, plan.version)
            changed = plan.version != self._plan.version
            if changed and not self._pinned:
                active = await self._backends.driver(plan.active)
                fallback = None if plan.fallback is None else await self._backends.driver(plan.fallback)
                self._driver.swap(plan_driver(active, fallback), retire=False)
                log.info("storage plan %d: backend %d (fallback %s)", plan.version, plan.active, plan.fallback)
            self._plan = plan
            self._polled = began
        if changed and self._worker is not None:
            await self._index.workers.ack(self._worker.id, plan.version)
        return changed and not self._pinned

    async def fence(self) -> None:
        """Before serving storage or the index: re-read the plan when the last read is older than the fence.
        When the database cannot be reached this raises, and the request fails as any database error does."""
        if self._clock() - self._polled > FENCE_SECONDS:
            await self.refresh()

    async def register(self) -> None:
        """A worker starting: forget workers not seen for a long time (stopped without saying so), heartbeat."""
        if self._worker is not None:
            await self._index.workers.prune(FORGET_AFTER)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        if self._worker is None:
            return
        w = self._worker
        row = WorkerRow(w.id, w.node, w.pid, w.version, w.started_at, w.started_at, self._plan.version)
        await self._index.workers.heartbeat(row)

    async def wait_for_workers(self, plan_version: int) -> list[WorkerRow]:
        """Wait until every worker seen within the fence serves ``plan_version``, at most the fence + 1 s;
        returns the workers that did not ack (they fence themselves: see the module docstring)."""
        deadline = self._clock() + FENCE_SECONDS + 1.0
        fresh = timedelta(seconds=FENCE_SECONDS)
        exclude = None if self._worker is None else self._worker.id
        while True:
            lagging = await self._index.workers.lagging(plan_version, fresh, exclude)
            if not lagging or self._clock() >= deadline:
                return lagging
            await asyncio.sleep(0.05)

    async def nodes(self, within: timedelta) -> list[WorkerRow]:
        """Workers seen within ``within`` (``trustyard info``: the nodes seen recently)."""
        return await self._index.workers.recent(within)

    async def stop(self) -> None:
        """The worker stops: remove its row so a switch does not wait for it."""
        if self._worker is not None:
            await self._index.workers.forget(self._worker.id)

    async def close(self) -> None:
        await self._backends.close()
