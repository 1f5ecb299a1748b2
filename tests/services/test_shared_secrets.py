"""The keys nodes share, on SQLite and PostgreSQL: concurrent first starts agree on one key, a wrong secret key
is named in one sentence, and an older data directory's key files are adopted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from trustyard.auth.secretbox import SecretBox
from trustyard.auth.tokens import new_signing_key_pem, signing_key_from_pem
from trustyard.db.engine import migrate, open_index
from trustyard.errors import ConfigInvalid
from trustyard.services.shared_secrets import NodeKeys, SharedSecrets


async def _ensure(url: str, key: bytes, legacy: Path, node: str) -> NodeKeys:
    index = open_index(url)  # each node has engines of its own
    try:
        return await SharedSecrets(index.shared_secrets, SecretBox(key), node).ensure(legacy)
    finally:
        await index.dispose()


async def test_concurrent_first_starts_agree_on_one_set_of_keys(database_url: str, tmp_path: Path) -> None:
    await migrate(database_url)
    key = SecretBox.new_key()
    nodes = await asyncio.gather(*(_ensure(database_url, key, tmp_path / "none", f"node{n}") for n in range(6)))
    assert len(set(nodes)) == 1
    token, session = nodes[0].token_key, nodes[0].session_key
    assert signing_key_from_pem(token, "db").kid  # a usable ES256 key
    assert len(session) == 64
    index = open_index(database_url)
    try:
        again = await SharedSecrets(index.shared_secrets, SecretBox(key), "later").keys()
        assert again == nodes[0]
        sealed = await index.shared_secrets.get("token_key")
        assert sealed is not None
        assert b"PRIVATE KEY" not in sealed.encode()  # never stored in the clear
    finally:
        await index.dispose()


async def test_a_node_with_another_secret_key_is_told_which_key_it_needs(database_url: str, tmp_path: Path) -> None:
    await migrate(database_url)
    await _ensure(database_url, SecretBox.new_key(), tmp_path, "first")
    with pytest.raises(ConfigInvalid) as refused:
        await _ensure(database_url, SecretBox.new_key(), tmp_path, "second")
    assert "TRUSTYARD_SECRET_KEY" in refused.value.message
    assert "secret_key_file" in refused.value.message
    index = open_index(database_url)
    try:
        with pytest.raises(ConfigInvalid, match="cannot open the secrets"):
            await SharedSecrets(index.shared_secrets, SecretBox(SecretBox.new_key()), "reader").keys()
    finally:
        await index.dispose()


async def test_an_older_data_directory_keeps_its_keys(sqlite_url: str, tmp_path: Path) -> None:
    """keys/token.pem and keys/session.key of a single node from before: tokens and cookies stay valid."""
    await migrate(sqlite_url)
    keys = tmp_path / "keys"
    keys.mkdir()
    pem = new_signing_key_pem()
    (keys / "token.pem").write_bytes(pem)
    (keys / "session.key").write_bytes(b"ab" * 32 + b"\n")
    box = SecretBox.new_key()
    adopted = await _ensure(sqlite_url, box, keys, "upgraded")
    assert adopted == NodeKeys(pem.strip(), b"ab" * 32)
    (keys / "token.pem").write_bytes(new_signing_key_pem())  # a stale file no longer wins over the database
    assert await _ensure(sqlite_url, box, keys, "restarted") == adopted


async def test_a_rotation_gives_every_node_new_keys_and_retires_the_legacy_files(
    database_url: str, tmp_path: Path
) -> None:
    await migrate(database_url)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "token.pem").write_bytes(new_signing_key_pem())
    (keys / "session.key").write_bytes(b"cd" * 32)
    box = SecretBox.new_key()
    old = await _ensure(database_url, box, keys, "first")
    index = open_index(database_url)
    try:
        new = await SharedSecrets(index.shared_secrets, SecretBox(box), "operator").rotate(keys, None)
    finally:
        await index.dispose()
    assert new.token_key != old.token_key
    assert new.session_key != old.session_key
    assert signing_key_from_pem(new.token_key, "db").kid != signing_key_from_pem(old.token_key, "db").kid
    assert not (keys / "token.pem").exists(), "no copy of a retired key stays on disk"
    assert not (keys / "session.key").exists()
    assert await _ensure(database_url, box, keys, "restarted") == new
