"""Call coverage: line forwards (internal and external), voicemail, pickup
group and intercom, the device's do not disturb option and privacy, hunt line
groups, hunt lists and pilots, pickup groups, call park ranges, the CDR's
redirection columns, and the run-time feature settings (see
``offhook.db.models``).

Existing rows get what a plan without these keys means: no forwards ("" in
every forward column, the external ones included), the node's no-answer
timer (``cfna_timer`` NULL), no voicemail or pickup group, no intercom,
``dnd_option`` "ringer-off", no privacy; existing CDRs no redirection ("").

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_FORWARDS = (
    "forward_all",
    "forward_busy",
    "forward_no_answer",
    "forward_unregistered",
    "forward_busy_external",
    "forward_no_answer_external",
    "forward_unregistered_external",
)


def _text(name: str, length: int, default: str = "") -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=False, server_default=default)


def _flag(name: str) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())


def _ordered_members(table: str, parent: str, fk: str, column: str, length: int) -> None:
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
        sa.Column(column, sa.String(length), nullable=False),
        sa.UniqueConstraint(fk, "position", name=f"uq_{table}_{fk.removesuffix('_id')}_position"),
    )


def upgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        for name in _FORWARDS:
            batch.add_column(_text(name, 32))
            batch.add_column(_text(f"{name}_css", 64))
        batch.add_column(sa.Column("cfna_timer", sa.Float(), nullable=True))
        batch.add_column(_text("voicemail", 32))
        batch.add_column(_text("pickup_group", 64))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(_text("dnd_option", 16, "ringer-off"))
    # Not batch mode: an expression default (false()) makes batch mode copy
    # the table on SQLite, and dropping the old ``devices`` cascades to every
    # line and speed dial. A plain ADD COLUMN keeps them.
    op.add_column("lines", _flag("intercom"))
    op.add_column("devices", _flag("privacy"))
    with op.batch_alter_table("cdrs") as batch:
        batch.add_column(_text("last_redirecting", 64))
        batch.add_column(_text("redirect_reason", 32))
    op.create_table(
        "line_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        _text("distribution", 16, "top-down"),
        sa.Column("rna_timeout", sa.Float(), nullable=False, server_default="10"),
        _text("on_no_answer", 16, "next-member"),
        _text("on_busy", 16, "next-member"),
        _text("on_unavailable", 16, "next-member"),
        sa.UniqueConstraint("name", name="uq_line_groups_name"),
    )
    _ordered_members("line_group_members", "line_groups", "group_id", "dn", 32)
    op.create_table(
        "hunt_lists",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.UniqueConstraint("name", name="uq_hunt_lists_name"),
    )
    _ordered_members("hunt_list_members", "hunt_lists", "list_id", "line_group", 64)
    op.create_table(
        "hunt_pilots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pattern", sa.String(32), nullable=False),
        _text("partition", 64),
        sa.Column("hunt_list", sa.String(64), nullable=False),
        _text("final_forward", 32),
        _text("final_css", 64),
        sa.UniqueConstraint("pattern", "partition", name="uq_hunt_pilots_pattern_partition"),
    )
    op.create_table(
        "pickup_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        _text("number", 32),
        _text("partition", 64),
        sa.UniqueConstraint("name", name="uq_pickup_groups_name"),
    )
    op.create_table(
        "call_park",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("first", sa.String(32), nullable=False),
        sa.Column("last", sa.String(32), nullable=False),
        _text("partition", 64),
        sa.Column("reversion", sa.Float(), nullable=False, server_default="60"),
        sa.UniqueConstraint("first", "partition", name="uq_call_park_first_partition"),
    )
    op.create_table(
        "feature_settings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        _text("device", 64),
        _text("dn", 32),
        _text("partition", 64),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "device", "dn", "partition", name="uq_feature_settings_key"),
    )


def downgrade() -> None:
    op.drop_table("feature_settings")
    op.drop_table("call_park")
    op.drop_table("pickup_groups")
    op.drop_table("hunt_pilots")
    op.drop_table("hunt_list_members")
    op.drop_table("hunt_lists")
    op.drop_table("line_group_members")
    op.drop_table("line_groups")
    # Not batch mode: on SQLite it copies ``devices`` and drops the old table,
    # and with foreign keys on that drop cascades to every line and speed
    # dial. ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later) keeps them.
    op.drop_column("cdrs", "redirect_reason")
    op.drop_column("cdrs", "last_redirecting")
    op.drop_column("devices", "privacy")
    op.drop_column("devices", "dnd_option")
    for name in ("intercom", "pickup_group", "voicemail", "cfna_timer"):
        op.drop_column("lines", name)
    for name in reversed(_FORWARDS):
        op.drop_column("lines", f"{name}_css")
        op.drop_column("lines", name)
