"""The composition root: response headers (the API version everywhere, HSTS only on TLS), and what a node
needs at start: its secret key, and the keys every node shares (services/shared_secrets.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from trustyard.app import NO_SECRET_KEY, open_node, prepare, token_authority
from trustyard.auth.secretbox import SecretBox
from trustyard.config import Settings
from trustyard.errors import ConfigInvalid
from trustyard.services.shared_secrets import NodeKeys

from .registry.conftest import running


async def test_hsts_on_tls_responses_only(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as registry:
        transport = httpx.ASGITransport(app=registry.asgi)
        for scheme, expected in (("https", "max-age=31536000"), ("http", None)):
            async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://registry.test") as client:
                for path in ("/v2/", "/ca", "/login", "/api/v1/me"):
                    response = await client.get(path)
                    assert response.headers.get("strict-transport-security") == expected, (scheme, path)
                    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


async def test_the_embedded_default_generates_its_secret_key_and_keeps_the_rest_in_the_database(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    await prepare(settings)
    assert sorted(p.name for p in (tmp_path / "data" / "keys").iterdir()) == ["secret.key"]
    async with open_node(settings) as (_, keys):
        assert keys is not None
    await prepare(settings)  # a restart finds them
    async with open_node(settings) as (_, again):
        assert again == keys


@pytest.mark.postgres
def test_nodes_share_the_keys_only_with_the_secret_key(tmp_path: Path, postgres_url: str) -> None:
    """The first node seals the keys with its secret key; a node without it, or with another, stops with one
    sentence naming TRUSTYARD_SECRET_KEY and secret_key_file; a node given the key by file gets the same keys."""
    key = SecretBox.new_key().decode()
    first = Settings(data_dir=tmp_path / "a", database_url=postgres_url, secret_key=key)
    asyncio.run(prepare(first))
    assert not (tmp_path / "a" / "keys").exists()  # nothing secret on the node's disk

    without = Settings(data_dir=tmp_path / "b", database_url=postgres_url)
    with pytest.raises(ConfigInvalid) as refused:
        asyncio.run(prepare(without))
    assert refused.value.message == NO_SECRET_KEY
    assert "TRUSTYARD_SECRET_KEY" in NO_SECRET_KEY
    assert "secret_key_file" in NO_SECRET_KEY
    assert not (tmp_path / "b" / "keys" / "secret.key").exists()  # no stray key of its own

    other = Settings(data_dir=tmp_path / "b", database_url=postgres_url, secret_key=SecretBox.new_key().decode())
    with pytest.raises(ConfigInvalid, match="TRUSTYARD_SECRET_KEY"):
        asyncio.run(prepare(other))

    missing = Settings(data_dir=tmp_path / "b", database_url=postgres_url, secret_key_file=tmp_path / "nope")
    with pytest.raises(ConfigInvalid, match=r"secret_key_file .* does not exist"):
        asyncio.run(prepare(missing))

    (tmp_path / "secret.key").write_text(key + "\n")
    second = Settings(data_dir=tmp_path / "b", database_url=postgres_url, secret_key_file=tmp_path / "secret.key")
    asyncio.run(prepare(second))

    async def keys(settings: Settings) -> NodeKeys | None:
        async with open_node(settings) as (_, found):
            return found

    assert asyncio.run(keys(first)) == asyncio.run(keys(second)) is not None
    authority_a = token_authority(first, asyncio.run(keys(first)))
    authority_b = token_authority(second, asyncio.run(keys(second)))
    assert authority_a is not None
    assert authority_b is not None
    token, _ = authority_a.issue_access("alice", [])
    assert authority_b.verify_access(token).subject == "alice"  # issued by one node, accepted by the other


@pytest.mark.postgres
async def test_nodes_started_at_once_on_an_empty_database_all_come_up(tmp_path: Path, postgres_url: str) -> None:
    """compose up: three nodes migrate (one at a time, under an advisory lock), create the shared keys and the
    admin account at the same moment; every one starts, with the same keys."""
    key = SecretBox.new_key().decode()
    nodes = [
        Settings(data_dir=tmp_path / f"n{n}", database_url=postgres_url, secret_key=key, insecure_http=True)
        for n in range(3)
    ]
    await asyncio.gather(*(prepare(node, serving=True) for node in nodes))
    found = []
    for node in nodes:
        async with open_node(node) as (services, keys):
            found.append(keys)
            assert await services.users.bootstrap_admin(None) is None  # exactly one admin, already there
    assert found[0] is not None
    assert found == [found[0]] * 3


def test_a_worker_does_not_load_what_only_pages_yaml_or_postgresql_need() -> None:
    """Each worker imports ``trustyard.app`` on its own (~80 MiB); what only the web UI (Jinja2, itsdangerous),
    YAML bodies, migrations, Swift (httpx) or PostgreSQL use is loaded on first use, not by every worker."""
    lazy = ["jinja2", "itsdangerous", "yaml", "alembic", "httpx", "sqlalchemy.dialects.postgresql"]
    code = f"import sys, trustyard.app; print([m for m in {lazy!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
