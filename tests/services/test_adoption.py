"""Adoption of a backend that already holds images: a failed adoption is begun again by itself, backing off."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from trustyard.db.index import Index
from trustyard.errors import StorageUnavailable
from trustyard.services import Services, adoption
from trustyard.services.actor import Actor
from trustyard.services.storage import ReindexReport, StorageAdmin
from trustyard.storage.filesystem import FilesystemDriver

from ..stored_images import write_images
from .test_switch import on_disk, worker

SYSTEM = Actor.system()


class FailingFirst:
    """Puts in a ``StorageAdmin.reindex`` whose first ``failures`` calls fail as a store that does not answer."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failures: int) -> None:
        self.calls = 0
        real = StorageAdmin.reindex

        async def reindex(admin: StorageAdmin, *args: Any, **kwargs: Any) -> ReindexReport:
            self.calls += 1
            if self.calls <= failures:
                raise StorageUnavailable("the object store did not answer")
            return await real(admin, *args, **kwargs)

        monkeypatch.setattr(StorageAdmin, "reindex", reindex)


async def switched_then_failed(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, images: int, failures: int
) -> tuple[Services, FailingFirst]:
    """A worker switched to a bucket of ``images`` images in 3 repositories, whose first adoption failed (the
    store fails the first ``failures`` listings); the test runs the adoptions by hand."""
    one = worker(index, tmp_path)
    root = tmp_path / "bucket"
    await write_images(FilesystemDriver(root), images, repositories=3)
    reindex = FailingFirst(monkeypatch, failures)
    await one.settings.save_storage(SYSTEM, on_disk(root))  # begins an adoption: not a serving worker's to run
    with pytest.raises(StorageUnavailable):
        await one.adoption.run_pending(SYSTEM)
    return one, reindex


def test_the_retry_waits_a_minute_then_twice_as_long_after_each_failure_up_to_a_quarter_hour() -> None:
    minutes = [adoption.retry_delay(failures) / timedelta(minutes=1) for failures in range(1, 7)]
    assert minutes == [1, 2, 4, 8, 15, 15]
    assert adoption.retry_delay(10_000) == timedelta(minutes=15)


async def test_a_store_that_does_not_answer_at_start_is_adopted_once_it_does(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve must start while its store is down: whether the store holds repositories cannot be told then, so an
    adoption is begun anyway, fails while the store does, and is begun again until it answers."""
    await write_images(FilesystemDriver(tmp_path / "default"), 4, repositories=2)  # the worker's startup storage
    one = worker(index, tmp_path)

    async def down(_admin: StorageAdmin) -> bool:
        raise StorageUnavailable("the object store did not answer")

    with monkeypatch.context() as patched:
        patched.setattr(StorageAdmin, "holds_repositories", down)
        assert await one.adoption.begin_if_unindexed(SYSTEM)
    FailingFirst(monkeypatch, 1)
    with pytest.raises(StorageUnavailable):
        await one.adoption.run_pending(SYSTEM)
    monkeypatch.setattr(adoption, "RETRY_FIRST", timedelta(0))
    ended = await one.adoption.run_pending(SYSTEM)
    assert ended is not None
    assert (ended.state, ended.manifests) == ("done", 4)


async def test_a_failed_adoption_is_begun_again_when_its_retry_is_due(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, reindex = await switched_then_failed(index, tmp_path, monkeypatch, images=12, failures=2)
    failed = (await one.adoption.status(SYSTEM)).adoption
    assert failed is not None
    assert failed.state == "failed"
    assert failed.error is not None
    assert "did not answer" in failed.error
    assert await one.adoption.run_pending(SYSTEM) is None, "not before its minute is up"
    assert reindex.calls == 1

    monkeypatch.setattr(adoption, "RETRY_FIRST", timedelta(0))
    with pytest.raises(StorageUnavailable):
        await one.adoption.run_pending(SYSTEM)  # the second attempt fails too: a row of its own
    assert await index.adoptions.failed_in_a_row(failed.generation, 8) == 2
    ended = await one.adoption.run_pending(SYSTEM)
    assert ended is not None
    assert (ended.state, ended.repositories, ended.manifests) == ("done", 3, 12)
    assert (await index.counts())["manifests"] == 12
    assert await one.adoption.run_pending(SYSTEM) is None, "a finished adoption is not begun again"
    assert reindex.calls == 3


async def test_a_failure_is_not_retried_once_another_backend_is_active(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration moves the plan on without an adoption: the failed adoption of the backend it left is moot."""
    one, reindex = await switched_then_failed(index, tmp_path, monkeypatch, images=3, failures=1)
    await index.backends.set_plan(0, None, "a migration back to the startup storage")
    await one.switch.refresh()
    monkeypatch.setattr(adoption, "RETRY_FIRST", timedelta(0))
    assert await one.adoption.run_pending(SYSTEM) is None
    assert reindex.calls == 1
    latest = await index.adoptions.latest()
    assert latest is not None
    assert latest.state == "failed"
