"""Online garbage collection: what nothing references any more is deleted from storage and the index while
pushes, pulls and deletes go on.

A run, holding the ``gc`` lease (one collector across all workers and nodes), goes through phases:

1. finish blobs a collector that died mid-way had tombstoned;
2. with ``untagged``: manifests without a tag that no index lists and nothing is attached to;
3. repository links made before the grace window that no manifest of their repository uses;
4. blobs with no link and no manifest, untouched for the grace window: tombstone, delete bytes, forget;
5. bytes in storage the index never knew (a crash between writing and recording), older than the window;
6. upload sessions past their expiry and staging directories without a session.

Candidates are read from the index a page at a time, and every deletion is re-checked in SQL under the lock
of the blob's row, which every push touches before writing a file that names the blob: the protocol, and
the race it closes, are in docs/architecture.md, "Online garbage collection".
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from trustyard.db.blobs import LinkRow
from trustyard.db.gc_runs import GcRunRow
from trustyard.db.index import Index
from trustyard.db.manifests import UntaggedRow
from trustyard.db.settings import RuntimeSettings
from trustyard.errors import AlreadyExists, InvalidRequest, StorageUnavailable
from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Actor
from trustyard.services.audit import Audit
from trustyard.services.leases import take_lease
from trustyard.services.reservations import LEASE
from trustyard.services.retention import Expired, Retention
from trustyard.services.switch import StorageSwitch
from trustyard.services.uploads import Uploads
from trustyard.storage import layout
from trustyard.storage.driver import StorageDriver, UploadState

__all__ = ["GarbageCollector", "GcOptions", "GcReport", "GcRunRow", "GcSchedule", "GcStatus", "parse_duration"]

log = logging.getLogger("trustyard.gc")

#: The collector renews its lease after every page; a lease not renewed for this long is free again.
LEASE_TTL = timedelta(minutes=2)
#: Harbor's window for fresh uploads: a blob pushed or linked within it is never collected.
DEFAULT_GRACE = timedelta(hours=2)
#: Upload sessions idle this long are expired (Distribution's uploadpurging default age).
UPLOAD_EXPIRY = timedelta(days=7)
PAGE = 500
STAGING_AGE = timedelta(hours=1)
#: Scheduled runs are at least this far apart.
MIN_INTERVAL = timedelta(minutes=5)
#: The runtime setting holding the schedule saved in the web UI or the admin API.
SCHEDULE = "gc_schedule"

#: Called with the phase's name and how many items it has looked at so far.
Progress = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class GcOptions:
    dry_run: bool = False
    untagged: bool = False
    grace: timedelta = DEFAULT_GRACE
    upload_expiry: timedelta = UPLOAD_EXPIRY
    #: Upload staging without a session is left this long: a completing upload has given up its session
    #: row (its claim) while it assembles, hashes and moves the bytes, which can take minutes for huge blobs.
    staging_age: timedelta = STAGING_AGE


@dataclass(slots=True)
class GcReport:
    """What a run removed (a dry run: would remove)."""

    blobs: int = 0
    bytes_freed: int = 0
    tags: int = 0  # removed by retention
    manifests: int = 0
    links: int = 0
    uploads: int = 0
    orphans: int = 0  # stored bytes the index never knew, and staging left by crashes
    seconds: float = 0.0
    removed: list[str] = field(default_factory=list)  # the first few things removed, for people to see

    def note(self, what: str) -> None:
        if len(self.removed) < 50:
            self.removed.append(what)


@dataclass(frozen=True, slots=True)
class GcSchedule:
    """How often collection runs by itself (None: never) and with which options; ``source`` says where the
    schedule comes from ("config" until someone saves one, then "runtime")."""

    every: timedelta | None
    untagged: bool = False
    grace: timedelta = DEFAULT_GRACE
    source: str = "config"

    @classmethod
    def parse(cls, every: str, untagged: bool, grace: str, source: str = "config") -> GcSchedule:
        interval = None if every.strip().lower() in ("", "off", "never") else parse_duration(every)
        if interval is not None and interval < MIN_INTERVAL:
            raise InvalidRequest(f"collect at most every {_text(MIN_INTERVAL)}: {every!r} is too often")
        return cls(interval, untagged, parse_duration(grace), source)

    def document(self) -> dict[str, object]:
        return {
            "every": _text(self.every) if self.every else "off",
            "untagged": self.untagged,
            "grace": _text(self.grace),
            "source": self.source,
        }

    def options(self) -> GcOptions:
        return GcOptions(untagged=self.untagged, grace=self.grace)


def _text(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class GcStatus:
    running: bool
    holder: str | None
    runs: list[GcRunRow]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd])")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d``, ``1h30m`` (or plain seconds) as a timedelta; refuses anything else."""
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        return timedelta(seconds=int(cleaned))
    pieces = _DURATION.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in pieces) != cleaned:
        raise InvalidRequest(f"{text!r} is not a duration: write it like 90s, 30m, 2h, 7d or 1h30m")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in pieces))


