"""The in-process registry of tests/registry, for the monitoring edge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.registry.conftest import Registry, running


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    async with running(tmp_path / "data") as started:
        yield started
