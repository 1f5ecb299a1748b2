"""Tag policies per repository pattern: immutable tags and retention rules.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tag_policies",
        sa.Column("pattern", sa.String(255), primary_key=True),
        sa.Column("immutable", sa.Boolean, nullable=False),
        sa.Column("keep_last", sa.Integer),
        sa.Column("keep_days", sa.Integer),
        sa.Column("keep_tags", sa.String(255)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tag_policies")
