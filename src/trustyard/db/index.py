"""``Index``: every query the services run against the SQL index, each in its own short transaction.

Rows come back as small frozen dataclasses; nothing above this module sees SQLAlchemy. Callers write bytes to
storage *before* calling the methods that record them here, so the index never points at missing bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, Table, and_, bindparam, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable, Insert

from trustyard.db import tables as t
from trustyard.errors import ManifestBlobUnknown


@dataclass(frozen=True, slots=True)
class ManifestRow:
    id: int
    digest: str
    media_type: str
    payload: bytes
    size: int
    artifact_type: str | None
    subject_digest: str | None
    annotations: dict[str, str] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewManifest:
    digest: str
    media_type: str
    payload: bytes
    artifact_type: str | None
    subject_digest: str | None
    annotations: dict[str, str] | None
    blob_digests: Sequence[str]
    child_digests: Sequence[str]


@dataclass(frozen=True, slots=True)
class TagRow:
    """A tag with the manifest it points to, for listings that show more than names (the web UI)."""

    name: str
    digest: str
    media_type: str
    payload: bytes
    updated_at: datetime
    pushed_by: str | None


@dataclass(frozen=True, slots=True)
class UploadRow:
    id: str
    repository: str
    storage_key: str
    token: str
    parts: list[dict[str, Any]]
    size: int
    started_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


_MANIFEST_COLUMNS = (
    t.manifests.c.id,
    t.manifests.c.digest,
    t.manifests.c.media_type,
    t.manifests.c.payload,
    t.manifests.c.size,
    t.manifests.c.artifact_type,
    t.manifests.c.subject_digest,
    t.manifests.c.annotations,
    t.manifests.c.created_at,
)


def _manifest_row(row: Any) -> ManifestRow:
    return ManifestRow(
        id=row.id,
        digest=row.digest,
        media_type=row.media_type,
        payload=bytes(row.payload),
        size=row.size,
        artifact_type=row.artifact_type,
        subject_digest=row.subject_digest,
        annotations=json.loads(row.annotations) if row.annotations else None,
        created_at=row.created_at,
    )


class Index:
    """Queries of the SQL index. Reads use ``reader``; transactions that write use ``writer``.

    On SQLite the writer begins ``IMMEDIATE`` transactions (see ``engine.open_index``) so that a
    read-then-write never fails on a stale snapshot; on PostgreSQL both are the same pool and conflicting
    inserts are resolved with ``ON CONFLICT``.
    """

    def __init__(self, reader: AsyncEngine, writer: AsyncEngine | None = None, local: Engine | None = None) -> None:
        self.reader = reader
        self.writer = writer or reader
        self.local = local
        self._dialect = reader.dialect.name
        self._prepare_hot_reads()

    def _prepare_hot_reads(self) -> None:
        """Statements of the requests every pull makes, built once: building a SELECT costs more than running
        it on SQLite. Values are bound per call."""
        repository, tag, digest = (bindparam(name, type_=String()) for name in ("repository", "tag", "digest"))
        by_name = t.repositories.c.name == repository
        self._repository_id = select(t.repositories.c.id).where(by_name)
        self._manifest_by_tag = (
            select(*_MANIFEST_COLUMNS)
            .join(t.tags, t.tags.c.manifest_id == t.manifests.c.id)
            .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
            .where(by_name, t.tags.c.name == tag)
        )
        self._manifest_by_digest = (
            select(*_MANIFEST_COLUMNS)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(by_name, t.manifests.c.digest == digest)
        )
        self._linked_blob_size = (
            select(t.blobs.c.size)
            .join(t.repository_blobs, t.repository_blobs.c.digest == t.blobs.c.digest)
            .join(t.repositories, t.repositories.c.id == t.repository_blobs.c.repository_id)
            .where(by_name, t.blobs.c.digest == digest)
        )
        self._all_tags = (
            select(t.tags.c.name)
            .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
            .where(by_name)
            .order_by(self._bytewise(t.tags.c.name))
        )

    async def dispose(self) -> None:
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()
        if self.local is not None:
            self.local.dispose()

    # Reads. With a ``local`` engine (SQLite) they run synchronously on this thread: an indexed SQLite read
    # takes microseconds and never waits for writers in WAL mode, while a trip through aiosqlite's thread
    # costs ~100 µs each way. Elsewhere (PostgreSQL) they run on the async reader.

    async def _rows(self, query: Executable, **params: Any) -> Sequence[Row[Any]]:
        if self.local is not None:
            with self.local.connect() as conn:
                return conn.execute(query, params).all()
        async with self.reader.connect() as conn:
            return (await conn.execute(query, params)).all()

    async def _first(self, query: Executable, **params: Any) -> Row[Any] | None:
        rows = await self._rows(query, **params)
        return rows[0] if rows else None

    async def _scalar(self, query: Executable, **params: Any) -> Any:
        row = await self._first(query, **params)
        return None if row is None else row[0]

    async def _scalars(self, query: Executable, **params: Any) -> list[Any]:
        return [row[0] for row in await self._rows(query, **params)]

    def _bytewise(self, column: Any) -> Any:
        """``column`` compared byte by byte, the lexical order the spec (and Distribution) pages in."""
        return column.collate("C") if self._dialect == "postgresql" else column  # SQLite's default is BINARY

    def _upsert(self, table: Table) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL spell it the same)."""
        return postgresql.insert(table) if self._dialect == "postgresql" else sqlite.insert(table)

    def _insert_ignore(self, table: Table, index_elements: Sequence[str]) -> Insert:
        insert: Insert = self._upsert(table).on_conflict_do_nothing(index_elements=list(index_elements))
        return insert

    # Repositories

    async def ensure_repository(self, name: str) -> int:
        async with self.writer.begin() as conn:
            return await self._ensure_repository(conn, name)

    async def _ensure_repository(self, conn: AsyncConnection, name: str) -> int:
        found = await conn.scalar(select(t.repositories.c.id).where(t.repositories.c.name == name))
        if found is not None:
            return int(found)
        await conn.execute(self._insert_ignore(t.repositories, ["name"]).values(name=name, created_at=_now()))
        created = await conn.scalar(select(t.repositories.c.id).where(t.repositories.c.name == name))
        assert created is not None
        return int(created)

    async def repository_id(self, name: str) -> int | None:
        found = await self._scalar(self._repository_id, repository=name)
        return None if found is None else int(found)

    async def list_repositories(self, limit: int, last: str | None, contains: str | None = None) -> list[str]:
        """Repository names holding at least one manifest, in lexical order, after ``last``; with ``contains``,
        only names containing that text."""
        query = (
            select(t.repositories.c.name)
            .where(exists().where(t.manifests.c.repository_id == t.repositories.c.id))
            .order_by(self._bytewise(t.repositories.c.name))
            .limit(limit)
        )
        if last:
            query = query.where(self._bytewise(t.repositories.c.name) > last)
        if contains:
            query = query.where(t.repositories.c.name.contains(contains, autoescape=True))
        return await self._scalars(query)

    # Blobs

    async def link_blob(self, repository: str, digest: str, size: int) -> None:
        """Record that ``digest`` (already in storage) exists and is linked into ``repository``."""
        async with self.writer.begin() as conn:
            repository_id = await self._ensure_repository(conn, repository)
            await conn.execute(
                self._insert_ignore(t.blobs, ["digest"]).values(digest=digest, size=size, created_at=_now())
            )
            await conn.execute(
                self._insert_ignore(t.repository_blobs, ["repository_id", "digest"]).values(
                    repository_id=repository_id, digest=digest, created_at=_now()
                )
            )

    async def linked_blob_size(self, repository: str, digest: str) -> int | None:
        """The blob's size if it is linked into ``repository``, else None."""
        found = await self._scalar(self._linked_blob_size, repository=repository, digest=digest)
        return None if found is None else int(found)

    async def blob_size(self, digest: str) -> int | None:
        found = await self._scalar(select(t.blobs.c.size).where(t.blobs.c.digest == digest))
        return None if found is None else int(found)

    async def blob_referenced_by(self, repository: str, digest: str) -> str | None:
        """A manifest digest in ``repository`` that references the blob, if any."""
        query = (
            select(t.manifests.c.digest)
            .join(t.manifest_blobs, t.manifest_blobs.c.manifest_id == t.manifests.c.id)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifest_blobs.c.digest == digest)
            .limit(1)
        )
        found = await self._scalar(query)
        return None if found is None else str(found)

    async def unlink_blob(self, repository: str, digest: str) -> bool:
        async with self.writer.begin() as conn:
            repository_id = await conn.scalar(select(t.repositories.c.id).where(t.repositories.c.name == repository))
            if repository_id is None:
                return False
            result = await conn.execute(
                delete(t.repository_blobs).where(
                    t.repository_blobs.c.repository_id == repository_id, t.repository_blobs.c.digest == digest
                )
            )
            return bool(result.rowcount)

    async def missing_blobs(self, repository: str, digests: Iterable[str]) -> list[str]:
        wanted = sorted(set(digests))
        if not wanted:
            return []
        query = (
            select(t.repository_blobs.c.digest)
            .join(t.repositories, t.repositories.c.id == t.repository_blobs.c.repository_id)
            .where(t.repositories.c.name == repository, t.repository_blobs.c.digest.in_(wanted))
        )
        present = set(await self._scalars(query))
        return [d for d in wanted if d not in present]

    # Manifests

    async def missing_manifests(self, repository: str, digests: Iterable[str]) -> list[str]:
        wanted = sorted(set(digests))
        if not wanted:
            return []
        query = (
            select(t.manifests.c.digest)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifests.c.digest.in_(wanted))
        )
        present = set(await self._scalars(query))
        return [d for d in wanted if d not in present]

    async def put_manifest(
        self,
        repository: str,
        manifest: NewManifest,
        tags: Sequence[str],
        pushed_by: str | None = None,
        pushed_at: datetime | None = None,
    ) -> None:
        """Record a manifest (bytes already in storage), its references and tags (pushed by ``pushed_by`` at
        ``pushed_at``, default now; reindex passes what storage knows), in one transaction."""
        try:
            await self._put_manifest(repository, manifest, tags, pushed_by, pushed_at or _now())
        except IntegrityError:
            # The foreign key to repository_blobs: a blob was unlinked between the caller's check and now.
            raise ManifestBlobUnknown("a blob this manifest references was deleted while it was pushed") from None

    async def _put_manifest(
        self, repository: str, manifest: NewManifest, tags: Sequence[str], pushed_by: str | None, now: datetime
    ) -> None:
        async with self.writer.begin() as conn:
            repository_id = await self._ensure_repository(conn, repository)
            manifest_id = await self._insert_manifest(conn, repository_id, manifest, now)
            for tag in tags:
                # An upsert: concurrent pushes of the same tag both succeed, the last one wins.
                insert = self._upsert(t.tags).values(
                    repository_id=repository_id, name=tag, manifest_id=manifest_id, updated_at=now, pushed_by=pushed_by
                )
                await conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["repository_id", "name"],
                        set_={"manifest_id": manifest_id, "updated_at": now, "pushed_by": pushed_by},
                    )
                )

    async def _insert_manifest(
        self, conn: AsyncConnection, repository_id: int, manifest: NewManifest, now: datetime
    ) -> int:
        """The manifest's id, inserting it with its references unless it is already there (pushed again or
        by a concurrent push of the same bytes)."""
        result = await conn.execute(
            self._insert_ignore(t.manifests, ["repository_id", "digest"])
            .values(
                repository_id=repository_id,
                digest=manifest.digest,
                media_type=manifest.media_type,
                artifact_type=manifest.artifact_type,
                subject_digest=manifest.subject_digest,
                annotations=json.dumps(manifest.annotations) if manifest.annotations else None,
                payload=manifest.payload,
                size=len(manifest.payload),
                created_at=now,
            )
            .returning(t.manifests.c.id)
        )
        inserted = result.scalar()
        if inserted is None:
            existing = await conn.scalar(
                select(t.manifests.c.id).where(
                    t.manifests.c.repository_id == repository_id, t.manifests.c.digest == manifest.digest
                )
            )
            assert existing is not None
            return int(existing)
        manifest_id = int(inserted)
        blob_rows = [
            {"manifest_id": manifest_id, "repository_id": repository_id, "digest": d}
            for d in sorted(set(manifest.blob_digests))
        ]
        if blob_rows:
            await conn.execute(t.manifest_blobs.insert(), blob_rows)
        child_rows = [{"manifest_id": manifest_id, "child_digest": d} for d in sorted(set(manifest.child_digests))]
        if child_rows:
            await conn.execute(t.manifest_children.insert(), child_rows)
        return manifest_id

    async def manifest_by_digest(self, repository: str, digest: str) -> ManifestRow | None:
        row = await self._first(self._manifest_by_digest, repository=repository, digest=digest)
        return None if row is None else _manifest_row(row)

    async def manifest_by_tag(self, repository: str, tag: str) -> ManifestRow | None:
        row = await self._first(self._manifest_by_tag, repository=repository, tag=tag)
        return None if row is None else _manifest_row(row)

    async def manifest_parents(self, repository: str, digest: str) -> list[str]:
        """Digests of indexes in ``repository`` that list ``digest`` as a child."""
        query = (
            select(t.manifests.c.digest)
            .join(t.manifest_children, t.manifest_children.c.manifest_id == t.manifests.c.id)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifest_children.c.child_digest == digest)
        )
        return await self._scalars(query)

    async def delete_manifest(self, repository: str, digest: str) -> list[str]:
        """Remove a manifest and the tags on it; returns those tags. Raises LookupError when absent."""
        async with self.writer.begin() as conn:
            query = (
                select(t.manifests.c.id, t.manifests.c.repository_id)
                .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
                .where(t.repositories.c.name == repository, t.manifests.c.digest == digest)
            )
            row = (await conn.execute(query)).first()
            if row is None:
                raise LookupError(digest)
            removed = (await conn.scalars(select(t.tags.c.name).where(t.tags.c.manifest_id == row.id))).all()
            await conn.execute(delete(t.tags).where(t.tags.c.manifest_id == row.id))
            await conn.execute(delete(t.manifest_blobs).where(t.manifest_blobs.c.manifest_id == row.id))
            await conn.execute(delete(t.manifest_children).where(t.manifest_children.c.manifest_id == row.id))
            await conn.execute(delete(t.manifests).where(t.manifests.c.id == row.id))
            return list(removed)

    async def referrers(self, repository: str, subject: str, artifact_type: str | None) -> list[ManifestRow]:
        query = (
            select(*_MANIFEST_COLUMNS)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifests.c.subject_digest == subject)
            .order_by(t.manifests.c.created_at, t.manifests.c.id)
        )
        if artifact_type:
            query = query.where(t.manifests.c.artifact_type == artifact_type)
        return [_manifest_row(r) for r in await self._rows(query)]

    # Tags

    async def delete_tag(self, repository: str, tag: str) -> str | None:
        """Remove a tag; returns the digest it pointed to, or None when there was no such tag."""
        async with self.writer.begin() as conn:
            query = (
                select(t.tags.c.repository_id, t.manifests.c.digest)
                .join(t.manifests, t.manifests.c.id == t.tags.c.manifest_id)
                .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
                .where(t.repositories.c.name == repository, t.tags.c.name == tag)
            )
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            await conn.execute(
                delete(t.tags).where(and_(t.tags.c.repository_id == row.repository_id, t.tags.c.name == tag))
            )
            return str(row.digest)

    async def list_tags(self, repository: str, limit: int | None, last: str | None) -> list[str] | None:
        """Tags in lexical order after ``last``; None when the repository does not exist."""
        if limit is None and not last:
            tags = await self._scalars(self._all_tags, repository=repository)
            if tags or await self.repository_id(repository) is not None:
                return tags
            return None
        repository_id = await self.repository_id(repository)
        if repository_id is None:
            return None
        name = self._bytewise(t.tags.c.name)
        query = select(t.tags.c.name).where(t.tags.c.repository_id == repository_id).order_by(name)
        if last:
            query = query.where(name > last)
        if limit is not None:
            query = query.limit(limit)
        return await self._scalars(query)

    async def tag_rows(self, repository: str, limit: int, last: str | None) -> list[TagRow] | None:
        """Tags with their manifests, in lexical order after ``last``; None when the repository does not exist."""
        repository_id = await self.repository_id(repository)
        if repository_id is None:
            return None
        name = self._bytewise(t.tags.c.name)
        query = (
            select(
                t.tags.c.name,
                t.manifests.c.digest,
                t.manifests.c.media_type,
                t.manifests.c.payload,
                t.tags.c.updated_at,
                t.tags.c.pushed_by,
            )
            .join(t.manifests, t.manifests.c.id == t.tags.c.manifest_id)
            .where(t.tags.c.repository_id == repository_id)
            .order_by(name)
            .limit(limit)
        )
        if last:
            query = query.where(name > last)
        rows = await self._rows(query)
        return [TagRow(r.name, r.digest, r.media_type, bytes(r.payload), r.updated_at, r.pushed_by) for r in rows]

    async def manifest_payloads(self, repository: str, digests: Sequence[str]) -> dict[str, bytes]:
        """The stored bytes of those of ``digests`` that are manifests in ``repository``."""
        if not digests:
            return {}
        query = (
            select(t.manifests.c.digest, t.manifests.c.payload)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifests.c.digest.in_(list(digests)))
        )
        return {row.digest: bytes(row.payload) for row in await self._rows(query)}

    async def tags_of(self, repository: str, digest: str) -> list[str]:
        query = (
            select(t.tags.c.name)
            .join(t.manifests, t.manifests.c.id == t.tags.c.manifest_id)
            .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifests.c.digest == digest)
            .order_by(t.tags.c.name)
        )
        return await self._scalars(query)

    # Uploads

    async def create_upload(self, upload: UploadRow) -> None:
        async with self.writer.begin() as conn:
            repository_id = await self._ensure_repository(conn, upload.repository)
            await conn.execute(
                t.uploads.insert().values(
                    id=upload.id,
                    repository_id=repository_id,
                    storage_key=upload.storage_key,
                    token=upload.token,
                    parts=json.dumps(upload.parts),
                    size=upload.size,
                    started_at=upload.started_at,
                    updated_at=upload.started_at,
                )
            )

    async def upload(self, repository: str, upload_id: str) -> UploadRow | None:
        query = (
            select(t.uploads, t.repositories.c.name)
            .join(t.repositories, t.repositories.c.id == t.uploads.c.repository_id)
            .where(t.uploads.c.id == upload_id, t.repositories.c.name == repository)
        )
        row = await self._first(query)
        if row is None:
            return None
        return UploadRow(
            id=row.id,
            repository=row.name,
            storage_key=row.storage_key,
            token=row.token,
            parts=json.loads(row.parts),
            size=row.size,
            started_at=row.started_at,
        )

    async def advance_upload(self, upload_id: str, expected_size: int, parts: list[dict[str, Any]], size: int) -> bool:
        """Record new parts if nobody else advanced the upload since we read it (optimistic check)."""
        async with self.writer.begin() as conn:
            result = await conn.execute(
                update(t.uploads)
                .where(t.uploads.c.id == upload_id, t.uploads.c.size == expected_size)
                .values(parts=json.dumps(parts), size=size, updated_at=_now())
            )
            return bool(result.rowcount)

    async def delete_upload(self, upload_id: str) -> bool:
        """Remove an upload session; False when it was already gone (another request claimed it)."""
        async with self.writer.begin() as conn:
            result = await conn.execute(delete(t.uploads).where(t.uploads.c.id == upload_id))
            return bool(result.rowcount)

    async def stale_uploads(self, older_than: datetime) -> list[UploadRow]:
        query = (
            select(t.uploads, t.repositories.c.name)
            .join(t.repositories, t.repositories.c.id == t.uploads.c.repository_id)
            .where(t.uploads.c.updated_at < older_than)
        )
        rows = await self._rows(query)
        return [
            UploadRow(r.id, r.name, r.storage_key, r.token, json.loads(r.parts), r.size, r.started_at) for r in rows
        ]

    # Whole-index operations (reindex)

    async def clear(self) -> None:
        """Forget every repository, blob, manifest, tag and upload (before indexing another storage backend).
        Accounts, grants and visibility are kept: they are by name and outlive a storage switch."""
        async with self.writer.begin() as conn:
            for table in (
                t.uploads,
                t.tags,
                t.manifest_children,
                t.manifest_blobs,
                t.manifests,
                t.repository_blobs,
                t.blobs,
                t.repositories,
            ):
                await conn.execute(delete(table))

    async def counts(self) -> dict[str, int]:
        async with self.reader.connect() as conn:
            out = {}
            for table in (t.repositories, t.blobs, t.manifests, t.tags):
                out[table.name] = int(await conn.scalar(select(func.count()).select_from(table)) or 0)
            return out
