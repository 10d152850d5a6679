"""Initial schema: devices, lines, cdrs, plan_meta (plan_version = 0).

Revision ID: 0001
Revises:
Create Date: 2024-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("description", sa.String(255), nullable=False, server_default=""),
        sa.Column("css", sa.String(64), nullable=False, server_default=""),
        sa.Column("realm", sa.String(128), nullable=False, server_default=""),
        sa.Column("ha1_md5", sa.String(32), nullable=False, server_default=""),
        sa.Column("ha1_sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("max_calls", sa.Integer(), nullable=False, server_default="4"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
        sa.UniqueConstraint("name", name="uq_devices_name"),
    )
    op.create_table(
        "lines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "device_id",
            sa.Integer(),
            sa.ForeignKey("devices.id", ondelete="CASCADE", name="fk_lines_device_id"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("dn", sa.String(32), nullable=False),
        sa.Column("partition", sa.String(64), nullable=False, server_default=""),
        sa.Column("display", sa.String(128), nullable=False, server_default=""),
        sa.UniqueConstraint("device_id", "position", name="uq_lines_device_position"),
    )
    op.create_index("ix_lines_dn", "lines", ["dn"])
    op.create_table(
        "cdrs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("calling", sa.String(64), nullable=False, server_default=""),
        sa.Column("called", sa.String(64), nullable=False, server_default=""),
        sa.Column("original_called", sa.String(64), nullable=False, server_default=""),
        sa.Column("calling_device", sa.String(64), nullable=False, server_default=""),
        sa.Column("called_device", sa.String(64), nullable=False, server_default=""),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cause", sa.Integer(), nullable=False, server_default="16"),
        sa.Column("cause_text", sa.String(128), nullable=False, server_default=""),
        sa.Column("node", sa.String(64), nullable=False, server_default=""),
        sa.Column("extra", sa.JSON(), nullable=True),
    )
    op.create_index("ix_cdrs_start", "cdrs", ["start"])
    op.create_index("ix_cdrs_call_id", "cdrs", ["call_id"])
    meta = op.create_table(
        "plan_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False, server_default=""),
    )
    op.bulk_insert(meta, [{"key": "plan_version", "value": "0"}])


def downgrade() -> None:
    op.drop_table("plan_meta")
    op.drop_index("ix_cdrs_call_id", table_name="cdrs")
    op.drop_index("ix_cdrs_start", table_name="cdrs")
    op.drop_table("cdrs")
    op.drop_index("ix_lines_dn", table_name="lines")
    op.drop_table("lines")
    op.drop_table("devices")
