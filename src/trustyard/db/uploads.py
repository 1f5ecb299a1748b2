"""``UploadStore``: upload sessions (``uploads``): the pieces written so far, so any worker can continue one.

A session's pieces are typed here (``PartPiece``, ``ParkedPiece``) and kept as one JSON list in the row's
``parts`` column; this module is the only place that reads or writes that JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, delete, select, update
from sqlalchemy.engine import Connection

from trustyard.db import tables as t
from trustyard.db.blobs import BlobStore
from trustyard.db.database import Database, now
from trustyard.db.repositories import RepositoryStore


@dataclass(frozen=True, slots=True)
class PartPiece:
    """A part the storage driver wrote (``storage.driver.Part``'s fields), and the running sha256 after it."""

    number: int
    offset: int
    size: int
    etag: str
    hash_state: bytes | None = None  # ``Hasher.state()``; None where it cannot be saved (then: rehash)


@dataclass(frozen=True, slots=True)
class ParkedPiece:
    """Bytes received after the last part, too few for a part of their own yet (object stores' minimum part
    size), kept as a small object at ``key``: always a session's last piece."""

    key: str
    offset: int
    size: int
    hash_state: bytes | None = None


UploadPiece = PartPiece | ParkedPiece


@dataclass(frozen=True, slots=True)
class UploadRow:
    id: str
    repository: str
    storage_key: str
    token: str
    pieces: tuple[UploadPiece, ...]
    size: int
    started_at: datetime
    backend: int = 0  # the storage backend generation holding the session's parts

    @property
    def parts(self) -> list[PartPiece]:
        return [piece for piece in self.pieces if isinstance(piece, PartPiece)]

    @property
    def parked(self) -> ParkedPiece | None:
        last = self.pieces[-1] if self.pieces else None
        return last if isinstance(last, ParkedPiece) else None


def encode_pieces(pieces: Sequence[UploadPiece]) -> str:
    """The ``parts`` column's JSON. Its keys are those sessions were stored with since the first release (a
    session begun before an upgrade continues after it)."""
    return json.dumps([_piece_json(piece) for piece in pieces])


def decode_pieces(text: str) -> tuple[UploadPiece, ...]:
    return tuple(_piece(item) for item in json.loads(text))


#: The running hash after a piece, saved with it (base64 of ``Hasher.state()``).
_HASH_STATE = "sha256_state"


def _piece_json(piece: UploadPiece) -> dict[str, object]:
    out: dict[str, object]
    if isinstance(piece, ParkedPiece):
        out = {"parked": piece.key, "offset": piece.offset, "size": piece.size}
    else:
        out = {"number": piece.number, "offset": piece.offset, "size": piece.size, "etag": piece.etag}
    if piece.hash_state is not None:
        out[_HASH_STATE] = base64.b64encode(piece.hash_state).decode()
    return out


def _piece(item: dict[str, Any]) -> UploadPiece:
    saved = item.get(_HASH_STATE)
    state = None if saved is None else base64.b64decode(saved)
    if "parked" in item:
        return ParkedPiece(item["parked"], item["offset"], item["size"], state)
    return PartPiece(item["number"], item["offset"], item["size"], item["etag"], state)


# A push's writes, built once: building a statement costs several times running it on SQLite (blobs.py).
_CREATE = t.uploads.insert()
_ADVANCE = (
    update(t.uploads)
    .where(
        t.uploads.c.id == bindparam("advance_id", type_=String()),
        t.uploads.c.size == bindparam("advance_expected", type_=t.uploads.c.size.type),
    )
    .values(
        parts=bindparam("advance_parts", type_=t.uploads.c.parts.type),
        size=bindparam("advance_size", type_=t.uploads.c.size.type),
        updated_at=bindparam("advance_at", type_=t.uploads.c.updated_at.type),
    )
)
_CLAIM = delete(t.uploads).where(t.uploads.c.id == bindparam("claim_id", type_=String()))


class UploadStore:
    def __init__(self, db: Database, repositories: RepositoryStore, blobs: BlobStore) -> None:
        self._db = db
        self._repositories = repositories
        self._blobs = blobs
        # Built once: every PATCH and PUT of an upload reads its session (see Database.hot).
        self._upload = db.hot(
            select(t.uploads, t.repositories.c.name)
            .join(t.repositories, t.repositories.c.id == t.uploads.c.repository_id)
            .where(
                t.uploads.c.id == bindparam("upload_id", type_=String()),
                t.repositories.c.name == bindparam("repository", type_=String()),
            )
        )

    async def create_upload(self, upload: UploadRow) -> None:
        def create(conn: Connection) -> None:
            repository_id = self._repositories.ensure(conn, upload.repository)
            row = {
                "id": upload.id,
                "repository_id": repository_id,
                "storage_key": upload.storage_key,
                "token": upload.token,
                "parts": encode_pieces(upload.pieces),
                "size": upload.size,
                "started_at": upload.started_at,
                "updated_at": upload.started_at,
                "backend": upload.backend,
            }
            conn.execute(_CREATE, row)

        await self._db.write(create)

    async def upload(self, repository: str, upload_id: str) -> UploadRow | None:
        row = await self._db.first(self._upload, upload_id=upload_id, repository=repository)
        if row is None:
            return None
        return UploadRow(
            id=row.id,
            repository=row.name,
            storage_key=row.storage_key,
            token=row.token,
            pieces=decode_pieces(row.parts),
            size=row.size,
            started_at=row.started_at,
            backend=row.backend,
        )

    async def advance_upload(
        self, upload_id: str, expected_size: int, pieces: Sequence[UploadPiece], size: int
    ) -> bool:
        """Record the session's pieces if nobody else advanced the upload since we read it (optimistic check)."""
        values = {
            "advance_id": upload_id,
            "advance_expected": expected_size,
            "advance_parts": encode_pieces(pieces),
            "advance_size": size,
            "advance_at": now(),
        }
        return await self._db.write(lambda conn: bool(conn.execute(_ADVANCE, values).rowcount))

    async def begin_upload(self, upload_id: str, token: str) -> bool:
        """Record the driver's ``token`` for a session whose storage upload began only with its first part
        (object stores: ``Uploads.start``); False when another request began it first."""
        query = (
            update(t.uploads)
            .where(t.uploads.c.id == upload_id, t.uploads.c.token == "")
            .values(token=token, updated_at=now())
        )
        return await self._db.write(lambda conn: bool(conn.execute(query).rowcount))

    async def delete_upload(self, upload_id: str) -> bool:
        """Remove an upload session; False when it was already gone (another request claimed it)."""
        return await self._db.write(lambda conn: self.claim(conn, upload_id))

    async def claim_and_reserve(self, upload_id: str, digest: str, size: int) -> tuple[bool, bool]:
        """Claim the session (``delete_upload``) and, if that succeeded, reserve its blob
        (``BlobStore.reserve_blob``), in one transaction: (claimed, reserved). Only for a blob whose digest
        is already verified: a reservation records the blob's size."""

        def claim_and_reserve(conn: Connection) -> tuple[bool, bool]:
            if not self.claim(conn, upload_id):
                return False, False
            return True, self._blobs.reserve(conn, digest, size)

        return await self._db.write(claim_and_reserve)

    @staticmethod
    def claim(conn: Connection, upload_id: str) -> bool:
        """In the caller's transaction: delete the session's row; False when another request did first."""
        return bool(conn.execute(_CLAIM, {"claim_id": upload_id}).rowcount)

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
            UploadRow(r.id, r.name, r.storage_key, r.token, decode_pieces(r.parts), r.size, r.started_at, r.backend)
            for r in rows
        ]
