"""Web UI sessions, held server-side: ``start`` after a password login, ``resume`` on every request, ``end``
on logout. The cookie carries a random secret; the ``web_sessions`` table its SHA-256. Logging out deletes
the row, so a copied cookie stops working; a new password, deactivation or deletion of the user deletes all
of theirs (``db/users.py``, in the same transaction as the change)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from trustyard.db.sessions import SessionStore
from trustyard.db.users import UserStore
from trustyard.errors import InvalidRequest
from trustyard.services.actor import Actor, Credential
from trustyard.services.permissions import Permissions
from trustyard.services.tokens import Principal

#: How long a session lasts without logging in again (the cookie lives as long).
LIFETIME = timedelta(hours=12)


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Sessions:
    def __init__(self, store: SessionStore, users: UserStore, permissions: Permissions) -> None:
        self._store = store
        self._users = users
        self._permissions = permissions

    async def start(self, principal: Principal) -> str:
        """A new session for a password login; returns the secret the cookie carries."""
        if principal.credential is not Credential.PASSWORD:
            raise InvalidRequest("web sessions start with the password, not an app token")
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        await self._store.create(_key(secret), principal.user.name, now, now + LIFETIME)
        return secret

    async def resume(self, secret: str, source: str | None) -> Actor | None:
        """The actor of a session, re-resolved on every request; None when it ended, expired, or its user is
        gone or deactivated."""
        if not secret:
            return None
        name = await self._store.user_of(_key(secret), datetime.now(UTC))
        user = await self._users.get(name) if name else None
        if user is None or not user.active:
            return None
        return await self._permissions.actor_for(user, source, Credential.PASSWORD)

    async def end(self, secret: str) -> None:
        if secret:
            await self._store.delete(_key(secret))
