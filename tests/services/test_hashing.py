"""``hashed``: what reaches storage is the body, byte for byte, in bounded blocks, and the hasher has seen
exactly those bytes; a body that fails part-way fails the reader; a reader that stops leaves nothing running."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator

import pytest

from trustyard.oci.digest import Hasher
from trustyard.services.hashing import BLOCK, hashed


async def body(data: bytes, chunk: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        await asyncio.sleep(0)
        yield data[start : start + chunk]


@pytest.mark.parametrize("size", [0, 1, 5000, BLOCK, BLOCK + 1, 5 * BLOCK + 12345])
@pytest.mark.parametrize("chunk", [65536, 3 * BLOCK])
async def test_the_blocks_are_the_body_and_the_digest_is_its_digest(size: int, chunk: int) -> None:
    data = os.urandom(size)
    hasher = Hasher("sha256")
    blocks = [block async for block in hashed(body(data, chunk), hasher)]
    assert b"".join(blocks) == data
    assert str(hasher.digest()) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert hasher.size == size
    assert all(len(block) >= BLOCK for block in blocks[:-1])


async def test_a_body_that_fails_part_way_fails_the_reader() -> None:
    async def cut_off() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * BLOCK
        raise ConnectionResetError("client gone")

    received: list[bytes] = []

    async def read() -> None:
        async for block in hashed(cut_off(), Hasher("sha256")):
            received.append(block)

    with pytest.raises(ConnectionResetError, match="client gone"):
        await read()
    assert sum(map(len, received)) <= 4 * BLOCK


async def test_a_reader_that_stops_leaves_no_task_receiving() -> None:
    endless_reads = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal endless_reads
        while True:
            endless_reads += 1
            await asyncio.sleep(0)
            yield b"y" * BLOCK

    stream = hashed(endless(), Hasher("sha256"))
    async for _ in stream:
        break
    await stream.aclose()
    reads = endless_reads
    before = asyncio.all_tasks()
    await asyncio.sleep(0.05)
    assert endless_reads == reads  # nothing goes on reading the body
    assert len(asyncio.all_tasks()) == len(before)
    assert reads <= 2 + 3  # the two first blocks, and at most the blocks waiting for the hasher


async def test_each_block_is_hashed_while_the_consumer_writes_it_and_all_before_the_end() -> None:
    """The consumer (storage's write) and the hash of the same block run at once, on different threads; the
    blocks enter the hash in order, and the last one before the consumer sees the end of the body."""
    data = os.urandom(4 * BLOCK + 77)
    order: list[str] = []

    class SlowHasher(Hasher):
        __slots__ = ()

        def update(self, data: bytes | bytearray | memoryview) -> None:
            order.append("hash start")
            time.sleep(0.05)  # a hash slower than the write: the overlap shows in the order of events
            super().update(data)
            order.append("hash end")

    hasher = SlowHasher("sha256")
    written = 0
    async for block in hashed(body(data, 65536), hasher):
        order.append("write")
        await asyncio.to_thread(lambda: None)  # the write's own thread trip
        written += len(block)
    assert written == len(data)
    assert str(hasher.digest()) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert order[-1] == "hash end"
    first_write = order.index("write")
    assert order.index("hash end") > first_write  # the first block was written before its hash ended
