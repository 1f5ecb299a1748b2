"""Taking a job's lease: free or expired leases are taken, a live holder keeps it, and a holder that was a
process of this host that is gone loses it at once (on SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.services.conftest import opened_index
from trustyard.db.index import Index
from trustyard.services.leases import dead_here, take_lease

TTL = timedelta(minutes=5)


@pytest.fixture
async def index(database_url: str) -> AsyncIterator[Index]:
    """On SQLite and on PostgreSQL: leases are what several nodes share."""
    async with opened_index(database_url) as opened:
        yield opened


def gone_pid() -> int:
    """The pid of a process of this host that has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


async def test_a_free_lease_is_taken_and_a_live_holder_keeps_it(index: Index) -> None:
    mine = f"{socket.gethostname()}:{os.getpid()}:a"
    assert await take_lease(index.leases, "job", mine, TTL) is None
    assert await take_lease(index.leases, "job", mine, TTL) is None  # already ours
    other = f"{socket.gethostname()}:{os.getpid()}:b"  # alive: this very process
    assert await take_lease(index.leases, "job", other, TTL) == mine


async def test_a_lease_held_by_a_process_that_is_gone_is_taken_over(index: Index) -> None:
    dead = f"{socket.gethostname()}:{gone_pid()}:x"
    assert await take_lease(index.leases, "job", dead, TTL) is None
    mine = f"{socket.gethostname()}:{os.getpid()}:y"
    assert await take_lease(index.leases, "job", mine, TTL) is None
    current = await index.leases.current("job")
    assert current is not None
    assert current.holder == mine


async def test_a_holder_on_another_host_is_never_judged_dead(index: Index) -> None:
    elsewhere = "some-other-host:1:z"
    assert not dead_here(elsewhere)
    assert await take_lease(index.leases, "job", elsewhere, TTL) is None
    assert await take_lease(index.leases, "job", f"{socket.gethostname()}:{os.getpid()}:w", TTL) == elsewhere
