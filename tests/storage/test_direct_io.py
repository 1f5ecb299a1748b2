"""DirectAppender: the bytes land in the file exactly as written, whatever the sizes of the writes and wherever
the file ended (aligned or not), through O_DIRECT where the filesystem takes it and without it where it does
not (refused at open, or at the first write)."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from trustyard.storage import direct_io
from trustyard.storage.direct_io import ALIGN, BUFFER, DirectAppender


def _direct_supported(path: Path) -> bool:
    probe = path / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | getattr(os, "O_DIRECT", 0)))
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)
    return hasattr(os, "O_DIRECT")


def _append(path: Path, writes: list[bytes], *, flush_every: int = 0) -> None:
    file = open(path, "r+b")  # noqa: SIM115 -- the appender closes it
    file.seek(0, os.SEEK_END)
    appender = DirectAppender(file, path, file.tell())
    try:
        for n, data in enumerate(writes, start=1):
            assert appender.write(data) == len(data)
            if flush_every and n % flush_every == 0:
                appender.flush()
        appender.flush()
    finally:
        appender.close()
    assert appender.closed


SIZES = [
    [1],
    [ALIGN],
    [ALIGN - 1, 2],
    [BUFFER],
    [BUFFER + 1],
    [3 * BUFFER + ALIGN + 7],
    [417_792] * 7,  # Granian's body messages
    [BUFFER + 417_792, 100, BUFFER - 100, 5],
]


@pytest.mark.parametrize("already", [0, 1, ALIGN, ALIGN + 3, BUFFER - 1])
@pytest.mark.parametrize("sizes", SIZES, ids=lambda sizes: "+".join(map(str, sizes)))
def test_bytes_land_at_their_offsets(tmp_path: Path, already: int, sizes: list[int]) -> None:
    path = tmp_path / "blob"
    head = os.urandom(already)
    path.write_bytes(head)
    writes = [os.urandom(size) for size in sizes]

    _append(path, writes)

    assert path.read_bytes() == head + b"".join(writes)


def test_flushes_between_writes_keep_appending(tmp_path: Path) -> None:
    """A flush in the middle writes an unaligned tail; the next write continues right after it."""
    path = tmp_path / "blob"
    path.write_bytes(b"")
    rng = random.Random(13)
    writes = [os.urandom(rng.choice([1, 511, ALIGN + 1, 300_000, BUFFER + 3])) for _ in range(40)]

    _append(path, writes, flush_every=3)

    assert path.read_bytes() == b"".join(writes)


def test_whole_blocks_bypass_the_page_cache_where_the_filesystem_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _direct_supported(tmp_path):
        pytest.skip("this filesystem refuses O_DIRECT")
    direct_writes: list[int] = []
    pwrite = os.pwrite

    def counting(fd: int, data: memoryview, offset: int) -> int:
        direct_writes.append(len(data))
        return pwrite(fd, data, offset)

    monkeypatch.setattr(direct_io.os, "pwrite", counting)
    path = tmp_path / "blob"
    path.write_bytes(b"")
    data = os.urandom(3 * BUFFER + 10)

    _append(path, [data])

    assert direct_writes == [BUFFER, BUFFER, BUFFER]  # the 10-byte tail went through the page cache
    assert path.read_bytes() == data


def test_refused_at_open_writes_everything_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path, flags: int, mode: int = 0o777) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(direct_io.os, "open", refuse)
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 5)
    writes = [os.urandom(BUFFER + 5), os.urandom(7)]

    _append(path, writes)

    assert path.read_bytes() == b"x" * 5 + b"".join(writes)


def test_refused_at_the_first_write_falls_back_without_losing_a_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(fd: int, data: memoryview, offset: int) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(direct_io.os, "pwrite", refuse)
    path = tmp_path / "blob"
    path.write_bytes(b"")
    writes = [os.urandom(2 * BUFFER + 123), os.urandom(ALIGN * 3)]

    _append(path, writes)

    assert path.read_bytes() == b"".join(writes)


def test_other_write_errors_are_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _direct_supported(tmp_path):
        pytest.skip("this filesystem refuses O_DIRECT")

    def full(fd: int, data: memoryview, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_io.os, "pwrite", full)
    path = tmp_path / "blob"
    path.write_bytes(b"")
    with pytest.raises(OSError, match="No space"):
        _append(path, [os.urandom(BUFFER)])


def test_a_small_body_never_opens_a_direct_descriptor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configs, manifests' small layers: one write under a buffer's size stays on the ordinary descriptor (no
    second open, no aligned buffer: they would cost more than they save)."""
    opened: list[object] = []
    monkeypatch.setattr(direct_io, "_open_direct", lambda path: opened.append(path))
    path = tmp_path / "blob"
    path.write_bytes(b"")
    data = os.urandom(BUFFER - 1)

    _append(path, [data, b"tail"])

    assert opened == []
    assert path.read_bytes() == data + b"tail"
