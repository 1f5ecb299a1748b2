"""Fixtures shared by the whole suite: SQL index URLs for SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from argon2 import PasswordHasher

from trustyard.auth import passwords

# Argon2 at its production cost takes a good part of a second per hash here; the suite hashes thousands of
# times. The in-process tests use the cheapest parameters (the algorithm is the same); registries started as
# processes (tests/e2e) keep the real cost.
passwords.HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

#: Set by scripts/test when the machine's PostgreSQL answers; tests marked `postgres` skip without it.
POSTGRES_URL = os.environ.get("TRUSTYARD_TEST_POSTGRES_URL")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'index.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("TRUSTYARD_TEST_POSTGRES_URL is not set (scripts/test sets it when PostgreSQL answers)")
    base = POSTGRES_URL.rpartition("/")[0]
    name = f"trustyard_test_{uuid.uuid4().hex[:12]}"
    _admin(base, f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        _admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(base_url: str, statement: str) -> None:
    dsn = base_url.replace("postgresql+asyncpg", "postgresql") + "/postgres"

    async def run() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every SQL index test runs on SQLite and on PostgreSQL."""
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    return url
