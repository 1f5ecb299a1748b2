"""One namespace for users and organizations (db/namespaces.py), on SQLite and PostgreSQL: a name belongs to
one of them, and a deleted one's name stays reserved, with nothing granted on it, until released."""

from __future__ import annotations

import pytest

from tests.db.accounts import stores
from trustyard.auth.policy import Role
from trustyard.db.index import Index
from trustyard.errors import AlreadyExists, NotFound


async def test_a_name_is_a_user_or_an_organization_never_both(index: Index) -> None:
    s = stores(index)
    await s.users.create("alice", None, admin=False)
    await s.organizations.create("acme", "owners", Role.ADMIN)
    with pytest.raises(AlreadyExists, match="alice is a user; users and organizations share one namespace"):
        await s.organizations.create("alice", "owners", Role.ADMIN)
    with pytest.raises(AlreadyExists, match="acme is an organization"):
        await s.users.create("acme", None, admin=False)


async def test_a_deleted_name_is_reserved_with_nothing_granted_until_released(index: Index) -> None:
    s = stores(index)
    await s.users.create("bob", None, admin=False)
    await s.users.create("carol", None, admin=False)
    await s.grants.put("carol", None, "bob", True, Role.WRITE)  # on bob's whole namespace
    await s.grants.put("carol", None, "bob/app", False, Role.READ)  # on a repository in it
    await s.grants.put("carol", None, "bobby/app", False, Role.READ)  # another namespace sharing the prefix
    await index.repositories.set_public("bob/app", True)

    await s.users.delete("bob", "admin")
    (reserved,) = await s.namespaces.reserved()
    assert (reserved.name, reserved.kind, reserved.reserved_by) == ("bob", "user", "admin")
    assert [g.target for g in await s.grants.all()] == ["bobby/app"]
    assert await index.repositories.public(["bob/app"]) == set()
    for create in (s.users.create("bob", None, admin=False), s.organizations.create("bob", "owners", Role.ADMIN)):
        with pytest.raises(AlreadyExists, match="trustyard namespace release bob"):
            await create

    await s.namespaces.release("bob")
    assert (await s.users.create("bob", None, admin=False)).name == "bob"
    with pytest.raises(NotFound, match="not a reserved name"):
        await s.namespaces.release("bob")
