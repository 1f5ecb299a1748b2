"""Use cases: every public method takes an ``Actor`` and checks it first; no transaction spans storage I/O.

``Services`` bundles them for the edges; ``app.py`` builds it from settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from trustyard.auth.credential_cache import DEFAULT_SIZE, CredentialCache
from trustyard.auth.secretbox import SecretBox
from trustyard.auth.tokens import TokenAuthority
from trustyard.db.app_tokens import AppTokenStore
from trustyard.db.audit import AuditStore
from trustyard.db.grants import GrantStore
from trustyard.db.health import DatabaseProbe
from trustyard.db.index import Index
from trustyard.db.namespaces import NamespaceStore
from trustyard.db.organizations import OrganizationStore
from trustyard.db.sessions import SessionStore
from trustyard.db.settings import RuntimeSettings
from trustyard.db.teams import TeamStore
from trustyard.db.users import UserStore
from trustyard.db.webhooks import WebhookStore
from trustyard.services.adoption import Adoption
from trustyard.services.app_tokens import AppTokens
from trustyard.services.audit import Audit
from trustyard.services.backends import Backends
from trustyard.services.blobs import Blobs
from trustyard.services.gc import GarbageCollector, GcSchedule, collector_id
from trustyard.services.grants import Grants
from trustyard.services.health import Health
from trustyard.services.info import InfoService, Node
from trustyard.services.lockout import Lockout
from trustyard.services.manifests import Manifests
from trustyard.services.migration import Migrations, StoragePlans
from trustyard.services.namespaces import Namespaces
from trustyard.services.organizations import Organizations
from trustyard.services.password_checks import PasswordChecks
from trustyard.services.permissions import Permissions
from trustyard.services.policies import TagPolicies
from trustyard.services.referrers import Referrers
from trustyard.services.repositories import Repositories
from trustyard.services.retention import Retention
from trustyard.services.sessions import Sessions
from trustyard.services.settings import Settings, StartupStorage
from trustyard.services.storage import StorageAdmin
from trustyard.services.switch import StorageSwitch, WorkerIdentity
from trustyard.services.tags import Tags
from trustyard.services.teams import Teams
from trustyard.services.tokens import Tokens
from trustyard.services.upkeep import Upkeep
from trustyard.services.uploads import Uploads
from trustyard.services.users import Users
from trustyard.services.webhooks import EventSource, Webhooks
from trustyard.storage.switchable import SwitchableDriver

#: One argon2 check at a time per worker: its lanes already use every core, and each check holds 64 MiB.
PASSWORD_CHECKS_PER_WORKER = 1
#: Distinct password checks that may wait their turn per worker (~0.3 s each): past that, a login is told
#: to retry (429) instead of queueing for longer than clients wait (services/password_checks.py).
PASSWORD_CHECKS_WAITING_PER_WORKER = 16


@dataclass(frozen=True)
class Services:
    blobs: Blobs
    uploads: Uploads
    manifests: Manifests
    tags: Tags
    repositories: Repositories
    referrers: Referrers
    storage: StorageAdmin
    users: Users
    organizations: Organizations
    teams: Teams
    grants: Grants
    app_tokens: AppTokens
    namespaces: Namespaces
    permissions: Permissions
    tokens: Tokens
    sessions: Sessions
    audit: Audit
    settings: Settings
    health: Health
    webhooks: Webhooks
    policies: TagPolicies
    gc: GarbageCollector
    info: InfoService
    upkeep: Upkeep
    switch: StorageSwitch
    adoption: Adoption
    migrations: Migrations

    @classmethod
    def create(
        cls,
        index: Index,
        storage: SwitchableDriver,
        *,
        authority: TokenAuthority,
        startup: StartupStorage,
        box: SecretBox,
        source: EventSource,
        gc_schedule: GcSchedule,
        node: Node,
        worker: WorkerIdentity | None,
        basic_auth_cache_ttl: float,
        refresh_tokens: bool,
    ) -> Services:
        """Every service over ``index`` and ``storage``, each given all it works with (app.py is the one
        composition root; tests wire theirs in tests/services/wiring.py). ``authority`` signs registry tokens;
        ``startup`` is the storage the process started with (the storage plan may replace it, see
        services/switch.py); ``box`` seals saved secrets; ``source`` names this node in webhook events;
        ``gc_schedule`` is the configured collection schedule; ``node`` is what this node's settings say of it
        (for ``info``); ``worker`` is this serving worker, or None in a one-off command (it neither heartbeats
        nor acks the storage plan); ``basic_auth_cache_ttl``: how long verified HTTP Basic credentials are
        trusted on /v2/, and a verified password is remembered, without a new check; ``refresh_tokens``:
        whether logins may ask for refresh tokens."""
        backends = Backends(index.backends, box, storage.current, startup.settings, startup.default_root)
        switch = StorageSwitch(index, backends, storage, worker, pinned=startup.pinned_by is not None)
        audit = Audit(AuditStore(index.reader, index.writer))
        users, app_tokens, grants = UserStore(index.db), AppTokenStore(index.db), GrantStore(index.db)
        repository_store = index.repositories
        policies = TagPolicies(index, audit)
        password_checks = PasswordChecks(
            CredentialCache(basic_auth_cache_ttl, DEFAULT_SIZE, time.monotonic),
            PASSWORD_CHECKS_PER_WORKER,
            PASSWORD_CHECKS_WAITING_PER_WORKER,
        )
        namespaces = Namespaces(NamespaceStore(index.db), repository_store, storage, policies, audit)
        permissions = Permissions(grants, repository_store)
        storage_admin = StorageAdmin(index, storage)
        webhooks = Webhooks(WebhookStore(index.reader, index.writer), box, audit, source)
        adoption = Adoption(index, storage_admin, switch, collector_id(), background=worker is not None)
        settings = Settings(index, backends, switch, adoption, startup, audit)
        uploads = Uploads(index, storage, switch, permissions.pullable, webhooks)
        manifests = Manifests(index, storage, policies, audit, webhooks)
        gc = GarbageCollector(
            index,
            switch,
            uploads,
            Retention(index, policies, manifests),
            audit,
            collector_id(),
            RuntimeSettings(index.reader, index.writer),
            gc_schedule,
        )
        return cls(
            blobs=Blobs(index, storage, audit, webhooks),
            uploads=uploads,
            manifests=manifests,
            tags=Tags(index),
            repositories=Repositories(index, policies, storage, audit, permissions.pull_filter),
            referrers=Referrers(index),
            storage=storage_admin,
            users=Users(users, namespaces, audit, password_checks),
            organizations=Organizations(OrganizationStore(index.db), namespaces, audit),
            teams=Teams(TeamStore(index.db), audit),
            grants=Grants(grants, audit),
            app_tokens=AppTokens(app_tokens, audit),
            namespaces=namespaces,
            permissions=permissions,
            tokens=Tokens(
                authority,
                users,
                app_tokens,
                repository_store,
                permissions,
                audit,
                Lockout(audit),
                CredentialCache(basic_auth_cache_ttl, DEFAULT_SIZE, time.monotonic),
                password_checks,
                refresh_tokens=refresh_tokens,
            ),
            sessions=Sessions(SessionStore(index.reader, index.writer), users, permissions),
            audit=audit,
            settings=settings,
            health=Health(DatabaseProbe(index.reader, index.writer), storage),
            webhooks=webhooks,
            policies=policies,
            gc=gc,
            info=InfoService(node, index, settings, gc),
            upkeep=Upkeep(index.leases, uploads, webhooks, collector_id()),
            switch=switch,
            adoption=adoption,
            migrations=Migrations(index, StoragePlans(index, backends, switch, settings), audit, collector_id()),
        )
