"""The index copy a backup holds: SQLite's online backup (readable as an index), a pg_dump archive."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from trustyard.db.backup import copy_index
from trustyard.db.engine import migrate


def test_the_copy_holds_the_schema_and_its_version(database_url: str, tmp_path: Path) -> None:
    asyncio.run(migrate(database_url))
    (tmp_path / "backup").mkdir()
    copied = copy_index(database_url, tmp_path / "backup")
    if database_url.startswith("sqlite"):
        assert copied == tmp_path / "backup" / "trustyard.db"
        with sqlite3.connect(copied) as db:
            assert db.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
        return
    if shutil.which("pg_restore") is None:
        pytest.skip("pg_restore is not installed (postgresql-client)")
    assert copied.name == "trustyard.pgdump"
    listing = subprocess.run(["pg_restore", "--list", copied], capture_output=True, text=True, check=True)
    assert "alembic_version" in listing.stdout
