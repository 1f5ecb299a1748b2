"""Services over a real SQLite index and the in-memory driver: rules easier to reach directly than over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from trustyard.db.engine import migrate, open_index, sqlite_url
from trustyard.services import Services
from trustyard.storage.memory import MemoryDriver


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    url = sqlite_url(tmp_path / "index.db")
    await migrate(url)
    index = open_index(url)
    try:
        yield Services.create(index, MemoryDriver())
    finally:
        await index.dispose()
