"""``AccountStore``: users, organizations, teams, memberships, grants and app tokens in SQL.

Rows come back as frozen dataclasses; unique constraints carry the invariants (one user per name, one team
name per organization, one token name per user) and their violations become ``AlreadyExists``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from trustyard.db import tables as t
from trustyard.db.database import Database
from trustyard.errors import AlreadyExists, NotFound

#: How stale an app token's ``last_used_at`` may be before a login writes it again.
TOKEN_USE_PRECISION = timedelta(seconds=60)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    name: str
    password_hash: str | None
    admin: bool
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TeamRow:
    id: int
    organization: str
    name: str
    created_at: datetime


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
class AppTokenRow:
    id: str
    user: str
    name: str
    secret_hash: str
    created_at: datetime
    last_used_at: datetime | None
    read_only: bool = False  # pull only, whatever the user may do


@dataclass(frozen=True, slots=True)
class ReservedName:
    """The name of a deleted user or organization: nobody may register it until an admin releases it."""

    name: str
    kind: str  # "user" or "organization"
    reserved_at: datetime
    reserved_by: str


def _token(row: Any) -> AppTokenRow:
    return AppTokenRow(
        row.id, row.user, row.name, row.secret_hash, row.created_at, row.last_used_at, bool(row.read_only)
    )


async def _refuse_reserved(conn: AsyncConnection, name: str) -> None:
    reserved = await conn.scalar(select(t.reserved_namespaces.c.kind).where(t.reserved_namespaces.c.name == name))
    if reserved is not None:
        raise AlreadyExists(
            f"{name} was the name of a deleted {reserved} and is reserved, so that nobody inherits what was "
            f"granted to it; an administrator can release it (trustyard namespace release {name})"
        )


async def _retire_namespace(conn: AsyncConnection, name: str, kind: str, by: str) -> None:
    """A deleted user's or organization's namespace: its name is reserved, and every grant on it or on a
    repository in it is removed (with repository visibility), so a later owner of the name inherits nothing."""
    inside = t.grants.c.target.startswith(name + "/", autoescape=True)
    on_namespace = and_(t.grants.c.target == name, t.grants.c.namespace.is_(True))
    await conn.execute(delete(t.grants).where(or_(on_namespace, inside)))
    settings = t.repository_settings.c.name.startswith(name + "/", autoescape=True)
    await conn.execute(delete(t.repository_settings).where(settings))
    await conn.execute(
        t.reserved_namespaces.insert().values(name=name, kind=kind, reserved_at=_now(), reserved_by=by[:64])
    )


def _user(row: Any) -> UserRow:
    return UserRow(row.id, row.name, row.password_hash, bool(row.admin), bool(row.active), row.created_at)


_USER_COLUMNS = (
    t.users.c.id,
    t.users.c.name,
    t.users.c.password_hash,
    t.users.c.admin,
    t.users.c.active,
    t.users.c.created_at,
)


class AccountStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.reader: AsyncEngine = db.reader
        self.writer: AsyncEngine = db.writer
        teams = select(t.team_members.c.team_id).where(t.team_members.c.user_id == bindparam("user_id"))
        # Built once: the catalog resolves its caller's grants on every request (Database.rows reads them
        # synchronously on SQLite, in microseconds).
        self._grants_reaching = db.hot(
            select(t.grants.c.target, t.grants.c.namespace, t.grants.c.role).where(
                or_(t.grants.c.user_id == bindparam("user_id"), t.grants.c.team_id.in_(teams.scalar_subquery()))
            )
        )
        self._token_by_id = db.hot(
            select(*self._TOKEN_COLUMNS)
            .join(t.users, t.users.c.id == t.app_tokens.c.user_id)
            .where(t.app_tokens.c.id == bindparam("token_id"))
        )
        self._user_by_name = db.hot(select(*_USER_COLUMNS).where(t.users.c.name == bindparam("name")))
        users, grants = t.users.c, t.grants.c
        own_teams = select(t.team_members.c.team_id).where(t.team_members.c.user_id == users.id)
        reaching = or_(grants.user_id == users.id, grants.team_id.in_(own_teams.scalar_subquery()))
        self._policy_rows = db.hot(
            select(users.admin, users.active, grants.target, grants.namespace, grants.role)
            .select_from(t.users.outerjoin(t.grants, reaching))
            .where(users.name == bindparam("name"))
        )

    # Users

    async def user(self, name: str) -> UserRow | None:
        row = await self._db.first(self._user_by_name, name=name)
        return None if row is None else _user(row)

    async def users(self) -> list[UserRow]:
        async with self.reader.connect() as conn:
            rows = (await conn.execute(select(*_USER_COLUMNS).order_by(t.users.c.name))).all()
            return [_user(r) for r in rows]

    async def create_user(self, name: str, password_hash: str | None, admin: bool) -> UserRow:
        async with self.writer.begin() as conn:
            await _refuse_reserved(conn, name)
            if await conn.scalar(select(t.organizations.c.id).where(t.organizations.c.name == name)) is not None:
                raise AlreadyExists(f"{name} is an organization; users and organizations share one namespace")
            try:
                await conn.execute(
                    t.users.insert().values(
                        name=name, password_hash=password_hash, admin=admin, active=True, created_at=_now()
                    )
                )
            except IntegrityError:
                raise AlreadyExists(f"user {name} already exists") from None
            row = (await conn.execute(select(*_USER_COLUMNS).where(t.users.c.name == name))).one()
            return _user(row)

    async def update_user(self, name: str, **values: Any) -> UserRow:
        """Set ``password_hash``, ``admin`` or ``active``; NotFound when there is no such user. A new password
        or a deactivation ends every web session of the user in the same transaction."""
        async with self.writer.begin() as conn:
            result = await conn.execute(update(t.users).where(t.users.c.name == name).values(**values))
            if result.rowcount == 0:
                raise NotFound(f"no user {name}")
            if "password_hash" in values or values.get("active") is False:
                user_id = select(t.users.c.id).where(t.users.c.name == name).scalar_subquery()
                await conn.execute(delete(t.web_sessions).where(t.web_sessions.c.user_id == user_id))
            return _user((await conn.execute(select(*_USER_COLUMNS).where(t.users.c.name == name))).one())

    async def delete_user(self, name: str, by: str) -> None:
        """Delete the user, end their sessions, and reserve their name (see ``_retire_namespace``)."""
        async with self.writer.begin() as conn:
            user_id = await conn.scalar(select(t.users.c.id).where(t.users.c.name == name))
            if user_id is None:
                raise NotFound(f"no user {name}")
            # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign keys on, and this must
            # hold on any connection.
            await conn.execute(delete(t.web_sessions).where(t.web_sessions.c.user_id == user_id))
            await conn.execute(delete(t.app_tokens).where(t.app_tokens.c.user_id == user_id))
            await conn.execute(delete(t.grants).where(t.grants.c.user_id == user_id))
            await conn.execute(delete(t.team_members).where(t.team_members.c.user_id == user_id))
            await conn.execute(delete(t.users).where(t.users.c.id == user_id))
            await _retire_namespace(conn, name, "user", by)

    async def count_admins(self) -> int:
        async with self.reader.connect() as conn:
            rows = await conn.scalars(select(t.users.c.id).where(t.users.c.admin.is_(True), t.users.c.active.is_(True)))
            return len(rows.all())

    # Organizations and teams

    async def organizations(self) -> list[tuple[str, datetime]]:
        async with self.reader.connect() as conn:
            query = select(t.organizations.c.name, t.organizations.c.created_at).order_by(t.organizations.c.name)
            return [(r.name, r.created_at) for r in (await conn.execute(query)).all()]

    async def create_organization(self, name: str) -> None:
        async with self.writer.begin() as conn:
            if await conn.scalar(select(t.users.c.id).where(t.users.c.name == name)) is not None:
                raise AlreadyExists(f"{name} is a user; users and organizations share one namespace")
            await _refuse_reserved(conn, name)
            try:
                await conn.execute(t.organizations.insert().values(name=name, created_at=_now()))
            except IntegrityError:
                raise AlreadyExists(f"organization {name} already exists") from None

    async def delete_organization(self, name: str, by: str) -> None:
        """Delete the organization with its teams, and reserve its name (see ``_retire_namespace``)."""
        async with self.writer.begin() as conn:
            org_id = await self._organization_id(conn, name)
            team_ids = select(t.teams.c.id).where(t.teams.c.organization_id == org_id).scalar_subquery()
            await conn.execute(delete(t.grants).where(t.grants.c.team_id.in_(team_ids)))
            await conn.execute(delete(t.team_members).where(t.team_members.c.team_id.in_(team_ids)))
            await conn.execute(delete(t.teams).where(t.teams.c.organization_id == org_id))
            await conn.execute(delete(t.organizations).where(t.organizations.c.id == org_id))
            await _retire_namespace(conn, name, "organization", by)

    # Reserved names of deleted namespaces

    async def reserved(self) -> list[ReservedName]:
        query = select(t.reserved_namespaces).order_by(t.reserved_namespaces.c.name)
        async with self.reader.connect() as conn:
            return [ReservedName(r.name, r.kind, r.reserved_at, r.reserved_by) for r in (await conn.execute(query))]

    async def release(self, name: str) -> None:
        """Let the name be registered again; NotFound when it is not reserved."""
        async with self.writer.begin() as conn:
            result = await conn.execute(delete(t.reserved_namespaces).where(t.reserved_namespaces.c.name == name))
            if result.rowcount == 0:
                raise NotFound(f"{name} is not a reserved name")

    async def _organization_id(self, conn: AsyncConnection, name: str) -> int:
        found = await conn.scalar(select(t.organizations.c.id).where(t.organizations.c.name == name))
        if found is None:
            raise NotFound(f"no organization {name}")
        return int(found)

    async def _team_id(self, conn: AsyncConnection, organization: str, team: str) -> int:
        query = (
            select(t.teams.c.id)
            .join(t.organizations, t.organizations.c.id == t.teams.c.organization_id)
            .where(t.organizations.c.name == organization, t.teams.c.name == team)
        )
        found = await conn.scalar(query)
        if found is None:
            raise NotFound(f"no team {organization}/{team}")
        return int(found)

    async def _user_id(self, conn: AsyncConnection, name: str) -> int:
        found = await conn.scalar(select(t.users.c.id).where(t.users.c.name == name))
        if found is None:
            raise NotFound(f"no user {name}")
        return int(found)

    async def teams(self, organization: str) -> list[TeamRow]:
        async with self.reader.connect() as conn:
            org_id = await self._organization_id(conn, organization)
            query = select(t.teams.c.id, t.teams.c.name, t.teams.c.created_at).where(
                t.teams.c.organization_id == org_id
            )
            rows = (await conn.execute(query.order_by(t.teams.c.name))).all()
            return [TeamRow(r.id, organization, r.name, r.created_at) for r in rows]

    async def create_team(self, organization: str, name: str) -> int:
        async with self.writer.begin() as conn:
            org_id = await self._organization_id(conn, organization)
            try:
                await conn.execute(t.teams.insert().values(organization_id=org_id, name=name, created_at=_now()))
            except IntegrityError:
                raise AlreadyExists(f"team {organization}/{name} already exists") from None
            return await self._team_id(conn, organization, name)

    async def delete_team(self, organization: str, name: str) -> None:
        async with self.writer.begin() as conn:
            team_id = await self._team_id(conn, organization, name)
            await conn.execute(delete(t.grants).where(t.grants.c.team_id == team_id))
            await conn.execute(delete(t.team_members).where(t.team_members.c.team_id == team_id))
            await conn.execute(delete(t.teams).where(t.teams.c.id == team_id))

    async def members(self, organization: str, team: str) -> list[str]:
        async with self.reader.connect() as conn:
            team_id = await self._team_id(conn, organization, team)
            query = (
                select(t.users.c.name)
                .join(t.team_members, t.team_members.c.user_id == t.users.c.id)
                .where(t.team_members.c.team_id == team_id)
                .order_by(t.users.c.name)
            )
            return list((await conn.scalars(query)).all())

    async def add_member(self, organization: str, team: str, user: str) -> bool:
        """Add ``user`` to the team; False when already a member."""
        async with self.writer.begin() as conn:
            team_id = await self._team_id(conn, organization, team)
            user_id = await self._user_id(conn, user)
            existing = await conn.scalar(
                select(t.team_members.c.user_id).where(
                    t.team_members.c.team_id == team_id, t.team_members.c.user_id == user_id
                )
            )
            if existing is not None:
                return False
            await conn.execute(t.team_members.insert().values(team_id=team_id, user_id=user_id))
            return True

    async def remove_member(self, organization: str, team: str, user: str) -> bool:
        async with self.writer.begin() as conn:
            team_id = await self._team_id(conn, organization, team)
            user_id = await self._user_id(conn, user)
            result = await conn.execute(
                delete(t.team_members).where(t.team_members.c.team_id == team_id, t.team_members.c.user_id == user_id)
            )
            return bool(result.rowcount)

    # Grants

    def _grant_query(self) -> Any:
        return (
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

    @staticmethod
    def _grant(row: Any) -> GrantRow:
        team = f"{row.organization}/{row.team}" if row.team is not None else None
        return GrantRow(row.id, row.user, team, row.target, bool(row.namespace), int(row.role), row.created_at)

    async def grants(self, target: str | None = None) -> list[GrantRow]:
        query = self._grant_query().order_by(t.grants.c.target, t.grants.c.id)
        if target is not None:
            query = query.where(t.grants.c.target == target)
        async with self.reader.connect() as conn:
            return [self._grant(r) for r in (await conn.execute(query)).all()]

    async def grant(self, grant_id: int) -> GrantRow | None:
        async with self.reader.connect() as conn:
            row = (await conn.execute(self._grant_query().where(t.grants.c.id == grant_id))).first()
            return None if row is None else self._grant(row)

    async def put_grant(
        self, user: str | None, team: tuple[str, str] | None, target: str, namespace: bool, role: int
    ) -> GrantRow:
        """Give ``role`` on ``target`` to a user or a team; an existing grant for the same pair is updated."""
        async with self.writer.begin() as conn:
            user_id = await self._user_id(conn, user) if user is not None else None
            team_id = await self._team_id(conn, *team) if team is not None else None
            where = and_(
                t.grants.c.user_id.is_(None) if user_id is None else t.grants.c.user_id == user_id,
                t.grants.c.team_id.is_(None) if team_id is None else t.grants.c.team_id == team_id,
                t.grants.c.target == target,
                t.grants.c.namespace.is_(namespace),
            )
            existing = await conn.scalar(select(t.grants.c.id).where(where))
            if existing is None:
                await conn.execute(
                    t.grants.insert().values(
                        user_id=user_id,
                        team_id=team_id,
                        target=target,
                        namespace=namespace,
                        role=role,
                        created_at=_now(),
                    )
                )
                existing = await conn.scalar(select(t.grants.c.id).where(where))
            else:
                await conn.execute(update(t.grants).where(t.grants.c.id == existing).values(role=role))
            row = (await conn.execute(self._grant_query().where(t.grants.c.id == existing))).one()
            return self._grant(row)

    async def delete_grant(self, grant_id: int) -> None:
        async with self.writer.begin() as conn:
            result = await conn.execute(delete(t.grants).where(t.grants.c.id == grant_id))
            if result.rowcount == 0:
                raise NotFound(f"no grant {grant_id}")

    async def policy_view(self, name: str) -> tuple[bool, bool, list[tuple[str, bool, int]]] | None:
        """``(admin, active, grants reaching the user)`` in one query (None: no such user): what the permission
        policy needs of a user, read on every catalog request and token fetch."""
        rows = await self._db.rows(self._policy_rows, name=name)
        if not rows:
            return None
        grants = [(r.target, bool(r.namespace), int(r.role)) for r in rows if r.target is not None]
        return bool(rows[0].admin), bool(rows[0].active), grants

    async def grants_reaching(self, user_id: int) -> list[tuple[str, bool, int]]:
        """``(target, namespace, role)`` of every grant to the user or to a team the user is in."""
        rows = await self._db.rows(self._grants_reaching, user_id=user_id)
        return [(r.target, bool(r.namespace), int(r.role)) for r in rows]

    # App tokens

    _TOKEN_COLUMNS = (
        t.app_tokens.c.id,
        t.users.c.name.label("user"),
        t.app_tokens.c.name,
        t.app_tokens.c.secret_hash,
        t.app_tokens.c.created_at,
        t.app_tokens.c.last_used_at,
        t.app_tokens.c.read_only,
    )

    async def create_token(
        self, user: str, token_id: str, name: str, secret_hash: str, read_only: bool = False
    ) -> AppTokenRow:
        async with self.writer.begin() as conn:
            user_id = await self._user_id(conn, user)
            values = {"id": token_id, "user_id": user_id, "name": name, "secret_hash": secret_hash}
            try:
                await conn.execute(t.app_tokens.insert().values(**values, read_only=read_only, created_at=_now()))
            except IntegrityError:
                raise AlreadyExists(f"{user} already has a token named {name}") from None
        found = await self.token(token_id)
        assert found is not None
        return found

    async def token(self, token_id: str) -> AppTokenRow | None:
        """Read on every login with an app token (each ``docker login``, each token fetch of a CI job)."""
        row = await self._db.first(self._token_by_id, token_id=token_id)
        return None if row is None else _token(row)

    async def tokens(self, user: str) -> list[AppTokenRow]:
        query = (
            select(*self._TOKEN_COLUMNS)
            .join(t.users, t.users.c.id == t.app_tokens.c.user_id)
            .where(t.users.c.name == user)
            .order_by(t.app_tokens.c.name)
        )
        async with self.reader.connect() as conn:
            return [_token(r) for r in (await conn.execute(query)).all()]

    async def delete_token(self, user: str, token_id: str) -> None:
        async with self.writer.begin() as conn:
            user_id = await self._user_id(conn, user)
            result = await conn.execute(
                delete(t.app_tokens).where(t.app_tokens.c.id == token_id, t.app_tokens.c.user_id == user_id)
            )
            if result.rowcount == 0:
                raise NotFound(f"{user} has no token {token_id}")

    async def touch_token(self, token_id: str, last_used_at: datetime | None = None) -> None:
        """Record that the token was used now; a token used within ``TOKEN_USE_PRECISION`` of ``last_used_at``
        is left as it is, so a CI job fetching a token per image does not write (and serialise writers) each
        time: "last used" is shown to the minute."""
        if last_used_at is not None:
            last = last_used_at if last_used_at.tzinfo is not None else last_used_at.replace(tzinfo=UTC)
            if _now() - last < TOKEN_USE_PRECISION:
                return
        async with self.writer.begin() as conn:
            await conn.execute(update(t.app_tokens).where(t.app_tokens.c.id == token_id).values(last_used_at=_now()))
