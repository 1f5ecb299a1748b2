"""Grants on SQLite and PostgreSQL (services/grants.py): one per grantee and target, reaching a team's members."""

from __future__ import annotations

import pytest

from trustyard.errors import NotFound
from trustyard.services import Services
from trustyard.services.actor import Actor

SYSTEM = Actor.system()
PASSWORD = "a-long-enough-password"


@pytest.fixture
def services(services_on_each_database: Services) -> Services:
    """On SQLite and on PostgreSQL: these rules are the database's constraints as much as the code's."""
    return services_on_each_database


async def test_grants_through_teams_and_their_removal(services: Services) -> None:
    await services.users.create(SYSTEM, "bob", PASSWORD)
    await services.organizations.create(SYSTEM, "acme")
    await services.teams.create(SYSTEM, "acme", "devs")
    await services.teams.add_member(SYSTEM, "acme", "devs", "bob")
    row = await services.grants.put(SYSTEM, "acme/*", "read", team="acme/devs")
    again = await services.grants.put(SYSTEM, "acme/*", "read-write", team="acme/devs")
    assert again.id == row.id  # one grant per (grantee, target): updated in place
    subject = await services.permissions.subject("bob")
    assert subject is not None
    assert [(g.target, g.namespace, g.role.label) for g in subject.grants] == [("acme", True, "read-write")]
    await services.teams.delete(SYSTEM, "acme", "devs")
    subject = await services.permissions.subject("bob")
    assert subject is not None
    assert subject.grants == ()
    with pytest.raises(NotFound):
        await services.grants.put(SYSTEM, "acme/app", "read", user="nobody")
