"""Use cases: every public method takes an ``Actor`` and checks it first; no transaction spans storage I/O.

``Services`` bundles them for the edges; ``app.py`` builds it from settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustyard.db.index import Index
from trustyard.services.blobs import Blobs
from trustyard.services.manifests import Manifests
from trustyard.services.referrers import Referrers
from trustyard.services.repositories import Repositories
from trustyard.services.storage import StorageAdmin
from trustyard.services.tags import Tags
from trustyard.services.uploads import Uploads
from trustyard.storage.driver import StorageDriver


@dataclass(frozen=True)
class Services:
    blobs: Blobs
    uploads: Uploads
    manifests: Manifests
    tags: Tags
    repositories: Repositories
    referrers: Referrers
    storage: StorageAdmin

    @classmethod
    def create(cls, index: Index, storage: StorageDriver) -> Services:
        return cls(
            blobs=Blobs(index, storage),
            uploads=Uploads(index, storage),
            manifests=Manifests(index, storage),
            tags=Tags(index),
            repositories=Repositories(index),
            referrers=Referrers(index),
            storage=StorageAdmin(index, storage),
        )
