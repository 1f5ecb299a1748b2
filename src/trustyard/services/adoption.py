"""``Adoption``: indexing, in the background, what a storage backend already holds: after a plain storage
switch (which clears the index atomically with the plan change) and at first start over a bucket that outlives
the registry. Requests are served from what is indexed so far; none waits for it.

One worker of one node runs an adoption, holding the ``storage-adoption`` lease and renewing it as it
reports progress (``storage_adoptions``); any worker takes over an adoption whose holder died (reindexing is
idempotent, so it simply lists again). A later switch supersedes a running adoption in the same transaction
that changes the plan, and the holder stops at its next progress report.

An adoption that failed (the store did not answer, say) is begun again by itself, after a minute and then
twice as long after each further failure, up to a quarter of an hour: a registry pointed at a bucket that outlives it
must come to serve everything in it without an operator noticing the failure. Each attempt is a row of its
own, with its error.
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
from trustyard.errors import StorageUnavailable
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
#: A failed adoption is begun again after RETRY_FIRST, then twice as long after each further failure, at most
#: RETRY_CAP apart.
RETRY_FIRST = timedelta(minutes=1)
RETRY_CAP = timedelta(minutes=15)
#: Failures counted for the delay: enough to reach the cap.
RETRY_DOUBLINGS = 6


def retry_delay(failures: int) -> timedelta:
    """How long after the last of ``failures`` failed adoptions in a row the next one begins."""
    doublings = min(max(failures - 1, 0), 16)  # 2**16 minutes is far past the cap
    delay: timedelta = RETRY_FIRST * (1 << doublings)
    return min(delay, RETRY_CAP)


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
        or an index was lost) or does not answer, begin adopting it. True when an adoption was begun."""
        actor.require_system()
        await self._switch.refresh()
        if await self._index.adoptions.running() is not None or not await self._storage_admin.index_is_empty():
            return False
        try:
            if not await self._storage_admin.holds_repositories():
                return False
        except StorageUnavailable as exc:
            # Whether it holds any cannot be told now, and a registry must not refuse to start while its
            # store is down: adopt anyway. It fails while the store does, and is begun again until it answers;
            # adopting a backend that holds nothing lists nothing.
            log.warning("storage did not answer at start (%s): adopting it once it does", exc)
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
        except StorageUnavailable as exc:  # the store's own words say it all: no traceback
            log.warning("storage adoption failed: %s; it is begun again later (after a minute, doubling to 15)", exc)
        except Exception:
            log.exception("storage adoption failed; it is begun again later (after a minute, doubling to 15 minutes)")

    async def run_pending(self, actor: Actor) -> AdoptionRow | None:
        """Run the running adoption to its end when this worker gets the lease, first beginning it again when
        the last one failed and its retry is due; None when there is none or another worker holds it. Returns
        the adoption as it ended."""
        actor.require_system()
        adoption = await self._index.adoptions.running()
        if adoption is None and await self._retry_due() is None:
            return None
        if not await self._acquire():
            return None
        try:
            if adoption is None:
                adoption = await self._retry()
                if adoption is None:
                    return None
            await self._switch.refresh()
            if adoption.generation != self._switch.plan.active:
                await self._index.adoptions.finish(adoption.id, "superseded", {})
            else:
                await self._adopt(adoption)
        finally:
            await self._index.leases.release(LEASE, self._holder)
        return await self._index.adoptions.get(adoption.id)

    async def _retry_due(self) -> int | None:
        """The generation to adopt again: the active one, when its last adoption failed long enough ago."""
        latest = await self._index.adoptions.latest()
        if latest is None or latest.state != "failed" or latest.generation != self._switch.plan.active:
            return None
        failures = await self._index.adoptions.failed_in_a_row(latest.generation, RETRY_DOUBLINGS)
        ended = _aware(latest.finished_at or latest.updated_at)
        return latest.generation if datetime.now(UTC) - ended >= retry_delay(failures) else None

    async def _retry(self) -> AdoptionRow | None:
        """Begin the due retry; under the lease, so that of the workers that saw it due one begins it."""
        generation = await self._retry_due()
        if generation is None:
            return None
        log.warning("the last adoption of storage backend %d failed: beginning it again", generation)
        await self._index.adoptions.start(generation)
        return await self._index.adoptions.running()

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
