"""Auto-registered SCCP phones: the DN each one was given, kept across restarts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auto_registrations",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("dn", sa.String(32), nullable=False),
        sa.Column("model", sa.String(32), nullable=False, server_default=""),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dn", name="uq_auto_registrations_dn"),
    )


def downgrade() -> None:
    op.drop_table("auto_registrations")
