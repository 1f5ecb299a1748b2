"""The audit trail: who did what, when, from where. Services record; administrators read.

Recorded: pushes and deletes, failed logins, account, team, grant and token changes, visibility and other
settings changes. Details say what changed and never hold a secret (no passwords, no token values).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trustyard.db.audit import AuditEntry, AuditRow, AuditStore
from trustyard.services.actor import Actor

MAX_PAGE = 1000


class Audit:
    def __init__(self, store: AuditStore) -> None:
        self._store = store

    async def record(self, actor: Actor, action: str, target: str, **detail: Any) -> None:
        """Append one event done by ``actor`` (services call this after the change succeeded)."""
        await self._store.append(self.entry(actor, action, target, **detail))

    @staticmethod
    def entry(actor: Actor, action: str, target: str, **detail: Any) -> AuditEntry:
        """The event ``record`` would append, for a store to append in the transaction of the change itself
        (one transaction instead of two; the event commits exactly when the change does)."""
        return AuditEntry(datetime.now(UTC), actor.name, actor.source, action, target, detail)

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

    async def failures(self, user: str | None, source: str | None, since: datetime) -> tuple[int, datetime | None]:
        """Failed logins since ``since`` for ``user`` (None: any user) from ``source`` (None: any address):
        how many, and when the latest was. For slowing down guessing (services/lockout.py)."""
        count, latest = await self._store.failures_since("login.failed", since, user, source)
        if latest is not None and latest.tzinfo is None:  # SQLite keeps no zone; every time stored is UTC
            latest = latest.replace(tzinfo=UTC)
        return count, latest
