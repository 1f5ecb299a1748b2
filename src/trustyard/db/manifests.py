"""``ManifestStore``: manifests with their blob and child references, and the tags that name them.

Callers write a manifest's bytes and links to storage *before* recording them here, so the index never names
bytes that are not stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, delete, exists, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from trustyard.db import tables as t
from trustyard.db.audit import AuditEntry, append_in
from trustyard.db.blobs import BlobStore
from trustyard.db.database import Database, now
from trustyard.db.repositories import RepositoryStore
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
class TagAge:
    name: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UntaggedRow:
    id: int
    repository: str
    digest: str


@dataclass(frozen=True, slots=True)
class TagRow:
    """A tag with the manifest it points to, for listings that show more than names (the web UI)."""

    name: str
    digest: str
    media_type: str
    payload: bytes
    updated_at: datetime
    pushed_by: str | None


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


class ManifestStore:
    def __init__(self, db: Database, repositories: RepositoryStore, blobs: BlobStore) -> None:
        self._db = db
        self._repositories = repositories
        self._blobs = blobs
        self._prepare_hot_reads()
        # A push's writes, built once: building a statement costs several times running it (blobs.py).
        self._insert = self._db.insert_ignore(t.manifests, ["repository_id", "digest"]).returning(t.manifests.c.id)
        self._manifest_id = select(t.manifests.c.id).where(
            t.manifests.c.repository_id == bindparam("repository_id", type_=t.manifests.c.repository_id.type),
            t.manifests.c.digest == bindparam("digest", type_=String()),
        )
        tag = self._db.upsert(t.tags)
        self._tag = tag.on_conflict_do_update(
            index_elements=["repository_id", "name"],
            set_={
                "manifest_id": tag.excluded.manifest_id,
                "updated_at": tag.excluded.updated_at,
                "pushed_by": tag.excluded.pushed_by,
            },
        )

    def _prepare_hot_reads(self) -> None:
        """Statements of the requests every pull makes, built once: building a SELECT costs more than running
        it on SQLite. Values are bound per call."""
        repository, tag, digest = (bindparam(name, type_=String()) for name in ("repository", "tag", "digest"))
        by_name = t.repositories.c.name == repository
        self._manifest_by_tag = self._db.hot(
            select(*_MANIFEST_COLUMNS)
            .join(t.tags, t.tags.c.manifest_id == t.manifests.c.id)
            .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
            .where(by_name, t.tags.c.name == tag)
        )
        self._manifest_by_digest = self._db.hot(
            select(*_MANIFEST_COLUMNS)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(by_name, t.manifests.c.digest == digest)
        )
        self._all_tags = self._db.hot(
            select(t.tags.c.name)
            .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
            .where(by_name)
            .order_by(self._db.bytewise(t.tags.c.name))
        )

    async def missing_manifests(self, repository: str, digests: Iterable[str]) -> list[str]:
        wanted = sorted(set(digests))
        if not wanted:
            return []
        query = (
            select(t.manifests.c.digest)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifests.c.digest.in_(wanted))
        )
        present = set(await self._db.scalars(query))
        return [d for d in wanted if d not in present]

    async def put_manifest(
        self,
        repository: str,
        manifest: NewManifest,
        tags: Sequence[str],
        pushed_by: str | None = None,
        pushed_at: datetime | None = None,
        audit: AuditEntry | None = None,
    ) -> None:
        """Record a manifest (bytes already in storage), its references and tags (pushed by ``pushed_by`` at
        ``pushed_at``, default now; reindex passes what storage knows), and ``audit`` if given, in one
        transaction. The caller reserved the manifest's digest (``BlobStore.reserve_blob``) before writing its
        bytes."""
        at = pushed_at or now()

        def put(conn: Connection) -> None:
            self._put_manifest(conn, repository, manifest, tags, pushed_by, at, audit)

        for attempt in range(2):
            try:
                await self._db.write(put)
                return
            except IntegrityError:
                # Either garbage collection deleted this (untagged) manifest between our insert-or-find and the
                # tag: the second attempt inserts it again; or a blob it references was unlinked meanwhile.
                if attempt:
                    raise ManifestBlobUnknown(
                        "a blob this manifest references was unlinked while the manifest was pushed (deleted, or "
                        "garbage-collected: it was pushed longer ago than the grace window); push it again"
                    ) from None

    def _put_manifest(
        self,
        conn: Connection,
        repository: str,
        manifest: NewManifest,
        tags: Sequence[str],
        pushed_by: str | None,
        at: datetime,
        audit: AuditEntry | None,
    ) -> None:
        repository_id = self._repositories.ensure(conn, repository)
        self._blobs.touch(conn, manifest.digest)
        manifest_id = self._insert_manifest(conn, repository_id, manifest, at)
        if tags:
            # An upsert: concurrent pushes of the same tag both succeed, the last one wins.
            rows = [
                {
                    "repository_id": repository_id,
                    "name": tag,
                    "manifest_id": manifest_id,
                    "updated_at": at,
                    "pushed_by": pushed_by,
                }
                for tag in dict.fromkeys(tags)  # a row twice in one batch would fail on PostgreSQL
            ]
            conn.execute(self._tag, rows)
        if audit is not None:
            append_in(conn, audit)

    def _insert_manifest(self, conn: Connection, repository_id: int, manifest: NewManifest, at: datetime) -> int:
        """The manifest's id, inserting it with its references unless it is already there (pushed again or
        by a concurrent push of the same bytes)."""
        row = {
            "repository_id": repository_id,
            "digest": manifest.digest,
            "media_type": manifest.media_type,
            "artifact_type": manifest.artifact_type,
            "subject_digest": manifest.subject_digest,
            "annotations": json.dumps(manifest.annotations) if manifest.annotations else None,
            "payload": manifest.payload,
            "size": len(manifest.payload),
            "created_at": at,
        }
        inserted = conn.execute(self._insert, row).scalar()
        if inserted is None:
            existing = conn.scalar(self._manifest_id, {"repository_id": repository_id, "digest": manifest.digest})
            assert existing is not None
            return int(existing)
        manifest_id = int(inserted)
        blob_rows = [
            {"manifest_id": manifest_id, "repository_id": repository_id, "digest": d}
            for d in sorted(set(manifest.blob_digests))
        ]
        if blob_rows:
            conn.execute(t.manifest_blobs.insert(), blob_rows)
        child_rows = [{"manifest_id": manifest_id, "child_digest": d} for d in sorted(set(manifest.child_digests))]
        if child_rows:
            conn.execute(t.manifest_children.insert(), child_rows)
        return manifest_id

    async def manifest_by_digest(self, repository: str, digest: str) -> ManifestRow | None:
        row = await self._db.first(self._manifest_by_digest, repository=repository, digest=digest)
        return None if row is None else _manifest_row(row)

    async def manifest_by_tag(self, repository: str, tag: str) -> ManifestRow | None:
        row = await self._db.first(self._manifest_by_tag, repository=repository, tag=tag)
        return None if row is None else _manifest_row(row)

    async def manifest_parents(self, repository: str, digest: str) -> list[str]:
        """Digests of indexes in ``repository`` that list ``digest`` as a child."""
        query = (
            select(t.manifests.c.digest)
            .join(t.manifest_children, t.manifest_children.c.manifest_id == t.manifests.c.id)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifest_children.c.child_digest == digest)
        )
        return await self._db.scalars(query)

    async def delete_manifest(self, repository: str, digest: str) -> list[str]:
        """Remove a manifest and the tags on it; returns those tags. Raises LookupError when absent."""
        async with self._db.writer.begin() as conn:
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
        return [_manifest_row(r) for r in await self._db.rows(query)]

    # Tags

    async def delete_tag(self, repository: str, tag: str) -> str | None:
        """Remove a tag; returns the digest it pointed to, or None when there was no such tag."""
        async with self._db.writer.begin() as conn:
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
            tags = await self._db.scalars(self._all_tags, repository=repository)
            if tags or await self._repositories.repository_id(repository) is not None:
                return tags
            return None
        repository_id = await self._repositories.repository_id(repository)
        if repository_id is None:
            return None
        name = self._db.bytewise(t.tags.c.name)
        query = select(t.tags.c.name).where(t.tags.c.repository_id == repository_id).order_by(name)
        if last:
            query = query.where(name > last)
        if limit is not None:
            query = query.limit(limit)
        return await self._db.scalars(query)

    async def tag_rows(self, repository: str, limit: int, last: str | None) -> list[TagRow] | None:
        """Tags with their manifests, in lexical order after ``last``; None when the repository does not exist."""
        repository_id = await self._repositories.repository_id(repository)
        if repository_id is None:
            return None
        name = self._db.bytewise(t.tags.c.name)
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
        rows = await self._db.rows(query)
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
        return {row.digest: bytes(row.payload) for row in await self._db.rows(query)}

    async def tags_of(self, repository: str, digest: str) -> list[str]:
        query = (
            select(t.tags.c.name)
            .join(t.manifests, t.manifests.c.id == t.tags.c.manifest_id)
            .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
            .where(t.repositories.c.name == repository, t.manifests.c.digest == digest)
            .order_by(t.tags.c.name)
        )
        return await self._db.scalars(query)

    async def tags_by_age(self, repository: str) -> list[TagAge]:
        """The repository's tags, newest push first (retention decides on these)."""
        query = (
            select(t.tags.c.name, t.tags.c.updated_at)
            .join(t.repositories, t.repositories.c.id == t.tags.c.repository_id)
            .where(t.repositories.c.name == repository)
            .order_by(t.tags.c.updated_at.desc(), t.tags.c.name)
        )
        return [TagAge(r.name, r.updated_at) for r in await self._db.rows(query)]

    # Garbage collection (--untagged)

    async def untagged_manifests(self, cutoff: datetime, after: int, limit: int) -> list[UntaggedRow]:
        """Manifests (ids after ``after``) with no tag, pushed before ``cutoff``, that no image index of their
        repository lists and that are not attached (``subject``) to a manifest still in the repository."""
        child = t.manifest_children.alias("child")
        parent = t.manifests.alias("parent")
        subject = t.manifests.alias("subject")
        listed = (
            exists()
            .select_from(child.join(parent, parent.c.id == child.c.manifest_id))
            .where(child.c.child_digest == t.manifests.c.digest, parent.c.repository_id == t.manifests.c.repository_id)
        )
        attached = exists().where(
            subject.c.repository_id == t.manifests.c.repository_id, subject.c.digest == t.manifests.c.subject_digest
        )
        query = (
            select(t.manifests.c.id, t.repositories.c.name, t.manifests.c.digest)
            .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
            .where(
                t.manifests.c.id > after,
                t.manifests.c.created_at < cutoff,
                ~exists().where(t.tags.c.manifest_id == t.manifests.c.id),
                ~listed,
                ~attached,
            )
            .order_by(t.manifests.c.id)
            .limit(limit)
        )
        return [UntaggedRow(r.id, r.name, r.digest) for r in await self._db.rows(query)]

    async def delete_untagged(self, row: UntaggedRow, cutoff: datetime) -> bool:
        """Delete the manifest if, under its blob row's lock, it is still untagged, unlisted and untouched
        since ``cutoff`` (a push of the same bytes touches that row before writing files); False otherwise."""
        async with self._db.writer.begin() as conn:
            if not await self._blobs.untouched_since(conn, row.digest, cutoff):
                return False
            if await conn.scalar(select(t.tags.c.name).where(t.tags.c.manifest_id == row.id).limit(1)) is not None:
                return False
            listed = (
                select(t.manifest_children.c.manifest_id)
                .join(t.manifests, t.manifests.c.id == t.manifest_children.c.manifest_id)
                .join(t.repositories, t.repositories.c.id == t.manifests.c.repository_id)
                .where(t.manifest_children.c.child_digest == row.digest, t.repositories.c.name == row.repository)
                .limit(1)
            )
            if await conn.scalar(listed) is not None:
                return False
            await conn.execute(delete(t.manifest_blobs).where(t.manifest_blobs.c.manifest_id == row.id))
            await conn.execute(delete(t.manifest_children).where(t.manifest_children.c.manifest_id == row.id))
            result = await conn.execute(delete(t.manifests).where(t.manifests.c.id == row.id))
            return bool(result.rowcount)
