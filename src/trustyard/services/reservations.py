"""Reserving a blob before a push writes its bytes, and what a push does when garbage collection is deleting
that very blob (docs/architecture.md, "Online garbage collection").

A tombstoned blob's bytes are being deleted. While a live collector holds the ``gc`` lease, the push waits for
it to finish (it deletes the bytes, then drops the row) and then writes them again. When no live collector
holds the lease (it was killed mid-way), nobody would finish: the push finishes the deletion itself (delete the
bytes, drop the row), which is exactly what the collector would have done, and goes on.
"""

from __future__ import annotations

import asyncio

from trustyard.db.index import Index
from trustyard.errors import BlobCollected
from trustyard.oci.digest import Digest
from trustyard.services.leases import dead_here
from trustyard.storage import layout
from trustyard.storage.driver import StorageDriver

LEASE = "gc"
#: How long a push waits for a live collector to finish deleting a blob it wants to write again.
WAIT_SECONDS = 30.0


async def reserve(index: Index, storage: StorageDriver, digest: Digest, size: int) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while not await index.blobs.reserve_blob(str(digest), size):
        if not await collector_alive(index):
            await storage.delete(layout.blob_data(digest))
            await index.blobs.forget_blobs([str(digest)])
            continue
        if asyncio.get_running_loop().time() > deadline:
            raise BlobCollected(f"blob {digest} is being deleted by garbage collection; push it again")
        await asyncio.sleep(0.05)


async def collector_alive(index: Index) -> bool:
    """Whether a collector holds the lease and is not a process of this host known to be gone."""
    lease = await index.leases.current(LEASE)
    return lease is not None and not dead_here(lease.holder)
