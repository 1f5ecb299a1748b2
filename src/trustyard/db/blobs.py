"""``BlobStore``: blob rows and their links into repositories (``blobs``, ``repository_blobs``).

Callers write bytes to storage *before* recording them here, so the index never points at missing bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import String, bindparam, delete, select

from trustyard.db import tables as t
from trustyard.db.database import Database, now
from trustyard.db.repositories import RepositoryStore


class BlobStore:
    def __init__(self, db: Database, repositories: RepositoryStore) -> None:
        self._db = db
        self._repositories = repositories
        # Built once: every blob GET and HEAD runs it (see Database for why reads are prepared).
        repository, digest = (bindparam(name, type_=String()) for name in ("repository", "digest"))
        self._linked_blob_size = (
            select(t.blobs.c.size)
            .join(t.repository_blobs, t.repository_blobs.c.digest == t.blobs.c.digest)
            .join(t.repositories, t.repositories.c.id == t.repository_blobs.c.repository_id)
            .where(t.repositories.c.name == repository, t.blobs.c.digest == digest)
        )

    async def link_blob(self, repository: str, digest: str, size: int) -> None:
        """Record that ``digest`` (already in storage) exists and is linked into ``repository``."""
        async with self._db.writer.begin() as conn:
            repository_id = await self._repositories.ensure(conn, repository)
            await conn.execute(
                self._db.insert_ignore(t.blobs, ["digest"]).values(digest=digest, size=size, created_at=now())
            )
            await conn.execute(
                self._db.insert_ignore(t.repository_blobs, ["repository_id", "digest"]).values(
                    repository_id=repository_id, digest=digest, created_at=now()
                )
            )

    async def linked_blob_size(self, repository: str, digest: str) -> int | None:
        """The blob's size if it is linked into ``repository``, else None."""
        found = await self._db.scalar(self._linked_blob_size, repository=repository, digest=digest)
        return None if found is None else int(found)

    async def blob_size(self, digest: str) -> int | None:
        found = await self._db.scalar(select(t.blobs.c.size).where(t.blobs.c.digest == digest))
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
        found = await self._db.scalar(query)
        return None if found is None else str(found)

    async def unlink_blob(self, repository: str, digest: str) -> bool:
        async with self._db.writer.begin() as conn:
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
        present = set(await self._db.scalars(query))
        return [d for d in wanted if d not in present]
