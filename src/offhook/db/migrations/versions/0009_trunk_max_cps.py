"""Trunk call rate: ``trunks.max_cps``, new calls a second a trunk may send.

Over it a trunk's new INVITE is refused with 503 and Retry-After before any
routing (``offhook.net.trunk_admission``); 0 = no limit. Existing trunks get
the default, 100 calls a second (README "Trunks and rate limits").

Revision ID: 0009
Revises: 0008
Create Date: 2027-01-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.add_column(sa.Column("max_cps", sa.Integer(), nullable=False, server_default="100"))


def downgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.drop_column("max_cps")
