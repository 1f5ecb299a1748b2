"""``SessionStore``: web UI sessions held server-side, so that logging out, a new password, deactivation or
deletion ends them at once, whatever copies of the cookie exist. Rows are keyed by the SHA-256 of the
cookie's secret: the table alone cannot be replayed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from trustyard.db import tables as t
from trustyard.errors import NotFound


class SessionStore:
    def __init__(self, reader: AsyncEngine, writer: AsyncEngine | None = None) -> None:
        self.reader = reader
        self.writer = writer or reader

    async def create(self, session_id: str, user: str, now: datetime, expires_at: datetime) -> None:
        """Record a new session of ``user`` (and drop expired ones of anybody, which nobody can resume)."""
        async with self.writer.begin() as conn:
            user_id = await conn.scalar(select(t.users.c.id).where(t.users.c.name == user))
            if user_id is None:
                raise NotFound(f"no user {user}")
            await conn.execute(delete(t.web_sessions).where(t.web_sessions.c.expires_at < now))
            await conn.execute(
                t.web_sessions.insert().values(id=session_id, user_id=user_id, created_at=now, expires_at=expires_at)
            )

    async def user_of(self, session_id: str, now: datetime) -> str | None:
        """The name of the session's user; None when the session ended or expired."""
        query = (
            select(t.users.c.name)
            .join(t.web_sessions, t.web_sessions.c.user_id == t.users.c.id)
            .where(t.web_sessions.c.id == session_id, t.web_sessions.c.expires_at > now)
        )
        async with self.reader.connect() as conn:
            found = await conn.scalar(query)
            return None if found is None else str(found)

    async def delete(self, session_id: str) -> None:
        async with self.writer.begin() as conn:
            await conn.execute(delete(t.web_sessions).where(t.web_sessions.c.id == session_id))
