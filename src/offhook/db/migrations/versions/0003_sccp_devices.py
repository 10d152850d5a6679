"""SCCP phones: ``devices.model`` and the ordered ``speed_dials`` of a device.

Revision ID: 0003
Revises: 0002
Create Date: 2024-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("model", sa.String(32), nullable=False, server_default=""))
    op.create_table(
        "speed_dials",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "device_id",
            sa.Integer(),
            sa.ForeignKey("devices.id", ondelete="CASCADE", name="fk_speed_dials_device_id"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("label", sa.String(64), nullable=False, server_default=""),
        sa.UniqueConstraint("device_id", "position", name="uq_speed_dials_device_position"),
    )


def downgrade() -> None:
    op.drop_table("speed_dials")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("model")
