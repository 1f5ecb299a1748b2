"""Online migration between backends on the service (services/migration.py): two "workers" over one SQLite
index, real filesystem backends. What is copied and verified, reads falling back meanwhile, resuming after a
crash, what the report says of missing and corrupt objects, links whose index rows vanished, what may not run
beside a migration, and cancelling one (back to the source, with what was pushed meanwhile)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.services.wiring import wire
from trustyard.auth.secretbox import SecretBox
from trustyard.db import tables as t
from trustyard.db.audit import AuditStore
from trustyard.db.index import Index
from trustyard.errors import AlreadyExists, InvalidRequest
from trustyard.oci import mediatypes as mt
from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName, Tag
from trustyard.services import Services, migration, migration_copy
from trustyard.services.actor import Actor
from trustyard.services.gc import GcOptions
from trustyard.services.settings import StartupStorage
from trustyard.storage import layout
from trustyard.storage.config import FilesystemStorage, StorageSettings
from trustyard.storage.driver import StorageDriver
from trustyard.storage.filesystem import FilesystemDriver
from trustyard.storage.plan import plan_driver
from trustyard.storage.switchable import SwitchableDriver

SYSTEM = Actor.system()
APP = RepositoryName.parse("team/app")
WEB = RepositoryName.parse("team/web")
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
KEY = SecretBox.new_key()


def worker(index: Index, tmp_path: Path) -> Services:
    """One worker's services over the shared index, started on the filesystem under ``tmp_path/old``."""
    default_root = tmp_path / "old"
    startup = StartupStorage(StorageSettings(), None, default_root)
    return wire(index, SwitchableDriver(FilesystemDriver(default_root)), startup=startup, box=SecretBox(KEY))


async def read(services: Services, digest: Digest) -> bytes:
    """A blob's bytes as this worker serves them (through its plan: the fallback while migrating)."""
    plan = services.switch.plan
    active = await services.switch.driver(plan.active)
    fallback = None if plan.fallback is None else await services.switch.driver(plan.fallback)
    driver = plan_driver(active, fallback)
    return b"".join([c async for c in driver.read(layout.blob_data(digest))])


def on_disk(root: Path) -> StorageSettings:
    return StorageSettings(filesystem=FilesystemStorage(rootdirectory=root))


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push_blob(
    services: Services, data: bytes, repository: RepositoryName = APP, algorithm: str = "sha256"
) -> Digest:
    digest = Digest.of(data, algorithm)
    await services.uploads.monolithic(SYSTEM, repository, digest, _chunks(data))
    return digest


async def push_image(
    services: Services, tag: str, *layers: bytes, repository: RepositoryName = APP, algorithm: str = "sha256"
) -> Digest:
    config_bytes = b'{"architecture":"amd64","os":"linux","tag":"%s"}' % tag.encode()
    config = await push_blob(services, config_bytes, repository)
    descriptors = []
    for data in layers:
        digest = await push_blob(services, data, repository, algorithm)
        descriptors.append({"mediaType": LAYER, "digest": str(digest), "size": len(data)})
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(config), "size": len(config_bytes)},
        "layers": descriptors,
    }
    payload = json.dumps(manifest).encode()
    await services.manifests.put(SYSTEM, repository, Tag.parse(tag), mt.OCI_MANIFEST, payload)
    return Digest.of(payload)


async def populate(services: Services) -> dict[str, Digest]:
    shared = os.urandom(300_000)
    images = {}
    for n in range(5):
        images[f"app:v{n}"] = await push_image(services, f"v{n}", shared, os.urandom(50_000 + n))
    images["web:latest"] = await push_image(services, "latest", shared, os.urandom(1000), repository=WEB)
    images["web:sha512"] = await push_image(services, "sha512", os.urandom(2000), repository=WEB, algorithm="sha512")
    return images


def files(root: Path) -> dict[str, bytes]:
    """Every file under Distribution's tree of ``root``: relative path -> bytes."""
    tree = root / layout.ROOT
    return {str(p.relative_to(root)): p.read_bytes() for p in tree.rglob("*") if p.is_file()} if tree.exists() else {}


