"""The atomic storage switch on the services: the plan, the fence, acks, sessions that remember their backend,
and adoption in the background (two "workers" are two Services over one SQL index)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.services.conftest import backend_of
from tests.services.wiring import wire
from trustyard.auth.secretbox import SecretBox
from trustyard.db.index import Index
from trustyard.db.storage_backends import StoragePlan
from trustyard.errors import BlobUploadUnknown
from trustyard.oci.digest import Digest
from trustyard.oci.names import RepositoryName
from trustyard.services import Services, switch
from trustyard.services.actor import Actor
from trustyard.services.settings import StartupStorage
from trustyard.services.switch import WorkerIdentity
from trustyard.storage.config import FilesystemStorage, StorageSettings
from trustyard.storage.filesystem import FilesystemDriver

from ..stored_images import write_images

ADMIN = Actor.system()
REPO = RepositoryName("team/app")
KEY = SecretBox.new_key()


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def worker(index: Index, tmp_path: Path, pid: int | None = None) -> Services:
    """One worker's services; with ``pid`` it registers in ``workers`` (heartbeats, acks)."""
    default_root = tmp_path / "default"
    startup = StartupStorage(StorageSettings(), None, default_root)
    identity = None if pid is None else WorkerIdentity("test:5000", pid, "test", datetime.now(UTC))
    return wire(index, FilesystemDriver(default_root), startup=startup, box=SecretBox(KEY), worker=identity)


def on_disk(root: Path) -> StorageSettings:
    return StorageSettings(filesystem=FilesystemStorage(rootdirectory=root))


