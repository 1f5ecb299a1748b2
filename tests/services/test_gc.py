"""Garbage collection on the service, over SQLite and PostgreSQL and the in-memory driver: what is collected,
what is kept, dry runs, the lease, resuming a dead collector's work, and the races the protocol closes.

A negative grace window puts the cutoff in the future, so "older than the window" needs no waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.services.wiring import wire
from trustyard.db.engine import migrate, open_index
from trustyard.db.index import Index
from trustyard.errors import AlreadyExists, BlobCollected
from trustyard.oci import mediatypes as mt
from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName, Tag
from trustyard.services import Services
from trustyard.services.actor import Actor
from trustyard.services.gc import GcOptions, GcSchedule
from trustyard.services.reservations import LEASE
from trustyard.storage import layout
from trustyard.storage.config import InMemoryStorage, StorageSettings
from trustyard.storage.memory import MemoryDriver

SYSTEM = Actor.system()
APP = RepositoryName.parse("team/app")
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
NOW = GcOptions(grace=timedelta(seconds=-5))  # everything is older than the window


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[tuple[Services, Index, MemoryDriver]]:
    await migrate(database_url)
    index = open_index(database_url)
    driver = MemoryDriver()
    try:
        yield wire(index, driver), index, driver
    finally:
        await index.dispose()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push_blob(services: Services, data: bytes, repository: RepositoryName = APP) -> Digest:
    digest = Digest.of(data)
    await services.uploads.monolithic(SYSTEM, repository, digest, _chunks(data))
    return digest


async def push_image(services: Services, tag: str | None, *layers: bytes, repository: RepositoryName = APP) -> Digest:
    config_bytes = b'{"architecture":"amd64","os":"linux","tag":"%s"}' % (tag or "").encode()
    config = await push_blob(services, config_bytes, repository)
    descriptors = []
    for data in layers:
        digest = await push_blob(services, data, repository)
        descriptors.append({"mediaType": LAYER, "digest": str(digest), "size": len(data)})
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(config), "size": len(config_bytes)},
        "layers": descriptors,
    }
    payload = json.dumps(manifest).encode()
    digest = Digest.of(payload)
    reference = Tag.parse(tag) if tag else digest
    await services.manifests.put(SYSTEM, repository, reference, mt.OCI_MANIFEST, payload)
    return digest


def stored_blobs(driver: MemoryDriver) -> set[str]:
    return {str(d) for key in driver.store.objects if (d := layout.blob_of(key)) is not None}


async def test_collects_what_deleted_tags_left_and_keeps_the_rest(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, index, driver = env
    kept = await push_image(services, "v1", b"shared layer", b"kept layer")
    gone = await push_image(services, "v2", b"shared layer", b"gone layer")
    await services.manifests.delete(SYSTEM, APP, Tag.parse("v2"))
    await services.manifests.delete(SYSTEM, APP, gone)
    run = await services.gc.run(SYSTEM, NOW)
    assert run.status == "succeeded"
    # The v2 manifest's bytes, its config and "gone layer" go; everything v1 uses stays.
    assert run.report["blobs"] == 3
    assert run.report["links"] == 2  # the config and layer links v2 alone used
    assert str(Digest.of(b"gone layer")) not in stored_blobs(driver)
    assert str(gone) not in stored_blobs(driver)
    assert {str(kept), str(Digest.of(b"shared layer")), str(Digest.of(b"kept layer"))} <= stored_blobs(driver)
    row = await services.manifests.get(SYSTEM, APP, Tag.parse("v1"))
    assert row.digest == str(kept)
    assert await index.blobs.blob_size(str(Digest.of(b"gone layer"))) is None
    # A second run finds nothing.
    again = await services.gc.run(SYSTEM, NOW)
    assert (again.report["blobs"], again.report["links"], again.report["orphans"]) == (0, 0, 0)


async def test_dry_run_reports_and_deletes_nothing(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, _index, driver = env
    gone = await push_image(services, "v1", b"layer one")
    await services.manifests.delete(SYSTEM, APP, gone)
    before = dict(driver.store.objects)
    dry = await services.gc.run(SYSTEM, GcOptions(dry_run=True, grace=NOW.grace))
    assert dry.dry_run
    assert dry.report["blobs"] == 3
    assert dry.report["bytes_freed"] > 0
    assert dict(driver.store.objects) == before
    real = await services.gc.run(SYSTEM, NOW)
    assert (real.report["blobs"], real.report["bytes_freed"]) == (dry.report["blobs"], dry.report["bytes_freed"])


async def test_grace_window_keeps_fresh_blobs(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, _index, driver = env
    digest = await push_blob(services, b"pushed, no manifest yet")
    run = await services.gc.run(SYSTEM, GcOptions(grace=timedelta(hours=1)))
    assert run.report["blobs"] == 0
    assert str(digest) in stored_blobs(driver)
    run = await services.gc.run(SYSTEM, NOW)
    assert run.report["blobs"] == 1
    assert str(digest) not in stored_blobs(driver)


async def test_untagged_manifests_only_when_asked(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, index, driver = env
    old = await push_image(services, "v1", b"old layer")
    new = await push_image(services, "v1", b"new layer")  # v1 moves on: the old manifest is untagged now
    run = await services.gc.run(SYSTEM, NOW)
    assert run.report["manifests"] == 0
    assert await index.manifests.manifest_by_digest(APP.value, str(old)) is not None
    run = await services.gc.run(SYSTEM, GcOptions(untagged=True, grace=NOW.grace))
    assert run.report["manifests"] == 1
    assert await index.manifests.manifest_by_digest(APP.value, str(old)) is None
    assert str(Digest.of(b"old layer")) not in stored_blobs(driver)
    assert layout.revision_link(APP, old) not in driver.store.objects
    assert (await services.manifests.get(SYSTEM, APP, Tag.parse("v1"))).digest == str(new)


async def test_untagged_keeps_children_of_an_index(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, index, _driver = env
    child = await push_image(services, None, b"platform layer")
    payload = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": str(child), "size": 1}],
        }
    ).encode()
    await services.manifests.put(SYSTEM, APP, Tag.parse("multi"), mt.OCI_INDEX, payload)
    run = await services.gc.run(SYSTEM, GcOptions(untagged=True, grace=NOW.grace))
    assert run.report["manifests"] == 0
    assert await index.manifests.manifest_by_digest(APP.value, str(child)) is not None


async def test_one_collector_at_a_time(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, index, _driver = env
    assert await index.leases.acquire(LEASE, "elsewhere:1:x", timedelta(minutes=1))
    with pytest.raises(AlreadyExists, match="already running"):
        await services.gc.run(SYSTEM, NOW)
    status = await services.gc.status(SYSTEM)
    assert status.running
    assert status.holder == "elsewhere:1:x"
    await index.leases.release(LEASE, "elsewhere:1:x")
    assert (await services.gc.run(SYSTEM, NOW)).status == "succeeded"
    assert not (await services.gc.status(SYSTEM)).running


async def test_a_dead_collectors_work_is_finished(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, index, driver = env
    gone = await push_blob(services, b"tombstoned by a collector that died")
    await index.blobs.unlink_blob(APP.value, str(gone))
    cutoff = datetime.now(UTC) + timedelta(seconds=5)
    assert [b.digest for b in await index.blobs.tombstone_blobs([str(gone)], cutoff)] == [str(gone)]
    run_id = await index.gc_runs.start("system", False, False, 0)  # and its run stays "running"
    run = await services.gc.run(SYSTEM, GcOptions())
    assert str(gone) not in stored_blobs(driver)
    assert await index.blobs.blob_size(str(gone)) is None
    assert (await index.gc_runs.get(run_id)).status == "interrupted"
    assert run.status == "succeeded"


async def test_a_reservation_during_the_sweep_wins(env: tuple[Services, Index, MemoryDriver]) -> None:
    # The race: the collector read a page of candidates; a push of the same bytes reserves one before the
    # collector tombstones it. The conditional tombstone must skip it.
    services, index, _driver = env
    digest = await push_blob(services, b"about to be pushed again")
    await index.blobs.unlink_blob(APP.value, str(digest))
    cutoff = datetime.now(UTC) + timedelta(seconds=5)
    assert [b.digest for b in await index.blobs.collectable_blobs(cutoff, "", 10)] == [str(digest)]
    await index.blobs.reserve_blob(str(digest), 24)
    assert await index.blobs.tombstone_blobs([str(digest)], datetime.now(UTC) - timedelta(seconds=5)) == []


async def test_a_push_waits_for_a_tombstone_then_writes_again(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, index, driver = env
    data = b"collected while pushed again"
    digest = await push_blob(services, data)
    await index.blobs.unlink_blob(APP.value, str(digest))
    await index.blobs.tombstone_blobs([str(digest)], datetime.now(UTC) + timedelta(seconds=5))
    assert await index.leases.acquire(LEASE, "elsewhere:1:x", timedelta(minutes=1))  # a live collector
    push = asyncio.create_task(push_blob(services, data, RepositoryName.parse("other")))
    await asyncio.sleep(0.2)
    assert not push.done()  # waiting for the collector to finish with the blob
    await driver.delete(layout.blob_data(digest))  # what the collector does next
    await index.blobs.forget_blobs([str(digest)])
    await push
    assert await driver.get(layout.blob_data(digest)) == data
    assert await index.blobs.linked_blob_size("other", str(digest)) == len(data)


async def test_a_push_finishes_a_dead_collectors_tombstone(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, index, driver = env
    data = b"tombstoned by a collector that was killed"
    digest = await push_blob(services, data)
    await index.blobs.unlink_blob(APP.value, str(digest))
    await index.blobs.tombstone_blobs([str(digest)], datetime.now(UTC) + timedelta(seconds=5))
    await push_blob(services, data, RepositoryName.parse("other"))  # no collector holds the lease
    assert await driver.get(layout.blob_data(digest)) == data
    assert await index.blobs.linked_blob_size("other", str(digest)) == len(data)


async def test_a_push_outlasting_the_window_fails_instead_of_naming_deleted_bytes(
    env: tuple[Services, Index, MemoryDriver],
) -> None:
    _services, index, _driver = env
    digest = str(Digest.of(b"slow push"))
    await index.blobs.reserve_blob(digest, 9)
    await index.blobs.tombstone_blobs([digest], datetime.now(UTC) + timedelta(seconds=5))
    await index.blobs.forget_blobs([digest])
    with pytest.raises(BlobCollected):
        await index.blobs.link_blob("team/app", digest, 9)
    assert await index.blobs.linked_blob_size("team/app", digest) is None


async def test_mount_of_a_collected_blob_falls_back_to_upload(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, index, _driver = env
    digest = await push_blob(services, b"mounted")
    await index.blobs.tombstone_blobs([str(digest)], datetime.now(UTC) + timedelta(seconds=5))  # links remain
    await services.uploads.mount(SYSTEM, RepositoryName.parse("other"), digest, APP)  # not tombstoned: linked
    await index.blobs.unlink_blob(APP.value, str(digest))
    await index.blobs.unlink_blob("other", str(digest))
    await index.blobs.tombstone_blobs([str(digest)], datetime.now(UTC) + timedelta(seconds=5))
    assert await services.uploads.mount(SYSTEM, RepositoryName.parse("third"), digest, APP) is None


async def test_unrecorded_bytes_and_abandoned_staging_are_collected(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, index, driver = env
    orphan = Digest.of(b"written, never recorded")
    await driver.put(layout.blob_data(orphan), b"written, never recorded")
    await driver.put(layout.upload_data(APP, "dead-upload"), b"half an upload")
    live = await services.uploads.start(SYSTEM, APP)
    await push_image(services, "v1", b"layer")
    run = await services.gc.run(SYSTEM, NOW)
    assert run.report["orphans"] == 1  # the staging: left for an hour (a completion gives up its session)
    assert layout.upload_data(APP, "dead-upload") in driver.store.objects
    run = await services.gc.run(SYSTEM, replace(NOW, staging_age=timedelta(seconds=-5)))
    assert str(orphan) not in stored_blobs(driver)
    assert layout.upload_data(APP, "dead-upload") not in driver.store.objects
    assert run.report["orphans"] == 1
    assert await index.uploads.upload(APP.value, live.id) is not None  # a session, not yet expired
    abandoned = await driver.start_upload(layout.upload_data(APP, "claimed-then-crashed"))  # no session row
    run = await services.gc.run(SYSTEM, NOW)
    assert abandoned.token in driver.store.uploads  # begun within the staging age
    assert live.id in {r.id for r in await index.uploads.stale_uploads(datetime.now(UTC) + timedelta(seconds=5))}
    run = await services.gc.run(SYSTEM, replace(NOW, staging_age=timedelta(seconds=-5)))
    assert abandoned.token not in driver.store.uploads  # aborted: no session names it
    assert run.report["orphans"] == 1
    assert await index.uploads.upload(APP.value, live.id) is not None  # its driver upload has a session
    expired = await services.gc.run(SYSTEM, GcOptions(grace=NOW.grace, upload_expiry=timedelta(seconds=-5)))
    assert expired.report["uploads"] == 1
    assert await index.uploads.upload(APP.value, live.id) is None


async def test_a_scheduled_run_starts_when_due_and_only_then(env: tuple[Services, Index, MemoryDriver]) -> None:
    services, index, _driver = env
    assert await services.gc.run_if_due() is None  # off by default
    await services.gc.set_schedule(SYSTEM, GcSchedule.parse("1h", False, "2h"))
    started = await services.gc.run_if_due()  # never ran: due
    assert started is not None
    for _ in range(200):  # it runs in the background; a bound, not a timing assumption
        if (await index.gc_runs.get(started.id)).status != "running":
            break
        await asyncio.sleep(0.05)
    assert (await index.gc_runs.get(started.id)).status == "succeeded"
    assert await services.gc.run_if_due() is None  # ran within the hour
    schedule = await services.gc.schedule(SYSTEM)
    assert (schedule.every, schedule.source) == (timedelta(hours=1), "runtime")


class _PausingDriver(MemoryDriver):
    """Runs ``before_first_blob_delete`` once, when the collector first deletes a blob's bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.before_first_blob_delete: Callable[[], Awaitable[None]] | None = None

    async def delete(self, key: str) -> None:
        hook = self.before_first_blob_delete
        if hook is not None and layout.blob_of(key) is not None:
            self.before_first_blob_delete = None
            await hook()
        await super().delete(key)


