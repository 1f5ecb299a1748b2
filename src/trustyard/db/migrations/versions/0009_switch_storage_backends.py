"""Storage backends by generation, the storage plan, upload sessions that remember their backend, the workers
that ack the plan, and background adoptions (issue 11: atomic switch, background adoption).

The ``runtime_settings`` row "storage" held the sealed settings of the one backend in use; it becomes the
*plan* ``{"active": g, "fallback": null}`` and the settings move to ``storage_backends`` under generation g
(the row's generation, so nothing a worker already serves changes meaning).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_backends",
        sa.Column("generation", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("saved_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("generation", name="pk_storage_backends"),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(300), nullable=False),
        sa.Column("node", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("plan_acked", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )
    op.create_table(
        "storage_adoptions",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("repositories", sa.Integer, nullable=False),
        sa.Column("manifests", sa.Integer, nullable=False),
        sa.Column("tags", sa.Integer, nullable=False),
        sa.Column("blobs", sa.Integer, nullable=False),
        sa.Column("objects_listed", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_storage_adoptions"),
    )
    op.create_index("ix_storage_adoptions_state", "storage_adoptions", ["state"])
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("backend", sa.Integer, nullable=False, server_default="0"))
    _plan_from_settings()


def _plan_from_settings() -> None:
    """Move the stored settings to ``storage_backends`` and leave the plan in their place."""
    conn = op.get_bind()
    row = conn.execute(
        sa.text("SELECT value, generation, updated_at, updated_by FROM runtime_settings WHERE name = 'storage'")
    ).first()
    if row is None:
        return
    conn.execute(
        sa.text("INSERT INTO storage_backends (generation, settings, saved_at, saved_by) VALUES (:g, :s, :at, :by)"),
        {"g": row.generation, "s": row.value, "at": row.updated_at, "by": row.updated_by},
    )
    conn.execute(
        sa.text("UPDATE runtime_settings SET value = :plan WHERE name = 'storage'"),
        {"plan": json.dumps({"active": row.generation, "fallback": None})},
    )


def downgrade() -> None:
    conn = op.get_bind()
    row = conn.execute(sa.text("SELECT value FROM runtime_settings WHERE name = 'storage'")).first()
    if row is not None:
        active = json.loads(row.value).get("active")
        settings = conn.execute(
            sa.text("SELECT settings FROM storage_backends WHERE generation = :g"), {"g": active}
        ).scalar()
        if settings is None:
            conn.execute(sa.text("DELETE FROM runtime_settings WHERE name = 'storage'"))
        else:
            conn.execute(sa.text("UPDATE runtime_settings SET value = :s WHERE name = 'storage'"), {"s": settings})
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("backend")
    op.drop_index("ix_storage_adoptions_state", "storage_adoptions")
    op.drop_table("storage_adoptions")
    op.drop_table("workers")
    op.drop_table("storage_backends")
