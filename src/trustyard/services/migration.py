"""Online migration between storage backends: every blob, manifest, tag and link copied from the backend in
use to another while the registry keeps serving, each object verified, resumable after a crash.

The flow (docs/storage.md, "Moving to another backend"; the design in docs/architecture.md):

1. ``start`` probes the target and registers it as a backend generation, records the migration, then switches
   the storage plan atomically to ``{"active": target, "fallback": source}``: from then on new writes land in
   the target (where they will stay) and reads that miss it fall back to the source (storage/fallback.py).
2. The copier (holding the ``storage-migration`` lease) walks the SQL index, never the source's listing:
   - ``blobs`` (manifests are blobs too), a page at a time in digest order: each streamed source → target
     with its digest (sha256 or sha512) computed while the bytes pass; a mismatch deletes the target's copy and
     is reported. A blob the target already holds with the right size and digest (a push during the
     migration, or a page redone after a crash) is verified by reading it back, not copied again.
   - ``links``, a repository at a time in name order: the layer, revision and tag (current and index) links of
     Distribution's layout, written from the index, read back and compared; then the index is read again, and
     a link whose row vanished meanwhile (a delete racing the copy) is removed, a tag that moved is rewritten.
   - ``recent``: what requests running across the switch wrote to the source after the copy had passed it.
   The copier is services/migration_copy.py. Its cursor (phase + last digest or repository done) is saved after
   every page, so a copier that died resumes there: any worker's maintenance loop takes over a migration whose
   holder is gone, and so does re-running ``trustyard storage migrate``.
3. The plan switches atomically to ``{"active": target, "fallback": null}``; the migration is ``done`` and its
   report says what was copied, verified, missing or mismatched. Nothing was written to the source (deletes
   made meanwhile reached it too: storage/fallback.py).

An operator may ``cancel`` while the copy runs: the migration becomes ``cancelling`` (in one statement, so the
copier finishing and the cancel cannot both win), and whichever process holds the lease rolls back. The copier
stops at its next page or lease renewal, the plan switches to ``{"active": source, "fallback": target}``, what
was recorded since the migration began is copied back from the target (the copier's catch-up pass, reversed),
and the plan becomes ``{"active": source, "fallback": null}``: the migration is ``cancelled`` and nothing pushed
meanwhile is lost. The target keeps what had been copied, for the operator to delete.

Garbage collection does not run while a migration is active (services/gc.py asks), and a migration does not
start while a collection or an adoption runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from trustyard.db.index import Index
from trustyard.db.storage_migrations import MigrationRow
from trustyard.errors import AlreadyExists, InvalidRequest, NotFound, StorageUnavailable
from trustyard.services.actor import Actor
from trustyard.services.audit import Audit
from trustyard.services.backends import Backends
from trustyard.services.leases import dead_here, take_lease
from trustyard.services.migration_copy import Copy, Watcher
from trustyard.services.reservations import collector_alive
from trustyard.services.settings import Settings
from trustyard.services.switch import StorageSwitch
from trustyard.storage.config import StorageSettings
from trustyard.storage.driver import StorageDriver

__all__ = ["LEASE", "MigrationRow", "MigrationStatus", "Migrations", "StoragePlans"]

log = logging.getLogger("trustyard.migration")

LEASE = "storage-migration"
#: The copier renews its lease after every page; a lease not renewed for this long is free again.
LEASE_TTL = timedelta(minutes=1)
#: How often ``migrate`` looks at a migration another process copies.
FOLLOW_SECONDS = 1.0
#: A cancel waits this long after switching back to the source before copying back: a request that read the
#: plan just before the switch writes to the target and records its rows a moment later, and the copy back
#: must see those rows.
SETTLE_SECONDS = 5.0


class _Cancelled(Exception):
    """The migration is no longer copying (an operator cancelled it): the copier stops and rolls back."""


class StoragePlans:
    """The storage plan as a migration drives it: backends by generation (services/backends.py), the plan in
    SQL, and this worker's switch (services/switch.py), which waits until every live worker serves a new plan."""

    def __init__(
        self,
        index: Index,
        backends: Backends,
        switch: StorageSwitch,
        settings: Settings,
    ) -> None:
        self._index = index
        self._backends = backends
        self._switch = switch
        self._settings = settings

    async def plan(self) -> tuple[int, int | None]:
        plan = await self._index.backends.plan()
        return plan.active, plan.fallback

    async def register(self, actor: Actor, candidate: StorageSettings) -> int:
        """Probe ``candidate`` and store it as a new backend generation (not in the plan yet)."""
        return await self._settings.register(actor, candidate)

    async def switch(self, actor: Actor, active: int, fallback: int | None) -> None:
        """Make ``{"active": active, "fallback": fallback}`` the plan, the SQL index kept as it is, and return
        once every live worker serves it (idempotent: a plan already in force is not bumped again)."""
        plan = await self._index.backends.plan()
        if (plan.active, plan.fallback) != (active, fallback):
            plan = await self._index.backends.set_plan(active, fallback, actor.name)
        await self._switch.refresh()
        lagging = await self._switch.wait_for_workers(plan.version)
        if lagging:
            log.warning(
                "storage plan %d: %d workers did not ack; they fence themselves",
                plan.version,
                len(lagging),
            )

    async def driver(self, generation: int) -> StorageDriver:
        """The raw driver of one backend generation (cached and owned by ``Backends``: never closed here)."""
        return await self._switch.driver(generation)

    async def describe(self, generation: int) -> str:
        return (await self._backends.settings(generation)).describe()


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """A migration and how fast it goes: ``rate`` in bytes per second, ``eta`` in seconds (None: unknown)."""

    migration: MigrationRow
    running: bool  # a copier holds the lease now
    rate: float
    objects_rate: float
    eta: float | None

    def document(self) -> dict[str, Any]:
        m = self.migration
        return {
            "id": m.id,
            "state": m.state,
            "phase": m.phase,
            "source": m.source,
            "target": m.target,
            "running": self.running,
            "objects": {
                "done": m.objects_done,
                "total": max(m.objects_total, m.objects_done),
            },
            "bytes": {"done": m.bytes_done, "total": max(m.bytes_total, m.bytes_done)},
            "verified": m.verified,
            "failed": m.failed,
            "rate_bytes_per_second": round(self.rate, 1),
            "rate_objects_per_second": round(self.objects_rate, 2),
            "eta_seconds": None if self.eta is None else round(self.eta, 1),
            "started_by": m.started_by,
            "started_at": m.started_at.isoformat(),
            "updated_at": m.updated_at.isoformat(),
            "finished_at": m.finished_at.isoformat() if m.finished_at else None,
            "error": m.error,
            "report": m.report,
        }


