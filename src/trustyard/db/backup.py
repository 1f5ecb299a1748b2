"""A consistent copy of the SQL index taken while servers keep writing: SQLite's online backup API (pages
copied under a read transaction, so the copy is one committed state), or ``pg_dump`` for PostgreSQL."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from trustyard.errors import ConfigInvalid

#: The copy's file name in a backup: a data directory's own index, or a pg_dump archive (custom format).
SQLITE_FILE = "trustyard.db"
PG_DUMP_FILE = "trustyard.pgdump"


def copy_index(url: str, destination: Path) -> Path:
    """Write the index behind ``url`` into the directory ``destination``; returns the file written."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database:
            raise ConfigInvalid("the index is an in-memory SQLite database: there is nothing to back up")
        target = destination / SQLITE_FILE
        source = sqlite3.connect(f"file:{parsed.database}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return target
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise ConfigInvalid(
            "the index is on PostgreSQL and pg_dump is not installed (Debian: apt-get install postgresql-client)"
        )
    target = destination / PG_DUMP_FILE
    libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(
        [pg_dump, "--format=custom", "--no-owner", f"--file={target}", libpq],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ConfigInvalid(f"pg_dump failed: {done.stderr.strip()}")
    return target
