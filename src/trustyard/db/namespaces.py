"""The one namespace users and organizations share: a name belongs to at most one of them, and a deleted one's
name stays reserved until an administrator releases it, so that whoever registers it next inherits nothing
(``reserved_namespaces``; ``claim`` and ``retire`` run inside the user's or organization's own transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from trustyard.db import tables as t
from trustyard.db.database import Database
from trustyard.errors import AlreadyExists, NotFound


@dataclass(frozen=True, slots=True)
class ReservedName:
    """The name of a deleted user or organization: nobody may register it until an admin releases it."""

    name: str
    kind: str  # "user" or "organization"
    reserved_at: datetime
    reserved_by: str


class NamespaceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def reserved(self) -> list[ReservedName]:
        query = select(t.reserved_namespaces).order_by(t.reserved_namespaces.c.name)
        async with self._db.reader.connect() as conn:
            return [ReservedName(r.name, r.kind, r.reserved_at, r.reserved_by) for r in (await conn.execute(query))]

    async def release(self, name: str) -> None:
        """Let the name be registered again; NotFound when it is not reserved."""
        async with self._db.writer.begin() as conn:
            result = await conn.execute(delete(t.reserved_namespaces).where(t.reserved_namespaces.c.name == name))
            if result.rowcount == 0:
                raise NotFound(f"{name} is not a reserved name")


async def claim(conn: AsyncConnection, name: str, kind: str) -> None:
    """Refuse ``name`` for a new ``kind`` ("user" or "organization") when it is reserved or the other kind has
    it. (A second one of the same kind is refused by its table's unique constraint.)"""
    reserved = await conn.scalar(select(t.reserved_namespaces.c.kind).where(t.reserved_namespaces.c.name == name))
    if reserved is not None:
        raise AlreadyExists(
            f"{name} was the name of a deleted {reserved} and is reserved, so that nobody inherits what was "
            f"granted to it; an administrator can release it (trustyard namespace release {name})"
        )
    other, table = ("an organization", t.organizations) if kind == "user" else ("a user", t.users)
    if await conn.scalar(select(table.c.id).where(table.c.name == name)) is not None:
        raise AlreadyExists(f"{name} is {other}; users and organizations share one namespace")


async def retire(conn: AsyncConnection, name: str, kind: str, by: str) -> None:
    """A deleted user's or organization's namespace: its name is reserved, and every grant on it or on a
    repository in it is removed (with repository visibility), so a later owner of the name inherits nothing."""
    inside = t.grants.c.target.startswith(name + "/", autoescape=True)
    on_namespace = and_(t.grants.c.target == name, t.grants.c.namespace.is_(True))
    await conn.execute(delete(t.grants).where(or_(on_namespace, inside)))
    settings = t.repository_settings.c.name.startswith(name + "/", autoescape=True)
    await conn.execute(delete(t.repository_settings).where(settings))
    await conn.execute(
        t.reserved_namespaces.insert().values(name=name, kind=kind, reserved_at=datetime.now(UTC), reserved_by=by[:64])
    )
