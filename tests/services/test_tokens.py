"""Logins on SQLite and PostgreSQL (services/tokens.py): password or app token, deactivation, a changed
password, guessing slowed per address and account, and an app token's last use."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trustyard.db import app_tokens
from trustyard.errors import LoginFailed, TooManyRequests
from trustyard.services import Services
from trustyard.services.actor import Actor, Credential

SYSTEM = Actor.system()
PASSWORD = "a-long-enough-password"


@pytest.fixture
def services(services_on_each_database: Services) -> Services:
    """On SQLite and on PostgreSQL: these rules are the database's constraints as much as the code's."""
    return services_on_each_database


async def test_login_with_password_or_token_and_deactivation(services: Services) -> None:
    await services.users.create(SYSTEM, "carol", PASSWORD)
    token = await services.app_tokens.create(SYSTEM, "carol", "ci")
    assert (await services.tokens.login("carol", PASSWORD, "10.0.0.1")).app_token is None
    assert (await services.tokens.login("carol", token.secret, "10.0.0.1")).app_token == token.row
    with pytest.raises(LoginFailed):
        await services.tokens.login("dave", token.secret, "10.0.0.1")  # someone else's token
    await services.users.update(SYSTEM, "carol", active=False)
    with pytest.raises(LoginFailed):
        await services.tokens.login("carol", PASSWORD, "10.0.0.1")


async def test_a_password_change_takes_effect_at_once(services: Services) -> None:
    """A verified password is remembered (services/password_checks.py), but never past a change of it."""
    await services.users.create(SYSTEM, "carol", PASSWORD)
    await services.tokens.login("carol", PASSWORD, "10.0.0.1")
    await services.tokens.login("carol", PASSWORD, "10.0.0.1")
    await services.users.set_password(SYSTEM, "carol", "another-long-password")
    with pytest.raises(LoginFailed):
        await services.tokens.login("carol", PASSWORD, "10.0.0.1")
    assert (await services.tokens.login("carol", "another-long-password", "10.0.0.1")).user.name == "carol"


async def test_guessing_slows_one_address_for_one_account(services: Services) -> None:
    await services.users.create(SYSTEM, "dave", PASSWORD)
    token = await services.app_tokens.create(SYSTEM, "dave", "ci")
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
    await services.users.create(SYSTEM, "erin", PASSWORD)
    token = await services.app_tokens.create(SYSTEM, "erin", "ci")

    async def last_used() -> object:
        (row,) = await services.app_tokens.of(
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
