"""The response that sends a blob held in a local file: the whole file or one byte range.

Blocks of 256 KiB are read on the event loop when the page cache holds them, and on a thread when it does not,
so a pull of a warm blob costs no thread hop and a cold one does not stall the loop while the disk answers.
Whether a block is cached is asked of its first and last byte with ``preadv2(RWF_NOWAIT)``, which fails
instead of waiting for the disk (two syscalls of a microsecond; a block whose ends are cached but not its
middle is read on the loop, a short wait that readahead makes rare). Measured against Granian's
``http.response.pathsend``, which reads through tokio's blocking pool 128 KiB at a time: 0.39-0.44 instead of
0.52-0.61 CPU-s per GB sent, 2.3-2.6 instead of 1.5-1.7 GB/s (docs/performance.md, tenth step). Memory per
response: one block, plus Granian's queue of at most four.
"""

from __future__ import annotations

import asyncio
import errno
import os
from concurrent.futures import ThreadPoolExecutor

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from trustyard.registry.responses import RawHeaders

BLOCK = 256 * 1024

# Reads from the disk get threads of their own (started as needed): in the default executor, six threads on two
# cores, a burst of cold pulls would queue the filesystem driver's writes and the hashing of pushes behind it.
_readers = ThreadPoolExecutor(max_workers=32, thread_name_prefix="trustyard-blob-read")


class BlobFileResponse(Response):
    """``length`` bytes of the open file ``fd`` from ``offset``; the response owns ``fd`` and closes it."""

    def __init__(self, fd: int, offset: int, length: int, headers: RawHeaders, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.raw_headers = [*headers, (b"content-length", str(length).encode())]
        self.fd, self.offset, self.length = fd, offset, length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            offset, end = self.offset, self.offset + self.length
            while offset < end:
                want = min(BLOCK, end - offset)
                if cached(self.fd, offset, want):
                    block = os.pread(self.fd, want, offset)
                else:
                    block = await read_on_thread(self.fd, want, offset)
                if len(block) < want:
                    raise OSError(errno.EIO, f"the blob file ended {end - offset - len(block)} bytes early")
                offset += want
                await send({"type": "http.response.body", "body": block, "more_body": offset < end})
            if self.length == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            os.close(self.fd)


async def read_on_thread(fd: int, length: int, offset: int) -> bytes:
    return await asyncio.get_running_loop().run_in_executor(_readers, os.pread, fd, length, offset)


_probe = bytearray(1)  # what the probes read is never looked at
_can_probe = hasattr(os, "RWF_NOWAIT")


def cached(fd: int, offset: int, length: int) -> bool:
    """Whether the page cache holds the first and the last byte of ``length`` bytes at ``offset``; False
    where the kernel or filesystem cannot tell without waiting (no ``RWF_NOWAIT``): those read on a thread."""
    global _can_probe
    if not _can_probe:
        return False
    try:
        return (
            os.preadv(fd, [_probe], offset, os.RWF_NOWAIT) == 1
            and os.preadv(fd, [_probe], offset + length - 1, os.RWF_NOWAIT) == 1
        )
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        _can_probe = False
        return False
