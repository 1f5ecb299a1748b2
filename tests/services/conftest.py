"""Services over a real SQLite index and the in-memory driver: rules easier to reach directly than over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.services.wiring import wire
from trustyard.db.engine import migrate, open_index, sqlite_url
from trustyard.db.index import Index
from trustyard.services import Services
from trustyard.storage.driver import StorageDriver
from trustyard.storage.memory import MemoryDriver
from trustyard.storage.metered import MeteredDriver
from trustyard.storage.switchable import SwitchableDriver

#: The smallest part the "object store" flavour of the memory driver accepts (S3 has 5 MiB; small keeps tests fast).
OBJECT_STORE_MIN_PART = 8


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    async with _services(tmp_path, MemoryDriver()) as built:
        yield built


@pytest.fixture
async def services_on_each_database(database_url: str) -> AsyncIterator[Services]:
    """Services over a migrated index on SQLite and on PostgreSQL (``database_url``) and the in-memory driver."""
    await migrate(database_url)
    index = open_index(database_url)
    try:
        yield wire(index, MemoryDriver())
    finally:
        await index.dispose()


@pytest.fixture
async def object_store_services(tmp_path: Path) -> AsyncIterator[tuple[Services, MemoryDriver]]:
    """Services over a driver that, like S3, refuses parts below a minimum size except the last."""
    driver = MemoryDriver(min_part_size=OBJECT_STORE_MIN_PART)
    async with _services(tmp_path, driver) as built:
        yield built, driver


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[Index]:
    """A migrated SQLite index under ``tmp_path``, shared by the "workers" a test builds over it."""
    async with opened_index(sqlite_url(tmp_path / "index.db")) as opened:
        yield opened


@asynccontextmanager
async def opened_index(url: str) -> AsyncIterator[Index]:
    """The index at ``url``, migrated first and disposed of after."""
    await migrate(url)
    opened = open_index(url)
    try:
        yield opened
    finally:
        await opened.dispose()


@asynccontextmanager
async def _services(tmp_path: Path, driver: MemoryDriver) -> AsyncIterator[Services]:
    async with opened_index(sqlite_url(tmp_path / "index.db")) as index:
        yield wire(index, driver)


def backend_of(driver: SwitchableDriver) -> StorageDriver:
    """The backend driver a switchable driver serves from, without the metering around it."""
    current = driver.current
    return current.inner if isinstance(current, MeteredDriver) else current
