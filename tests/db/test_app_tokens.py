"""App token rows (db/app_tokens.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.db.accounts import stores
from trustyard.db.index import Index
from trustyard.errors import AlreadyExists, NotFound


async def test_a_users_tokens(index: Index) -> None:
    s = stores(index)
    for name in ("nia", "oz"):
        await s.users.create(name, None, admin=False)
    made = await s.app_tokens.create("nia", "t-ci", "ci", "hash1", read_only=True)
    assert (made.user, made.name, made.read_only, made.last_used_at) == ("nia", "ci", True, None)
    await s.app_tokens.create("nia", "t-bot", "bot", "hash2", read_only=False)
    with pytest.raises(AlreadyExists, match="nia already has a token named ci"):
        await s.app_tokens.create("nia", "t-other", "ci", "hash3", read_only=False)
    await s.app_tokens.create("oz", "t-oz", "ci", "hash4", read_only=False)  # names are per user
    assert [t.name for t in await s.app_tokens.of("nia")] == ["bot", "ci"]
    with pytest.raises(NotFound, match="oz has no token t-ci"):
        await s.app_tokens.delete("oz", "t-ci")  # nobody revokes another user's token by its id
    await s.app_tokens.delete("nia", "t-ci")
    assert await s.app_tokens.get("t-ci") is None


async def test_use_is_recorded_at_most_once_a_minute(index: Index) -> None:
    s = stores(index)
    await s.users.create("pat", None, admin=False)
    token = await s.app_tokens.create("pat", "t-pat", "ci", "hash", read_only=False)
    await s.app_tokens.touch(token.id, token.last_used_at)
    used = await s.app_tokens.get(token.id)
    assert used is not None
    assert used.last_used_at is not None
    await s.app_tokens.touch(token.id, used.last_used_at)  # within the minute: not written
    assert await s.app_tokens.get(token.id) == used
    await s.app_tokens.touch(token.id, datetime.now(UTC) - timedelta(minutes=2))
    again = await s.app_tokens.get(token.id)
    assert again is not None
    assert again.last_used_at != used.last_used_at
