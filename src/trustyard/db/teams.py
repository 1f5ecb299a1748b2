"""``TeamStore``: an organization's teams and their members in SQL (a team's grants are db/grants.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from trustyard.db import tables as t
from trustyard.db.database import Database
from trustyard.db.organizations import organization_id
from trustyard.db.users import user_id
from trustyard.errors import AlreadyExists, NotFound


@dataclass(frozen=True, slots=True)
class TeamRow:
    id: int
    organization: str
    name: str
    created_at: datetime


async def team_id(conn: AsyncConnection, organization: str, team: str) -> int:
    """The team's id inside another store's transaction; NotFound when there is none."""
    query = (
        select(t.teams.c.id)
        .join(t.organizations, t.organizations.c.id == t.teams.c.organization_id)
        .where(t.organizations.c.name == organization, t.teams.c.name == team)
    )
    found = await conn.scalar(query)
    if found is None:
        raise NotFound(f"no team {organization}/{team}")
    return int(found)


class TeamStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def of(self, organization: str) -> list[TeamRow]:
        """The organization's teams by name; NotFound when there is no such organization."""
        async with self._db.reader.connect() as conn:
            org_id = await organization_id(conn, organization)
            query = select(t.teams.c.id, t.teams.c.name, t.teams.c.created_at).where(
                t.teams.c.organization_id == org_id
            )
            rows = (await conn.execute(query.order_by(t.teams.c.name))).all()
            return [TeamRow(r.id, organization, r.name, r.created_at) for r in rows]

    async def create(self, organization: str, name: str) -> None:
        async with self._db.writer.begin() as conn:
            org_id = await organization_id(conn, organization)
            values = {"organization_id": org_id, "name": name, "created_at": datetime.now(UTC)}
            try:
                await conn.execute(t.teams.insert().values(**values))
            except IntegrityError:
                raise AlreadyExists(f"team {organization}/{name} already exists") from None

    async def delete(self, organization: str, name: str) -> None:
        """Delete the team with its memberships and grants."""
        async with self._db.writer.begin() as conn:
            found = await team_id(conn, organization, name)
            await conn.execute(delete(t.grants).where(t.grants.c.team_id == found))
            await conn.execute(delete(t.team_members).where(t.team_members.c.team_id == found))
            await conn.execute(delete(t.teams).where(t.teams.c.id == found))

    async def members(self, organization: str, team: str) -> list[str]:
        async with self._db.reader.connect() as conn:
            found = await team_id(conn, organization, team)
            query = (
                select(t.users.c.name)
                .join(t.team_members, t.team_members.c.user_id == t.users.c.id)
                .where(t.team_members.c.team_id == found)
                .order_by(t.users.c.name)
            )
            return list((await conn.scalars(query)).all())

    async def add_member(self, organization: str, team: str, user: str) -> bool:
        """Add ``user`` to the team; False when already a member."""
        async with self._db.writer.begin() as conn:
            membership = {"team_id": await team_id(conn, organization, team), "user_id": await user_id(conn, user)}
            existing = await conn.scalar(
                select(t.team_members.c.user_id).where(
                    t.team_members.c.team_id == membership["team_id"],
                    t.team_members.c.user_id == membership["user_id"],
                )
            )
            if existing is not None:
                return False
            await conn.execute(t.team_members.insert().values(**membership))
            return True

    async def remove_member(self, organization: str, team: str, user: str) -> bool:
        """Take ``user`` off the team; False when not a member."""
        async with self._db.writer.begin() as conn:
            of_team, of_user = await team_id(conn, organization, team), await user_id(conn, user)
            result = await conn.execute(
                delete(t.team_members).where(t.team_members.c.team_id == of_team, t.team_members.c.user_id == of_user)
            )
            return bool(result.rowcount)
