"""The ``data`` fixture: a data directory as ``trustyard serve`` leaves it (index migrated, keys made), for
the commands that act on a server's data (they refuse a directory that does not exist)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from trustyard.app import prepare
from trustyard.config import Settings


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    asyncio.run(prepare(Settings(data_dir=directory)))
    return directory
