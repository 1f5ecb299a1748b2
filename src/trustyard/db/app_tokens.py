"""``AppTokenStore``: a user's app tokens in SQL (an id, a name, the secret's hash, read-only or not, when last
used). Logins and token fetches read one by id on every use, so that read is prebuilt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError

from trustyard.db import tables as t
from trustyard.db.database import Database
from trustyard.db.users import user_id
from trustyard.errors import AlreadyExists, NotFound

#: How stale an app token's ``last_used_at`` may be before a login writes it again.
USE_PRECISION = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class AppTokenRow:
    id: str
    user: str
    name: str
    secret_hash: str
    created_at: datetime
    last_used_at: datetime | None
    read_only: bool = False  # pull only, whatever the user may do


_COLUMNS = (
    t.app_tokens.c.id,
    t.users.c.name.label("user"),
    t.app_tokens.c.name,
    t.app_tokens.c.secret_hash,
    t.app_tokens.c.created_at,
    t.app_tokens.c.last_used_at,
    t.app_tokens.c.read_only,
)


def _token(row: Any) -> AppTokenRow:
    return AppTokenRow(
        row.id, row.user, row.name, row.secret_hash, row.created_at, row.last_used_at, bool(row.read_only)
    )


class AppTokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._by_id = db.hot(
            select(*_COLUMNS)
            .join(t.users, t.users.c.id == t.app_tokens.c.user_id)
            .where(t.app_tokens.c.id == bindparam("token_id"))
        )

    async def create(self, user: str, token_id: str, name: str, secret_hash: str, read_only: bool) -> AppTokenRow:
        async with self._db.writer.begin() as conn:
            values = {"id": token_id, "user_id": await user_id(conn, user), "name": name, "secret_hash": secret_hash}
            try:
                await conn.execute(
                    t.app_tokens.insert().values(**values, read_only=read_only, created_at=datetime.now(UTC))
                )
            except IntegrityError:
                raise AlreadyExists(f"{user} already has a token named {name}") from None
        found = await self.get(token_id)
        assert found is not None
        return found

    async def get(self, token_id: str) -> AppTokenRow | None:
        """Read on every login with an app token (each ``docker login``, each token fetch of a CI job)."""
        row = await self._db.first(self._by_id, token_id=token_id)
        return None if row is None else _token(row)

    async def of(self, user: str) -> list[AppTokenRow]:
        """The user's tokens, by name."""
        query = (
            select(*_COLUMNS)
            .join(t.users, t.users.c.id == t.app_tokens.c.user_id)
            .where(t.users.c.name == user)
            .order_by(t.app_tokens.c.name)
        )
        async with self._db.reader.connect() as conn:
            return [_token(r) for r in (await conn.execute(query)).all()]

    async def delete(self, user: str, token_id: str) -> None:
        async with self._db.writer.begin() as conn:
            of_user = await user_id(conn, user)
            result = await conn.execute(
                delete(t.app_tokens).where(t.app_tokens.c.id == token_id, t.app_tokens.c.user_id == of_user)
            )
            if result.rowcount == 0:
                raise NotFound(f"{user} has no token {token_id}")

    async def touch(self, token_id: str, last_used_at: datetime | None) -> None:
        """Record that the token was used now; a token used within ``USE_PRECISION`` of ``last_used_at`` is
        left as it is, so a CI job fetching a token per image does not write (and serialise writers) each
        time: "last used" is shown to the minute."""
        now = datetime.now(UTC)
        if last_used_at is not None:
            last = last_used_at if last_used_at.tzinfo is not None else last_used_at.replace(tzinfo=UTC)
            if now - last < USE_PRECISION:
                return
        async with self._db.writer.begin() as conn:
            await conn.execute(update(t.app_tokens).where(t.app_tokens.c.id == token_id).values(last_used_at=now))
