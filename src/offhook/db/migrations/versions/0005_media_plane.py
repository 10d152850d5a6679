"""The media plane: music on hold sources, meet-me numbers, media resource groups
and lists, and the columns that choose them (``devices.moh_source``,
``devices.media_resource_list``, ``lines.moh_source``; see ``offhook.db.models``).

Existing rows get "" in the new columns: no music on hold source of their own
(``default``) and no media resource list (the embedded media server), which is
what a plan without these keys means.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _ordered_members(table: str, parent: str, fk: str, column: str) -> None:
    """A member table: ``column`` values of a ``parent`` row, by position."""
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            fk,
            sa.Integer(),
            sa.ForeignKey(f"{parent}.id", ondelete="CASCADE", name=f"fk_{table}_{fk}"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(column, sa.String(64), nullable=False),
        sa.UniqueConstraint(fk, "position", name=f"uq_{table}_{fk.removesuffix('_id')}_position"),
    )


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("moh_source", sa.String(64), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("media_resource_list", sa.String(64), nullable=False, server_default="")
        )
    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("moh_source", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        "moh_sources",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("path", sa.String(4096), nullable=False),
        sa.UniqueConstraint("name", name="uq_moh_sources_name"),
    )
    op.create_table(
        "meetme_numbers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("partition", sa.String(64), nullable=False, server_default=""),
        sa.Column("pin", sa.String(16), nullable=False, server_default=""),
        sa.Column("max_parties", sa.Integer(), nullable=False, server_default="32"),
        sa.UniqueConstraint("number", "partition", name="uq_meetme_numbers_number_partition"),
    )
    op.create_table(
        "media_resource_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.UniqueConstraint("name", name="uq_media_resource_groups_name"),
    )
    _ordered_members("media_resource_group_members", "media_resource_groups", "group_id", "server")
    op.create_table(
        "media_resource_lists",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.UniqueConstraint("name", name="uq_media_resource_lists_name"),
    )
    _ordered_members(
        "media_resource_list_members", "media_resource_lists", "list_id", "media_resource_group"
    )


def downgrade() -> None:
    op.drop_table("media_resource_list_members")
    op.drop_table("media_resource_lists")
    op.drop_table("media_resource_group_members")
    op.drop_table("media_resource_groups")
    op.drop_table("meetme_numbers")
    op.drop_table("moh_sources")
    # Not batch mode: on SQLite it copies ``devices`` and drops the old table,
    # and with foreign keys on that drop cascades to every line and speed
    # dial. ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later) keeps them.
    op.drop_column("lines", "moh_source")
    op.drop_column("devices", "media_resource_list")
    op.drop_column("devices", "moh_source")
