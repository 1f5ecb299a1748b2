"""Accounts and tokens against SQLite and PostgreSQL: the store's invariants and the login rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from trustyard.db.engine import migrate, open_index
from trustyard.errors import AlreadyExists, Denied, InvalidRequest, LoginFailed, NotFound, Unauthorized
from trustyard.services import Services
from trustyard.services.actor import Action, Actor, Credential
from trustyard.storage.memory import MemoryDriver

SYSTEM = Actor.system()
PASSWORD = "a-long-enough-password"


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[Services]:
    await migrate(database_url)
    index = open_index(database_url)
    try:
        yield Services.create(index, MemoryDriver())
    finally:
        await index.dispose()


async def test_users_and_organizations_share_one_namespace(services: Services) -> None:
    await services.accounts.create_user(SYSTEM, "alice", PASSWORD)
    with pytest.raises(AlreadyExists):
        await services.accounts.create_user(SYSTEM, "alice", PASSWORD)
    with pytest.raises(AlreadyExists):
        await services.accounts.create_organization(SYSTEM, "alice")
    await services.accounts.create_organization(SYSTEM, "acme")
    with pytest.raises(AlreadyExists):
        await services.accounts.create_user(SYSTEM, "acme", PASSWORD)
    for reserved in ("anonymous", "system", "Not-Valid"):
        with pytest.raises(InvalidRequest):
            await services.accounts.create_user(SYSTEM, reserved, PASSWORD)


async def test_grants_through_teams_and_their_removal(services: Services) -> None:
    await services.accounts.create_user(SYSTEM, "bob", PASSWORD)
    await services.accounts.create_organization(SYSTEM, "acme")
    await services.accounts.create_team(SYSTEM, "acme", "devs")
    await services.accounts.add_member(SYSTEM, "acme", "devs", "bob")
    row = await services.accounts.put_grant(SYSTEM, "acme/*", "read", team="acme/devs")
    again = await services.accounts.put_grant(SYSTEM, "acme/*", "read-write", team="acme/devs")
    assert again.id == row.id  # one grant per (grantee, target): updated in place
    subject = await services.accounts.subject("bob")
    assert subject is not None
    assert [(g.target, g.namespace, g.role.label) for g in subject.grants] == [("acme", True, "read-write")]
    await services.accounts.delete_team(SYSTEM, "acme", "devs")
    subject = await services.accounts.subject("bob")
    assert subject is not None
    assert subject.grants == ()
    with pytest.raises(NotFound):
        await services.accounts.put_grant(SYSTEM, "acme/app", "read", user="nobody")


async def test_login_with_password_or_token_and_deactivation(services: Services) -> None:
    await services.accounts.create_user(SYSTEM, "carol", PASSWORD)
    token = await services.accounts.create_token(SYSTEM, "carol", "ci")
    assert (await services.tokens.login("carol", PASSWORD, "10.0.0.1")).app_token is None
    assert (await services.tokens.login("carol", token.secret, "10.0.0.1")).app_token == token.row
    with pytest.raises(LoginFailed):
        await services.tokens.login("dave", token.secret, "10.0.0.1")  # someone else's token
    await services.accounts.update_user(SYSTEM, "carol", active=False)
    with pytest.raises(LoginFailed):
        await services.tokens.login("carol", PASSWORD, "10.0.0.1")


async def test_only_admins_and_self(services: Services) -> None:
    await services.accounts.create_user(SYSTEM, "erin", PASSWORD)
    erin_row = await services.accounts.user(SYSTEM, "erin")
    erin = await services.accounts.actor_for(erin_row, "10.0.0.2", Credential.PASSWORD)
    anonymous = Actor.anonymous("10.0.0.3")
    with pytest.raises(Denied):
        await services.accounts.users(erin)
    with pytest.raises(Unauthorized):
        await services.accounts.users(anonymous)
    with pytest.raises(Denied):
        await services.accounts.create_token(erin, "admin", "steal")
    created = await services.accounts.create_token(erin, "erin", "mine")
    assert created.secret.startswith("tyt_")
    assert erin.can("erin/app", Action.PUSH)


async def test_bootstrap_admin_once(services: Services) -> None:
    generated = await services.accounts.bootstrap_admin(None)
    assert generated is not None
    assert await services.accounts.bootstrap_admin(None) is None
    assert (await services.tokens.login("admin", generated, None)).user.admin
