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
   The cursor (phase + last digest or repository done) is saved after every page, so a copier that died
   resumes there: any worker's maintenance loop takes over a migration whose holder is gone, and so does
   re-running ``trustyard storage migrate``.
3. The plan switches atomically to ``{"active": target, "fallback": null}``; the migration is ``done`` and its
   report says what was copied, verified, missing or mismatched. The source is left intact.

Garbage collection does not run while a migration is active (services/gc.py asks ``active``), and a
migration does not start while a collection runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from trustyard.db.index import Index
from trustyard.db.storage_migrations import MigrationRow, Progress, StoredBlob
from trustyard.errors import AlreadyExists, InvalidRequest, NotFound, ObjectNotFound, StorageUnavailable
from trustyard.oci.digest import Digest, Hasher
from trustyard.oci.names import RepositoryName, Tag
from trustyard.services.actor import Actor
from trustyard.services.audit import Audit
from trustyard.services.backends import Backends
from trustyard.services.reservations import collector_alive, dead_here
from trustyard.services.settings import Settings
from trustyard.services.switch import StorageSwitch
from trustyard.storage import layout
from trustyard.storage.config import StorageSettings
from trustyard.storage.driver import StorageDriver

__all__ = ["LEASE", "MigrationRow", "MigrationStatus", "Migrations", "StoragePlans"]

log = logging.getLogger("trustyard.migration")

LEASE = "storage-migration"
#: The copier renews its lease after every page; a lease not renewed for this long is free again.
LEASE_TTL = timedelta(minutes=1)
#: Blobs per page (the cursor moves a page at a time) and blobs copied at once.
PAGE = 64
PARALLEL = 16
#: Repositories whose links are written per page.
REPOSITORY_PAGE = 16
#: Tries per object before a storage error stops the copy (it resumes from the last page).
ATTEMPTS = 3
#: Blobs and repositories recorded this long before the migration began are looked at again at the end too:
#: the rows a request running across the switch records are stamped after it, by the clock of the node that
#: served it, which may lag this one's by seconds.
CATCH_UP_MARGIN = timedelta(seconds=15)
#: How often ``migrate`` looks at a migration another process copies.
FOLLOW_SECONDS = 1.0
#: Missing and mismatched objects named in the report (the counts are always complete).
REPORT_LIMIT = 200

#: Called after every page with the migration as it now stands.
Watcher = Callable[[MigrationRow], None]


class StoragePlans:
    """The storage plan as a migration drives it: backends by generation (services/backends.py), the plan in
    SQL, and this worker's switch (services/switch.py), which waits until every live worker serves a new plan."""

    def __init__(self, index: Index, backends: Backends, switch: StorageSwitch, settings: Settings) -> None:
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
            log.warning("storage plan %d: %d workers did not ack; they fence themselves", plan.version, len(lagging))

    async def driver(self, generation: int) -> StorageDriver:
        """The raw driver of one backend generation (cached and owned by ``Backends``: never closed here)."""
        return await self._switch.driver(generation)

    async def describe(self, generation: int) -> str:
        return describe(await self._backends.settings(generation))


