"""The audit trail: who did what, when, from where. Services record; administrators read.

Recorded: pushes and deletes, failed logins, account, team, grant and token changes, visibility and other
settings changes. Details say what changed and never hold a secret (no passwords, no token values).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from trustyard.db.audit import AuditRow, AuditStore
from trustyard.services.actor import Actor

MAX_PAGE = 1000


class Audit:
    def __init__(self, store: AuditStore) -> None:
        self._store = store

    async def record(self, actor: Actor, action: str, target: str, **detail: Any) -> None:
        """Append one event done by ``actor`` (services call this after the change succeeded)."""
        await self._store.append(datetime.now(UTC), actor.name, actor.source, action, target, detail)

    async def events(
        self,
        actor: Actor,
        limit: int = 100,
        before: int | None = None,
        action: str | None = None,
        by: str | None = None,
    ) -> list[AuditRow]:
        actor.require_admin()
        return await self._store.events(max(1, min(limit, MAX_PAGE)), before, action, by)

    async def failures(self, user: str, source: str | None, window: timedelta) -> tuple[int, int]:
        """Failed logins within ``window``: (for this user name, from this address). For rate limiting."""
        since = datetime.now(UTC) - window
        by_user = await self._store.count_since("login.failed", since, user, None)
        by_source = await self._store.count_since("login.failed", since, None, source) if source else 0
        return by_user, by_source
