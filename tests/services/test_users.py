"""Users on SQLite and PostgreSQL (services/users.py): one namespace with organizations, who may do what to an
account, and the first start's admin."""

from __future__ import annotations

import pytest

from trustyard.errors import AlreadyExists, Denied, InvalidRequest, Unauthorized
from trustyard.services import Services
from trustyard.services.actor import Action, Actor, Credential

SYSTEM = Actor.system()
PASSWORD = "a-long-enough-password"


@pytest.fixture
def services(services_on_each_database: Services) -> Services:
    """On SQLite and on PostgreSQL: these rules are the database's constraints as much as the code's."""
    return services_on_each_database


async def test_users_and_organizations_share_one_namespace(services: Services) -> None:
    await services.users.create(SYSTEM, "alice", PASSWORD)
    with pytest.raises(AlreadyExists):
        await services.users.create(SYSTEM, "alice", PASSWORD)
    with pytest.raises(AlreadyExists):
        await services.organizations.create(SYSTEM, "alice")
    await services.organizations.create(SYSTEM, "acme")
    with pytest.raises(AlreadyExists):
        await services.users.create(SYSTEM, "acme", PASSWORD)
    for reserved in ("anonymous", "system", "Not-Valid"):
        with pytest.raises(InvalidRequest):
            await services.users.create(SYSTEM, reserved, PASSWORD)


async def test_only_admins_and_self(services: Services) -> None:
    await services.users.create(SYSTEM, "erin", PASSWORD)
    erin_row = await services.users.get(SYSTEM, "erin")
    erin = await services.permissions.actor_for(erin_row, "10.0.0.2", Credential.PASSWORD)
    anonymous = Actor.anonymous("10.0.0.3")
    with pytest.raises(Denied):
        await services.users.all(erin)
    with pytest.raises(Unauthorized):
        await services.users.all(anonymous)
    with pytest.raises(Denied):
        await services.app_tokens.create(erin, "admin", "steal")
    created = await services.app_tokens.create(erin, "erin", "mine")
    assert created.secret.startswith("tyt_")
    assert erin.can("erin/app", Action.PUSH)


async def test_bootstrap_admin_once(services: Services) -> None:
    generated = await services.users.bootstrap_admin(None)
    assert generated is not None
    assert await services.users.bootstrap_admin(None) is None
    assert (await services.tokens.login("admin", generated, None)).user.admin
