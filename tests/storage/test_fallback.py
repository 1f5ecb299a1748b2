"""FallbackDriver (storage/fallback.py) beyond the contract suite (which runs it with an empty fallback): what
is only in the old backend is still read, and nothing ever writes to the old backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.storage.test_driver_contract import chunked, keys, read_all
from trustyard.errors import ObjectNotFound
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
    await driver.delete("blobs/only-old")
    await driver.delete_prefix("blobs")
    upload = await driver.start_upload("blobs/uploaded")
    await driver.complete_upload(upload, [await driver.write_part(upload, 1, 0, chunked(b"part", 2))])
    await driver.move("blobs/uploaded", "blobs/moved")
    assert stores[1].objects == before, "the old backend is left intact"
    assert stores[1].uploads == {}
    assert sorted(stores[0].objects) == ["blobs/moved", "links/a"]
    # A key deleted during the migration still reads from the old backend: reads are gated by the SQL index.
    assert await driver.get("blobs/only-old") == b"old bytes"


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