def collector_id() -> str:
    """Who holds the lease: host and pid (so a rerun on the same host can tell a dead holder) and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class GarbageCollector:
    def __init__(
        self,
        index: Index,
        switch: StorageSwitch,
        uploads: Uploads,
        retention: Retention,
        audit: Audit,
        holder: str,
        runtime: RuntimeSettings,
        configured: GcSchedule,
    ) -> None:
        self._index = index
        self._switch = switch
        self._uploads = uploads
        self._retention = retention
        self._audit = audit
        self._holder = holder
        self._runtime = runtime
        self._configured = configured
        self._tasks: set[asyncio.Task[GcRunRow]] = set()  # runs started in the background (kept referenced)

    async def status(self, actor: Actor, limit: int = 20) -> GcStatus:
        actor.require_admin()
        lease = await self._index.leases.current(LEASE)
        runs = await self._index.gc_runs.recent(limit)
        return GcStatus(lease is not None, lease.holder if lease else None, runs)

    async def schedule(self, actor: Actor) -> GcSchedule:
        actor.require_admin()
        return await self._schedule()

    async def _schedule(self) -> GcSchedule:
        stored = await self._runtime.get(SCHEDULE)
        if stored is None:
            return self._configured
        value = json.loads(stored.value)
        return GcSchedule.parse(value["every"], bool(value["untagged"]), value["grace"], "runtime")

    async def set_schedule(self, actor: Actor, schedule: GcSchedule) -> GcSchedule:
        actor.require_admin()
        document = schedule.document()
        document.pop("source")
        await self._runtime.put(SCHEDULE, json.dumps(document), actor.name)
        await self._audit.record(actor, "settings.gc", "registry", **document)
        return await self._schedule()

    async def run_if_due(self) -> GcRunRow | None:
        """Start a scheduled run when the last (non-dry) run began longer ago than the schedule's interval.
        Every worker calls this; the lease lets one of them run it."""
        schedule = await self._schedule()
        if schedule.every is None:
            return None
        last = next((r for r in await self._index.gc_runs.recent(20) if not r.dry_run), None)
        if last is not None and _aware(last.started_at) + schedule.every > datetime.now(UTC):
            return None
        try:
            return await self.start(Actor.system(), schedule.options())
        except AlreadyExists:
            return None

    async def run(self, actor: Actor, options: GcOptions, progress: Progress | None = None) -> GcRunRow:
        """One collection, to the end; raises ``AlreadyExists`` when another collector holds the lease."""
        began = await self._begin(actor, options)
        return await self._execute(actor, began, options, progress or _quiet)

    async def start(self, actor: Actor, options: GcOptions) -> GcRunRow:
        """Begin a collection in the background of this process (the admin API, the web UI, the schedule);
        returns its run, still running. Raises ``AlreadyExists`` when another collector holds the lease."""
        began = await self._begin(actor, options)
        task = asyncio.create_task(self._execute(actor, began, options, _quiet))
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return await self._index.gc_runs.get(began.run_id)

    def _finished(self, task: asyncio.Task[GcRunRow]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: _execute has logged it and recorded it in the run

    async def _begin(self, actor: Actor, options: GcOptions) -> _Began:
        actor.require_admin()
        await self._acquire()
        try:
            # The plan the run collects in, read after taking the lease: a save whose check of the lease came
            # before it switches later, and the run's guard (below) sees that at its next page.
            await self._switch.refresh()
            plan = self._switch.plan
            if await self._index.adoptions.running() is not None:
                # Adoption indexes manifests before their tags: an untagged sweep now would take tagged images.
                raise AlreadyExists(
                    "the storage backend's images are still being indexed (trustyard storage status); "
                    "collect when that is done"
                )
            # Checked after taking the lease: a migration starting meanwhile checks the lease after recording
            # itself (services/migration.py), so one of the two always sees the other.
            migration = await self._index.migrations.active()
            if migration is not None:
                raise AlreadyExists(
                    f"a storage migration (id {migration.id}) is under way; garbage collection would race its copy, "
                    "so it runs once the migration is done (`trustyard storage migrate --status`)"
                )
            storage = await self._switch.driver(plan.active)  # before the run's row: it may not be buildable
            await self._index.gc_runs.interrupt_running()
            grace = int(options.grace.total_seconds())
            run_id = await self._index.gc_runs.start(actor.name, options.dry_run, options.untagged, grace)
            return _Began(run_id, plan.version, storage)
        except BaseException:
            await self._index.leases.release(LEASE, self._holder)
            raise

    async def _execute(self, actor: Actor, began: _Began, options: GcOptions, progress: Progress) -> GcRunRow:
        run_id = began.run_id
        report = GcReport()
        started = time.monotonic()

        async def guard() -> None:
            await self.renew()
            await self._same_plan(began.plan_version)

        try:
            sweep = _Sweep(self._index, began.storage, self._uploads, guard, options, report, progress)
            try:
                await self._retain(actor, options, report)
                await sweep.run()
            except BaseException as exc:
                report.seconds = round(time.monotonic() - started, 3)
                await self._index.gc_runs.finish(run_id, "failed", _summary(report), f"{exc}"[:2000] or repr(exc))
                log.error("gc run %d failed after %.1fs: %s", run_id, report.seconds, exc)
                raise
            report.seconds = round(time.monotonic() - started, 3)
            await self._index.gc_runs.finish(run_id, "succeeded", _summary(report))
            metrics = " ".join(f"{k}={v}" for k, v in _summary(report, removed=False).items())
            log.info("gc run %d%s %s", run_id, " (dry run)" if options.dry_run else "", metrics)
            if not options.dry_run:
                await self._audit.record(actor, "gc.run", "registry", **_summary(report, removed=False))
            return await self._index.gc_runs.get(run_id)
        finally:
            await self._index.leases.release(LEASE, self._holder)

    async def retention_plan(self, actor: Actor) -> list[Expired]:
        """The tags the next run's retention would remove."""
        return await self._retention.plan(actor)

    async def _retain(self, actor: Actor, options: GcOptions, report: GcReport) -> None:
        """Retention first: the tags it removes free what only they used, in this very run."""
        expired = await (self._retention.plan(actor) if options.dry_run else self._retention.apply(actor))
        report.tags += len(expired)
        for item in expired:
            report.note(f"tag {item.repository}:{item.tag}")

    async def _acquire(self) -> None:
        holder = await take_lease(self._index.leases, LEASE, self._holder, LEASE_TTL)
        if holder is not None:
            raise AlreadyExists(f"garbage collection is already running ({holder}); wait for it to finish")

    async def renew(self) -> None:
        if not await self._index.leases.renew(LEASE, self._holder, LEASE_TTL):
            raise StorageUnavailable("garbage collection lost its lease (another collector took over); stopped")

    async def _same_plan(self, version: int) -> None:
        """Stop when the storage plan changed since the run began. A switch clears the index and adopts the new
        backend in the background: the index no longer describes what this run judged, and deleting what it
        does not list would delete what it has not indexed yet (a save checks the lease before its probe, so
        a run can begin in between)."""
        if (await self._index.backends.plan()).version != version:
            raise AlreadyExists(
                "the storage backend was switched while garbage collection ran; it stopped before deleting "
                "anything more. Collect again once the new backend is indexed (trustyard storage status)"
            )


