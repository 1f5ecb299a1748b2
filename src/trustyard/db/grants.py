"""``GrantStore``: who holds which role on which repository or namespace, in SQL. A grant goes to a user or to
a team; the permission policy (auth/policy.py) reads every grant reaching a user in one query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select, update

from trustyard.db import tables as t
from trustyard.db.database import Database
from trustyard.db.teams import team_id
from trustyard.db.users import user_id
from trustyard.errors import NotFound

#: ``(target, namespace, role)``: one grant as the permission policy reads it.
Reaching = tuple[str, bool, int]


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: int
    user: str | None
    team: str | None  # "organization/team"
    target: str
    namespace: bool
    role: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PolicyView:
    """What the permission policy needs of a user: read on every catalog request and token fetch."""

    admin: bool
    active: bool
    grants: list[Reaching]


_LISTED = (
    select(
        t.grants.c.id,
        t.users.c.name.label("user"),
        t.organizations.c.name.label("organization"),
        t.teams.c.name.label("team"),
        t.grants.c.target,
        t.grants.c.namespace,
        t.grants.c.role,
        t.grants.c.created_at,
    )
    .select_from(t.grants)
    .outerjoin(t.users, t.users.c.id == t.grants.c.user_id)
    .outerjoin(t.teams, t.teams.c.id == t.grants.c.team_id)
    .outerjoin(t.organizations, t.organizations.c.id == t.teams.c.organization_id)
)


def _grant(row: Any) -> GrantRow:
    team = f"{row.organization}/{row.team}" if row.team is not None else None
    return GrantRow(row.id, row.user, team, row.target, bool(row.namespace), int(row.role), row.created_at)


class GrantStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        # Built once: the catalog and every token fetch resolve their caller's grants (Database.rows reads
        # them synchronously on SQLite, in microseconds).
        teams = select(t.team_members.c.team_id).where(t.team_members.c.user_id == bindparam("user_id"))
        self._reaching = db.hot(
            select(t.grants.c.target, t.grants.c.namespace, t.grants.c.role).where(
                or_(t.grants.c.user_id == bindparam("user_id"), t.grants.c.team_id.in_(teams.scalar_subquery()))
            )
        )
        users, grants = t.users.c, t.grants.c
        own_teams = select(t.team_members.c.team_id).where(t.team_members.c.user_id == users.id)
        reaching_user = or_(grants.user_id == users.id, grants.team_id.in_(own_teams.scalar_subquery()))
        self._policy_rows = db.hot(
            select(users.admin, users.active, grants.target, grants.namespace, grants.role)
            .select_from(t.users.outerjoin(t.grants, reaching_user))
            .where(users.name == bindparam("name"))
        )

    async def all(self, target: str | None = None) -> list[GrantRow]:
        """Every grant (on ``target`` only, when given), by target."""
        query = _LISTED.order_by(t.grants.c.target, t.grants.c.id)
        if target is not None:
            query = query.where(t.grants.c.target == target)
        async with self._db.reader.connect() as conn:
            return [_grant(r) for r in (await conn.execute(query)).all()]

    async def get(self, grant_id: int) -> GrantRow | None:
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(_LISTED.where(t.grants.c.id == grant_id))).first()
            return None if row is None else _grant(row)

    async def put(
        self, user: str | None, team: tuple[str, str] | None, target: str, namespace: bool, role: int
    ) -> GrantRow:
        """Give ``role`` on ``target`` to a user or a team; an existing grant for the same pair is updated."""
        async with self._db.writer.begin() as conn:
            to_user = await user_id(conn, user) if user is not None else None
            to_team = await team_id(conn, *team) if team is not None else None
            where = and_(
                t.grants.c.user_id.is_(None) if to_user is None else t.grants.c.user_id == to_user,
                t.grants.c.team_id.is_(None) if to_team is None else t.grants.c.team_id == to_team,
                t.grants.c.target == target,
                t.grants.c.namespace.is_(namespace),
            )
            existing = await conn.scalar(select(t.grants.c.id).where(where))
            if existing is None:
                await conn.execute(
                    t.grants.insert().values(
                        user_id=to_user,
                        team_id=to_team,
                        target=target,
                        namespace=namespace,
                        role=role,
                        created_at=datetime.now(UTC),
                    )
                )
                existing = await conn.scalar(select(t.grants.c.id).where(where))
            else:
                await conn.execute(update(t.grants).where(t.grants.c.id == existing).values(role=role))
            return _grant((await conn.execute(_LISTED.where(t.grants.c.id == existing))).one())

    async def delete(self, grant_id: int) -> None:
        async with self._db.writer.begin() as conn:
            result = await conn.execute(delete(t.grants).where(t.grants.c.id == grant_id))
            if result.rowcount == 0:
                raise NotFound(f"no grant {grant_id}")

    async def policy_view(self, name: str) -> PolicyView | None:
        """The user and every grant reaching them, in one query (None: no such user)."""
        rows = await self._db.rows(self._policy_rows, name=name)
        if not rows:
            return None
        grants = [(r.target, bool(r.namespace), int(r.role)) for r in rows if r.target is not None]
        return PolicyView(bool(rows[0].admin), bool(rows[0].active), grants)

    async def reaching(self, of_user: int) -> list[Reaching]:
        """Every grant to the user (by id) or to a team the user is in."""
        rows = await self._db.rows(self._reaching, user_id=of_user)
        return [(r.target, bool(r.namespace), int(r.role)) for r in rows]