async def pull(services: Services, repository: RepositoryName, tag: str) -> None:
    """The manifest and every blob it names, read through the services' storage, each digest checked."""
    manifest = await services.manifests.get(SYSTEM, repository, Tag.parse(tag))
    document = json.loads(manifest.payload)
    for descriptor in [document["config"], *document["layers"]]:
        digest = Digest.parse(descriptor["digest"])
        data = await read(services, digest)
        assert Digest.of(data, digest.algorithm) == digest


class Stop(Exception):
    """Ends a copy where a test wants it to stop, as a crash would."""


async def run_until_catching_up(services: Services, migration_id: int) -> None:
    """Run the copy up to the point where it switches over and begins catching up, and stop there."""

    def stop_before_catching_up(row: migration.MigrationRow) -> None:
        if row.phase == "recent" and row.cursor == "":
            raise Stop

    with pytest.raises(Stop):
        await services.migrations.run(SYSTEM, migration_id, stop_before_catching_up)


async def test_everything_is_copied_verified_and_the_old_backend_left_intact(index: Index, tmp_path: Path) -> None:
    one, two = worker(index, tmp_path), worker(index, tmp_path)
    await populate(one)
    before = files(tmp_path / "old")
    started = await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))
    assert started.state == "copying"
    await two.switch.refresh()
    assert two.switch.plan.fallback == started.source  # every worker reads through to the old backend
    done = await one.migrations.run(SYSTEM, started.id)

    assert done.state == "done"
    assert done.failed == 0
    assert done.report["missing_count"] == done.report["mismatched_count"] == 0
    assert files(tmp_path / "old") == before, "the old backend is left exactly as it was"
    copied = files(tmp_path / "new")
    assert {k: v for k, v in before.items() if "/_uploads/" not in k} == copied
    assert done.verified == done.objects_done == done.objects_total
    assert done.bytes_done == done.bytes_total > 0
    plan = await index.backends.plan()
    assert (plan.active, plan.fallback) == (done.target, None)
    await two.switch.refresh()
    for tag in ("v0", "v4"):
        await pull(two, APP, tag)
    await pull(two, WEB, "sha512")
    status = await one.migrations.status(SYSTEM)
    assert status is not None
    assert status.document()["state"] == "done"
    assert status.eta == 0.0


async def test_reads_fall_back_and_pushes_land_in_the_new_backend(index: Index, tmp_path: Path) -> None:
    one, two = worker(index, tmp_path), worker(index, tmp_path)
    await populate(one)
    before = files(tmp_path / "old")
    await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))
    await two.switch.refresh()
    await pull(two, APP, "v1")  # nothing copied yet: every byte comes from the old backend
    pushed = await push_image(two, "during", os.urandom(4000), repository=WEB)
    assert files(tmp_path / "old") == before
    assert any(str(pushed.hex) in key for key in files(tmp_path / "new"))
    await pull(two, WEB, "during")


@pytest.mark.parametrize("ending", ["finished", "cancelled"])
async def test_what_is_deleted_during_a_migration_stays_deleted_in_both_backends(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    monkeypatch.setattr(migration, "SETTLE_SECONDS", 0)
    one, two = worker(index, tmp_path), worker(index, tmp_path)
    images = await populate(one)
    started = await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))
    await two.switch.refresh()
    await two.manifests.delete(SYSTEM, APP, Tag.parse("v1"))
    await two.manifests.delete(SYSTEM, APP, images["app:v2"])
    await two.repositories.delete(SYSTEM, WEB)
    if ending == "finished":
        ended = await one.migrations.run(SYSTEM, started.id)
    else:
        await one.migrations.cancel(SYSTEM)
        assert await two.migrations.resume_if_orphaned()
        await two.migrations.join()
        ended = await index.migrations.get(started.id)
    assert ended is not None
    assert ended.state == ("done" if ending == "finished" else "cancelled")

    # Either backend may serve this registry again (a cancel goes back to the old one; an operator may adopt
    # it later): neither names what was deleted, and the one serving still names what was not.
    for backend in ("old", "new") if ending == "finished" else ("old",):
        held = files(tmp_path / backend)
        assert not [key for key in held if f"/{WEB.value}/_manifests/" in key or f"/{WEB.value}/_layers/" in key]
        assert layout.tag_current_link(APP, Tag.parse("v1")) not in held
        assert layout.revision_link(APP, images["app:v2"]) not in held
        assert layout.tag_current_link(APP, Tag.parse("v2")) not in held
        assert held[layout.tag_current_link(APP, Tag.parse("v3"))] == layout.link_body(images["app:v3"])


