"""``Index``: the SQL index as one value: its ``Database`` and one store per noun (repositories, blobs,
manifests with tags, uploads; leases, collection runs, tag policies and the nodes' shared secrets), plus the
operations on the whole index (clear, counts).

Each store owns its queries (``db/repositories.py``, ``db/blobs.py``, ``db/manifests.py``, ``db/uploads.py``);
rows come back as small frozen dataclasses, so nothing above ``db`` sees SQLAlchemy.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from trustyard.db import tables as t
from trustyard.db.adoptions import AdoptionStore
from trustyard.db.blobs import BlobStore
from trustyard.db.database import Database
from trustyard.db.gc_runs import GcRunStore
from trustyard.db.leases import LeaseStore
from trustyard.db.manifests import ManifestStore
from trustyard.db.policies import PolicyStore
from trustyard.db.repositories import RepositoryStore
from trustyard.db.shared_secrets import SharedSecretStore
from trustyard.db.storage_backends import StorageBackendStore, StoragePlan
from trustyard.db.storage_migrations import MigrationStore
from trustyard.db.uploads import UploadStore
from trustyard.db.workers import WorkerStore


class Index:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.repositories = RepositoryStore(db)
        self.blobs = BlobStore(db, self.repositories)
        self.manifests = ManifestStore(db, self.repositories, self.blobs)
        self.uploads = UploadStore(db, self.repositories, self.blobs)
        self.leases = LeaseStore(db)
        self.gc_runs = GcRunStore(db)
        self.policies = PolicyStore(db)
        self.shared_secrets = SharedSecretStore(db)
        self.migrations = MigrationStore(db)
        self.backends = StorageBackendStore(db)
        self.workers = WorkerStore(db)
        self.adoptions = AdoptionStore(db)

    @property
    def reader(self) -> AsyncEngine:
        return self.db.reader

    @property
    def writer(self) -> AsyncEngine:
        return self.db.writer

    async def dispose(self) -> None:
        await self.db.dispose()

    async def clear(self) -> None:
        """Forget every repository, blob, manifest and tag (before indexing another storage backend).
        Accounts, grants and visibility are kept: they are by name and outlive a storage switch. Upload
        sessions are kept too, with the repositories they name: they remember their backend and finish."""
        async with self.db.writer.begin() as conn:
            await _clear_rows(conn)

    async def switch_storage(self, active: int, fallback: int | None, by: str, *, adopt: bool) -> StoragePlan:
        """Change the storage plan; with ``adopt``, in the same transaction clear the index and begin a
        background adoption of ``active`` (so no request sees the new plan with the old backend's index)."""
        async with self.db.writer.begin() as conn:
            if adopt:
                await _clear_rows(conn)
                await AdoptionStore.start_in(conn, active)
            version = await StorageBackendStore.write_plan(conn, active, fallback, by)
        return StoragePlan(active, fallback, version)

    async def counts(self) -> dict[str, int]:
        """Rows of repositories, blobs, manifests and tags, and ``bytes``: the size of every blob stored."""
        async with self.db.reader.connect() as conn:
            out = {}
            for table in (t.repositories, t.blobs, t.manifests, t.tags):
                out[table.name] = int(await conn.scalar(select(func.count()).select_from(table)) or 0)
            out["bytes"] = int(await conn.scalar(select(func.coalesce(func.sum(t.blobs.c.size), 0))) or 0)
            return out


async def _clear_rows(conn: AsyncConnection) -> None:
    for table in (t.tags, t.manifest_children, t.manifest_blobs, t.manifests, t.repository_blobs, t.blobs):
        await conn.execute(delete(table))
    in_use = select(t.uploads.c.repository_id)
    await conn.execute(delete(t.repositories).where(t.repositories.c.id.not_in(in_use)))
