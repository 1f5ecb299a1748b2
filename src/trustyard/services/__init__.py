"""Use cases: every public method takes an ``Actor`` and checks it first; no transaction spans storage I/O.

``Services`` bundles them for the edges; ``app.py`` builds it from settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustyard.auth.tokens import TokenAuthority, ephemeral_authority
from trustyard.db.accounts import AccountStore
from trustyard.db.audit import AuditStore
from trustyard.db.index import Index
from trustyard.db.repositories import RepositoryStore
from trustyard.services.accounts import Accounts
from trustyard.services.audit import Audit
from trustyard.services.blobs import Blobs
from trustyard.services.manifests import Manifests
from trustyard.services.referrers import Referrers
from trustyard.services.repositories import Repositories
from trustyard.services.storage import StorageAdmin
from trustyard.services.tags import Tags
from trustyard.services.tokens import Tokens
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
    accounts: Accounts
    tokens: Tokens
    audit: Audit

    @classmethod
    def create(cls, index: Index, storage: StorageDriver, authority: TokenAuthority | None = None) -> Services:
        """``authority`` signs registry tokens; without one (tests, one-off commands) a throwaway key does."""
        audit = Audit(AuditStore(index.reader, index.writer))
        account_store = AccountStore(index.reader, index.writer)
        repository_store = RepositoryStore(index.reader, index.writer)
        accounts = Accounts(account_store, repository_store, audit)
        return cls(
            blobs=Blobs(index, storage, audit),
            uploads=Uploads(index, storage),
            manifests=Manifests(index, storage, audit),
            tags=Tags(index),
            repositories=Repositories(index, repository_store, storage, audit, accounts.pullable),
            referrers=Referrers(index),
            storage=StorageAdmin(index, storage),
            accounts=accounts,
            tokens=Tokens(authority or ephemeral_authority(), account_store, repository_store, accounts, audit),
            audit=audit,
        )
