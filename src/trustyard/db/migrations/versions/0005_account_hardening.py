"""Account hardening: read-only app tokens, web sessions held server-side, reserved names of deleted namespaces.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("app_tokens") as batch:
        batch.add_column(sa.Column("read_only", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("created_at", NOW, nullable=False),
        sa.Column("expires_at", NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_web_sessions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE", name="fk_web_sessions_user_id_users"),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_table(
        "reserved_namespaces",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reserved_at", NOW, nullable=False),
        sa.Column("reserved_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_reserved_namespaces"),
    )


def downgrade() -> None:
    op.drop_table("reserved_namespaces")
    op.drop_table("web_sessions")
    with op.batch_alter_table("app_tokens") as batch:
        batch.drop_column("read_only")
