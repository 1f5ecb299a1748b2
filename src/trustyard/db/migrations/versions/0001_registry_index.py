"""The registry index: repositories, blobs and links, manifests, tags, upload sessions.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DIGEST = sa.String(200)
NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repositories"),
        sa.UniqueConstraint("name", name="uq_repositories_name"),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_blobs"),
    )
    op.create_table(
        "repository_blobs",
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "digest", name="pk_repository_blobs"),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            ondelete="CASCADE",
            name="fk_repository_blobs_repository_id_repositories",
        ),
        sa.ForeignKeyConstraint(["digest"], ["blobs.digest"], name="fk_repository_blobs_digest_blobs"),
    )
    op.create_table(
        "manifests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("artifact_type", sa.String(255)),
        sa.Column("subject_digest", DIGEST),
        sa.Column("annotations", sa.Text),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_manifests"),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            ondelete="CASCADE",
            name="fk_manifests_repository_id_repositories",
        ),
        sa.UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_id_digest"),
    )
    op.create_index("ix_manifests_subject", "manifests", ["repository_id", "subject_digest"])
    op.create_table(
        "manifest_blobs",
        sa.Column("manifest_id", sa.Integer, nullable=False),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.PrimaryKeyConstraint("manifest_id", "digest", name="pk_manifest_blobs"),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifests.id"],
            ondelete="CASCADE",
            name="fk_manifest_blobs_manifest_id_manifests",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id", "digest"],
            ["repository_blobs.repository_id", "repository_blobs.digest"],
            name="fk_manifest_blobs_repository_id_digest_repository_blobs",
        ),
    )
    op.create_index("ix_manifest_blobs_repository_digest", "manifest_blobs", ["repository_id", "digest"])
    op.create_table(
        "manifest_children",
        sa.Column("manifest_id", sa.Integer, nullable=False),
        sa.Column("child_digest", DIGEST, nullable=False),
        sa.PrimaryKeyConstraint("manifest_id", "child_digest", name="pk_manifest_children"),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifests.id"],
            ondelete="CASCADE",
            name="fk_manifest_children_manifest_id_manifests",
        ),
    )
    op.create_table(
        "tags",
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("manifest_id", sa.Integer, nullable=False),
        sa.Column("updated_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "name", name="pk_tags"),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            ondelete="CASCADE",
            name="fk_tags_repository_id_repositories",
        ),
        sa.ForeignKeyConstraint(
            ["manifest_id"], ["manifests.id"], ondelete="CASCADE", name="fk_tags_manifest_id_manifests"
        ),
    )
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("repository_id", sa.Integer, nullable=False),
        sa.Column("storage_key", sa.String(1024), nullable=False),
        sa.Column("token", sa.String(1024), nullable=False),
        sa.Column("parts", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("started_at", NOW, nullable=False),
        sa.Column("updated_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_uploads"),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            ondelete="CASCADE",
            name="fk_uploads_repository_id_repositories",
        ),
    )


def downgrade() -> None:
    for table in ("uploads", "tags", "manifest_children", "manifest_blobs", "manifests", "repository_blobs"):
        op.drop_table(table)
    op.drop_table("blobs")
    op.drop_table("repositories")
