"""``RepositoryStore``: the one module that writes repository rows: creating them on first use, listing them,
summaries for listings, their visibility, and removing a whole repository from the index.

Visibility is kept by name (``repository_settings``), so a repository can be made public before its first
push and keeps its setting across a reindex.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, String, bindparam, delete, exists, func, select, update
from sqlalchemy.engine import Connection

from trustyard.db import tables as t
from trustyard.db.database import Database, now


@dataclass(frozen=True, slots=True)
class RepositorySummary:
    """What a listing shows of a repository: how many tags, the bytes of the distinct blobs its manifests
    reference (a layer shared by many tags counts once), and when a tag was last pushed (None: no tags)."""

    name: str
    tags: int
    size: int
    pushed_at: datetime | None


class RepositoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        # Hot too: a tags list of a repository without tags (or of none at all) asks it to tell the two apart.
        self._repository_id = db.hot(
            select(t.repositories.c.id).where(t.repositories.c.name == bindparam("repository", type_=String()))
        )
        self._catalog_page = db.hot(self._build_catalog_page())
        # Every token request asks whether the repository it names is public: one name, the usual case.
        self._public_one = db.hot(
            select(t.repository_settings.c.name).where(
                t.repository_settings.c.name == bindparam("name", type_=String()),
                t.repository_settings.c.public.is_(True),
            )
        )

    def _build_catalog_page(self, contains: str | None = None) -> Select[tuple[str, bool]]:
        """One page of the catalog with each name's visibility: one query per page (built once without
        ``contains``, the registry's case; the web UI's search builds it per call)."""
        bytewise, repository, settings = self._db.bytewise, t.repositories.c, t.repository_settings.c
        public = func.coalesce(settings.public, False).label("public")
        query = (
            select(repository.name, public)
            .select_from(t.repositories.outerjoin(t.repository_settings, settings.name == repository.name))
            .where(exists().where(t.manifests.c.repository_id == repository.id))
            .where(bytewise(repository.name) > bindparam("last", type_=String()))
            .order_by(bytewise(repository.name))
            .limit(bindparam("limit"))
        )
        if contains:
            query = query.where(repository.name.contains(contains, autoescape=True))
        return query

    async def ensure_repository(self, name: str) -> int:
        return await self._db.write(lambda conn: self.ensure(conn, name))

    def ensure(self, conn: Connection, name: str) -> int:
        """The repository's id, creating its row in the caller's transaction (``Database.write``) when it is
        new."""
        found = conn.scalar(self._repository_id, {"repository": name})
        if found is not None:
            return int(found)
        conn.execute(self._db.insert_ignore(t.repositories, ["name"]).values(name=name, created_at=now()))
        created = conn.scalar(self._repository_id, {"repository": name})
        assert created is not None
        return int(created)

    async def repository_id(self, name: str) -> int | None:
        found = await self._db.scalar(self._repository_id, repository=name)
        return None if found is None else int(found)

    async def list_repositories(self, limit: int, last: str | None, contains: str | None = None) -> list[str]:
        """Repository names holding at least one manifest, in lexical order, after ``last``; with ``contains``,
        only names containing that text."""
        bytewise = self._db.bytewise
        query = (
            select(t.repositories.c.name)
            .where(exists().where(t.manifests.c.repository_id == t.repositories.c.id))
            .order_by(bytewise(t.repositories.c.name))
            .limit(limit)
        )
        if last:
            query = query.where(bytewise(t.repositories.c.name) > last)
        if contains:
            query = query.where(t.repositories.c.name.contains(contains, autoescape=True))
        return await self._db.scalars(query)

    async def catalog_page(self, limit: int, last: str | None, contains: str | None = None) -> list[tuple[str, bool]]:
        """``(name, public)`` of repositories holding at least one manifest, in lexical order, after ``last``;
        with ``contains``, only names containing that text."""
        query = self._build_catalog_page(contains) if contains else self._catalog_page
        rows = await self._db.rows(query, limit=limit, last=last or "")
        return [(row.name, bool(row.public)) for row in rows]

    async def names(self, after: str, limit: int) -> list[str]:
        """Every repository name after ``after`` (with or without manifests), a page at a time."""
        query = (
            select(t.repositories.c.name)
            .where(t.repositories.c.name > after)
            .order_by(t.repositories.c.name)
            .limit(limit)
        )
        return await self._db.scalars(query)

    async def public(self, names: Iterable[str]) -> set[str]:
        """Which of ``names`` are public."""
        wanted = list(names)
        if not wanted:
            return set()
        if len(wanted) == 1:
            return set(await self._db.scalars(self._public_one, name=wanted[0]))
        query = select(t.repository_settings.c.name).where(
            t.repository_settings.c.name.in_(wanted), t.repository_settings.c.public.is_(True)
        )
        return set(await self._db.scalars(query))  # on SQLite a synchronous read: every token request asks

    async def summaries(self, names: Sequence[str]) -> dict[str, RepositorySummary]:
        """Summaries of ``names`` (those the index knows), in one query whatever the number of names."""
        if not names:
            return {}
        repository = t.repositories.c
        tags = select(func.count()).select_from(t.tags).where(t.tags.c.repository_id == repository.id)
        pushed = select(func.max(t.tags.c.updated_at)).where(t.tags.c.repository_id == repository.id)
        # Blobs linked into the repository (one row per digest) that one of its manifests references.
        linked, blobs, references = t.repository_blobs.c, t.blobs.c, t.manifest_blobs.c
        referenced = exists().where(
            references.repository_id == linked.repository_id, references.digest == linked.digest
        )
        size = (
            select(func.coalesce(func.sum(blobs.size), 0))
            .select_from(t.repository_blobs.join(t.blobs, blobs.digest == linked.digest))
            .where(linked.repository_id == repository.id, referenced)
        )
        query = select(
            repository.name,
            tags.scalar_subquery().label("tags"),
            size.scalar_subquery().label("size"),
            pushed.scalar_subquery().label("pushed_at"),
        ).where(repository.name.in_(list(names)))
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.name: RepositorySummary(row.name, int(row.tags), int(row.size), row.pushed_at) for row in rows}

    async def set_public(self, name: str, public: bool) -> bool:
        """Set visibility; returns the previous value."""
        async with self._db.writer.begin() as conn:
            query = select(t.repository_settings.c.public).where(t.repository_settings.c.name == name)
            before = await conn.scalar(query)
            if before is None:
                await conn.execute(t.repository_settings.insert().values(name=name, public=public))
            else:
                await conn.execute(
                    update(t.repository_settings).where(t.repository_settings.c.name == name).values(public=public)
                )
            return bool(before)

    async def names_under(self, namespace: str) -> list[str]:
        """The indexed repositories in ``namespace`` (``namespace/...``), in order."""
        inside = t.repositories.c.name.startswith(namespace + "/", autoescape=True)
        async with self._db.reader.connect() as conn:
            return list((await conn.scalars(select(t.repositories.c.name).where(inside).order_by("name"))).all())

    async def delete_repository(self, name: str) -> bool:
        """Remove the repository and everything under it from the index; False when there was none."""
        async with self._db.writer.begin() as conn:
            repository_id = await conn.scalar(select(t.repositories.c.id).where(t.repositories.c.name == name))
            if repository_id is None:
                return False
            manifest_ids = select(t.manifests.c.id).where(t.manifests.c.repository_id == repository_id)
            # Children before parents: manifest_blobs references repository_blobs without a cascade.
            await conn.execute(delete(t.tags).where(t.tags.c.repository_id == repository_id))
            await conn.execute(delete(t.manifest_blobs).where(t.manifest_blobs.c.repository_id == repository_id))
            await conn.execute(
                delete(t.manifest_children).where(t.manifest_children.c.manifest_id.in_(manifest_ids.scalar_subquery()))
            )
            await conn.execute(delete(t.manifests).where(t.manifests.c.repository_id == repository_id))
            await conn.execute(delete(t.repository_blobs).where(t.repository_blobs.c.repository_id == repository_id))
            await conn.execute(delete(t.uploads).where(t.uploads.c.repository_id == repository_id))
            await conn.execute(delete(t.repositories).where(t.repositories.c.id == repository_id))
            await conn.execute(delete(t.repository_settings).where(t.repository_settings.c.name == name))
            return True
