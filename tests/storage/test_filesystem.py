"""FilesystemDriver specifics: chunked uploads append to one staging file (completed by a rename), and
sweep_staging: what writes cut off by a crash left in ``.trustyard-tmp`` goes; what an upload session
recorded stays."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from trustyard.storage.driver import SERVING, Part
from trustyard.storage.filesystem import TEMP_DIR, FilesystemDriver


async def _chunks(data: bytes):  # type: ignore[no-untyped-def]
    yield data


async def test_sweep_keeps_recorded_parts_and_removes_the_rest(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    live = await driver.start_upload("repositories/a/_uploads/1/data")
    kept = await driver.write_part(live, 1, 0, _chunks(b"recorded"))
    await driver.put("docker/registry/v2/blobs/sha256/ab/abc/data", b"published")
    temp = tmp_path / TEMP_DIR
    cut_off = [
        temp / ("0" * 32),  # an atomic write
        temp / "uploads" / live.token / f"2.{'d' * 32}",  # a part no session recorded
        temp / "uploads" / ("f" * 32) / f"1.{'e' * 32}",  # a session that is gone
    ]
    for path in cut_off:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")

    assert await driver.sweep_staging({live.token: {kept.etag}}) == 3

    assert not [path for path in cut_off if path.exists()]
    await driver.complete_upload(live, [kept])  # the session goes on as if nothing happened
    assert await driver.get("repositories/a/_uploads/1/data") == b"recorded"
    assert await driver.get("docker/registry/v2/blobs/sha256/ab/abc/data") == b"published"
    assert await driver.sweep_staging({}) == 0


def _staged(driver: FilesystemDriver, token: str) -> list[str]:
    return sorted(p.name for p in (driver.root / TEMP_DIR / "uploads" / token).iterdir() if p.name != "key")


async def _failing(data: bytes):  # type: ignore[no-untyped-def]
    yield data
    raise RuntimeError("client went away")


async def test_patches_append_to_one_file_that_becomes_the_blob(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    upload = await driver.start_upload("t/data")
    parts, offset = [], 0
    for number, data in enumerate([b"one-", b"two-", b"three"], start=1):
        parts.append(await driver.write_part(upload, number, offset, _chunks(data)))
        offset += len(data)
    assert len({p.etag for p in parts}) == 1
    [staged] = _staged(driver, upload.token)
    inode = os.stat(driver.root / TEMP_DIR / "uploads" / upload.token / staged).st_ino
    await driver.complete_upload(upload, parts)
    assert await driver.get("t/data") == b"one-two-three"
    assert os.stat(driver.root / "t" / "data").st_ino == inode  # renamed into place, not copied


async def test_a_failed_append_is_taken_back_and_the_retry_appends(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    upload = await driver.start_upload("t/data")
    first = await driver.write_part(upload, 1, 0, _chunks(b"first-"))
    with pytest.raises(RuntimeError):
        await driver.write_part(upload, 2, 6, _failing(b"half of the second"))
    [staged] = _staged(driver, upload.token)
    assert (driver.root / TEMP_DIR / "uploads" / upload.token / staged).read_bytes() == b"first-"
    second = await driver.write_part(upload, 2, 6, _chunks(b"second"))
    assert second.etag == first.etag
    await driver.complete_upload(upload, [first, second])
    assert await driver.get("t/data") == b"first-second"


async def test_bytes_past_the_recorded_parts_are_cut_off(tmp_path: Path) -> None:
    # A PATCH whose session update lost a race appended bytes nobody recorded: they are not in the blob.
    driver = FilesystemDriver(tmp_path)
    upload = await driver.start_upload("t/data")
    first = await driver.write_part(upload, 1, 0, _chunks(b"kept"))
    await driver.write_part(upload, 2, 4, _chunks(b"never recorded"))
    await driver.complete_upload(upload, [first])
    assert await driver.get("t/data") == b"kept"


async def test_a_rewritten_part_is_read_from_its_own_file(tmp_path: Path) -> None:
    # Part 2 written twice (the first attempt unrecorded), then part 3 appended after the first attempt,
    # which happens to end at the same offset: every part is read from its file at its own offset.
    driver = FilesystemDriver(tmp_path)
    upload = await driver.start_upload("t/data")
    first = await driver.write_part(upload, 1, 0, _chunks(b"AAAA"))
    await driver.write_part(upload, 2, 4, _chunks(b"xxxx"))
    second = await driver.write_part(upload, 2, 4, _chunks(b"BBBB"))
    third = await driver.write_part(upload, 3, 8, _chunks(b"CCCC"))
    assert second.etag != first.etag
    await driver.complete_upload(upload, [first, second, third])
    assert await driver.get("t/data") == b"AAAABBBBCCCC"


async def test_an_upload_staged_by_an_older_version_completes(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    upload = await driver.start_upload("t/data")
    staging = driver.root / TEMP_DIR / "uploads" / upload.token
    (staging / f"1.{'a' * 32}").write_bytes(b"old-")
    (staging / f"2.{'b' * 32}").write_bytes(b"style")
    parts = [Part(1, 0, 4, "a" * 32), Part(2, 4, 5, "b" * 32)]
    await driver.complete_upload(upload, parts)
    assert await driver.get("t/data") == b"old-style"


async def _slowly(data: bytes, pieces: int):  # type: ignore[no-untyped-def]
    step = len(data) // pieces
    for start in range(0, len(data), step):
        yield data[start : start + step]
        await asyncio.sleep(0.01)


async def test_concurrent_attempts_at_a_part_keep_their_own_bytes(tmp_path: Path) -> None:
    # Two PATCHes at the same offset at once: one appends (it holds the file's lock), the other writes a file
    # of its own; whichever the caller records, completing gives exactly its bytes.
    for recorded in ("slow", "fast"):
        driver = FilesystemDriver(tmp_path / recorded)
        upload = await driver.start_upload("t/data")
        first = await driver.write_part(upload, 1, 0, _chunks(b"1111"))
        slow, fast = await asyncio.gather(
            driver.write_part(upload, 2, 4, _slowly(b"slow" * 64, 8)),
            driver.write_part(upload, 2, 4, _slowly(b"fast" * 64, 2)),
        )
        assert slow.etag != fast.etag
        second = slow if recorded == "slow" else fast
        third = await driver.write_part(upload, 3, 4 + second.size, _chunks(b"3333"))
        await driver.complete_upload(upload, [first, second, third])
        assert await driver.get("t/data") == b"1111" + recorded.encode() * 64 + b"3333"


async def test_a_completed_upload_published_by_a_move_is_fsynced_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes once at completion, and the directory the move lands in: the rename into the upload's own
    key, which the move renames again, is not made durable on its own."""
    driver = FilesystemDriver(tmp_path)
    upload = await driver.start_upload("uploads/u1/data")
    part = await driver.write_part(upload, 1, 0, _chunks(b"blob"))
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    await driver.complete_upload(upload, [part])
    await driver.move("uploads/u1/data", "blobs/b/data")
    assert await driver.get("blobs/b/data") == b"blob"
    blob, blobs_dir = os.stat(tmp_path / "blobs/b/data").st_ino, os.stat(tmp_path / "blobs/b").st_ino
    assert synced == [blob, blobs_dir]


