"""SQLAlchemy Core tables of the SQL index. Migrations in ``migrations/`` create exactly these.

Invariants live in constraints: a tag names a manifest of its own repository, a manifest's blobs are linked
into its repository (``manifest_blobs`` → ``repository_blobs``), a link names a known blob.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

DIGEST = String(200)  # "sha512:" + 128 hex fits with room

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Garbage collection (docs/architecture.md, "Online garbage collection"): every push that makes the blob
    # referenced touches the row first; the collector tombstones (deleting_at) only rows untouched for the
    # grace window, and nothing references a tombstoned row.
    Column("touched_at", DateTime(timezone=True), nullable=False),
    Column("deleting_at", DateTime(timezone=True)),
)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),  # refreshed by every push that links it
    Index("ix_repository_blobs_digest", "digest"),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("artifact_type", String(255)),
    Column("subject_digest", DIGEST),
    Column("annotations", Text),  # JSON object or NULL, for referrers descriptors
    Column("payload", LargeBinary, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("repository_id", "digest"),
    Index("ix_manifests_subject", "repository_id", "subject_digest"),
    Index("ix_manifests_digest", "digest"),
)

manifest_blobs = Table(
    "manifest_blobs",
    metadata,
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("repository_id", Integer, nullable=False),
    Column("digest", DIGEST, primary_key=True),
    ForeignKeyConstraint(["repository_id", "digest"], ["repository_blobs.repository_id", "repository_blobs.digest"]),
    Index("ix_manifest_blobs_repository_digest", "repository_id", "digest"),
    Index("ix_manifest_blobs_digest", "digest"),
)

manifest_children = Table(
    "manifest_children",
    metadata,
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("child_digest", DIGEST, primary_key=True),
    Index("ix_manifest_children_child_digest", "child_digest"),
)

tags = Table(
    "tags",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("pushed_by", String(64)),  # the user who pushed the tag; NULL when indexed from storage
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("repository_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("storage_key", String(1024), nullable=False),
    Column("token", String(1024), nullable=False),
    Column("parts", Text, nullable=False),  # JSON list of the driver's parts written so far
    Column("size", BigInteger, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The storage backend generation the session's parts are on (0: the startup storage), migration 0010.
    Column("backend", Integer, nullable=False, server_default="0"),
)

# Accounts, grants, app tokens, repository visibility, audit (migration 0002).

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(255)),  # NULL: no password login (app tokens only)
    Column("admin", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("organization_id", Integer, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("organization_id", "name"),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_team_members_user_id", "user_id"),
)

grants = Table(
    "grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE")),
    Column("target", String(255), nullable=False),  # repository name, or namespace when namespace is true
    Column("namespace", Boolean, nullable=False),
    Column("role", Integer, nullable=False),  # auth.policy.Role
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_grants_user_id", "user_id"),
    Index("ix_grants_team_id", "team_id"),
)

app_tokens = Table(
    "app_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("read_only", Boolean, nullable=False, server_default=false()),  # pull only (migration 0005)
    UniqueConstraint("user_id", "name"),
)

repository_settings = Table(
    "repository_settings",
    metadata,
    Column("name", String(255), primary_key=True),  # by name: visibility may be set before the first push
    Column("public", Boolean, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("source", String(64)),
    Column("action", String(64), nullable=False),
    Column("target", String(512), nullable=False),
    Column("detail", Text),  # JSON object: what changed
    Index("ix_audit_events_at", "at"),
    Index("ix_audit_events_action_actor_at", "action", "actor", "at"),
    Index("ix_audit_events_action_source_at", "action", "source", "at"),
)

# Runtime settings edited in the UI, the admin API and the CLI (migration 0003).

runtime_settings = Table(
    "runtime_settings",
    metadata,
    Column("name", String(64), primary_key=True),  # e.g. "storage"
    Column("value", Text, nullable=False),  # JSON; secrets inside are sealed (auth.secretbox)
    Column("generation", Integer, nullable=False),  # +1 on every change: workers poll it to pick changes up
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False),
)

# Web sessions held server-side, and names of deleted namespaces (migration 0005).

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the secret in the cookie, never the secret
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_web_sessions_user_id", "user_id"),
)

reserved_namespaces = Table(
    "reserved_namespaces",
    metadata,
    Column("name", String(64), primary_key=True),  # a deleted user's or organization's name
    Column("kind", String(16), nullable=False),  # "user" or "organization"
    Column("reserved_at", DateTime(timezone=True), nullable=False),
    Column("reserved_by", String(64), nullable=False),
)

# Background jobs and garbage collection (migration 0007).

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),  # the job, e.g. "gc"
    Column("holder", String(128), nullable=False),  # who holds it: host, pid and a random id
    Column("expires_at", DateTime(timezone=True), nullable=False),  # the holder renews before this
)

gc_runs = Table(
    "gc_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # running, succeeded, failed
    Column("started_by", String(64), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("untagged", Boolean, nullable=False),
    Column("grace_seconds", Integer, nullable=False),
    Column("report", Text),  # JSON: what the run removed (or would remove), see services/gc.GcReport
    Column("error", Text),
    Index("ix_gc_runs_started_at", "started_at"),
)

# Tag policies per repository pattern (migration 0008).

tag_policies = Table(
    "tag_policies",
    metadata,
    Column("pattern", String(255), primary_key=True),  # team/app, team/*, team/**, **
    Column("immutable", Boolean, nullable=False),  # tags, once pushed, never move and are never deleted
    Column("keep_last", Integer),  # retention: keep the newest N tags ...
    Column("keep_days", Integer),  # ... and those pushed within D days ...
    Column("keep_tags", String(255)),  # ... and those matching this glob; the rest go before collection
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False),
)

# Secrets the nodes share, sealed with the operator's secret key (migration 0009).

shared_secrets = Table(
    "shared_secrets",
    metadata,
    Column("name", String(64), primary_key=True),  # "token_key", "session_key"
    Column("sealed", Text, nullable=False),  # SecretBox.seal of the value: never stored in the clear
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=False),  # the node (host and pid) that created it
)

# Storage backends by generation, the workers acking the storage plan, background adoptions (migration 0010).

storage_backends = Table(
    "storage_backends",
    metadata,
    Column("generation", Integer, primary_key=True, autoincrement=False),  # 0 is the startup storage, never here
    Column("settings", Text, nullable=False),  # sealed JSON (services/backends.seal)
    Column("saved_at", DateTime(timezone=True), nullable=False),
    Column("saved_by", String(64), nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(300), primary_key=True),  # "<node>:<pid>"
    Column("node", String(255), nullable=False),  # the public address, else host name and port
    Column("pid", Integer, nullable=False),
    Column("version", String(64), nullable=False),  # trustyard's version
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),  # heartbeat
    Column("plan_acked", Integer, nullable=False),  # the storage plan version the worker serves
)

storage_adoptions = Table(
    "storage_adoptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("generation", Integer, nullable=False),  # the backend being indexed
    Column("state", String(16), nullable=False),  # running, done, failed, superseded
    Column("repositories", Integer, nullable=False),
    Column("manifests", Integer, nullable=False),
    Column("tags", Integer, nullable=False),
    Column("blobs", Integer, nullable=False),
    Column("objects_listed", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("error", Text),
    Index("ix_storage_adoptions_state", "state"),
)

# Online migrations between storage backends (migration 0011, services/migration.py).

storage_migrations = Table(
    "storage_migrations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", Integer, nullable=False),  # storage backend generation copied from
    Column("target", Integer, nullable=False),  # ... and to
    Column("state", String(16), nullable=False),  # copying, switching, cancelling; done, failed, cancelled
    Column("phase", String(16), nullable=False),  # blobs, links, done: where the copy is
    Column("cursor", String(512), nullable=False),  # the last key done in the phase (keyset order), "" at its start
    Column("objects_total", BigInteger, nullable=False),
    Column("bytes_total", BigInteger, nullable=False),
    Column("objects_done", BigInteger, nullable=False),  # copied, or found already there and verified
    Column("bytes_done", BigInteger, nullable=False),
    Column("verified", BigInteger, nullable=False),  # objects whose digest (blobs) or body (links) was checked
    Column("failed", BigInteger, nullable=False),  # objects missing from the source or not matching their digest
    Column("started_by", String(64), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("report", Text),  # JSON: services/migration.MigrationReport
    Column("error", Text),
)
