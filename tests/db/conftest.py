"""The ``index`` fixture: a migrated SQL index on SQLite and on PostgreSQL (``database_url``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from trustyard.db.engine import migrate, open_index
from trustyard.db.index import Index


@pytest.fixture
async def index(database_url: str) -> AsyncIterator[Index]:
    await migrate(database_url)
    await migrate(database_url)  # idempotent
    index = open_index(database_url)
    try:
        yield index
    finally:
        await index.dispose()
