"""``BlobFileResponse``: the bytes of a file or a range of it, cached blocks read on the loop, others on a thread."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.registry.sending import sent
from trustyard.registry import file_response
from trustyard.registry.file_response import BLOCK, BlobFileResponse, cached


def write(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5])
async def test_the_whole_file_in_blocks_and_the_file_closed(tmp_path: Path, size: int) -> None:
    data = write(tmp_path / "blob", size)
    fd = os.open(tmp_path / "blob", os.O_RDONLY)
    start, *bodies = await sent(BlobFileResponse(fd, 0, size, [(b"etag", b'"x"')]))
    assert start == {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"etag", b'"x"'), (b"content-length", str(size).encode())],
    }
    assert b"".join(m["body"] for m in bodies) == data
    assert all(len(m["body"]) <= BLOCK and isinstance(m["body"], bytes) for m in bodies)
    assert [m["more_body"] for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert closed(fd)


@pytest.mark.parametrize(("offset", "length"), [(0, 1), (BLOCK - 1, 2), (5, 2 * BLOCK), (2 * BLOCK + 4, BLOCK + 1)])
async def test_a_range(tmp_path: Path, offset: int, length: int) -> None:
    data = write(tmp_path / "blob", 3 * BLOCK + 5)
    fd = os.open(tmp_path / "blob", os.O_RDONLY)
    start, *bodies = await sent(BlobFileResponse(fd, offset, length, [], status_code=206))
    assert start["status"] == 206
    assert (b"content-length", str(length).encode()) in start["headers"]
    assert b"".join(m["body"] for m in bodies) == data[offset : offset + length]


async def test_a_file_shorter_than_the_index_says_fails_instead_of_sending_less(tmp_path: Path) -> None:
    write(tmp_path / "blob", BLOCK + 10)
    fd = os.open(tmp_path / "blob", os.O_RDONLY)
    with pytest.raises(OSError, match="ended 90 bytes early"):
        await sent(BlobFileResponse(fd, 0, BLOCK + 100, []))
    assert closed(fd)


async def test_a_client_gone_mid_body_still_closes_the_file(tmp_path: Path) -> None:
    write(tmp_path / "blob", 3 * BLOCK)
    fd = os.open(tmp_path / "blob", os.O_RDONLY)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            raise OSError("the client hung up")

    with pytest.raises(OSError, match="hung up"):
        await BlobFileResponse(fd, 0, 3 * BLOCK, [])({"type": "http"}, None, send)  # type: ignore[arg-type]
    assert closed(fd)


def evicted(path: Path) -> int:
    """``path`` written to disk and dropped from the page cache; an open descriptor to it."""
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return fd


@pytest.fixture
def blob_on_disk(tmp_path: Path) -> tuple[Path, bytes]:
    """A file of four blocks, on a filesystem where the page cache can be emptied and asked about; the test
    is skipped elsewhere (tmpfs keeps every page; without ``RWF_NOWAIT`` every block is read on a thread)."""
    path = tmp_path / "blob"
    data = write(path, 4 * BLOCK)
    fd = evicted(path)
    try:
        if cached(fd, 0, BLOCK):
            pytest.skip("this filesystem keeps every page in memory (tmpfs): nothing is read from a disk")
        os.pread(fd, BLOCK, 0)
        if not cached(fd, 0, BLOCK) and not file_response._can_probe:
            pytest.skip("this kernel or filesystem cannot say whether a page is cached (RWF_NOWAIT)")
        assert cached(fd, 0, BLOCK), "a block just read is not seen in the page cache"
    finally:
        os.close(fd)
    os.close(evicted(path))
    return path, data


async def test_blocks_the_page_cache_lacks_are_read_on_a_thread(
    blob_on_disk: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = blob_on_disk
    on_threads: list[int] = []
    real = file_response.read_on_thread

    async def read_on_thread(fd: int, length: int, offset: int) -> bytes:
        on_threads.append(offset)
        return await real(fd, length, offset)

    monkeypatch.setattr(file_response, "read_on_thread", read_on_thread)
    _, *bodies = await sent(BlobFileResponse(os.open(path, os.O_RDONLY), 0, 4 * BLOCK, []))
    assert b"".join(m["body"] for m in bodies) == data
    assert on_threads[:1] == [0], "a block the disk had to give was read on the event loop"

    # Now cached: every block is read on the loop, none waits for a thread.
    on_threads.clear()
    _, *bodies = await sent(BlobFileResponse(os.open(path, os.O_RDONLY), 0, 4 * BLOCK, []))
    assert b"".join(m["body"] for m in bodies) == data
    assert on_threads == []
