"""``MigrationStore``: online migrations between storage backends (table ``storage_migrations``) and the
index reads a migration copies from: blobs a page at a time in digest order, and each repository's links.

(The module is not ``db/migrations.py``: that name is the Alembic package of the schema's own migrations.)

A migration row carries a resumable cursor: the phase (``blobs``, then ``links``) and the last key done in
it, in keyset order (blob digests, then repository names), so a copier that died resumes after the last
page it finished. Only the holder of the migration lease writes progress.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from trustyard.db import tables as t
from trustyard.db.database import Database, now

#: States of a migration under way: copying to the target, switching to it, or (cancelled by an operator)
#: copying back what was written to the target meanwhile. The others are final: done, failed, cancelled.
ACTIVE = ("copying", "switching", "cancelling")


@dataclass(frozen=True, slots=True)
class MigrationRow:
    id: int
    source: int
    target: int
    state: str  # copying, switching, cancelling; done, failed, cancelled
    phase: str  # blobs, links, recent, done
    cursor: str
    objects_total: int
    bytes_total: int
    objects_done: int
    bytes_done: int
    verified: int
    failed: int
    started_by: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    report: dict[str, Any]
    error: str | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


@dataclass(frozen=True, slots=True)
class Progress:
    """What the copier has done so far (absolute values: the holder owns them)."""

    phase: str
    cursor: str
    objects_done: int
    bytes_done: int
    verified: int
    failed: int
    report: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredBlob:
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class RepositoryLinks:
    """What the index says one repository's links are: Distribution's layout is written from this."""

    layers: list[str]
    revisions: list[str]
    tags: dict[str, str]  # tag -> manifest digest


class MigrationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(self, source: int, target: int, started_by: str, objects: int, size: int) -> int:
        at = now()
        async with self._db.writer.begin() as conn:
            result = await conn.execute(
                t.storage_migrations.insert()
                .values(
                    source=source,
                    target=target,
                    state="copying",
                    phase="blobs",
                    cursor="",
                    objects_total=objects,
                    bytes_total=size,
                    objects_done=0,
                    bytes_done=0,
                    verified=0,
                    failed=0,
                    started_by=started_by,
                    started_at=at,
                    updated_at=at,
                    report=json.dumps({}),
                )
                .returning(t.storage_migrations.c.id)
            )
            return int(result.scalar_one())

    async def get(self, migration_id: int) -> MigrationRow | None:
        row = await self._db.first(select(t.storage_migrations).where(t.storage_migrations.c.id == migration_id))
        return None if row is None else _row(row)

    async def latest(self) -> MigrationRow | None:
        query = select(t.storage_migrations).order_by(t.storage_migrations.c.id.desc()).limit(1)
        row = await self._db.first(query)
        return None if row is None else _row(row)

    async def active(self) -> MigrationRow | None:
        """The migration under way (at most one: starting one refuses while another is active)."""
        query = (
            select(t.storage_migrations)
            .where(t.storage_migrations.c.state.in_(ACTIVE))
            .order_by(t.storage_migrations.c.id.desc())
            .limit(1)
        )
        row = await self._db.first(query)
        return None if row is None else _row(row)

    async def record(self, migration_id: int, progress: Progress) -> None:
        async with self._db.writer.begin() as conn:
            await conn.execute(
                update(t.storage_migrations)
                .where(t.storage_migrations.c.id == migration_id)
                .values(
                    phase=progress.phase,
                    cursor=progress.cursor,
                    objects_done=progress.objects_done,
                    bytes_done=progress.bytes_done,
                    verified=progress.verified,
                    failed=progress.failed,
                    report=json.dumps(progress.report),
                    updated_at=now(),
                )
            )

    async def set_state(self, migration_id: int, state: str, error: str | None = None) -> None:
        finished = now() if state not in ACTIVE else None
        async with self._db.writer.begin() as conn:
            await conn.execute(
                update(t.storage_migrations)
                .where(t.storage_migrations.c.id == migration_id)
                .values(state=state, error=error, updated_at=now(), finished_at=finished)
            )

    async def move_state(self, migration_id: int, expected: str, state: str) -> bool:
        """``expected`` -> ``state`` in one statement; False (nothing changed) when the migration is not in
        ``expected``: the copier finishing and an operator cancelling cannot both win."""
        finished = now() if state not in ACTIVE else None
        async with self._db.writer.begin() as conn:
            result = await conn.execute(
                update(t.storage_migrations)
                .where(t.storage_migrations.c.id == migration_id, t.storage_migrations.c.state == expected)
                .values(state=state, error=None, updated_at=now(), finished_at=finished)
            )
            return bool(result.rowcount)

    # What a migration copies, read from the index.

    async def totals(self) -> tuple[int, int]:
        """(objects, bytes) to copy: every blob (manifests included) and every link the index knows."""
        blobs = int(await self._db.scalar(select(func.count()).select_from(t.blobs)) or 0)
        size = int(await self._db.scalar(select(func.coalesce(func.sum(t.blobs.c.size), 0))) or 0)
        layers = int(await self._db.scalar(select(func.count()).select_from(t.repository_blobs)) or 0)
        revisions = int(await self._db.scalar(select(func.count()).select_from(t.manifests)) or 0)
        tags = int(await self._db.scalar(select(func.count()).select_from(t.tags)) or 0)
        return blobs + layers + revisions + 2 * tags, size

    async def blobs_after(self, after: str, limit: int) -> list[StoredBlob]:
        query = (
            select(t.blobs.c.digest, t.blobs.c.size)
            .where(t.blobs.c.digest > after)
            .order_by(t.blobs.c.digest)
            .limit(limit)
        )
        return [StoredBlob(r.digest, int(r.size)) for r in await self._db.rows(query)]

    async def blobs_touched_since(self, since: datetime, after: str, limit: int) -> list[StoredBlob]:
        """Blobs a push recorded or touched at or after ``since`` (digest order, after ``after``)."""
        query = (
            select(t.blobs.c.digest, t.blobs.c.size)
            .where(t.blobs.c.touched_at >= since, t.blobs.c.digest > after)
            .order_by(t.blobs.c.digest)
            .limit(limit)
        )
        return [StoredBlob(r.digest, int(r.size)) for r in await self._db.rows(query)]

    async def repositories_changed_since(self, since: datetime) -> list[str]:
        """Repositories that linked a blob, got a manifest or moved a tag at or after ``since``."""
        ids = (
            select(t.repository_blobs.c.repository_id)
            .where(t.repository_blobs.c.created_at >= since)
            .union(
                select(t.manifests.c.repository_id).where(t.manifests.c.created_at >= since),
                select(t.tags.c.repository_id).where(t.tags.c.updated_at >= since),
            )
            .subquery()
        )
        changed = select(t.repositories.c.name).where(t.repositories.c.id.in_(select(ids.c.repository_id)))
        query = changed.order_by(t.repositories.c.name)
        return [r.name for r in await self._db.rows(query)]

    async def blob_referenced(self, digest: str) -> bool:
        """Whether a repository links the blob or a manifest has its digest (a push reserves a blob's row
        before it writes the bytes, and records these after: a row without them may be a push under way)."""
        linked = select(t.repository_blobs.c.digest).where(t.repository_blobs.c.digest == digest).limit(1)
        manifest = select(t.manifests.c.digest).where(t.manifests.c.digest == digest).limit(1)
        return await self._db.first(linked) is not None or await self._db.first(manifest) is not None

    async def blob_known(self, digest: str) -> bool:
        return await self._db.first(select(t.blobs.c.digest).where(t.blobs.c.digest == digest)) is not None

    async def repositories_after(self, after: str, limit: int) -> list[str]:
        query = (
            select(t.repositories.c.name)
            .where(t.repositories.c.name > after)
            .order_by(t.repositories.c.name)
            .limit(limit)
        )
        return [r.name for r in await self._db.rows(query)]

    async def links(self, repository: str) -> RepositoryLinks:
        """The repository's layer links, manifest revisions and tags as the index has them now."""
        repo = select(t.repositories.c.id).where(t.repositories.c.name == repository).scalar_subquery()
        layers = await self._db.scalars(
            select(t.repository_blobs.c.digest).where(t.repository_blobs.c.repository_id == repo)
        )
        revisions = await self._db.scalars(select(t.manifests.c.digest).where(t.manifests.c.repository_id == repo))
        tag_rows = await self._db.rows(
            select(t.tags.c.name, t.manifests.c.digest)
            .join(t.manifests, t.manifests.c.id == t.tags.c.manifest_id)
            .where(t.tags.c.repository_id == repo)
        )
        return RepositoryLinks(
            sorted(str(d) for d in layers), sorted(str(d) for d in revisions), {r.name: r.digest for r in tag_rows}
        )


def _row(r: Any) -> MigrationRow:
    return MigrationRow(
        id=r.id,
        source=r.source,
        target=r.target,
        state=r.state,
        phase=r.phase,
        cursor=r.cursor,
        objects_total=int(r.objects_total),
        bytes_total=int(r.bytes_total),
        objects_done=int(r.objects_done),
        bytes_done=int(r.bytes_done),
        verified=int(r.verified),
        failed=int(r.failed),
        started_by=r.started_by,
        started_at=r.started_at,
        updated_at=r.updated_at,
        finished_at=r.finished_at,
        report=json.loads(r.report) if r.report else {},
        error=r.error,
    )