async def test_a_crashed_copier_is_resumed_where_it_stopped(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migration_copy, "PAGE", 3)
    monkeypatch.setattr(migration_copy, "REPOSITORY_PAGE", 1)
    one, two = worker(index, tmp_path), worker(index, tmp_path)
    await populate(one)
    started = await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))
    pages: list[str] = []

    class Crash(Exception):
        pass

    def crash_after_two_pages(row: migration.MigrationRow) -> None:
        if row.cursor and row.cursor not in pages:  # a page was saved (the watcher also sees every object)
            pages.append(row.cursor)
            if len(pages) == 2:
                raise Crash

    with pytest.raises(Crash):
        await one.migrations.run(SYSTEM, started.id, crash_after_two_pages)
    stopped = await index.migrations.get(started.id)
    assert stopped is not None
    assert (stopped.state, stopped.phase, stopped.cursor) == ("copying", "blobs", pages[1])
    assert stopped.error is not None
    # Killed, the copier would have left its lease held until it expires: another worker waits for that, then
    # finds an active migration nobody copies and takes it over.
    assert await index.leases.acquire(migration.LEASE, "elsewhere:1:dead", migration.LEASE_TTL)
    assert not await two.migrations.resume_if_orphaned()
    async with index.writer.begin() as conn:
        await conn.execute(update(t.leases).values(expires_at=stopped.started_at))  # it ran out
    assert await two.migrations.resume_if_orphaned()
    await two.migrations.join()
    done = await index.migrations.get(started.id)
    assert done is not None
    assert done.state == "done"
    assert done.error is None
    assert done.report["blobs_copied"] + done.report["blobs_present"] >= done.report["blobs_copied"] > 0
    assert {k: v for k, v in files(tmp_path / "old").items() if "/_uploads/" not in k} == files(tmp_path / "new")


async def test_missing_and_corrupt_blobs_are_reported_and_never_copied(index: Index, tmp_path: Path) -> None:
    one = worker(index, tmp_path)
    corrupt_data, missing_data = os.urandom(5000), os.urandom(6000)
    await push_image(one, "bad", corrupt_data, missing_data)
    corrupt, missing = Digest.of(corrupt_data), Digest.of(missing_data)
    (tmp_path / "old" / layout.blob_data(corrupt)).write_bytes(b"flipped bits" + corrupt_data[12:])
    (tmp_path / "old" / layout.blob_data(missing)).unlink()
    started = await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))
    done = await one.migrations.run(SYSTEM, started.id)
    assert done.state == "done"
    assert done.failed == 2
    assert done.report["missing"] == [str(missing)]
    assert done.report["mismatched"][0].startswith(str(corrupt))
    assert not (tmp_path / "new" / layout.blob_data(corrupt)).exists(), "bytes never stay under a wrong name"
    assert not (tmp_path / "new" / layout.blob_data(missing)).exists()


