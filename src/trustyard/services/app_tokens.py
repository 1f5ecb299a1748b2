"""App tokens: credentials a user makes for clients and CI (``docker login`` with a token instead of the
password), optionally pull-only. A user manages their own, with their password (an app token cannot mint or
revoke tokens); site administrators manage anybody's. The secret is shown once. Each change is audited."""

from __future__ import annotations

from dataclasses import dataclass

from trustyard.auth import passwords
from trustyard.db.app_tokens import AppTokenRow, AppTokenStore
from trustyard.errors import Denied, InvalidRequest
from trustyard.services.actor import Actor
from trustyard.services.audit import Audit

__all__ = ["AppTokenRow", "AppTokens", "CreatedToken"]  # AppTokenRow: the row the edges render


@dataclass(frozen=True, slots=True)
class CreatedToken:
    row: AppTokenRow
    secret: str  # shown once


class AppTokens:
    def __init__(self, store: AppTokenStore, audit: Audit) -> None:
        self._store = store
        self._audit = audit

    async def of(self, actor: Actor, user: str) -> list[AppTokenRow]:
        _require_self_or_admin(actor, user)
        return await self._store.of(user)

    async def create(self, actor: Actor, user: str, name: str, read_only: bool = False) -> CreatedToken:
        """A new app token (``read_only``: it may only pull, whatever the user may do); needs the password."""
        _require_self_or_admin(actor, user)
        actor.require_password("creating an app token")
        if not name.strip() or len(name) > 100:
            raise InvalidRequest("a token needs a name of 1 to 100 characters")
        token = passwords.new_app_token()
        row = await self._store.create(user, token.id, name.strip(), token.secret_hash, read_only)
        await self._audit.record(actor, "token.create", user, token=token.id, name=row.name, read_only=read_only)
        return CreatedToken(row, token.secret)

    async def revoke(self, actor: Actor, user: str, token_id: str) -> None:
        _require_self_or_admin(actor, user)
        actor.require_password("revoking an app token")
        await self._store.delete(user, token_id)
        await self._audit.record(actor, "token.revoke", user, token=token_id)


def _require_self_or_admin(actor: Actor, user: str) -> None:
    if actor.is_anonymous or actor.name != user:
        if not actor.admin and not actor.is_anonymous:
            raise Denied(f"{actor.name} may not manage the tokens of {user}")
        actor.require_admin()