def describe(settings: StorageSettings) -> str:
    """A backend in words, for people and the audit log."""
    if settings.s3 is not None:
        where = f" at {settings.s3.regionendpoint}" if settings.s3.regionendpoint else ""
        return f"the S3 bucket {settings.s3.bucket}{where}"
    if settings.swift is not None:
        return f"the Swift container {settings.swift.container} ({settings.swift.authurl})"
    if settings.filesystem is not None and settings.filesystem.rootdirectory is not None:
        return f"the directory {settings.filesystem.rootdirectory}"
    return f"the {settings.driver} default" if settings.driver != "filesystem" else "the default directory"


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
            "objects": {"done": m.objects_done, "total": max(m.objects_total, m.objects_done)},
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
            wanted, under_way = describe(candidate), await self._plans.describe(migration.target)
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
        await self._acquire()
        self._background(migration_id)

    async def resume_if_orphaned(self) -> bool:
        """Called by every worker's maintenance loop: take over an active migration whose copier is gone
        (its lease expired, or it was a process of this host that died). True when this worker took it."""
        if self._tasks:
            return False
        migration = await self._index.migrations.active()
        if migration is None:
            return False
        try:
            await self._acquire()
        except AlreadyExists:
            return False
        log.warning("storage migration %d: resuming at %s %r", migration.id, migration.phase, migration.cursor)
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
        leases = self._index.leases
        if await leases.acquire(LEASE, self._holder, LEASE_TTL):
            return
        current = await leases.current(LEASE)
        if current is None and await leases.acquire(LEASE, self._holder, LEASE_TTL):
            return
        dead = current is not None and dead_here(current.holder)
        if current is not None and dead and await leases.take_over(LEASE, current.holder, self._holder, LEASE_TTL):
            log.warning("storage migration: took the lease over from %s, which is gone", current.holder)
            return
        holder = current.holder if current else "another copier"
        raise AlreadyExists(f"the storage migration is being copied by {holder}")

    async def _holding_lease(self, work: Awaitable[None]) -> None:
        """Run ``work`` while renewing the lease every quarter of its life (a page of links or large blobs on a
        slow store can outlast the lease); a lease lost to another copier stops the work."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(LEASE_TTL.total_seconds() / 4)
                await self._renew()

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
            # Idempotent: a copier that died between recording the migration and switching the plan left it
            # unswitched; the plan must read through before anything is copied.
            if migration.state == "copying":
                await self._plans.switch(Actor.system(), migration.target, migration.source)
            source, target = await self._plans.driver(migration.source), await self._plans.driver(migration.target)
            copy = _Copy(self._index, source, target, migration, self._renew, watcher)
            if migration.state == "copying":
                await self._holding_lease(copy.run())
                await store.set_state(migration_id, "switching")
            await self._plans.switch(Actor.system(), migration.target, None)
            await store.set_state(migration_id, "done")
        except Exception as exc:
            # Left active: the copy resumes from its cursor (a worker takes over once the lease runs out).
            await store.set_state(migration_id, (await self._get(migration_id)).state, f"{exc}"[:2000] or repr(exc))
            raise
        done = await self._get(migration_id)
        log.info("storage migration %d done: %s", migration_id, done.report.get("summary", {}))
        counts = {name: value for name, value in done.report.items() if not isinstance(value, list)}
        await self._audit.record(Actor.system(), "storage.migrated", await self._plans.describe(done.target), **counts)
        return done


@dataclass
class _Report:
    """What the copy did; stored as the migration's report (JSON) after every page."""

    blobs_copied: int = 0
    blobs_present: int = 0  # already in the target with the right digest
    bytes_copied: int = 0
    links_written: int = 0
    links_removed: int = 0  # their index row vanished while the copy ran
    caught_up: int = 0  # blobs and links written to the source by requests running when the plan switched
    deferred: list[str] = field(default_factory=list)  # in neither backend when copied: looked at again at the end
    missing: list[str] = field(default_factory=list)  # in the index, not in the source
    mismatched: list[str] = field(default_factory=list)  # bytes whose digest is not their name
    missing_count: int = 0
    mismatched_count: int = 0

    @classmethod
    def load(cls, document: dict[str, Any]) -> _Report:
        known = {k: v for k, v in document.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def document(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["summary"] = (
            f"{self.blobs_copied} blobs copied ({self.bytes_copied} bytes), {self.blobs_present} already there; "
            f"{self.links_written} links written and read back, {self.links_removed} removed; "
            f"{self.caught_up} caught up after the copy; "
            f"{self.missing_count} missing from the source, {self.mismatched_count} not matching their digest"
        )
        return out

    def lost(self, kind: str, what: str) -> None:
        names = self.missing if kind == "missing" else self.mismatched
        if len(names) < REPORT_LIMIT:
            names.append(what)
        if kind == "missing":
            self.missing_count += 1
        else:
            self.mismatched_count += 1


class _Copy:
    """One copier's pass over the index, from the migration's cursor to the end."""

    def __init__(
        self,
        index: Index,
        source: StorageDriver,
        target: StorageDriver,
        migration: MigrationRow,
        renew: Callable[[], Any],
        watcher: Watcher,
    ) -> None:
        self._index = index
        self._source = source
        self._target = target
        self._id = migration.id
        self._row = migration
        self._phase, self._cursor = migration.phase, migration.cursor
        self._objects, self._bytes = migration.objects_done, migration.bytes_done
        self._verified, self._failed = migration.verified, migration.failed
        self._report = _Report.load(migration.report)
        #: Blobs this migration found missing or corrupt in the source: not tried again when catching up.
        self._lost = {entry.split(" ")[0] for entry in [*self._report.missing, *self._report.mismatched]}
        self._renew = renew
        self._watcher = watcher
        self._gate = asyncio.Semaphore(PARALLEL)

    async def run(self) -> None:
        if self._phase == "blobs":
            await self._blobs()
            await self._save("links", "")
        if self._phase == "links":
            await self._links()
            await self._save("recent", "")
        if self._phase == "recent":
            await self._recent()
            await self._save("done", "")

    async def _save(self, phase: str, cursor: str) -> None:
        self._phase, self._cursor = phase, cursor
        await self._renew()
        progress = Progress(
            phase, cursor, self._objects, self._bytes, self._verified, self._failed, self._report.document()
        )
        await self._index.migrations.record(self._id, progress)
        row = await self._index.migrations.get(self._id)
        if row is not None:
            self._row = row
            self._watcher(row)

    # Blobs.

    async def _blobs(self) -> None:
        while page := await self._index.migrations.blobs_after(self._cursor, PAGE):
            await asyncio.gather(*(self._blob(blob) for blob in page))
            await self._save("blobs", page[-1].digest)

    async def _blob(self, blob: StoredBlob) -> None:
        async with self._gate:
            await _retrying(f"copying blob {blob.digest}", lambda: self._copy_blob(blob))

    async def _copy_blob(self, blob: StoredBlob) -> None:
        digest, digest_text = Digest.parse(blob.digest), blob.digest
        key = layout.blob_data(digest)
        held = await self._target.stat(key)
        if held is not None and held.size == blob.size and await _digest_of(self._target, key, digest) == digest:
            self._report.blobs_present += 1
            self._done(blob.size, verified=True)
            return
        hasher = Hasher(digest.algorithm)
        try:
            written = await self._target.write(key, _hashing(self._source.read(key), hasher))
        except ObjectNotFound:
            # In neither backend: a push reserves a blob's row before it writes the bytes (to the target), so
            # this may be one under way. Looked at again when catching up; missing only if still nowhere.
            if digest_text not in self._report.deferred:
                self._report.deferred.append(digest_text)
            self._done(0, verified=False)
            return
        if hasher.digest() != digest or written != blob.size:
            await self._target.delete(key)  # never leave bytes under a name they do not have
            self._lost.add(blob.digest)
            self._report.lost("mismatched", f"{blob.digest} (read {written} bytes hashing to {hasher.digest()})")
            self._failed += 1
            self._done(0, verified=False)
            return
        self._report.blobs_copied += 1
        self._report.bytes_copied += written
        self._done(written, verified=True)

    def _done(self, size: int, *, verified: bool) -> None:
        self._objects += 1
        self._bytes += size
        self._verified += int(verified)
        # Between pages too, so a progress bar moves with every object (only pages are saved).
        self._watcher(
            replace(
                self._row,
                phase=self._phase,
                objects_done=self._objects,
                bytes_done=self._bytes,
                verified=self._verified,
                failed=self._failed,
                updated_at=datetime.now(UTC),
            )
        )

    # What changed while the copy ran.

    async def _recent(self) -> None:
        """A request that was already running when the plan switched still wrote to the source (it holds the
        driver it began with) and may have been indexed after the copy passed its digest or repository: go
        over what was recorded since the migration began once more. (Everything recorded from now on was
        written by a request that began after the switch, so to the target.)"""
        since = _aware(self._row.started_at) - CATCH_UP_MARGIN
        after = ""
        while page := await self._index.migrations.blobs_touched_since(since, after, PAGE):
            await asyncio.gather(*(self._recent_blob(blob) for blob in page))
            after = page[-1].digest
            await self._save("recent", "")
        for name in await self._index.migrations.repositories_changed_since(since):
            await self._repository(name, catching_up=True)
        await asyncio.gather(*(self._deferred(digest) for digest in list(self._report.deferred)))
        self._report.deferred.clear()

    async def _deferred(self, text: str) -> None:
        """A blob the copy found in neither backend: there by now (its push finished), or missing."""
        async with self._gate:
            key = layout.blob_data(Digest.parse(text))
            if await self._target.stat(key) is not None:
                return
            size = await self._index.blobs.blob_size(text)
            if size is None:
                return  # its row is gone: a push that failed, or garbage collected before the migration
            blob = StoredBlob(text, size)
            await _retrying(f"copying blob {text}", lambda: self._copy_blob(blob))
            if text not in self._lost and await self._target.stat(key) is None:
                self._lost.add(text)
                self._report.lost("missing", text)
                self._failed += 1

    async def _recent_blob(self, blob: StoredBlob) -> None:
        async with self._gate:
            held = await self._target.stat(layout.blob_data(Digest.parse(blob.digest)))
            if (held is not None and held.size == blob.size) or blob.digest in self._lost:
                return  # a push wrote it there (and verified it), or the copy did (or reported it lost)
            self._report.caught_up += 1
            await _retrying(f"copying blob {blob.digest}", lambda: self._copy_blob(blob))

    # Links.

    async def _links(self) -> None:
        while page := await self._index.migrations.repositories_after(self._cursor, REPOSITORY_PAGE):
            for name in page:
                await self._repository(name)
            await self._save("links", page[-1])

    async def _repository(self, name: str, *, catching_up: bool = False) -> None:
        repository = RepositoryName(name)
        before = _link_files(repository, await self._index.migrations.links(name))
        await asyncio.gather(*(self._link(key, body, catching_up) for key, body in before.items()))
        # Re-read the index: a delete that raced the writes above removed its row after we read it, and its
        # storage delete may have run before our write. Storage first, index second means the index now says
        # what must stay: remove what it no longer names, rewrite what moved (a tag pushed meanwhile).
        after = _link_files(repository, await self._index.migrations.links(name))
        for key in before.keys() - after.keys():
            await self._target.delete(key)
            self._report.links_removed += 1
        for key, body in after.items():
            if before.get(key) != body:
                await self._link(key, body, catching_up)

    async def _link(self, key: str, body: bytes, catching_up: bool = False) -> None:
        async with self._gate:
            await _retrying(f"writing the link {key}", lambda: self._write_link(key, body, catching_up))

    async def _write_link(self, key: str, body: bytes, catching_up: bool) -> None:
        if catching_up:
            # Most links are there already (the copy or a push wrote them): look before writing.
            try:
                if await self._target.get(key) == body:
                    return
            except ObjectNotFound:
                pass
        # Written whatever the target holds (a link is a few bytes: writing costs what checking would), then
        # read back and compared.
        await self._target.put(key, body)
        if await self._target.get(key) != body:
            raise StorageUnavailable(f"the link {key} read back different bytes from the target")
        if catching_up:
            self._report.caught_up += 1
            return
        self._report.links_written += 1
        self._done(0, verified=True)


async def _retrying(what: str, attempt: Callable[[], Awaitable[None]]) -> None:
    """``attempt`` up to ``ATTEMPTS`` times over storage errors (a store's hiccup); then the copy stops (and
    resumes from its last page)."""
    for number in range(1, ATTEMPTS + 1):
        try:
            await attempt()
            return
        except (StorageUnavailable, OSError) as exc:
            if number == ATTEMPTS:
                raise StorageUnavailable(f"{what} failed {ATTEMPTS} times: {exc}") from exc
            await asyncio.sleep(0.5 * number)


def _link_files(repository: RepositoryName, links: Any) -> dict[str, bytes]:
    """Distribution's link files for what the index says of ``repository``: key -> body."""
    files: dict[str, bytes] = {}
    for text in links.layers:
        digest = Digest.parse(text)
        files[layout.layer_link(repository, digest)] = layout.link_body(digest)
    for text in links.revisions:
        digest = Digest.parse(text)
        files[layout.revision_link(repository, digest)] = layout.link_body(digest)
    for name, text in links.tags.items():
        tag, digest = Tag(name), Digest.parse(text)
        files[layout.tag_current_link(repository, tag)] = layout.link_body(digest)
        files[layout.tag_index_link(repository, tag, digest)] = layout.link_body(digest)
    return files


async def _hashing(chunks: AsyncIterator[bytes], hasher: Hasher) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        hasher.update(chunk)
        yield chunk


async def _digest_of(driver: StorageDriver, key: str, expected: Digest) -> Digest:
    """The digest (in ``expected``'s algorithm) of the bytes ``driver`` holds at ``key``."""
    hasher = Hasher(expected.algorithm)
    async for chunk in driver.read(key):
        hasher.update(chunk)
    return hasher.digest()


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
