"""Upkeep runs once per interval however many workers and nodes ask (the ``upkeep`` lease), on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from tests.services.conftest import opened_index
from tests.services.wiring import wire
from trustyard.db import tables as t
from trustyard.db.index import Index
from trustyard.oci.names import RepositoryName
from trustyard.services.actor import Actor
from trustyard.services.upkeep import LEASE, Upkeep
from trustyard.storage.memory import MemoryDriver


@pytest.fixture
async def index(database_url: str) -> AsyncIterator[Index]:
    """On SQLite and on PostgreSQL: leases are what several nodes share."""
    async with opened_index(database_url) as opened:
        yield opened


async def test_one_run_per_interval_across_workers(index: Index) -> None:
    workers = [wire(index, MemoryDriver()) for _ in range(3)]
    ran = [await worker.upkeep.run_if_due() for worker in workers]
    assert ran == [True, False, False]
    assert await workers[0].upkeep.run_if_due() is False  # the winner too waits for the interval
    async with index.writer.begin() as conn:  # an hour later
        past = datetime.now(UTC) - timedelta(seconds=1)
        await conn.execute(update(t.leases).where(t.leases.c.name == LEASE).values(expires_at=past))
    assert await workers[2].upkeep.run_if_due() is True


async def test_upkeep_cancels_abandoned_uploads(index: Index) -> None:
    services = wire(index, MemoryDriver())
    upkeep = Upkeep(index.leases, services.uploads, services.webhooks, "worker-a")
    started = await services.uploads.start(Actor.system(), RepositoryName.parse("team/app"))
    async with index.writer.begin() as conn:  # idle for eight days
        await conn.execute(update(t.uploads).values(updated_at=datetime.now(UTC) - timedelta(days=8)))
    assert await upkeep.run_if_due()
    assert await index.uploads.upload("team/app", started.id) is None
