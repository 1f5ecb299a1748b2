"""``BlobStore``: blob rows and their links into repositories (``blobs``, ``repository_blobs``), and the
queries garbage collection sweeps them with.

Callers *reserve* a blob (``reserve_blob``) before they write its bytes and record the link (``link_blob``)
after, so the index never points at missing bytes and the collector never deletes bytes a push is about to
reference: the protocol is in docs/architecture.md, "Online garbage collection".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import String, bindparam, delete, exists, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from trustyard.db import tables as t
from trustyard.db.database import Database, now
from trustyard.db.repositories import RepositoryStore
from trustyard.errors import BlobCollected


@dataclass(frozen=True, slots=True)
class BlobRow:
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class LinkRow:
    repository_id: int
    repository: str
    digest: str


#: ``BlobStore.touch``, built once (see ``BlobStore.__init__``).
_TOUCH = (
    update(t.blobs)
    .where(t.blobs.c.digest == bindparam("touch_digest", type_=String()), t.blobs.c.deleting_at.is_(None))
    .values(touched_at=bindparam("touch_at", type_=t.blobs.c.touched_at.type))
)


class BlobStore:
    def __init__(self, db: Database, repositories: RepositoryStore) -> None:
        self._db = db
        self._repositories = repositories
        # Built once: every blob GET and HEAD runs it (see Database for why reads are prepared).
        repository, digest = (bindparam(name, type_=String()) for name in ("repository", "digest"))
        self._linked_blob_size = self._db.hot(
            select(t.blobs.c.size)
            .join(t.repository_blobs, t.repository_blobs.c.digest == t.blobs.c.digest)
            .join(t.repositories, t.repositories.c.id == t.repository_blobs.c.repository_id)
            .where(t.repositories.c.name == repository, t.blobs.c.digest == digest)
        )
        # Built once too: a push writes these; building an upsert costs ~4x running it (~200 vs ~55 µs).
        reserve = self._db.upsert(t.blobs)
        self._reserve = reserve.on_conflict_do_update(
            index_elements=["digest"],
            set_={"touched_at": reserve.excluded.touched_at},
            where=t.blobs.c.deleting_at.is_(None),
        ).returning(t.blobs.c.digest)
        link = self._db.upsert(t.repository_blobs)
        self._link = link.on_conflict_do_update(
            index_elements=["repository_id", "digest"], set_={"created_at": link.excluded.created_at}
        )

    async def reserve_blob(self, digest: str, size: int) -> bool:
        """Announce that a push is about to write ``digest``'s bytes: the collector leaves the blob alone for
        the grace window from now. False when the collector is deleting the blob at this moment (see
        ``services/reservations.py`` for what a push does then)."""
        return await self._db.write(lambda conn: self.reserve(conn, digest, size))

    def reserve(self, conn: Connection, digest: str, size: int) -> bool:
        """``reserve_blob`` in the caller's transaction (``Database.write``)."""
        at = now()
        row = {"digest": digest, "size": size, "created_at": at, "touched_at": at}
        return conn.execute(self._reserve, row).first() is not None

    @staticmethod
    def touch(conn: Connection, digest: str) -> None:
        """In the caller's transaction (``Database.write``): mark a reserved blob as referenced now. Raises
        ``BlobCollected`` when the collector took it since the reservation (the push outlasted the grace
        window)."""
        result = conn.execute(_TOUCH, {"touch_digest": digest, "touch_at": now()})
        if not result.rowcount:
            raise BlobCollected(f"blob {digest} was garbage-collected while it was pushed; push it again")

    async def link_blob(self, repository: str, digest: str, size: int) -> None:
        """Record that ``digest`` (reserved, and now in storage) is linked into ``repository``. ``size`` is
        checked by the reservation; kept for callers."""

        def link(conn: Connection) -> None:
            repository_id = self._repositories.ensure(conn, repository)
            self.touch(conn, digest)
            conn.execute(self._link, {"repository_id": repository_id, "digest": digest, "created_at": now()})

        await self._db.write(link)

    async def linked_blob_size(self, repository: str, digest: str) -> int | None:
        """The blob's size if it is linked into ``repository``, else None."""
        found = await self._db.scalar(self._linked_blob_size, repository=repository, digest=digest)
        return None if found is None else int(found)

    async def repositories_linking(self, digest: str, limit: int) -> list[str]:
        """Up to ``limit`` repositories the blob is linked into, in byte order (a mount without ``from``)."""
        query = (
            select(t.repositories.c.name)
            .join(t.repository_blobs, t.repository_blobs.c.repository_id == t.repositories.c.id)
            .where(t.repository_blobs.c.digest == digest)
            .order_by(self._db.bytewise(t.repositories.c.name))
            .limit(limit)
        )
        return await self._db.scalars(query)

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

    # Garbage collection. Candidates are read in pages (keyset on the digest), so a sweep streams.

    async def collectable_blobs(
        self, cutoff: datetime, after: str, limit: int, *, stale_links: bool = False
    ) -> list[BlobRow]:
        """Blobs after ``after`` that nothing references: no repository link, no manifest with that digest,
        not reserved or linked since ``cutoff``. A page; ``tombstone_blobs`` re-checks each under a lock.
        With ``stale_links`` (a dry run, which removes no links), links that collection would remove first
        (made before ``cutoff``, unused) do not count as references."""
        conditions = self._unreferenced(cutoff)
        if stale_links:
            used = exists().where(
                t.manifest_blobs.c.repository_id == t.repository_blobs.c.repository_id,
                t.manifest_blobs.c.digest == t.repository_blobs.c.digest,
            )
            live = exists().where(
                t.repository_blobs.c.digest == t.blobs.c.digest, (t.repository_blobs.c.created_at >= cutoff) | used
            )
            conditions = [conditions[0], conditions[1], ~live, conditions[3]]
        query = (
            select(t.blobs.c.digest, t.blobs.c.size)
            .where(t.blobs.c.digest > after, *conditions)
            .order_by(t.blobs.c.digest)
            .limit(limit)
        )
        return [BlobRow(r.digest, r.size) for r in await self._db.rows(query)]

    def _unreferenced(self, cutoff: datetime) -> list[ColumnElement[bool]]:
        return [
            t.blobs.c.deleting_at.is_(None),
            t.blobs.c.touched_at < cutoff,
            ~exists().where(t.repository_blobs.c.digest == t.blobs.c.digest),
            ~exists().where(t.manifests.c.digest == t.blobs.c.digest),
        ]

    async def tombstone_blobs(self, digests: Sequence[str], cutoff: datetime) -> list[BlobRow]:
        """Mark those of ``digests`` that are still unreferenced as being deleted; returns them. One
        conditional UPDATE: a push that touched a row meanwhile holds its lock or has committed a fresh
        ``touched_at``, so the row no longer matches; from now on every push waits or fails on it."""
        if not digests:
            return []
        statement = (
            update(t.blobs)
            .where(t.blobs.c.digest.in_(list(digests)), *self._unreferenced(cutoff))
            .values(deleting_at=now())
            .returning(t.blobs.c.digest, t.blobs.c.size)
        )
        async with self._db.writer.begin() as conn:
            return [BlobRow(r.digest, r.size) for r in (await conn.execute(statement)).all()]

    async def tombstoned_blobs(self, limit: int) -> list[BlobRow]:
        """Blobs marked as being deleted (by this run, or by a collector that died mid-way)."""
        query = (
            select(t.blobs.c.digest, t.blobs.c.size)
            .where(t.blobs.c.deleting_at.is_not(None))
            .order_by(t.blobs.c.digest)
            .limit(limit)
        )
        return [BlobRow(r.digest, r.size) for r in await self._db.rows(query)]

    async def forget_blobs(self, digests: Sequence[str]) -> None:
        """Drop tombstoned rows whose bytes are deleted; a push waiting on them goes on."""
        if not digests:
            return
        async with self._db.writer.begin() as conn:
            await conn.execute(
                delete(t.blobs).where(t.blobs.c.digest.in_(list(digests)), t.blobs.c.deleting_at.is_not(None))
            )

    async def known_blobs(self, digests: Sequence[str]) -> set[str]:
        """Which of ``digests`` have a row (a live, reserved or tombstoned blob)."""
        if not digests:
            return set()
        return set(await self._db.scalars(select(t.blobs.c.digest).where(t.blobs.c.digest.in_(list(digests)))))

    async def claim_orphan(self, digest: str, size: int) -> bool:
        """Tombstone bytes found in storage without a row, so a push reserving them meanwhile waits for the
        delete; False when a row appeared (a push reserved them) or a manifest names the digest."""
        at = now()
        async with self._db.writer.begin() as conn:
            if await conn.scalar(select(t.manifests.c.id).where(t.manifests.c.digest == digest).limit(1)):
                return False
            statement = (
                self._db.insert_ignore(t.blobs, ["digest"])
                .values(digest=digest, size=size, created_at=at, touched_at=at, deleting_at=at)
                .returning(t.blobs.c.digest)
            )
            return (await conn.execute(statement)).first() is not None

    async def stale_links(self, cutoff: datetime, after: tuple[int, str], limit: int) -> list[LinkRow]:
        """Repository links after ``after`` (repository id, digest) made before ``cutoff`` that no manifest of
        their repository references: blobs pushed or mounted and never used."""
        used = exists().where(
            t.manifest_blobs.c.repository_id == t.repository_blobs.c.repository_id,
            t.manifest_blobs.c.digest == t.repository_blobs.c.digest,
        )
        query = (
            select(t.repository_blobs.c.repository_id, t.repositories.c.name, t.repository_blobs.c.digest)
            .join(t.repositories, t.repositories.c.id == t.repository_blobs.c.repository_id)
            .where(
                tuple_(t.repository_blobs.c.repository_id, t.repository_blobs.c.digest) > tuple_(*after),
                t.repository_blobs.c.created_at < cutoff,
                ~used,
            )
            .order_by(t.repository_blobs.c.repository_id, t.repository_blobs.c.digest)
            .limit(limit)
        )
        return [LinkRow(r.repository_id, r.name, r.digest) for r in await self._db.rows(query)]

    async def touch_blob(self, digest: str) -> bool:
        """Mark a live blob as referenced now (a mount, before it writes its link file); False when the blob
        is gone or being collected."""
        try:
            await self._db.write(lambda conn: self.touch(conn, digest))
        except BlobCollected:
            return False
        return True

    async def untouched_since(self, conn: AsyncConnection, digest: str, cutoff: datetime) -> bool:
        """In the caller's transaction: lock the blob's row and tell whether no push reserved or referenced it
        since ``cutoff`` (pushes touch the row before they write a file that names it)."""
        touched = await conn.scalar(select(t.blobs.c.touched_at).where(t.blobs.c.digest == digest).with_for_update())
        return touched is None or _aware(touched) < cutoff

    async def remove_stale_links(self, links: Sequence[LinkRow], cutoff: datetime) -> set[tuple[int, str]]:
        """Delete those of ``links`` still stale: their blob untouched and the link not made again since
        ``cutoff``, and unused; returns the (repository id, digest) of those deleted. One transaction holding
        the blob rows' locks; a manifest inserted concurrently that uses a link makes the foreign key refuse
        its delete: then the page is retried link by link and that link stays."""
        try:
            return await self._remove_stale(links, cutoff)
        except IntegrityError:
            removed: set[tuple[int, str]] = set()
            for link in links:
                try:
                    removed |= await self._remove_stale([link], cutoff)
                except IntegrityError:
                    continue
            return removed

    async def _remove_stale(self, links: Sequence[LinkRow], cutoff: datetime) -> set[tuple[int, str]]:
        used = exists().where(
            t.manifest_blobs.c.repository_id == t.repository_blobs.c.repository_id,
            t.manifest_blobs.c.digest == t.repository_blobs.c.digest,
        )
        removed = set()
        async with self._db.writer.begin() as conn:
            digests = sorted({link.digest for link in links})
            locked = select(t.blobs.c.digest, t.blobs.c.touched_at).where(t.blobs.c.digest.in_(digests))
            fresh = {r.digest for r in await conn.execute(locked.with_for_update()) if _aware(r.touched_at) >= cutoff}
            for link in links:
                if link.digest in fresh:
                    continue
                statement = delete(t.repository_blobs).where(
                    t.repository_blobs.c.repository_id == link.repository_id,
                    t.repository_blobs.c.digest == link.digest,
                    t.repository_blobs.c.created_at < cutoff,
                    ~used,
                )
                if (await conn.execute(statement)).rowcount:
                    removed.add((link.repository_id, link.digest))
        return removed


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored in UTC); PostgreSQL aware ones."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
