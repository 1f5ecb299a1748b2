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
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trustyard.db.adoptions import AdoptionRow
from trustyard.db.index import Index
from trustyard.services.actor import Actor
from trustyard.services.leases import take_lease
from trustyard.services.storage import ReindexReport, ReindexStopped, StorageAdmin
from trustyard.services.switch import StorageSwitch

log = logging.getLogger(__name__)

#: How long closing waits for a running adoption to end by itself before cancelling it.
CLOSE_GRACE_SECONDS = 5.0
LEASE = "storage-adoption"
#: The holder renews at every progress report; a lease not renewed for this long is free again.
LEASE_TTL = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class AdoptionView:
    """How far the adoption of a backend got, as every edge shows it."""

    adoption: AdoptionRow | None  # None: nothing was ever adopted
    holder: str | None  # the worker indexing now

    def as_document(self) -> dict[str, Any]:
        a = self.adoption
        if a is None:
            return {"state": "none"}
        end = _aware(a.finished_at) if a.finished_at else datetime.now(UTC)
        return {
            "id": a.id,
            "generation": a.generation,
            "state": a.state,
            "repositories": a.repositories,
            "manifests": a.manifests,
            "tags": a.tags,
            "blobs": a.blobs,
            "objects_listed": a.objects_listed,
            "skipped": a.skipped,
            "started_at": a.started_at.isoformat(),
            "updated_at": a.updated_at.isoformat(),
            "finished_at": a.finished_at.isoformat() if a.finished_at else None,
            "seconds": round((end - _aware(a.started_at)).total_seconds(), 1),
            "holder": self.holder,
            "error": a.error,
        }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives naive UTC back


class Adoption:
    def __init__(
        self, index: Index, storage_admin: StorageAdmin, switch: StorageSwitch, holder: str, *, background: bool
    ) -> None:
        """``background``: this process serves, so it runs adoptions itself (a one-off command leaves them to
        the serving workers)."""
        self._index = index
        self._storage_admin = storage_admin
        self._switch = switch
        self._holder = holder
        self._background = background
        self._task: asyncio.Task[None] | None = None

    async def status(self, actor: Actor) -> AdoptionView:
        """The running adoption, else the last one."""
        actor.require_admin()
        adoption = await self._index.adoptions.running() or await self._index.adoptions.latest()
        lease = await self._index.leases.current(LEASE) if adoption and adoption.state == "running" else None
        return AdoptionView(adoption, lease.holder if lease else None)

    async def restart(self, actor: Actor) -> AdoptionView:
        """Index the active backend again from the start (after a failed adoption, or storage changed behind
        the registry's back); what is indexed stays and requests keep being served."""
        actor.require_admin()
        await self._switch.refresh()
        await self._index.adoptions.start(self._switch.plan.active)
        self.kick()
        return await self.status(actor)

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
        if not self._background:
            return
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
        return await take_lease(self._index.leases, LEASE, self._holder, LEASE_TTL) is None

    async def close(self) -> None:
        if self._task is not None:
            # Let a short adoption end on its own first: cancelled inside a SQLite write transaction, it left the
            # database locked for the shutdown's own writes (the worker's row). A long one is cut short after it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_GRACE_SECONDS)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
