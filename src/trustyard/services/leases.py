"""Taking a background job's lease (db/leases.py): garbage collection, a storage adoption, a storage migration.

One rule for every job: the lease is ours when it is free, expired or already ours, and also when its holder
was a process of this host that is gone (killed or crashed), so a restart on the same machine resumes at once
instead of waiting for the lease to run out. Holders are named ``host:pid:nonce`` for that reason.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from trustyard.db.leases import LeaseStore

log = logging.getLogger(__name__)


async def take_lease(leases: LeaseStore, name: str, holder: str, ttl: timedelta) -> str | None:
    """Take the lease ``name`` for ``holder``: None when it is now ours, else who holds it."""
    if await leases.acquire(name, holder, ttl):
        return None
    current = await leases.current(name)
    if current is None:  # it expired between the two reads
        return None if await leases.acquire(name, holder, ttl) else "another holder"
    if dead_here(current.holder) and await leases.take_over(name, current.holder, holder, ttl):
        log.warning("took the %s lease over from %s, which is no longer running", name, current.holder)
        return None
    return current.holder


def dead_here(holder: str) -> bool:
    """Whether ``holder`` (``host:pid:nonce``) was a process on this host that is gone (killed or crashed)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
