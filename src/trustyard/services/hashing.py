"""``hashed``: a request body hashed while it streams into storage, with receiving and hashing overlapped.

Every byte of a push is hashed once, on its way to the storage driver. Hashed on the event loop, a 1 MiB block
holds the loop for about a millisecond, during which the next block is not received: a monolithic push then
alternates between receiving and hashing on one core. Here a large body is gathered into blocks of about
1 MiB by a task that keeps receiving, and each block is hashed on a thread (the OpenSSL call behind
``Hasher.update`` releases the GIL) while the driver writes it: receiving, hashing and writing run side by
side on a machine's cores. Blocks are added to the hash in order, each after the one before it, and the last
before the caller sees the end of the body. At most ``AHEAD`` blocks wait, so memory stays constant whatever
the size of the blob.

A body of one block (every small push: configs, manifests' layers of a few KiB) is hashed inline: no task and
no thread hop, which would cost more than the hash.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator

from trustyard.oci.digest import Hasher

#: Blocks are gathered to about this size before they are hashed and handed on.
BLOCK = 1024 * 1024
#: How many received blocks may wait for the hasher (memory per upload: about (AHEAD + 2) blocks).
AHEAD = 2


async def hashed(chunks: AsyncIterable[bytes], hasher: Hasher) -> AsyncIterator[bytes]:
    """``chunks`` in blocks of about ``BLOCK`` bytes, each added to ``hasher`` before it is yielded."""
    blocks = _blocks(chunks)
    first = await anext(blocks, None)
    if first is None:
        return
    second = await anext(blocks, None)
    if second is None:
        hasher.update(first)
        yield first
        return
    waiting: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(AHEAD)
    loop = asyncio.get_running_loop()
    receiving = loop.create_task(_receive(blocks, waiting))
    hashing: asyncio.Future[None] | None = None
    try:
        block: bytes | BaseException | None = first
        pending: list[bytes] = [second]
        while block is not None:
            if isinstance(block, BaseException):
                raise block
            if hashing is not None:
                await hashing  # blocks are added in order: the previous one first
            hashing = asyncio.ensure_future(asyncio.to_thread(hasher.update, block))
            yield block  # the consumer writes it while it is hashed
            block = pending.pop() if pending else await waiting.get()
        if hashing is not None:
            await hashing  # every byte is in the digest before the caller sees the end
    finally:
        receiving.cancel()
        with contextlib.suppress(BaseException):
            await receiving
        if hashing is not None and not hashing.done():
            with contextlib.suppress(BaseException):
                await hashing  # not left running on a thread after the body is given up
        await blocks.aclose()


async def _receive(blocks: AsyncIterator[bytes], waiting: asyncio.Queue[bytes | BaseException | None]) -> None:
    """Move ``blocks`` into ``waiting``, then None; a failure of the body (a client gone) is handed on too."""
    try:
        async for block in blocks:
            await waiting.put(block)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # the consumer raises it where the body is read
        await waiting.put(exc)
        return
    await waiting.put(None)


async def _blocks(chunks: AsyncIterable[bytes]) -> AsyncGenerator[bytes, None]:
    """``chunks`` gathered into blocks of at least ``BLOCK`` bytes (the last may be shorter)."""
    gathered: list[bytes] = []
    size = 0
    async for chunk in chunks:
        if not chunk:
            continue
        if not gathered and len(chunk) >= BLOCK:
            yield chunk
            continue
        gathered.append(chunk)
        size += len(chunk)
        if size >= BLOCK:
            yield b"".join(gathered)
            gathered, size = [], 0
    if gathered:
        yield b"".join(gathered)
