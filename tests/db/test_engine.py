"""The SQLite file holds password hashes and sealed secrets: created 0600, an older readable one tightened."""

from __future__ import annotations

import os
from pathlib import Path

from trustyard.db.engine import migrate, sqlite_url


def modes(directory: Path) -> dict[str, int]:
    return {name: os.stat(directory / name).st_mode & 0o777 for name in os.listdir(directory)}


async def test_a_new_index_is_private(tmp_path: Path) -> None:
    path = tmp_path / "trustyard.db"
    await migrate(sqlite_url(path))
    assert modes(tmp_path)["trustyard.db"] == 0o600


async def test_an_older_readable_index_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "trustyard.db"
    await migrate(sqlite_url(path))
    for name in modes(tmp_path):
        os.chmod(tmp_path / name, 0o644)
    await migrate(sqlite_url(path))
    assert set(modes(tmp_path).values()) == {0o600}
