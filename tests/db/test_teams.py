"""Team rows and memberships (db/teams.py) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.db.accounts import stores
from trustyard.auth.policy import Role
from trustyard.db.index import Index
from trustyard.errors import AlreadyExists, NotFound


async def test_teams_and_their_members(index: Index) -> None:
    s = stores(index)
    await s.organizations.create("acme", "owners", Role.ADMIN)
    for name in ("hal", "ivy"):
        await s.users.create(name, None, admin=False)
    await s.teams.create("acme", "devs")
    with pytest.raises(AlreadyExists, match="team acme/devs already exists"):
        await s.teams.create("acme", "devs")
    assert [team.name for team in await s.teams.of("acme")] == ["devs", "owners"]

    assert await s.teams.add_member("acme", "devs", "ivy")
    assert await s.teams.add_member("acme", "devs", "hal")
    assert not await s.teams.add_member("acme", "devs", "hal"), "already a member"
    assert await s.teams.members("acme", "devs") == ["hal", "ivy"]
    assert await s.teams.remove_member("acme", "devs", "hal")
    assert not await s.teams.remove_member("acme", "devs", "hal"), "no longer a member"
    with pytest.raises(NotFound, match="no user nobody"):
        await s.teams.add_member("acme", "devs", "nobody")
    with pytest.raises(NotFound, match="no team acme/ops"):
        await s.teams.members("acme", "ops")
    with pytest.raises(NotFound, match="no organization other"):
        await s.teams.create("other", "devs")


async def test_deleting_a_team_removes_its_memberships_and_grants(index: Index) -> None:
    s = stores(index)
    await s.organizations.create("acme", "owners", Role.ADMIN)
    await s.users.create("jo", None, admin=False)
    await s.teams.create("acme", "devs")
    await s.teams.add_member("acme", "devs", "jo")
    await s.grants.put(None, ("acme", "devs"), "acme/app", False, Role.WRITE)
    jo = await s.users.get("jo")
    assert jo is not None
    assert await s.grants.reaching(jo.id) == [("acme/app", False, Role.WRITE)]

    await s.teams.delete("acme", "devs")
    assert await s.grants.reaching(jo.id) == []
    assert [team.name for team in await s.teams.of("acme")] == ["owners"]
