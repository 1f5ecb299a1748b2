"""Accounts and tokens against SQLite and PostgreSQL: the store's invariants and the login rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.services.wiring import wire
from trustyard.db import app_tokens
from trustyard.db.engine import migrate, open_index
from trustyard.errors import AlreadyExists, Denied, InvalidRequest, LoginFailed, NotFound, TooManyRequests, Unauthorized
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
        yield wire(index, MemoryDriver())
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


async def test_a_password_change_takes_effect_at_once(services: Services) -> None:
    """A verified password is remembered (services/password_checks.py), but never past a change of it."""
    await services.accounts.create_user(SYSTEM, "carol", PASSWORD)
    await services.tokens.login("carol", PASSWORD, "10.0.0.1")
    await services.tokens.login("carol", PASSWORD, "10.0.0.1")
    await services.accounts.reset_password(SYSTEM, "carol", "another-long-password")
    with pytest.raises(LoginFailed):
        await services.tokens.login("carol", PASSWORD, "10.0.0.1")
    assert (await services.tokens.login("carol", "another-long-password", "10.0.0.1")).user.name == "carol"


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


async def test_deleted_names_are_reserved_and_take_their_grants_along(services: Services) -> None:
    await services.accounts.create_user(SYSTEM, "bob", PASSWORD)
    await services.accounts.create_organization(SYSTEM, "old_org")  # "_" must not act as a LIKE wildcard
    await services.accounts.create_organization(SYSTEM, "oldxorg")
    await services.accounts.put_grant(SYSTEM, "old_org/*", "read", user="bob")
    await services.accounts.put_grant(SYSTEM, "old_org/app", "read-write", user="bob")
    await services.accounts.put_grant(SYSTEM, "oldxorg/app", "read", user="bob")
    await services.accounts.delete_organization(SYSTEM, "old_org")
    subject = await services.accounts.subject("bob")
    assert subject is not None
    assert [g.target for g in subject.grants] == ["oldxorg/app"]
    with pytest.raises(AlreadyExists, match="reserved"):
        await services.accounts.create_user(SYSTEM, "old_org", PASSWORD)
    reserved = await services.accounts.reserved_names(SYSTEM)
    assert [(r.name, r.kind) for r in reserved] == [("old_org", "organization")]
    await services.accounts.release_name(SYSTEM, "old_org")
    await services.accounts.create_user(SYSTEM, "old_org", PASSWORD)
    with pytest.raises(NotFound):
        await services.accounts.release_name(SYSTEM, "old_org")


async def test_sessions_end_with_logout_password_and_deactivation(services: Services) -> None:
    await services.accounts.create_user(SYSTEM, "carol", PASSWORD)
    principal = await services.tokens.login("carol", PASSWORD, "10.0.0.1")
    first, second = await services.sessions.start(principal), await services.sessions.start(principal)
    assert (await services.sessions.resume(first, None)) is not None
    await services.sessions.end(first)
    assert await services.sessions.resume(first, None) is None
    assert await services.sessions.resume(second, None) is not None
    await services.accounts.update_user(SYSTEM, "carol", active=False)
    await services.accounts.update_user(SYSTEM, "carol", active=True)
    assert await services.sessions.resume(second, None) is None  # deactivation ended it for good


async def test_guessing_slows_one_address_for_one_account(services: Services) -> None:
    await services.accounts.create_user(SYSTEM, "dave", PASSWORD)
    token = await services.accounts.create_token(SYSTEM, "dave", "ci")
    for _ in range(10):
        await services.audit.record(Actor.claimant("dave", "10.0.0.9"), "login.failed", "dave")
    with pytest.raises(TooManyRequests) as slowed:
        await services.tokens.login("dave", PASSWORD, "10.0.0.9")
    assert slowed.value.retry_after is not None
    assert 0 < slowed.value.retry_after <= 300
    assert (await services.tokens.login("dave", PASSWORD, "10.0.0.10")).user.name == "dave"
    assert (await services.tokens.login("dave", token.secret, "10.0.0.9")).app_token == token.row


async def test_an_app_token_records_its_last_use_to_the_minute(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login with an app token writes ``last_used_at`` only when the recorded one is older than a minute:
    a CI job fetching a token per image does not make every fetch a write."""
    await services.accounts.create_user(SYSTEM, "erin", PASSWORD)
    token = await services.accounts.create_token(SYSTEM, "erin", "ci")

    async def last_used() -> object:
        (row,) = await services.accounts.tokens(
            Actor.user("erin", lambda *_: False, Credential.PASSWORD, None, False), "erin"
        )
        return row.last_used_at

    await services.tokens.login("erin", token.secret, "10.0.0.1")
    first = await last_used()
    assert first is not None
    await services.tokens.login("erin", token.secret, "10.0.0.1")
    assert await last_used() == first
    monkeypatch.setattr(app_tokens, "USE_PRECISION", timedelta(0))
    await services.tokens.login("erin", token.secret, "10.0.0.1")
    assert await last_used() != first