async def test_a_link_whose_row_vanished_during_the_copy_is_removed(index: Index, tmp_path: Path) -> None:
    one = worker(index, tmp_path)
    await push_image(one, "keep", os.urandom(100))
    await push_image(one, "gone", os.urandom(100))
    started = await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))

    class DeleteRacesTheCopy(FilesystemDriver):
        """The tag is deleted from the index just as the copier writes its link (the copier read it before)."""

        async def put(self, key: str, data: bytes) -> None:
            await super().put(key, data)
            if key.endswith("/tags/gone/current/link"):
                await index.manifests.delete_tag(APP.value, "gone")

    racing: StorageDriver = DeleteRacesTheCopy(tmp_path / "new")
    one.switch._backends._drivers[started.target] = racing
    done = await one.migrations.run(SYSTEM, started.id)
    assert done.report["links_removed"] == 2  # the tag's current and index links
    new = files(tmp_path / "new")
    assert not any("/tags/gone/" in key for key in new)
    assert any(key.endswith("/tags/keep/current/link") for key in new)


async def test_what_may_not_run_beside_a_migration(index: Index, tmp_path: Path) -> None:
    one = worker(index, tmp_path)
    await populate(one)
    await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))
    with pytest.raises(AlreadyExists, match="migrate --status"):
        await one.migrations.start(SYSTEM, on_disk(tmp_path / "other"))
    with pytest.raises(AlreadyExists, match="storage migration"):
        await one.gc.run(SYSTEM, GcOptions())
    with pytest.raises(AlreadyExists, match="storage migration"):
        await one.settings.save_storage(SYSTEM, on_disk(tmp_path / "other"))


async def test_what_a_request_running_across_the_switch_wrote_to_the_old_backend_is_caught_up(
    index: Index, tmp_path: Path
) -> None:
    one, late = worker(index, tmp_path), worker(index, tmp_path)
    await populate(one)
    await late.switch.refresh()  # serving the plan before the migration: it will not look again in time
    started = await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))

    await run_until_catching_up(one, started.id)
    # A push that began before the switch ends now: its bytes and links went to the old backend, and the
    # copy has passed them already.
    pushed = await push_image(late, "in-flight", os.urandom(3000), repository=WEB)
    assert not any(pushed.hex in key for key in files(tmp_path / "new"))
    done = await one.migrations.run(SYSTEM, started.id)
    assert done.state == "done"
    assert done.report["caught_up"] >= 2  # its layer and config (and its manifest)
    new = files(tmp_path / "new")
    assert any(pushed.hex in key for key in new)
    assert any(key.endswith("team/web/_manifests/tags/in-flight/current/link") for key in new)
    await late.switch.refresh()
    await pull(late, WEB, "in-flight")


async def test_a_blob_reserved_but_not_yet_written_is_not_reported_missing(index: Index, tmp_path: Path) -> None:
    one = worker(index, tmp_path)
    await populate(one)
    data = os.urandom(7000)
    digest = Digest.of(data)
    assert await index.blobs.reserve_blob(str(digest), len(data))  # a push about to write its bytes
    started = await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))

    await run_until_catching_up(one, started.id)
    await one.switch.refresh()
    target = await one.switch.driver(started.target)
    await target.put(layout.blob_data(digest), data)  # the push writes (to the new backend) and goes on
    done = await one.migrations.run(SYSTEM, started.id)
    assert (done.state, done.failed, done.report["missing"], done.report["deferred"]) == ("done", 0, [], [])


