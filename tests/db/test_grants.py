"""Grant rows (db/grants.py) on SQLite and PostgreSQL: one grant per holder and target, and what the
permission policy reads of a user in one query."""

from __future__ import annotations

import pytest

from tests.db.accounts import stores
from trustyard.auth.policy import Role
from trustyard.db.index import Index
from trustyard.errors import NotFound


async def test_putting_a_grant_again_changes_its_role(index: Index) -> None:
    s = stores(index)
    await s.users.create("kim", None, admin=False)
    first = await s.grants.put("kim", None, "team/app", False, Role.READ)
    again = await s.grants.put("kim", None, "team/app", False, Role.ADMIN)
    assert again.id == first.id
    assert again.role == Role.ADMIN
    namespace = await s.grants.put("kim", None, "team/app", True, Role.READ)  # a namespace is another target
    assert namespace.id != first.id
    assert await s.grants.get(first.id) == again
    assert [g.id for g in await s.grants.all("team/app")] == [first.id, namespace.id]
    await s.grants.delete(first.id)
    assert await s.grants.get(first.id) is None
    with pytest.raises(NotFound, match=f"no grant {first.id}"):
        await s.grants.delete(first.id)


async def test_the_policy_view_holds_the_users_own_grants_and_their_teams(index: Index) -> None:
    s = stores(index)
    await s.users.create("lee", None, admin=True)
    await s.users.create("max", None, admin=False)
    view = await s.grants.policy_view("lee")
    assert view is not None
    assert (view.admin, view.active, view.grants) == (True, True, [])  # a user without grants is still found
    assert await s.grants.policy_view("nobody") is None

    await s.organizations.create("acme", "owners", Role.ADMIN)
    await s.teams.add_member("acme", "owners", "lee")
    await s.grants.put("lee", None, "lib/base", False, Role.READ)
    await s.grants.put("max", None, "max/secret", False, Role.ADMIN)
    view = await s.grants.policy_view("lee")
    assert view is not None
    assert sorted(view.grants) == [("acme", True, Role.ADMIN), ("lib/base", False, Role.READ)]
    lee = await s.users.get("lee")
    assert lee is not None
    assert sorted(await s.grants.reaching(lee.id)) == sorted(view.grants)
