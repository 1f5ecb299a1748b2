"""Online garbage collection: blob reservations and tombstones, the indexes its sweeps need, leases for
background jobs, and the history of collection runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(sa.Column("touched_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleting_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE blobs SET touched_at = created_at")
    # Manifests are blobs in storage too (blobs/…/data); until now only layers had rows. The collector keeps
    # bytes that have a row or a manifest, and pushes reserve rows, so give every stored manifest its row.
    op.execute(
        "INSERT INTO blobs (digest, size, created_at, touched_at) "
        "SELECT digest, MIN(size), MIN(created_at), MIN(created_at) FROM manifests "
        "WHERE digest NOT IN (SELECT digest FROM blobs) GROUP BY digest"
    )
    with op.batch_alter_table("blobs") as batch:
        batch.alter_column("touched_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index("ix_repository_blobs_digest", "repository_blobs", ["digest"])
    op.create_index("ix_manifest_blobs_digest", "manifest_blobs", ["digest"])
    op.create_index("ix_manifests_digest", "manifests", ["digest"])
    op.create_index("ix_manifest_children_child_digest", "manifest_children", ["child_digest"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "gc_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("untagged", sa.Boolean, nullable=False),
        sa.Column("grace_seconds", sa.Integer, nullable=False),
        sa.Column("report", sa.Text),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_gc_runs_started_at", "gc_runs", ["started_at"])


def downgrade() -> None:
    op.drop_table("gc_runs")
    op.drop_table("leases")
    op.drop_index("ix_manifest_children_child_digest", "manifest_children")
    op.drop_index("ix_manifests_digest", "manifests")
    op.drop_index("ix_manifest_blobs_digest", "manifest_blobs")
    op.drop_index("ix_repository_blobs_digest", "repository_blobs")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("deleting_at")
        batch.drop_column("touched_at")
