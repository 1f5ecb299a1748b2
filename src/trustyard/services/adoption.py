"""``Adoption``: indexing, in the background, what a storage backend already holds: after a plain storage
switch (which clears the index atomically with the plan change) and at first start over a bucket that outlives
the registry. Requests are served from what is indexed so far; none waits for it.

One worker of one node runs an adoption, holding the ``storage-adoption`` lease and renewing it as it
reports progress (``storage_adoptions``); any worker takes over an adoption whose holder died (reindexing is
idempotent, so it simply lists again). A later switch supersedes a running adoption in the same transaction
that changes the plan, and the holder stops at its next progress report.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from trustyard.db.adoptions import AdoptionRow
from trustyard.db.index import Index
from trustyard.services.actor import Actor
from trustyard.services.reservations import dead_here
from trustyard.services.storage import ReindexReport, ReindexStopped, StorageAdmin
from trustyard.services.switch import StorageSwitch

log = logging.getLogger(__name__)

LEASE = "storage-adoption"
#: The holder renews at every progress report; a lease not renewed for this long is free again.
LEASE_TTL = timedelta(seconds=30)


class Adoption:
    def __init__(self, index: Index, storage_admin: StorageAdmin, switch: StorageSwitch, holder: str) -> None:
        self._index = index
        self._storage_admin = storage_admin
        self._switch = switch
        self._holder = holder
        self._task: asyncio.Task[None] | None = None

    async def status(self, actor: Actor) -> AdoptionRow | None:
        """The running adoption, else the last one (None: never adopted)."""
        actor.require_admin()
        return await self._index.adoptions.running() or await self._index.adoptions.latest()

    async def begin_if_unindexed(self, actor: Actor) -> bool:
        """At start: when the index is empty but storage holds repositories (the bucket outlived the registry,
        or an index was lost), begin adopting it. True when an adoption was begun."""
        actor.require_system()
        await self._switch.refresh()
        if await self._index.adoptions.running() is not None or not await self._storage_admin.index_is_empty():
            return False
        if not await self._storage_admin.holds_repositories():
            return False
        await self._index.adoptions.start(self._switch.plan.active)
        return True

    def kick(self) -> None:
        """Run a pending adoption in the background of this worker, unless one already runs here."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run_logged())

    async def _run_logged(self) -> None:
        try:
            await self.run_pending(Actor.system())
        except Exception:
            log.exception("storage adoption failed; another worker (or this one) retries")

    async def run_pending(self, actor: Actor) -> AdoptionRow | None:
        """Run the running adoption to its end when this worker gets the lease; None when there is none or
        another worker holds it. Returns the adoption as it ended."""
        actor.require_system()
        adoption = await self._index.adoptions.running()
        if adoption is None or not await self._acquire():
            return None
        try:
            await self._switch.refresh()
            if adoption.generation != self._switch.plan.active:
                await self._index.adoptions.finish(adoption.id, "superseded", {})
            else:
                await self._adopt(adoption)
        finally:
            await self._index.leases.release(LEASE, self._holder)
        return await self._index.adoptions.get(adoption.id)

    async def _adopt(self, adoption: AdoptionRow) -> None:
        async def progress(report: ReindexReport) -> bool:
            if not await self._index.leases.renew(LEASE, self._holder, LEASE_TTL):
                return False
            return await self._index.adoptions.progress(adoption.id, report.counts())

        log.info("adopting storage backend %d in the background", adoption.generation)
        try:
            report = await self._storage_admin.reindex(Actor.system(), progress)
        except ReindexStopped:
            log.info("adoption of storage backend %d stopped (superseded or lease lost)", adoption.generation)
            return
        except Exception as exc:
            await self._index.adoptions.finish(adoption.id, "failed", {}, f"{type(exc).__name__}: {exc}")
            raise
        for line in report.skipped[:20]:
            log.warning("adoption skipped %s", line)
        await self._index.adoptions.finish(adoption.id, "done", report.counts())
        log.info(
            "adopted storage backend %d: %d repositories, %d manifests, %d tags",
            adoption.generation,
            report.repositories,
            report.manifests,
            report.tags,
        )

    async def _acquire(self) -> bool:
        leases = self._index.leases
        if await leases.acquire(LEASE, self._holder, LEASE_TTL):
            return True
        current = await leases.current(LEASE)
        if current is not None and dead_here(current.holder):
            return await leases.take_over(LEASE, current.holder, self._holder, LEASE_TTL)
        return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
