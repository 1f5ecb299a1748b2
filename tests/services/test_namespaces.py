"""Reserved names on SQLite and PostgreSQL (services/namespaces.py): a deleted organization's name is reserved
and takes its grants along until released."""

from __future__ import annotations

import pytest

from trustyard.errors import AlreadyExists, NotFound
from trustyard.services import Services
from trustyard.services.actor import Actor

SYSTEM = Actor.system()
PASSWORD = "a-long-enough-password"


@pytest.fixture
def services(services_on_each_database: Services) -> Services:
    """On SQLite and on PostgreSQL: these rules are the database's constraints as much as the code's."""
    return services_on_each_database


async def test_deleted_names_are_reserved_and_take_their_grants_along(services: Services) -> None:
    await services.users.create(SYSTEM, "bob", PASSWORD)
    await services.organizations.create(SYSTEM, "old_org")  # "_" must not act as a LIKE wildcard
    await services.organizations.create(SYSTEM, "oldxorg")
    await services.grants.put(SYSTEM, "old_org/*", "read", user="bob")
    await services.grants.put(SYSTEM, "old_org/app", "read-write", user="bob")
    await services.grants.put(SYSTEM, "oldxorg/app", "read", user="bob")
    await services.organizations.delete(SYSTEM, "old_org")
    subject = await services.permissions.subject("bob")
    assert subject is not None
    assert [g.target for g in subject.grants] == ["oldxorg/app"]
    with pytest.raises(AlreadyExists, match="reserved"):
        await services.users.create(SYSTEM, "old_org", PASSWORD)
    reserved = await services.namespaces.reserved(SYSTEM)
    assert [(r.name, r.kind) for r in reserved] == [("old_org", "organization")]
    await services.namespaces.release(SYSTEM, "old_org")
    await services.users.create(SYSTEM, "old_org", PASSWORD)
    with pytest.raises(NotFound):
        await services.namespaces.release(SYSTEM, "old_org")
