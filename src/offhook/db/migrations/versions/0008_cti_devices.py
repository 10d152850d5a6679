"""CTI devices: route points and ports, virtual devices an application controls.

``cti_route_points`` (a unique name, a DN in a partition, the CSS their
calls are sent on with, ``timeout`` seconds a call waits for the
application, ``default_destination``: where it goes then, "" = busy) and
``cti_ports`` (a unique name, a DN in a partition, a CSS). Existing
databases get both tables empty.

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=False, server_default="")


def upgrade() -> None:
    op.create_table(
        "cti_route_points",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("dn", sa.String(32), nullable=False),
        _text("partition", 64),
        _text("css", 64),
        sa.Column("timeout", sa.Float(), nullable=False, server_default="5"),
        _text("default_destination", 32),
        sa.UniqueConstraint("name", name="uq_cti_route_points_name"),
    )
    op.create_table(
        "cti_ports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("dn", sa.String(32), nullable=False),
        _text("partition", 64),
        _text("css", 64),
        sa.UniqueConstraint("name", name="uq_cti_ports_name"),
    )


def downgrade() -> None:
    op.drop_table("cti_ports")
    op.drop_table("cti_route_points")
