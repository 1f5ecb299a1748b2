"""Organization rows (db/organizations.py) on SQLite and PostgreSQL: created with the team that administers
them, deleted with every team."""

from __future__ import annotations

import pytest

from tests.db.accounts import stores
from trustyard.auth.policy import Role
from trustyard.db.index import Index
from trustyard.errors import AlreadyExists, NotFound


async def test_an_organization_comes_with_its_owners_team_and_their_grant(index: Index) -> None:
    s = stores(index)
    await s.organizations.create("acme", "owners", Role.ADMIN)
    assert await s.organizations.all() == ["acme"]
    assert [team.name for team in await s.teams.of("acme")] == ["owners"]
    (grant,) = await s.grants.all("acme")
    assert (grant.team, grant.user, grant.namespace, grant.role) == ("acme/owners", None, True, Role.ADMIN)
    with pytest.raises(AlreadyExists, match="organization acme already exists"):
        await s.organizations.create("acme", "owners", Role.ADMIN)
    assert len(await s.teams.of("acme")) == 1, "a refused create adds nothing"


async def test_deleting_an_organization_removes_its_teams_and_reserves_its_name(index: Index) -> None:
    s = stores(index)
    await s.users.create("gus", None, admin=False)
    await s.organizations.create("acme", "owners", Role.ADMIN)
    await s.teams.create("acme", "devs")
    await s.teams.add_member("acme", "devs", "gus")
    await s.grants.put(None, ("acme", "devs"), "other/app", False, Role.READ)  # outside the namespace too

    await s.organizations.delete("acme", "admin")
    assert await s.organizations.all() == []
    assert await s.grants.all() == []
    assert [(r.name, r.kind) for r in await s.namespaces.reserved()] == [("acme", "organization")]
    with pytest.raises(NotFound, match="no organization acme"):
        await s.teams.of("acme")
    with pytest.raises(NotFound, match="no organization acme"):
        await s.organizations.delete("acme", "admin")
