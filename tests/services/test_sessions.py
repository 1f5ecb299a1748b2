"""Web sessions on SQLite and PostgreSQL (services/sessions.py): ended by logout, a new password or
deactivation."""

from __future__ import annotations

import pytest

from trustyard.services import Services
from trustyard.services.actor import Actor

SYSTEM = Actor.system()
PASSWORD = "a-long-enough-password"


@pytest.fixture
def services(services_on_each_database: Services) -> Services:
    """On SQLite and on PostgreSQL: these rules are the database's constraints as much as the code's."""
    return services_on_each_database


async def test_sessions_end_with_logout_password_and_deactivation(services: Services) -> None:
    await services.users.create(SYSTEM, "carol", PASSWORD)
    principal = await services.tokens.login("carol", PASSWORD, "10.0.0.1")
    first, second = await services.sessions.start(principal), await services.sessions.start(principal)
    assert (await services.sessions.resume(first, None)) is not None
    await services.sessions.end(first)
    assert await services.sessions.resume(first, None) is None
    assert await services.sessions.resume(second, None) is not None
    await services.users.update(SYSTEM, "carol", active=False)
    await services.users.update(SYSTEM, "carol", active=True)
    assert await services.sessions.resume(second, None) is None  # deactivation ended it for good
