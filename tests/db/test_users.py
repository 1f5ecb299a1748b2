"""User rows (db/users.py) on SQLite and PostgreSQL: what a new password or a deactivation ends, and what
deleting a user removes with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.db.accounts import stores
from trustyard.auth.policy import Role
from trustyard.db.index import Index
from trustyard.db.sessions import SessionStore
from trustyard.errors import AlreadyExists, NotFound


async def test_create_get_and_list(index: Index) -> None:
    users = stores(index).users
    created = await users.create("dora", "hash", admin=True)
    assert (created.name, created.password_hash, created.admin, created.active) == ("dora", "hash", True, True)
    await users.create("alan", None, admin=False)
    assert await users.get("dora") == created
    assert await users.get("nobody") is None
    assert [u.name for u in await users.all()] == ["alan", "dora"]
    with pytest.raises(AlreadyExists, match="user dora already exists"):
        await users.create("dora", None, admin=False)


async def test_a_new_password_or_a_deactivation_ends_the_users_web_sessions(index: Index) -> None:
    users, sessions = stores(index).users, SessionStore(index.reader, index.writer)
    await users.create("eve", "old", admin=False)
    now = datetime.now(UTC)
    for change, session in (({"admin": True}, "kept"), ({"password_hash": "new"}, "one"), ({"active": False}, "two")):
        await sessions.create(session, "eve", now, now + timedelta(hours=1))
        updated = await users.update("eve", **change)
        still = await sessions.user_of(session, now)
        assert still == ("eve" if session == "kept" else None), change
    assert (updated.admin, updated.password_hash, updated.active) == (True, "new", False)
    with pytest.raises(NotFound, match="no user nobody"):
        await users.update("nobody", active=False)


async def test_deleting_a_user_removes_everything_that_names_them(index: Index) -> None:
    s = stores(index)
    await s.users.create("finn", None, admin=False)
    await s.organizations.create("acme", "owners", Role.ADMIN)
    await s.teams.add_member("acme", "owners", "finn")
    await s.grants.put("finn", None, "acme/app", False, Role.READ)
    await s.app_tokens.create("finn", "tok1", "ci", "hash", read_only=False)
    now = datetime.now(UTC)
    await SessionStore(index.reader, index.writer).create("s", "finn", now, now + timedelta(hours=1))

    await s.users.delete("finn", "admin")
    assert await s.users.get("finn") is None
    assert await s.teams.members("acme", "owners") == []
    assert [g.user for g in await s.grants.all()] == [None]  # the owners team's grant stays
    assert await s.app_tokens.get("tok1") is None
    assert await SessionStore(index.reader, index.writer).user_of("s", now) is None
    with pytest.raises(NotFound, match="no user finn"):
        await s.users.delete("finn", "admin")