async def test_a_switch_during_a_collection_stops_it_before_the_new_backend_loses_anything(database_url: str) -> None:
    """The race: a save checks the gc lease, then probes for seconds; a collection begins meanwhile; the save
    switches (clearing the index, adopting the new backend in the background). The collector must not go on
    judging the new backend by an index that does not list it yet: its storage scan would take every blob
    there for bytes a crashed push left behind."""
    await migrate(database_url)
    index = open_index(database_url)
    first = _PausingDriver()
    services = wire(index, first)
    try:
        await push_image(services, "v1", b"kept on the first backend")
        kept = stored_blobs(first)
        garbage = await push_blob(services, b"garbage on the first backend")
        await index.blobs.unlink_blob(APP.value, str(garbage))
        generation = await services.settings.register(SYSTEM, StorageSettings(inmemory=InMemoryStorage()))
        bucket = await services.switch.driver(generation)
        unindexed = b"in the bucket, not indexed yet"
        await bucket.put(layout.blob_data(Digest.of(unindexed)), unindexed)

        async def the_save_switches() -> None:
            await index.switch_storage(generation, None, "admin", adopt=True)
            await services.switch.refresh()

        first.before_first_blob_delete = the_save_switches
        with pytest.raises(AlreadyExists, match="switched while garbage collection ran"):
            await services.gc.run(SYSTEM, NOW)
        assert await bucket.get(layout.blob_data(Digest.of(unindexed))) == unindexed
        # The page it had judged before the switch was the first backend's, and went there.
        assert stored_blobs(first) == kept
        assert (await services.gc.status(SYSTEM)).runs[0].status == "failed"
        assert not (await services.gc.status(SYSTEM)).running
    finally:
        await services.switch.close()
        await index.dispose()