async def test_one_worker_copies_once_when_its_start_and_its_maintenance_loop_race(
    index: Index, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The admin API's start and the same worker's maintenance loop both reach for the copy; the lease cannot
    tell them apart (one holder), so the worker itself must: one copy, one report."""
    caplog.set_level(logging.INFO, logger="trustyard.migration")
    one = worker(index, tmp_path)
    await populate(one)

    async def maintenance_loop() -> None:
        for _ in range(100):
            await one.migrations.resume_if_orphaned()
            await asyncio.sleep(0.005)

    await asyncio.gather(one.migrations.begin(SYSTEM, on_disk(tmp_path / "new")), maintenance_loop())
    await one.migrations.join()
    done = [record.message for record in caplog.records if " done: " in record.message]
    assert len(done) == 1, done


# Cancelling.


async def test_a_cancelled_migration_goes_back_to_the_source_with_what_was_pushed_meanwhile(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migration, "SETTLE_SECONDS", 0)
    one, two = worker(index, tmp_path), worker(index, tmp_path)
    images = await populate(one)
    started = await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))
    await two.switch.refresh()
    # Pushed while migrating: into the new backend only. A new image, and a tag moved to another image.
    during = await push_image(two, "during", os.urandom(4000), repository=WEB)
    moved = await push_image(two, "v0", os.urandom(3000))
    assert not any(during.hex in key for key in files(tmp_path / "old"))

    cancelling = await one.migrations.cancel(SYSTEM)
    assert cancelling.state == "cancelling"
    # Nobody copies it (one's copy never ran): another worker's maintenance loop takes the roll-back over.
    assert await two.migrations.resume_if_orphaned()
    await two.migrations.join()

    cancelled = await index.migrations.get(started.id)
    assert cancelled is not None
    assert (cancelled.state, cancelled.error) == ("cancelled", None)
    assert cancelled.report["caught_up"] >= 5  # two layers, two configs, two manifests, their links
    plan = await index.backends.plan()
    assert (plan.active, plan.fallback) == (started.source, None)
    # Served from the old backend alone now: what was pushed during the migration was copied back.
    fresh = worker(index, tmp_path)
    await fresh.switch.refresh()
    await pull(fresh, WEB, "during")
    await pull(fresh, APP, "v0")
    assert (await fresh.manifests.get(SYSTEM, APP, Tag.parse("v0"))).digest == str(moved)
    await pull(fresh, APP, "v1")
    old = files(tmp_path / "old")
    assert any(during.hex in key for key in old)
    assert old[f"{layout.tag_current_link(APP, Tag.parse('v0'))}"] == layout.link_body(moved)
    assert images["app:v0"] != moved
    actions = [entry.action for entry in await AuditStore(index.reader, index.writer).events(10)]
    assert {"storage.migrate.cancel", "storage.migration.cancelled"} <= set(actions)
    with pytest.raises(InvalidRequest, match="no storage migration is under way"):
        await one.migrations.cancel(SYSTEM)


async def test_a_cancel_stops_the_copier_at_its_next_page(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migration, "SETTLE_SECONDS", 0)
    monkeypatch.setattr(migration_copy, "PAGE", 2)
    one, two = worker(index, tmp_path), worker(index, tmp_path)
    await populate(one)
    started = await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))
    cancels: list[asyncio.Task[migration.MigrationRow]] = []

    def cancel_at_the_first_page(row: migration.MigrationRow) -> None:
        if row.cursor and not cancels:  # a page was saved: an operator cancels from another worker
            cancels.append(asyncio.get_running_loop().create_task(two.migrations.cancel(SYSTEM)))

    ended = await one.migrations.run(SYSTEM, started.id, cancel_at_the_first_page)
    await asyncio.gather(*cancels)
    assert ended.state == "cancelled"
    assert ended.objects_done < ended.objects_total, "the copy stopped, it did not run to its end"
    copied = [key for key in files(tmp_path / "new") if key.endswith("/data")]
    assert 0 < len(copied) < len([key for key in files(tmp_path / "old") if key.endswith("/data")])
    plan = await index.backends.plan()
    assert (plan.active, plan.fallback) == (started.source, None)


async def test_a_migration_that_has_finished_copying_can_no_longer_be_cancelled(index: Index, tmp_path: Path) -> None:
    one = worker(index, tmp_path)
    await populate(one)
    started = await one.migrations.start(SYSTEM, on_disk(tmp_path / "new"))
    assert await index.migrations.move_state(started.id, "copying", "switching")  # the copier's last step
    assert not await index.migrations.move_state(started.id, "copying", "cancelling")  # a cancel loses the race
    with pytest.raises(AlreadyExists, match="can no longer be cancelled"):
        await one.migrations.cancel(SYSTEM)
    done = await one.migrations.run(SYSTEM, started.id)
    assert done.state == "done"