async def test_a_parent_pruned_while_the_path_is_made_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing one upload prunes the directories it leaves empty, up to the repository's; another request
    making a path under them at that moment (``mkdir`` of one level, then the next) finds a level gone. The
    write retries instead of failing the push (seen as a 503 on the first pushes of a new repository)."""
    driver = FilesystemDriver(tmp_path / "root")
    made = Path.mkdir
    pruned = []

    def mkdir(self: Path, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        if self.name == "u1" and not pruned:
            pruned.append(self)
            raise FileNotFoundError(2, "No such file or directory", str(self))  # the parent went meanwhile
        made(self, mode, parents, exist_ok)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    await driver.put("repositories/r/_uploads/u1/startedat", b"now")
    assert pruned
    assert await driver.get("repositories/r/_uploads/u1/startedat") == b"now"


async def _blocks(data: bytes, size: int):  # type: ignore[no-untyped-def]
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("directio", [True, False])
async def test_directio_parameter_decides_whether_bodies_bypass_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, directio: bool
) -> None:
    """``directio: false`` in the storage block: streamed bodies go through the page cache as any file
    (storage/direct_io.py); either way the bytes stored are the bytes sent."""
    from trustyard.storage import direct_io
    from trustyard.storage.config import StorageSettings
    from trustyard.storage.factory import build_driver

    opened: list[Path] = []
    open_direct = direct_io._open_direct

    def recording(path: Path) -> int | None:
        opened.append(path)
        return open_direct(path)

    monkeypatch.setattr(direct_io, "_open_direct", recording)
    settings = StorageSettings.model_validate({"filesystem": {"rootdirectory": str(tmp_path), "directio": directio}})
    driver = build_driver(settings, tmp_path / "unused", SERVING)
    blob, part = os.urandom(3 * 1024 * 1024 + 5), os.urandom(2 * 1024 * 1024)

    await driver.write("docker/registry/v2/blobs/sha256/ab/ab/data", _blocks(blob, 1024 * 1024))
    upload = await driver.start_upload("docker/registry/v2/repositories/a/_uploads/1/data")
    written = await driver.write_part(upload, 1, 0, _blocks(part, 1024 * 1024))
    await driver.complete_upload(upload, [written])

    assert await driver.get("docker/registry/v2/blobs/sha256/ab/ab/data") == blob
    assert await driver.get("docker/registry/v2/repositories/a/_uploads/1/data") == part
    assert len(opened) == (2 if directio else 0)


async def _failing_after(data: bytes, size: int):  # type: ignore[no-untyped-def]
    for start in range(0, len(data), size):
        yield data[start : start + size]
    raise RuntimeError("the client went away")


async def test_a_failed_append_is_taken_back_after_direct_writes(tmp_path: Path) -> None:
    """Part 2 starts mid-block (after a part of 1 MiB + 3 bytes) and fails after 3 MiB went to the file past
    the page cache (storage/direct_io.py): the file is cut back to where part 2 began, and the retry's bytes
    land right after part 1."""
    driver = FilesystemDriver(tmp_path)
    upload = await driver.start_upload("t/data")
    one, two = os.urandom(1024 * 1024 + 3), os.urandom(2 * 1024 * 1024 + 11)
    first = await driver.write_part(upload, 1, 0, _blocks(one, 1024 * 1024))
    with pytest.raises(RuntimeError):
        await driver.write_part(upload, 2, len(one), _failing_after(os.urandom(3 * 1024 * 1024), 1024 * 1024))
    [staged] = _staged(driver, upload.token)
    assert (driver.root / TEMP_DIR / "uploads" / upload.token / staged).read_bytes() == one
    second = await driver.write_part(upload, 2, len(one), _blocks(two, 1024 * 1024))
    assert second.etag == first.etag
    await driver.complete_upload(upload, [first, second])
    assert await driver.get("t/data") == one + two
