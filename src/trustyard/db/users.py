"""``UserStore``: user accounts in SQL (name, password hash, admin, active). Deleting one removes everything
that names it (sessions, app tokens, grants, team memberships) and retires its name (db/namespaces.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from trustyard.db import namespaces
from trustyard.db import tables as t
from trustyard.db.database import Database
from trustyard.errors import AlreadyExists, NotFound


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    name: str
    password_hash: str | None
    admin: bool
    active: bool
    created_at: datetime


COLUMNS = (
    t.users.c.id,
    t.users.c.name,
    t.users.c.password_hash,
    t.users.c.admin,
    t.users.c.active,
    t.users.c.created_at,
)


def user_row(row: Any) -> UserRow:
    return UserRow(row.id, row.name, row.password_hash, bool(row.admin), bool(row.active), row.created_at)


async def user_id(conn: AsyncConnection, name: str) -> int:
    """The user's id inside another store's transaction; NotFound when there is no such user."""
    found = await conn.scalar(select(t.users.c.id).where(t.users.c.name == name))
    if found is None:
        raise NotFound(f"no user {name}")
    return int(found)


class UserStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        # Built once: every login and token fetch reads its user (Database.first reads it synchronously on
        # SQLite, in microseconds).
        self._by_name = db.hot(select(*COLUMNS).where(t.users.c.name == bindparam("name")))

    async def get(self, name: str) -> UserRow | None:
        row = await self._db.first(self._by_name, name=name)
        return None if row is None else user_row(row)

    async def all(self) -> list[UserRow]:
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(select(*COLUMNS).order_by(t.users.c.name))).all()
            return [user_row(r) for r in rows]

    async def create(self, name: str, password_hash: str | None, admin: bool) -> UserRow:
        async with self._db.writer.begin() as conn:
            await namespaces.claim(conn, name, "user")
            try:
                await conn.execute(
                    t.users.insert().values(
                        name=name,
                        password_hash=password_hash,
                        admin=admin,
                        active=True,
                        created_at=datetime.now(UTC),
                    )
                )
            except IntegrityError:
                raise AlreadyExists(f"user {name} already exists") from None
            return user_row((await conn.execute(select(*COLUMNS).where(t.users.c.name == name))).one())

    async def update(self, name: str, **values: Any) -> UserRow:
        """Set ``password_hash``, ``admin`` or ``active``; NotFound when there is no such user. A new password
        or a deactivation ends every web session of the user in the same transaction."""
        async with self._db.writer.begin() as conn:
            result = await conn.execute(update(t.users).where(t.users.c.name == name).values(**values))
            if result.rowcount == 0:
                raise NotFound(f"no user {name}")
            if "password_hash" in values or values.get("active") is False:
                of_user = select(t.users.c.id).where(t.users.c.name == name).scalar_subquery()
                await conn.execute(delete(t.web_sessions).where(t.web_sessions.c.user_id == of_user))
            return user_row((await conn.execute(select(*COLUMNS).where(t.users.c.name == name))).one())

    async def delete(self, name: str, by: str) -> None:
        """Delete the user, end their sessions, and reserve their name (``namespaces.retire``)."""
        async with self._db.writer.begin() as conn:
            found = await user_id(conn, name)
            # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign keys on, and this must
            # hold on any connection.
            await conn.execute(delete(t.web_sessions).where(t.web_sessions.c.user_id == found))
            await conn.execute(delete(t.app_tokens).where(t.app_tokens.c.user_id == found))
            await conn.execute(delete(t.grants).where(t.grants.c.user_id == found))
            await conn.execute(delete(t.team_members).where(t.team_members.c.user_id == found))
            await conn.execute(delete(t.users).where(t.users.c.id == found))
            await namespaces.retire(conn, name, "user", by)