class Migrations:
    def __init__(self, index: Index, plans: StoragePlans, audit: Audit, holder: str) -> None:
        self._index = index
        self._plans = plans
        self._audit = audit
        self._holder = holder
        self._tasks: set[asyncio.Task[MigrationRow]] = set()
        # One copy per process: the admin API's start and this worker's maintenance loop may both reach for the
        # copy, and the lease cannot tell them apart (both are this holder, and a holder re-takes its own lease).
        self._claiming = asyncio.Lock()

    async def start(self, actor: Actor, candidate: StorageSettings) -> MigrationRow:
        """Probe and register the target, record the migration and switch the plan to read through to the
        source. The copy itself is ``run`` (the CLI) or ``start_copy`` (the admin API, the UI)."""
        actor.require_admin()
        await self._refuse_if_busy()
        active, fallback = await self._plans.plan()
        if fallback is not None:
            raise AlreadyExists("the storage plan still reads through to an earlier backend; finish that first")
        target = await self._plans.register(actor, candidate)
        objects, size = await self._index.migrations.totals()
        migration_id = await self._index.migrations.start(active, target, actor.name, objects, size)
        if await collector_alive(self._index):  # double-checked after recording: gc checks for us the same way
            await self._index.migrations.set_state(migration_id, "cancelled", "garbage collection started")
            raise AlreadyExists("garbage collection is running; start the migration when it has finished")
        await self._plans.switch(actor, target, active)
        await self._audit.record(
            actor,
            "storage.migrate",
            await self._plans.describe(target),
            source=await self._plans.describe(active),
            migration=migration_id,
            objects=objects,
            bytes=size,
        )
        return await self._get(migration_id)

    async def migrate(self, actor: Actor, candidate: StorageSettings | None, watcher: Watcher) -> MigrationRow:
        """``trustyard storage migrate``: start a migration to ``candidate``, or resume the one under way (the
        same target, or ``candidate`` None), and see it to the end: copying here, or following the copier that
        holds the lease elsewhere (and taking over should it die). ``watcher`` sees progress every page."""
        actor.require_admin()
        migration = await self._index.migrations.active()
        if migration is None:
            if candidate is None:
                raise InvalidRequest("no storage migration is under way: say where to migrate with --to")
            migration = await self.start(actor, candidate)
        elif candidate is not None:
            wanted, under_way = (
                candidate.describe(),
                await self._plans.describe(migration.target),
            )
            if wanted != under_way:
                raise AlreadyExists(
                    f"migration {migration.id} to {under_way} is under way; re-run without --to (or with the same "
                    "target) to resume it, and migrate elsewhere once it is done"
                )
        while True:
            try:
                return await self.run(actor, migration.id, watcher)
            except AlreadyExists:  # a live copier elsewhere (a server's worker): follow it
                pass
            migration = await self._get(migration.id)
            watcher(migration)
            if not migration.active:
                return migration
            await asyncio.sleep(FOLLOW_SECONDS)

    async def begin(self, actor: Actor, candidate: StorageSettings) -> MigrationStatus:
        """``start``, then copy in the background of this process (the admin API, the web UI); its status."""
        migration = await self.start(actor, candidate)
        # Another worker's maintenance loop may see the new migration first and take its copy: as good.
        with contextlib.suppress(AlreadyExists):
            await self.start_copy(actor, migration.id)
        status = await self.status(actor, migration.id)
        assert status is not None
        return status

    async def cancel(self, actor: Actor) -> MigrationRow:
        """Cancel the migration under way: it becomes ``cancelling``, and the process holding the lease (a
        copier stops at its next page) or the next to take it rolls back (module docstring). Too late once the
        copy has finished and the plan is switching to the target."""
        actor.require_admin()
        migration = await self._index.migrations.active()
        if migration is None:
            raise InvalidRequest("no storage migration is under way")
        if migration.state == "copying":
            await self._index.migrations.move_state(migration.id, "copying", "cancelling")
            migration = await self._get(migration.id)
        if migration.state != "cancelling":
            raise AlreadyExists(
                f"migration {migration.id} is {migration.state}: the copy has finished, so it can no longer be "
                "cancelled; once it is done, migrate back to the old backend the same way"
            )
        await self._audit.record(
            actor,
            "storage.migrate.cancel",
            await self._plans.describe(migration.target),
            source=await self._plans.describe(migration.source),
            migration=migration.id,
        )
        return migration

    async def cancel_in_background(self, actor: Actor) -> MigrationStatus:
        """``cancel``, then roll back in the background of this process (the admin API, the web UI), unless a
        copier elsewhere holds the lease (it rolls back itself); the migration's status."""
        migration = await self.cancel(actor)
        with contextlib.suppress(AlreadyExists):
            await self.start_copy(actor, migration.id)
        status = await self.status(actor, migration.id)
        assert status is not None
        return status

    async def _refuse_if_busy(self) -> None:
        running = await self._index.migrations.active()
        if running is not None:
            raise AlreadyExists(
                f"migration {running.id} to backend {running.target} is under way ({running.state}); follow it "
                "with `trustyard storage migrate --status`, re-run `trustyard storage migrate` to resume it"
            )
        if await collector_alive(self._index):
            raise AlreadyExists("garbage collection is running; start the migration when it has finished")
        adoption = await self._index.adoptions.latest()
        if adoption is not None and adoption.state == "running":
            # A migration copies what the index knows: with the index half built it would leave images behind.
            raise AlreadyExists(
                f"the index is still being built from the current backend (adoption {adoption.id}); start the "
                "migration once `trustyard storage status` says the adoption is done"
            )

    async def status(self, actor: Actor, migration_id: int | None = None) -> MigrationStatus | None:
        """The migration ``migration_id`` (default: the latest), or None when there never was one."""
        actor.require_admin()
        store = self._index.migrations
        row = await store.latest() if migration_id is None else await store.get(migration_id)
        if row is None:
            if migration_id is not None:
                raise NotFound(f"no storage migration {migration_id}")
            return None
        lease = await self._index.leases.current(LEASE)
        return _status(row, lease is not None and not dead_here(lease.holder))

    async def active(self) -> MigrationRow | None:
        """The migration under way, if any (garbage collection asks before it starts)."""
        return await self._index.migrations.active()

    async def run(self, actor: Actor, migration_id: int, watcher: Watcher | None = None) -> MigrationRow:
        """Copy to the end in this process (the CLI), resuming where the migration stands; raises AlreadyExists
        when a live copier elsewhere holds the lease."""
        actor.require_admin()
        await self._acquire()
        try:
            return await self._copy(migration_id, watcher or _quiet)
        finally:
            await self._index.leases.release(LEASE, self._holder)

    async def start_copy(self, actor: Actor, migration_id: int) -> None:
        """Copy in the background of this process (the admin API, the web UI, a worker resuming)."""
        actor.require_admin()
        async with self._claiming:
            if self._tasks:
                return  # this worker's maintenance loop took the copy first: as good
            await self._acquire()
            self._background(migration_id)

    async def resume_if_orphaned(self) -> bool:
        """Called by every worker's maintenance loop: take over an active migration whose copier is gone
        (its lease expired, or it was a process of this host that died). True when this worker took it."""
        async with self._claiming:
            if self._tasks:
                return False
            migration = await self._index.migrations.active()
            if migration is None:
                return False
            try:
                await self._acquire()
            except AlreadyExists:
                return False
            log.warning(
                "storage migration %d: resuming (%s) at %s %r",
                migration.id,
                migration.state,
                migration.phase,
                migration.cursor,
            )
            self._background(migration.id)
            return True

    def _background(self, migration_id: int) -> None:
        async def copy() -> MigrationRow:
            try:
                return await self._copy(migration_id, _quiet)
            finally:
                await self._index.leases.release(LEASE, self._holder)

        task = asyncio.create_task(copy())
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[MigrationRow]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("storage migration stopped: %s (it resumes)", task.exception())

    async def join(self) -> None:
        """Wait until the copies this process started in the background have ended (tests, shutdown)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _acquire(self) -> None:
        holder = await take_lease(self._index.leases, LEASE, self._holder, LEASE_TTL)
        if holder is not None:
            raise AlreadyExists(f"the storage migration is being copied by {holder}")

    async def _holding_lease(self, work: Awaitable[None], renew: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` while calling ``renew`` every quarter of the lease's life (a page of links or large blobs
        on a slow store can outlast the lease); a lease lost to another copier, or a cancel, stops the work."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(LEASE_TTL.total_seconds() / 4)
                await renew()

        renewing = asyncio.ensure_future(keep())
        working = asyncio.ensure_future(work)
        try:
            await asyncio.wait([renewing, working], return_when=asyncio.FIRST_COMPLETED)
            if renewing.done():
                working.cancel()
                await asyncio.gather(working, return_exceptions=True)
                renewing.result()  # raises: the lease was lost
            working.result()
        finally:
            renewing.cancel()
            working.cancel()
            await asyncio.gather(renewing, working, return_exceptions=True)

    async def _renew(self) -> None:
        if not await self._index.leases.renew(LEASE, self._holder, LEASE_TTL):
            raise StorageUnavailable("the storage migration lost its lease (another copier took over); stopped")

    def _renew_copying(self, migration_id: int) -> Callable[[], Awaitable[None]]:
        """The forward copy's renewal: the lease, and a look at the state, so a cancel stops the copy."""

        async def renew() -> None:
            await self._renew()
            if (await self._get(migration_id)).state != "copying":
                raise _Cancelled

        return renew

    async def _get(self, migration_id: int) -> MigrationRow:
        row = await self._index.migrations.get(migration_id)
        if row is None:
            raise NotFound(f"no storage migration {migration_id}")
        return row

    async def _copy(self, migration_id: int, watcher: Watcher) -> MigrationRow:
        migration = await self._get(migration_id)
        if not migration.active:
            return migration
        store = self._index.migrations
        try:
            if migration.state == "copying":
                migration = await self._copy_forward(migration, watcher)
            if migration.state == "cancelling":
                return await self._roll_back(migration, watcher)
            await self._plans.switch(Actor.system(), migration.target, None)
            await store.set_state(migration_id, "done")
        except Exception as exc:
            # Left active: the copy resumes from its cursor (a worker takes over once the lease runs out).
            await store.set_state(
                migration_id,
                (await self._get(migration_id)).state,
                f"{exc}"[:2000] or repr(exc),
            )
            raise
        done = await self._get(migration_id)
        log.info(
            "storage migration %d done: %s",
            migration_id,
            done.report.get("summary", {}),
        )
        counts = {name: value for name, value in done.report.items() if not isinstance(value, list)}
        await self._audit.record(
            Actor.system(),
            "storage.migrated",
            await self._plans.describe(done.target),
            **counts,
        )
        return done

    async def _copy_forward(self, migration: MigrationRow, watcher: Watcher) -> MigrationRow:
        """The copy, then ``switching``; the migration as it stands after (``cancelling`` if cancelled)."""
        # Idempotent: a copier that died between recording the migration and switching the plan left it
        # unswitched; the plan must read through before anything is copied.
        await self._plans.switch(Actor.system(), migration.target, migration.source)
        source, target = await self._plans.driver(migration.source), await self._plans.driver(migration.target)
        renew = self._renew_copying(migration.id)
        try:
            await self._holding_lease(Copy(self._index, source, target, migration, renew, watcher).run(), renew)
            await self._index.migrations.move_state(migration.id, "copying", "switching")
        except _Cancelled:
            log.warning("storage migration %d: cancelled; rolling back", migration.id)
        return await self._get(migration.id)

    async def _roll_back(self, migration: MigrationRow, watcher: Watcher) -> MigrationRow:
        """A cancelled migration: back to the source, what only the target holds copied back, the target out
        of the plan. Every step may run again (a process that died here is taken over)."""
        await self._plans.switch(Actor.system(), migration.source, migration.target)
        await asyncio.sleep(SETTLE_SECONDS)
        source, target = await self._plans.driver(migration.source), await self._plans.driver(migration.target)
        back = Copy(self._index, target, source, migration, self._renew, watcher)
        await self._holding_lease(back.catch_up(), self._renew)
        await self._plans.switch(Actor.system(), migration.source, None)
        await self._index.migrations.set_state(migration.id, "cancelled")
        cancelled = await self._get(migration.id)
        log.info("storage migration %d cancelled: %s", migration.id, cancelled.report.get("summary", {}))
        await self._audit.record(
            Actor.system(),
            "storage.migration.cancelled",
            await self._plans.describe(migration.source),
            left=await self._plans.describe(migration.target),
            caught_up=cancelled.report.get("caught_up", 0),
        )
        return cancelled


def _status(row: MigrationRow, running: bool) -> MigrationStatus:
    elapsed = (_aware(row.updated_at) - _aware(row.started_at)).total_seconds()
    rate = row.bytes_done / elapsed if elapsed > 0 else 0.0
    objects_rate = row.objects_done / elapsed if elapsed > 0 else 0.0
    eta: float | None = None
    if not row.active:
        eta = 0.0
    elif rate > 0 and row.bytes_done < row.bytes_total:
        eta = (row.bytes_total - row.bytes_done) / rate
    elif objects_rate > 0:
        eta = max(row.objects_total - row.objects_done, 0) / objects_rate
    return MigrationStatus(row, running, rate, objects_rate, eta)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _quiet(_row: MigrationRow) -> None:
    pass