@dataclass(frozen=True, slots=True)
class _Began:
    """A run that holds the lease: its row, and the plan it collects in (the version, and the driver of the
    plan's active backend, which the run uses even if this worker swaps backends meanwhile)."""

    run_id: int
    plan_version: int
    storage: StorageDriver


#: Storage deletes in flight at once: object stores answer each in milliseconds, so a page goes in parallel.
PARALLEL_DELETES = 16


async def _each(delete: Callable[[str], Awaitable[None]], keys: Iterable[str]) -> None:
    """``delete`` every key, ``PARALLEL_DELETES`` at a time."""
    gate = asyncio.Semaphore(PARALLEL_DELETES)

    async def one(key: str) -> None:
        async with gate:
            await delete(key)

    await asyncio.gather(*(one(key) for key in keys))


def _layer_link(row: LinkRow) -> str:
    return layout.layer_link(RepositoryName(row.repository), Digest.parse(row.digest))


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _quiet(_phase: str, _done: int) -> None:
    pass


def _summary(report: GcReport, *, removed: bool = True) -> dict[str, object]:
    out = asdict(report)
    if not removed:
        out.pop("removed")
    return out


class _Sweep:
    """The phases of one run (see the module docstring), sharing its options, report and progress."""

    def __init__(
        self,
        index: Index,
        storage: StorageDriver,
        upload_sessions: Uploads,
        guard: Callable[[], Awaitable[None]],
        options: GcOptions,
        report: GcReport,
        progress: Progress,
    ) -> None:
        self.index = index
        self.storage = storage
        self.upload_sessions = upload_sessions
        # Renews the lease and stops the run when the storage plan moved: called after every page, and between
        # the index reads that judge a page and the storage deletes that act on them.
        self.guard = guard
        self.options = options
        self.report = report
        self.progress = progress
        self.cutoff = datetime.now(UTC) - options.grace
        self.dry = options.dry_run

    async def run(self) -> None:
        if not self.dry:
            await self.tombstoned()
        if self.options.untagged:
            await self.untagged()
        await self.links()
        await self.blobs()
        await self.orphans()
        await self.uploads()

    async def tombstoned(self) -> None:
        """Blobs tombstoned by a collector that died between marking and forgetting them."""
        done = 0
        while rows := await self.index.blobs.tombstoned_blobs(PAGE):
            await self.guard()
            await self._delete_bytes([(r.digest, r.size) for r in rows])
            await self.index.blobs.forget_blobs([r.digest for r in rows])
            done += len(rows)
            self.progress("resume", done)
            await self.guard()

    async def untagged(self) -> None:
        after, done = 0, 0
        while rows := await self.index.manifests.untagged_manifests(self.cutoff, after, PAGE):
            await self.guard()
            for row in rows:
                if self.dry or await self._delete_untagged(row):
                    self.report.manifests += 1
                    self.report.note(f"manifest {row.repository}@{row.digest}")
            after, done = rows[-1].id, done + len(rows)
            self.progress("untagged manifests", done)
            await self.guard()

    async def _delete_untagged(self, row: UntaggedRow) -> bool:
        # Storage first, then the index under the blob row's lock; a push that touched the row since the
        # cutoff may have written the link file just before we deleted it: put it back.
        link = layout.revision_link(RepositoryName(row.repository), Digest.parse(row.digest))
        await self.storage.delete(link)
        if await self.index.manifests.delete_untagged(row, self.cutoff):
            return True
        await self.storage.put(link, layout.link_body(Digest.parse(row.digest)))
        return False

    async def links(self) -> None:
        after: tuple[int, str] = (0, "")
        done = 0
        while rows := await self.index.blobs.stale_links(self.cutoff, after, PAGE):
            await self.guard()
            self.report.links += len(rows) if self.dry else await self._remove_links(rows)
            last = rows[-1]
            after, done = (last.repository_id, last.digest), done + len(rows)
            self.progress("unused links", done)
            await self.guard()

    async def _remove_links(self, rows: list[LinkRow]) -> int:
        # Storage first, then the index under the blob rows' locks; a link whose blob a push touched since the
        # cutoff may have had its file written just before we deleted it: put those back.
        files = {(r.repository_id, r.digest): _layer_link(r) for r in rows}
        await _each(self.storage.delete, files.values())
        removed = await self.index.blobs.remove_stale_links(rows, self.cutoff)
        kept = [
            (files[(r.repository_id, r.digest)], r.digest) for r in rows if (r.repository_id, r.digest) not in removed
        ]
        for key, digest in kept:
            await self.storage.put(key, layout.link_body(Digest.parse(digest)))
        return len(removed)

    async def blobs(self) -> None:
        after, done = "", 0
        while rows := await self.index.blobs.collectable_blobs(self.cutoff, after, PAGE, stale_links=self.dry):
            if self.dry:
                marked = rows
            else:
                marked = await self.index.blobs.tombstone_blobs([r.digest for r in rows], self.cutoff)
                await self.guard()  # still the collector? (a push finishes tombstones of a dead one itself)
                await self._delete_bytes([(r.digest, r.size) for r in marked])
                await self.index.blobs.forget_blobs([r.digest for r in marked])
            for row in marked:
                self.report.blobs += 1
                self.report.bytes_freed += row.size
                self.report.note(f"blob {row.digest}")
            after, done = rows[-1].digest, done + len(rows)
            self.progress("blobs", done)
            await self.guard()

    async def _delete_bytes(self, blobs: list[tuple[str, int]]) -> None:
        await _each(self.storage.delete, [layout.blob_data(Digest.parse(digest)) for digest, _size in blobs])

    async def orphans(self) -> None:
        """Bytes under blobs/ without a row: a push that died between writing and recording them."""
        batch: list[str] = []
        done = 0
        async for key in self.storage.list(layout.BLOBS):
            digest = layout.blob_of(key)
            if digest is None:
                continue
            batch.append(str(digest))
            if len(batch) >= PAGE:
                done += await self._orphan_batch(batch)
                batch = []
                self.progress("storage scan", done)
                await self.guard()
        done += await self._orphan_batch(batch)
        self.progress("storage scan", done)

    async def _orphan_batch(self, digests: list[str]) -> int:
        known = await self.index.blobs.known_blobs(digests)
        await self.guard()
        for text in digests:
            if text in known:
                continue
            digest = Digest.parse(text)
            info = await self.storage.stat(layout.blob_data(digest))
            if info is None or info.modified >= self.cutoff.timestamp():
                continue  # gone already, or written within the window (a push about to record it)
            if self.dry:
                self._orphan_found(text, info.size)
                continue
            if not await self.index.blobs.claim_orphan(text, info.size):
                continue
            await self.storage.delete(layout.blob_data(digest))
            await self.index.blobs.forget_blobs([text])
            self._orphan_found(text, info.size)
        return len(digests)

    def _orphan_found(self, digest: str, size: int) -> None:
        self.report.orphans += 1
        self.report.bytes_freed += size
        self.report.note(f"unrecorded bytes {digest}")

    async def uploads(self) -> None:
        expired = await self.index.uploads.stale_uploads(datetime.now(UTC) - self.options.upload_expiry)
        if self.dry:
            self.report.uploads += len(expired)
        else:
            self.report.uploads += await self.upload_sessions.purge(Actor.system(), self.options.upload_expiry)
        self.progress("upload sessions", len(expired))
        await self.open_uploads()
        names_after, done = "", 0
        while names := await self.index.repositories.names(names_after, PAGE):
            for name in names:
                await self._staging(name)
            names_after, done = names[-1], done + len(names)
            self.progress("upload staging", done)
            await self.guard()

    async def open_uploads(self) -> None:
        """The drivers' segmented uploads no session names (a crash between claiming a session and completing
        it; on S3, incomplete multipart uploads), begun longer ago than the staging age."""
        started_before = (datetime.now(UTC) - self.options.staging_age).timestamp()
        batch: list[UploadState] = []
        async for state in self.storage.open_uploads(started_before):
            batch.append(state)
            if len(batch) >= PAGE:
                await self._abort_unclaimed(batch)
                batch = []
        await self._abort_unclaimed(batch)

    async def _abort_unclaimed(self, states: list[UploadState]) -> None:
        in_use = await self.index.uploads.tokens_in_use([s.token for s in states])
        if states:
            await self.guard()
        for state in states:
            if state.token in in_use:
                continue
            if not self.dry:
                await self.storage.abort_upload(state)
            self.report.orphans += 1
            self.report.note(f"open upload to {state.key}")

    async def _staging(self, repository: str) -> None:
        """Staging directories of ``repository`` without a session, untouched for the window: monolithic
        uploads and completions that died half-way."""
        newest: dict[str, float] = {}
        prefixes: dict[str, str] = {}
        async for key in self.storage.list(f"{layout.REPOSITORIES}/{repository}/_uploads"):
            found = layout.upload_of(key)
            if found is None or found.repository != repository:
                continue
            info = await self.storage.stat(key)
            modified = info.modified if info else 0.0
            newest[found.upload_id] = max(newest.get(found.upload_id, 0.0), modified)
            prefixes[found.upload_id] = found.prefix
        cutoff = (datetime.now(UTC) - self.options.staging_age).timestamp()
        for upload_id, modified in newest.items():
            if modified >= cutoff or await self.index.uploads.upload(repository, upload_id):
                continue
            if not self.dry:
                await self.guard()
                await self.storage.delete_prefix(prefixes[upload_id])
            self.report.orphans += 1
            self.report.note(f"upload staging {repository}/{upload_id}")
