"""``DirectAppender``: a blob's bytes appended to a file past the page cache (``O_DIRECT``) where the filesystem
allows it.

A pushed blob is written once and read, if ever, later: written through the page cache, each of its pages
must first be found free (or reclaimed), filled, and written back, and on a virtual machine whose host backs
guest memory lazily a page the guest has not used lately costs a host fault as well. Measured on the 2-core
test VM (docs/performance.md, "Fourth step"): 64 MiB written and fsynced through the page cache took
0.3 s (~200 MB/s) from the second file on, with ``O_DIRECT`` 0.055 s (1.2 GB/s); both registries' pushes sat
at the first figure. Object stores that keep large objects on local disks write them the same way, for the
same reason (MinIO, for one, writes with ``O_DIRECT``). The price: the first pull of a blob right after its
push reads it from the disk, not the cache; the filesystem driver's ``directio: false`` turns this off
(docs/storage.md).

``O_DIRECT`` needs the file offset, the length and the memory address of each write aligned to the device's
block size. So the bytes are copied into one page-aligned buffer (``mmap``: constant memory, one 1 MiB
buffer per open upload) and written a whole block at a time with ``pwrite`` at their offset on a second
descriptor opened ``O_DIRECT``; a head before the first aligned offset (an append to a file that ends
mid-block), the tail after the last whole block, and a body that never fills the buffer (a config, a small
layer: the second descriptor and the buffer would cost more than they save) go through the ordinary
descriptor. Where ``O_DIRECT``
is refused (tmpfs, some network filesystems: ``EINVAL`` at open or at the first write) every byte goes
through the ordinary descriptor, as before. Durability is unchanged: the caller still fsyncs the file,
which also flushes the device's cache for the direct writes.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
from pathlib import Path
from typing import BinaryIO

#: Offsets and lengths of direct writes are multiples of this: the largest logical block size of common
#: devices (512 or 4096 bytes); an mmap'd buffer starts on a page, which is a multiple of it.
ALIGN = 4096
#: The aligned buffer: bytes are written to the file a buffer at a time.
BUFFER = 1024 * 1024
#: Aligned buffers kept for the next upload: filling a fresh mapping costs ~20x refilling one (every page is
#: a fault; on the test VM 1.2 ms against 0.06 ms per MiB), and a chunked push opens one per PATCH.
POOLED = 8


class DirectAppender:
    """Appends to ``file`` (open for writing) from byte ``position`` on, bypassing the page cache for whole
    aligned blocks. Quacks like the file for what the filesystem driver does with it (``write``, ``flush``,
    ``fileno``, ``close``, ``closed``); ``fileno`` is the ordinary descriptor (for ``flock``, ``fsync``,
    ``ftruncate``)."""

    def __init__(self, file: BinaryIO, path: Path, position: int, *, direct: bool = True) -> None:
        self._file = file
        self._path = path
        self._position = position  # where the next byte goes that is not in the buffer
        self._direct: int | None = None  # opened at the first write of a whole buffer: small bodies never do
        self._buffer: mmap.mmap | None = None
        self._filled = 0  # bytes waiting in the buffer, for the file from ``_position`` on
        self._refused = not direct  # turned off, or O_DIRECT refused here: every byte through the file
        self._failed = False  # a direct write raised: the buffer may still be viewed (not pooled)

    @property
    def closed(self) -> bool:
        return self._file.closed

    def fileno(self) -> int:
        return self._file.fileno()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._buffer is None and not self._refused and len(data) >= BUFFER:
            self._start_direct()
        if self._buffer is None:
            self._file.write(data)
            self._position += len(data)
            return len(data)
        view = memoryview(data)
        if self._filled == 0 and self._position % ALIGN:
            head = min(len(view), ALIGN - self._position % ALIGN)  # up to the first aligned offset
            self._through_file(view[:head])
            view = view[head:]
        while view and self._buffer is not None:
            taken = min(len(view), BUFFER - self._filled)
            self._buffer[self._filled : self._filled + taken] = view[:taken]
            self._filled += taken
            view = view[taken:]
            if self._filled == BUFFER:
                self._write_buffer(BUFFER)
        if view:  # direct writes stopped on the way (see _write_buffer)
            self._file.write(view)
            self._position += len(view)
        return len(data)

    def flush(self) -> None:
        """Everything written so far into the file: the buffer's whole blocks directly, the rest through
        the ordinary descriptor. Appending may go on afterwards."""
        if self._buffer is not None and self._filled >= ALIGN:
            self._write_buffer(self._filled - self._filled % ALIGN)
        if self._buffer is not None and self._filled:
            rest = self._buffer[: self._filled]  # a copy: bytes
            self._filled = 0
            self._through_file(memoryview(rest))
        self._file.flush()

    def close(self) -> None:
        """Close both descriptors. Bytes not flushed are dropped: a failed write closes without them."""
        self._stop_direct()
        self._file.close()

    def _write_buffer(self, length: int) -> None:
        """The buffer's first ``length`` bytes (a multiple of ``ALIGN``) to the file at ``_position``, the rest
        kept at its start."""
        assert self._buffer is not None
        assert self._direct is not None
        written = 0
        with memoryview(self._buffer) as view:
            try:
                while written < length:
                    written += os.pwrite(self._direct, view[written:length], self._position + written)
            except OSError as exc:
                if exc.errno != errno.EINVAL or written:
                    self._failed = True
                    raise
                refused = True  # this filesystem takes O_DIRECT at open but not at write
            else:
                refused = False
            if refused:
                self._through_file(view[: self._filled])  # every byte waiting, then no more direct writes
        if refused:
            self._stop_direct()
            self._refused = True
            return
        self._position += length
        left = self._filled - length
        if left:
            self._buffer.move(0, length, left)
        self._filled = left

    def _through_file(self, data: memoryview) -> None:
        self._file.seek(self._position)
        self._file.write(data)
        self._file.flush()  # before the next direct write: that one may sit after these bytes in the same file
        self._position += len(data)

    def _start_direct(self) -> None:
        self._file.flush()  # what was written through the file so far, in it before any direct write
        self._direct = _open_direct(self._path)
        if self._direct is None:
            self._refused = True
        else:
            self._buffer = _POOL.take()

    def _stop_direct(self) -> None:
        if self._direct is not None:
            os.close(self._direct)
            self._direct = None
        if self._buffer is not None:
            if self._failed:
                # A view of it may outlive the failed write (held by the exception's traceback): not reused,
                # and unmapped when that view goes.
                with contextlib.suppress(BufferError):
                    self._buffer.close()
            else:
                _POOL.give_back(self._buffer)
            self._buffer = None
        self._filled = 0


class _BufferPool:
    """Up to ``POOLED`` aligned buffers of this process, shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[mmap.mmap] = []

    def take(self) -> mmap.mmap:
        with self._lock:
            if self._free:
                return self._free.pop()
        return mmap.mmap(-1, BUFFER)

    def give_back(self, buffer: mmap.mmap) -> None:
        with self._lock:
            if len(self._free) < POOLED:
                self._free.append(buffer)
                return
        buffer.close()


_POOL = _BufferPool()


def _open_direct(path: Path) -> int | None:
    """A second descriptor on ``path`` for direct writes; None where the platform or filesystem has none."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(path, os.O_WRONLY | flag | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise
