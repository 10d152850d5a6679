"""The dial plan: partitions, calling search spaces, trunks, route groups and
lists, route and translation patterns (see ``offhook.db.models``).

Revision ID: 0002
Revises: 0001
Create Date: 2024-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _transforms() -> list[sa.Column[object]]:
    return [
        sa.Column("called_transform", sa.JSON(), nullable=False),
        sa.Column("calling_transform", sa.JSON(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "partitions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        sa.UniqueConstraint("name", name="uq_partitions_name"),
    )
    op.create_table(
        "calling_search_spaces",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.UniqueConstraint("name", name="uq_calling_search_spaces_name"),
    )
    op.create_table(
        "css_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "css_id",
            sa.Integer(),
            sa.ForeignKey(
                "calling_search_spaces.id", ondelete="CASCADE", name="fk_css_members_css_id"
            ),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("partition", sa.String(64), nullable=False),
        sa.UniqueConstraint("css_id", "position", name="uq_css_members_css_position"),
    )
    op.create_table(
        "trunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False, server_default="5060"),
        sa.Column("transport", sa.String(8), nullable=False, server_default="udp"),
        sa.Column("css", sa.String(64), nullable=False, server_default=""),
        sa.Column("max_calls", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("username", sa.String(128), nullable=False, server_default=""),
        sa.Column("password", sa.String(128), nullable=False, server_default=""),
        sa.Column("register", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("options_ping", sa.Float(), nullable=False, server_default="30"),
        sa.Column("inbound_addresses", sa.JSON(), nullable=False),
        sa.UniqueConstraint("name", name="uq_trunks_name"),
    )
    op.create_table(
        "route_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("distribution", sa.String(16), nullable=False, server_default="top-down"),
        sa.UniqueConstraint("name", name="uq_route_groups_name"),
    )
    op.create_table(
        "route_group_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "group_id",
            sa.Integer(),
            sa.ForeignKey(
                "route_groups.id", ondelete="CASCADE", name="fk_route_group_members_group_id"
            ),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("trunk", sa.String(64), nullable=False),
        *_transforms(),
        sa.UniqueConstraint("group_id", "position", name="uq_route_group_members_group_position"),
    )
    op.create_table(
        "route_lists",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.UniqueConstraint("name", name="uq_route_lists_name"),
    )
    op.create_table(
        "route_list_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "list_id",
            sa.Integer(),
            sa.ForeignKey(
                "route_lists.id", ondelete="CASCADE", name="fk_route_list_members_list_id"
            ),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("route_group", sa.String(64), nullable=False),
        sa.UniqueConstraint("list_id", "position", name="uq_route_list_members_list_position"),
    )
    op.create_table(
        "route_patterns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pattern", sa.String(64), nullable=False),
        sa.Column("partition", sa.String(64), nullable=False, server_default=""),
        sa.Column("route_list", sa.String(64), nullable=True),
        sa.Column("block", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("block_cause", sa.Integer(), nullable=False, server_default="21"),
        sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()),
        *_transforms(),
        sa.UniqueConstraint("pattern", "partition", name="uq_route_patterns_pattern_partition"),
    )
    op.create_table(
        "translation_patterns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pattern", sa.String(64), nullable=False),
        sa.Column("partition", sa.String(64), nullable=False, server_default=""),
        sa.Column("css", sa.String(64), nullable=False, server_default=""),
        sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("block", sa.Boolean(), nullable=False, server_default=sa.false()),
        *_transforms(),
        sa.UniqueConstraint(
            "pattern", "partition", name="uq_translation_patterns_pattern_partition"
        ),
    )


def downgrade() -> None:
    for table in (
        "translation_patterns",
        "route_patterns",
        "route_list_members",
        "route_lists",
        "route_group_members",
        "route_groups",
        "trunks",
        "css_members",
        "calling_search_spaces",
        "partitions",
    ):
        op.drop_table(table)