async def body(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def blob_file(root: Path, digest: Digest) -> Path:
    return root / "docker/registry/v2/blobs/sha256" / digest.hex[:2] / digest.hex / "data"


async def test_the_plan_starts_on_the_startup_storage_and_a_save_moves_it(index: Index, tmp_path: Path) -> None:
    one = worker(index, tmp_path)
    assert await index.backends.plan() == StoragePlan(0, None, 0)
    await one.settings.save_storage(ADMIN, on_disk(tmp_path / "b"))
    plan = await index.backends.plan()
    assert plan == StoragePlan(1, None, 1)
    assert one.switch.plan == plan
    stored = await index.backends.get(1)
    assert stored is not None
    assert stored.saved_by == "system"
    await one.settings.save_storage(ADMIN, on_disk(tmp_path / "c"))
    assert await index.backends.plan() == StoragePlan(2, None, 2)


async def test_a_worker_that_has_not_read_the_plan_within_the_fence_reads_it_before_serving(
    index: Index, tmp_path: Path
) -> None:
    one, two = worker(index, tmp_path), worker(index, tmp_path)
    clock = Clock()
    two.switch._clock = clock  # the test drives the monotonic clock
    await two.switch.refresh()
    await one.settings.save_storage(ADMIN, on_disk(tmp_path / "b"))

    clock.now += switch.FENCE_SECONDS - 0.1
    await two.switch.fence()  # read recently enough: no database read on the hot path
    assert two.switch.plan.active == 0
    clock.now += 0.2
    await two.switch.fence()  # stale: reads the plan first
    assert two.switch.plan.active == 1
    current = backend_of(two.switch._driver)
    assert isinstance(current, FilesystemDriver)
    assert current.root == tmp_path / "b"


async def test_a_save_waits_for_live_workers_to_ack_and_not_for_stale_ones(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(switch, "FENCE_SECONDS", 1.0)
    one, two = worker(index, tmp_path, pid=1), worker(index, tmp_path, pid=2)
    await one.switch.heartbeat()
    await two.switch.heartbeat()

    async def poll() -> None:  # what the worker's plan loop does
        while True:
            await asyncio.sleep(0.05)
            await two.switch.refresh()

    poller = asyncio.create_task(poll())
    started = time.monotonic()
    await one.settings.save_storage(ADMIN, on_disk(tmp_path / "b"))
    assert time.monotonic() - started < 0.8  # returned on the ack, well before the fence
    assert two.switch.plan.active == 1
    assert not await index.workers.lagging(1, switch.timedelta(seconds=60))
    poller.cancel()

    # A worker that stopped polling (hung, partitioned): the save waits for it at most the fence + 1 s.
    started = time.monotonic()
    await one.settings.save_storage(ADMIN, on_disk(tmp_path / "c"))
    waited = time.monotonic() - started
    assert 0.9 < waited < 3.0
    assert two.switch.plan.active == 1  # it will fence itself: its last read is older than the fence
    assert [w.pid for w in await one.switch.nodes(switch.timedelta(minutes=1))] == [1, 2]


async def test_a_session_begun_before_a_switch_finishes_on_its_backend_and_lands_on_the_new_one(
    index: Index, tmp_path: Path
) -> None:
    one, two = worker(index, tmp_path), worker(index, tmp_path)
    first, second = b"a" * 3000, b"b" * 5000
    digest = Digest.of(first + second)
    status = await one.uploads.start(ADMIN, REPO)
    await one.uploads.append(ADMIN, REPO, status.id, body(first))

    await one.settings.save_storage(ADMIN, on_disk(tmp_path / "new"))
    await two.switch.refresh()
    # The rest of the push lands on the other worker, already on the new backend.
    await two.uploads.append(ADMIN, REPO, status.id, body(second))
    info = await two.uploads.complete(ADMIN, REPO, status.id, digest)

    assert info.digest == digest
    assert blob_file(tmp_path / "new", digest).read_bytes() == first + second
    assert not blob_file(tmp_path / "default", digest).exists()  # copied over, nothing published on the old one
    assert await index.blobs.linked_blob_size(REPO.value, str(digest)) == len(first + second)
    assert not list((tmp_path / "default").rglob("_uploads/*/data"))  # the old backend's staging is tidied


async def test_a_session_whose_backend_is_gone_is_unknown_so_the_client_starts_again(
    index: Index, tmp_path: Path
) -> None:
    one = worker(index, tmp_path)
    status = await one.uploads.start(ADMIN, REPO)
    async with index.writer.begin() as conn:
        from trustyard.db import tables as t

        await conn.execute(t.uploads.update().where(t.uploads.c.id == status.id).values(backend=42))
    with pytest.raises(BlobUploadUnknown, match="start the upload again"):
        await one.uploads.append(ADMIN, REPO, status.id, body(b"more"))


async def test_a_switch_clears_the_index_but_keeps_sessions_in_flight(index: Index, tmp_path: Path) -> None:
    one = worker(index, tmp_path)
    data = b"pushed before"
    await one.uploads.monolithic(ADMIN, REPO, Digest.of(data), body(data))
    status = await one.uploads.start(ADMIN, REPO)
    await one.settings.save_storage(ADMIN, on_disk(tmp_path / "b"))
    assert await index.blobs.linked_blob_size(REPO.value, str(Digest.of(data))) is None
    assert (await one.uploads.status(ADMIN, REPO, status.id)).size == 0


async def test_adoption_runs_in_the_background_while_the_index_answers(index: Index, tmp_path: Path) -> None:
    one = worker(index, tmp_path, pid=1)
    root = tmp_path / "bucket"
    await write_images(FilesystemDriver(root), 300, repositories=20)
    await one.settings.save_storage(ADMIN, on_disk(root))  # kicks the adoption on this (serving) worker

    seen: list[int] = []
    slowest = 0.0
    while True:
        started = time.monotonic()
        view = await one.adoption.status(ADMIN)
        await index.counts()  # what is indexed so far answers at once
        slowest = max(slowest, time.monotonic() - started)
        assert view.adoption is not None
        seen.append(view.adoption.manifests)
        if view.adoption.state != "running":
            break
        await asyncio.sleep(0.01)
    assert view.adoption.state == "done", view.adoption.error
    assert (view.adoption.repositories, view.adoption.manifests, view.adoption.tags) == (20, 300, 300)
    assert any(0 < count < 300 for count in seen), seen  # progress showed while it ran
    assert slowest < 2.0  # never waits for the adoption (which takes seconds; the machine may be loaded)
    assert (await index.counts())["manifests"] == 300


async def test_collection_and_a_switch_do_not_overlap(index: Index, tmp_path: Path) -> None:
    from datetime import timedelta

    from trustyard.errors import AlreadyExists
    from trustyard.services.gc import GcOptions
    from trustyard.services.reservations import LEASE

    one = worker(index, tmp_path)
    await index.adoptions.start(0)  # an adoption runs: collection waits for it
    with pytest.raises(AlreadyExists, match="still being indexed"):
        await one.gc.run(ADMIN, GcOptions(dry_run=True))
    assert await index.leases.acquire(LEASE, "collector", timedelta(minutes=1))
    with pytest.raises(AlreadyExists, match="garbage collection is running"):
        await one.settings.save_storage(ADMIN, on_disk(tmp_path / "b"))
    assert (await index.backends.plan()).version == 0


async def test_pinned_storage_ignores_a_plan_saved_before_it_was_pinned(index: Index, tmp_path: Path) -> None:
    await worker(index, tmp_path).settings.save_storage(ADMIN, on_disk(tmp_path / "b"))
    pinned = wire(
        index,
        FilesystemDriver(tmp_path / "pinned"),
        startup=StartupStorage(on_disk(tmp_path / "pinned"), "config file", tmp_path / "default"),
        box=SecretBox(KEY),
    )
    await pinned.switch.refresh()
    assert pinned.switch.plan.active == 0  # sessions begin on the configured storage
    status = await pinned.uploads.start(ADMIN, REPO)
    data = b"pinned"
    await pinned.uploads.complete(ADMIN, REPO, status.id, Digest.of(data), body(data))
    assert blob_file(tmp_path / "pinned", Digest.of(data)).exists()
