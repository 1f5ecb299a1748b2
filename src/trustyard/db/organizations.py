"""``OrganizationStore``: organizations in SQL. One is created with its owners' team and that team's grant on
its namespace in one transaction, and deleted with all its teams, their memberships and grants; its name is
then retired (db/namespaces.py). Teams themselves are db/teams.py."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from trustyard.db import namespaces
from trustyard.db import tables as t
from trustyard.db.database import Database
from trustyard.errors import AlreadyExists, NotFound


async def organization_id(conn: AsyncConnection, name: str) -> int:
    """The organization's id inside another store's transaction; NotFound when there is none."""
    found = await conn.scalar(select(t.organizations.c.id).where(t.organizations.c.name == name))
    if found is None:
        raise NotFound(f"no organization {name}")
    return int(found)


class OrganizationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[str]:
        async with self._db.reader.connect() as conn:
            query = select(t.organizations.c.name).order_by(t.organizations.c.name)
            return list((await conn.scalars(query)).all())

    async def create(self, name: str, owners: str, owners_role: int) -> None:
        """The organization, its team ``owners``, and that team's ``owners_role`` on the whole namespace: all
        or nothing, so no organization is ever left without the team that administers it."""
        now = datetime.now(UTC)
        async with self._db.writer.begin() as conn:
            await namespaces.claim(conn, name, "organization")
            try:
                await conn.execute(t.organizations.insert().values(name=name, created_at=now))
            except IntegrityError:
                raise AlreadyExists(f"organization {name} already exists") from None
            org_id = await organization_id(conn, name)
            await conn.execute(t.teams.insert().values(organization_id=org_id, name=owners, created_at=now))
            team = select(t.teams.c.id).where(t.teams.c.organization_id == org_id, t.teams.c.name == owners)
            await conn.execute(
                t.grants.insert().values(
                    user_id=None,
                    team_id=team.scalar_subquery(),
                    target=name,
                    namespace=True,
                    role=owners_role,
                    created_at=now,
                )
            )

    async def delete(self, name: str, by: str) -> None:
        """Delete the organization with its teams, and retire its name (``namespaces.retire``)."""
        async with self._db.writer.begin() as conn:
            org_id = await organization_id(conn, name)
            team_ids = select(t.teams.c.id).where(t.teams.c.organization_id == org_id).scalar_subquery()
            await conn.execute(delete(t.grants).where(t.grants.c.team_id.in_(team_ids)))
            await conn.execute(delete(t.team_members).where(t.team_members.c.team_id.in_(team_ids)))
            await conn.execute(delete(t.teams).where(t.teams.c.organization_id == org_id))
            await conn.execute(delete(t.organizations).where(t.organizations.c.id == org_id))
            await namespaces.retire(conn, name, "organization", by)
