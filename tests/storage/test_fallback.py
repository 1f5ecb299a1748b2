"""FallbackDriver (storage/fallback.py) beyond the contract suite (which runs it with an empty fallback): what
is only in the old backend is still read, nothing but a delete reaches the old backend, and a delete reaches
both."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.storage.test_driver_contract import chunked, keys, read_all
from trustyard.errors import ObjectNotFound, StorageUnavailable
from trustyard.storage.fallback import FallbackDriver
from trustyard.storage.filesystem import FilesystemDriver
from trustyard.storage.memory import MemoryDriver, MemoryStore


@pytest.fixture
def stores() -> tuple[MemoryStore, MemoryStore]:
    return MemoryStore(), MemoryStore()


@pytest.fixture
async def old_and_new(stores: tuple[MemoryStore, MemoryStore]) -> tuple[MemoryDriver, MemoryDriver]:
    new, old = MemoryDriver(stores[0]), MemoryDriver(stores[1])
    await old.put("blobs/only-old", b"old bytes")
    await old.put("blobs/both", b"old copy")
    await new.put("blobs/both", b"new copy")
    await new.put("blobs/only-new", b"new bytes")
    return old, new


async def test_reads_fall_back_to_what_is_not_copied_yet(old_and_new: tuple[MemoryDriver, MemoryDriver]) -> None:
    old, new = old_and_new
    driver = FallbackDriver(new, old)
    assert await driver.get("blobs/only-old") == b"old bytes"
    assert await driver.get("blobs/both") == b"new copy"  # the primary wins
    assert await read_all(driver, "blobs/only-old", 4) == b"bytes"
    assert await read_all(driver, "blobs/only-new") == b"new bytes"
    info = await driver.stat("blobs/only-old")
    assert info is not None
    assert info.size == len(b"old bytes")
    assert await driver.stat("blobs/nowhere") is None
    with pytest.raises(ObjectNotFound):
        await driver.get("blobs/nowhere")
    with pytest.raises(ObjectNotFound):
        await read_all(driver, "blobs/nowhere")


async def test_list_is_the_union_without_duplicates(old_and_new: tuple[MemoryDriver, MemoryDriver]) -> None:
    old, new = old_and_new
    assert await keys(FallbackDriver(new, old), "blobs") == ["blobs/both", "blobs/only-new", "blobs/only-old"]


async def test_writes_never_reach_the_old_backend(
    old_and_new: tuple[MemoryDriver, MemoryDriver], stores: tuple[MemoryStore, MemoryStore]
) -> None:
    old, new = old_and_new
    before = dict(stores[1].objects)
    driver = FallbackDriver(new, old)
    await driver.put("links/a", b"a")
    await driver.write("blobs/written", chunked(b"streamed", 3))
    upload = await driver.start_upload("blobs/uploaded")
    await driver.complete_upload(upload, [await driver.write_part(upload, 1, 0, chunked(b"part", 2))])
    await driver.move("blobs/uploaded", "blobs/moved")
    assert stores[1].objects == before, "the old backend is left intact"
    assert stores[1].uploads == {}
    assert sorted(stores[0].objects) == ["blobs/both", "blobs/moved", "blobs/only-new", "blobs/written", "links/a"]


async def test_deletes_reach_both_backends(
    old_and_new: tuple[MemoryDriver, MemoryDriver], stores: tuple[MemoryStore, MemoryStore]
) -> None:
    old, new = old_and_new
    await old.put("links/team/a", b"a")
    await old.put("links/team/b", b"b")
    await old.put("links/other", b"o")
    driver = FallbackDriver(new, old)
    await driver.delete("blobs/only-old")
    await driver.delete("blobs/both")
    await driver.delete_prefix("links/team")
    # Deleted during a migration means deleted in the backend the registry may go back to (a cancel) too.
    assert sorted(stores[1].objects) == ["links/other"]
    assert sorted(stores[0].objects) == ["blobs/only-new"]
    with pytest.raises(ObjectNotFound):
        await driver.get("blobs/only-old")


async def test_a_failing_old_backend_does_not_fail_the_delete(
    old_and_new: tuple[MemoryDriver, MemoryDriver],
    stores: tuple[MemoryStore, MemoryStore],
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Unavailable(MemoryDriver):
        async def delete(self, key: str) -> None:
            raise StorageUnavailable("the old store answered 503")

        async def delete_prefix(self, prefix: str) -> None:
            raise StorageUnavailable("the old store answered 503")

    old, new = old_and_new
    driver = FallbackDriver(new, Unavailable(old.store))
    with caplog.at_level(logging.WARNING, "trustyard.storage.fallback"):
        await driver.delete("blobs/both")
        await driver.delete_prefix("blobs")
    assert sorted(stores[0].objects) == []  # the primary's delete happened, and the caller was told so
    assert "blobs/both" in stores[1].objects
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "deleted blobs/both from the active backend (memory) but not from the migration's other one (memory)",
        "deleted blobs/ from the active backend (memory) but not from the migration's other one (memory)",
    ]


async def test_redirects_only_to_the_primary_when_it_holds_the_key(
    old_and_new: tuple[MemoryDriver, MemoryDriver],
) -> None:
    class Redirecting(MemoryDriver):
        async def redirect_url(self, key: str, method: str = "GET") -> str | None:
            return f"https://store.example/{key}"

    old, new = old_and_new
    primary = Redirecting(new.store)
    driver = FallbackDriver(primary, Redirecting(old.store))
    assert await driver.redirect_url("blobs/only-new") == "https://store.example/blobs/only-new"
    assert await driver.redirect_url("blobs/only-old") is None  # served through us, from the old backend


async def test_local_paths_come_from_either_filesystem(tmp_path: Path) -> None:
    old, new = FilesystemDriver(tmp_path / "old"), FilesystemDriver(tmp_path / "new")
    await old.put("blobs/old", b"o")
    await new.put("blobs/new", b"n")
    driver = FallbackDriver(new, old)
    assert driver.local_path("blobs/new") == str(tmp_path / "new" / "blobs/new")
    assert driver.local_path("blobs/old") == str(tmp_path / "old" / "blobs/old")
    assert driver.local_path("blobs/none") is None
