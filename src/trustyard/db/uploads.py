"""``UploadStore``: upload sessions (``uploads``): the driver's parts so far, so any worker can continue one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from trustyard.db import tables as t
from trustyard.db.database import Database, now
from trustyard.db.repositories import RepositoryStore


@dataclass(frozen=True, slots=True)
class UploadRow:
    id: str
    repository: str
    storage_key: str
    token: str
    parts: list[dict[str, Any]]
    size: int
    started_at: datetime
    backend: int = 0  # the storage backend generation holding the session's parts


class UploadStore:
    def __init__(self, db: Database, repositories: RepositoryStore) -> None:
        self._db = db
        self._repositories = repositories

    async def create_upload(self, upload: UploadRow) -> None:
        async with self._db.writer.begin() as conn:
            repository_id = await self._repositories.ensure(conn, upload.repository)
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
                    backend=upload.backend,
                )
            )

    async def upload(self, repository: str, upload_id: str) -> UploadRow | None:
        query = (
            select(t.uploads, t.repositories.c.name)
            .join(t.repositories, t.repositories.c.id == t.uploads.c.repository_id)
            .where(t.uploads.c.id == upload_id, t.repositories.c.name == repository)
        )
        row = await self._db.first(query)
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
            backend=row.backend,
        )

    async def advance_upload(self, upload_id: str, expected_size: int, parts: list[dict[str, Any]], size: int) -> bool:
        """Record new parts if nobody else advanced the upload since we read it (optimistic check)."""
        async with self._db.writer.begin() as conn:
            result = await conn.execute(
                update(t.uploads)
                .where(t.uploads.c.id == upload_id, t.uploads.c.size == expected_size)
                .values(parts=json.dumps(parts), size=size, updated_at=now())
            )
            return bool(result.rowcount)

    async def delete_upload(self, upload_id: str) -> bool:
        """Remove an upload session; False when it was already gone (another request claimed it)."""
        async with self._db.writer.begin() as conn:
            result = await conn.execute(delete(t.uploads).where(t.uploads.c.id == upload_id))
            return bool(result.rowcount)

    async def tokens_in_use(self, tokens: list[str]) -> set[str]:
        """Which of the drivers' upload ``tokens`` a session still names."""
        if not tokens:
            return set()
        return set(await self._db.scalars(select(t.uploads.c.token).where(t.uploads.c.token.in_(tokens))))

    async def stale_uploads(self, older_than: datetime) -> list[UploadRow]:
        query = (
            select(t.uploads, t.repositories.c.name)
            .join(t.repositories, t.repositories.c.id == t.uploads.c.repository_id)
            .where(t.uploads.c.updated_at < older_than)
        )
        rows = await self._db.rows(query)
        return [
            UploadRow(r.id, r.name, r.storage_key, r.token, json.loads(r.parts), r.size, r.started_at, r.backend)
            for r in rows
        ]
