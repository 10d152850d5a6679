"""SQLAlchemy 2 models of the telephony plan and the call records.

The schema itself is owned by the Alembic migrations in ``migrations/``
(``offhook db upgrade``); these classes must stay in step with them
(``tests/integration/test_db_migrations.py`` compares the two).

Tables:

- ``devices``: one row a provisioned device; SIP digest secrets are stored as
  HA1 for MD5 and SHA-256 (RFC 2617 / RFC 8760 ``H(name:realm:password)``),
  never the clear password.
- ``lines``: the directory numbers on a device, in button order. The same DN
  on several devices is a shared line.
- ``speed_dials`` (migration 0003): a device's speed-dial buttons (number and
  label), in button order; ``devices.model`` is the phone model ("7960" for
  an SCCP phone, "" when not configured).
- ``cdrs``: one row per call attempt, written when it ends.
- ``plan_meta``: key/value; ``plan_version`` is bumped by every change of the
  plan so that running nodes can poll one row to know when to reload.

The dial plan (migration 0002, Cisco CallManager's model, see
``offhook.core.dialplan.model``):

- ``partitions``; ``calling_search_spaces`` with their ordered
  ``css_members`` (partition names).
- ``trunks``: SIP trunks. ``password`` is the digest secret offhook answers a
  carrier's challenge with, so it is stored as given (known limitation:
  encrypt it at rest later).
- ``route_groups`` with ordered ``route_group_members`` (trunk names and
  per-member transformations); ``route_lists`` with ordered
  ``route_list_members`` (route group names).
- ``route_patterns`` and ``translation_patterns``, unique per
  ``(pattern, partition)``.

Call coverage (migration 0006):

- ``lines``: each forward's destination and CSS (``forward_all`` /
  ``forward_all_css``, ... ``forward_unregistered_css``, then the
  ``forward_*_external`` ones for callers from a trunk; "" = none),
  ``cfna_timer`` (NULL = the node's), ``voicemail``, ``pickup_group``,
  ``intercom``; ``devices.dnd_option`` ("ringer-off" or "reject") and
  ``devices.privacy``;
  ``cdrs.last_redirecting`` and ``cdrs.redirect_reason``.
- ``line_groups`` with ordered ``line_group_members`` (DNs); ``hunt_lists``
  with ordered ``hunt_list_members`` (line group names); ``hunt_pilots``,
  unique per ``(pattern, partition)``; ``pickup_groups``; ``call_park``
  ranges, unique per ``(first, partition)``.
- ``feature_settings``: what phones set at run time (forward all, do not
  disturb, hunt group login, message waiting), the latest per line or
  device (``offhook.db.feature_state``).

The media plane (migration 0005):

- ``moh_sources``: music on hold files by name (absolute paths);
  ``devices.moh_source`` and ``lines.moh_source`` name one ("" = none).
- ``meetme_numbers``: meet-me conference numbers, unique per
  ``(number, partition)``; ``pin`` "" = none.
- ``media_resource_groups`` with ordered ``media_resource_group_members``
  (media server names); ``media_resource_lists`` with ordered
  ``media_resource_list_members`` (group names); ``devices.media_resource_list``
  names one ("" = the embedded media server).

CTI devices (migration 0008, ``offhook.db.plan_cti``): ``cti_route_points``
(name, DN, partition, CSS, ``timeout`` seconds, ``default_destination``: ""
= busy) and ``cti_ports`` (name, DN, partition, CSS), unique by name.

Web administration (migration 0007, ``offhook.db.users`` and ``offhook.db.audit``):

- ``web_users``: people who log in to the web admin and the API: a unique
  name, a role (``users.ROLES``), an argon2id password hash, the device
  names a self-care user owns (JSON list).
- ``api_tokens``: a user's API tokens, stored as the SHA-256 of the token
  (hex, unique) and its first 8 characters to tell them apart; revoked
  tokens keep their row (``revoked_at``). Deleted with their user.
- ``audit_log``: every change made through the web admin, the API or the
  user commands: when, who, from where, what, and the object before and
  after (JSON).

References between these rows are names (like ``devices.css`` and
``lines.partition``), checked by the plan loader before anything is written;
only the ordered member rows have foreign keys (to their parent, cascading).
Transformations are JSON objects holding only the keys that are set
(``discard``, ``replace``, ``mask``, ``prefix``, ``presentation``): see
:func:`transform_to_json` / :func:`transform_from_json`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from offhook.core.dialplan.model import NO_TRANSFORM, Presentation, Transform

PLAN_VERSION_KEY = "plan_version"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in, an aware UTC datetime out, on every backend.

    Naive values are taken as UTC. SQLite keeps no zone, so values are stored
    there as naive UTC; PostgreSQL stores ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("name", name="uq_devices_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    protocol: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(255), default="")
    css: Mapped[str] = mapped_column(String(64), default="")
    realm: Mapped[str] = mapped_column(String(128), default="")
    ha1_md5: Mapped[str] = mapped_column(String(32), default="")
    ha1_sha256: Mapped[str] = mapped_column(String(64), default="")
    max_calls: Mapped[int] = mapped_column(Integer, default=4)
    model: Mapped[str] = mapped_column(String(32), default="")
    moh_source: Mapped[str] = mapped_column(String(64), default="")
    media_resource_list: Mapped[str] = mapped_column(String(64), default="")
    dnd_option: Mapped[str] = mapped_column(String(16), default="ringer-off")
    privacy: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    lines: Mapped[list[Line]] = relationship(
        back_populates="device",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Line.position",
    )
    speed_dials: Mapped[list[SpeedDialRow]] = relationship(
        back_populates="device",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SpeedDialRow.position",
    )


class Line(Base):
    __tablename__ = "lines"
    __table_args__ = (
        UniqueConstraint("device_id", "position", name="uq_lines_device_position"),
        Index("ix_lines_dn", "dn"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    dn: Mapped[str] = mapped_column(String(32))
    partition: Mapped[str] = mapped_column(String(64), default="")
    display: Mapped[str] = mapped_column(String(128), default="")
    moh_source: Mapped[str] = mapped_column(String(64), default="")
    # Call coverage (migration 0006): "" = not set.
    forward_all: Mapped[str] = mapped_column(String(32), default="")
    forward_all_css: Mapped[str] = mapped_column(String(64), default="")
    forward_busy: Mapped[str] = mapped_column(String(32), default="")
    forward_busy_css: Mapped[str] = mapped_column(String(64), default="")
    forward_no_answer: Mapped[str] = mapped_column(String(32), default="")
    forward_no_answer_css: Mapped[str] = mapped_column(String(64), default="")
    forward_unregistered: Mapped[str] = mapped_column(String(32), default="")
    forward_unregistered_css: Mapped[str] = mapped_column(String(64), default="")
    forward_busy_external: Mapped[str] = mapped_column(String(32), default="")
    forward_busy_external_css: Mapped[str] = mapped_column(String(64), default="")
    forward_no_answer_external: Mapped[str] = mapped_column(String(32), default="")
    forward_no_answer_external_css: Mapped[str] = mapped_column(String(64), default="")
    forward_unregistered_external: Mapped[str] = mapped_column(String(32), default="")
    forward_unregistered_external_css: Mapped[str] = mapped_column(String(64), default="")
    cfna_timer: Mapped[float | None] = mapped_column(Float, nullable=True)
    voicemail: Mapped[str] = mapped_column(String(32), default="")
    pickup_group: Mapped[str] = mapped_column(String(64), default="")
    intercom: Mapped[bool] = mapped_column(Boolean, default=False)

    device: Mapped[Device] = relationship(back_populates="lines")


class SpeedDialRow(Base):
    __tablename__ = "speed_dials"
    __table_args__ = (
        UniqueConstraint("device_id", "position", name="uq_speed_dials_device_position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE", name="fk_speed_dials_device_id")
    )
    position: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(64), default="")

    device: Mapped[Device] = relationship(back_populates="speed_dials")


class Cdr(Base):
    __tablename__ = "cdrs"
    __table_args__ = (
        Index("ix_cdrs_start", "start"),
        Index("ix_cdrs_call_id", "call_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(255))
    calling: Mapped[str] = mapped_column(String(64), default="")
    called: Mapped[str] = mapped_column(String(64), default="")
    original_called: Mapped[str] = mapped_column(String(64), default="")
    calling_device: Mapped[str] = mapped_column(String(64), default="")
    called_device: Mapped[str] = mapped_column(String(64), default="")
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    answer: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    end: Mapped[datetime] = mapped_column(UtcDateTime())
    duration: Mapped[int] = mapped_column(Integer, default=0)
    cause: Mapped[int] = mapped_column(Integer, default=16)
    cause_text: Mapped[str] = mapped_column(String(128), default="")
    node: Mapped[str] = mapped_column(String(64), default="")
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    last_redirecting: Mapped[str] = mapped_column(String(64), default="")
    redirect_reason: Mapped[str] = mapped_column(String(32), default="")


class AutoRegistrationRow(Base):
    """An auto-registered SCCP phone and the DN it was given (migration 0004)."""

    __tablename__ = "auto_registrations"
    __table_args__ = (UniqueConstraint("dn", name="uq_auto_registrations_dn"),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    dn: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(32), default="", server_default="")
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime())


class PlanMeta(Base):
    __tablename__ = "plan_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), default="")


# -- the dial plan (migration 0002) ----------------------------------------------


def transform_to_json(t: Transform) -> dict[str, str]:
    """The JSON column value of a transformation: only the keys that are set."""
    out: dict[str, str] = {}
    for key in ("discard", "replace", "mask"):
        value = getattr(t, key)
        if value is not None:
            out[key] = value
    if t.prefix:
        out["prefix"] = t.prefix
    if t.presentation is not None:
        out["presentation"] = t.presentation.value
    return out


def transform_from_json(data: dict[str, Any] | None) -> Transform:
    """The inverse of :func:`transform_to_json` (None or ``{}``: no transformation)."""
    if not data:
        return NO_TRANSFORM
    presentation = data.get("presentation")
    return Transform(
        discard=data.get("discard"),
        replace=data.get("replace"),
        mask=data.get("mask"),
        prefix=str(data.get("prefix", "")),
        presentation=Presentation(presentation) if presentation else None,
    )


class Partition(Base):
    __tablename__ = "partitions"
    __table_args__ = (UniqueConstraint("name", name="uq_partitions_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)


class CallingSearchSpaceRow(Base):
    __tablename__ = "calling_search_spaces"
    __table_args__ = (UniqueConstraint("name", name="uq_calling_search_spaces_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))


class CssMember(Base):
    __tablename__ = "css_members"
    __table_args__ = (UniqueConstraint("css_id", "position", name="uq_css_members_css_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    css_id: Mapped[int] = mapped_column(
        ForeignKey("calling_search_spaces.id", ondelete="CASCADE", name="fk_css_members_css_id")
    )
    position: Mapped[int] = mapped_column(Integer)
    partition: Mapped[str] = mapped_column(String(64))


class TrunkRow(Base):
    __tablename__ = "trunks"
    __table_args__ = (UniqueConstraint("name", name="uq_trunks_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    protocol: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[str] = mapped_column(String(8), default="udp")
    css: Mapped[str] = mapped_column(String(64), default="")
    max_calls: Mapped[int] = mapped_column(Integer, default=0)
    max_cps: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    username: Mapped[str] = mapped_column(String(128), default="")
    # Stored as given: needed to answer the far end's digest challenge.
    password: Mapped[str] = mapped_column(String(128), default="")
    register: Mapped[bool] = mapped_column(Boolean, default=False)
    options_ping: Mapped[float] = mapped_column(Float, default=30.0)
    inbound_addresses: Mapped[list[str]] = mapped_column(JSON, default=list)


class RouteGroupRow(Base):
    __tablename__ = "route_groups"
    __table_args__ = (UniqueConstraint("name", name="uq_route_groups_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    distribution: Mapped[str] = mapped_column(String(16), default="top-down")


class RouteGroupMemberRow(Base):
    __tablename__ = "route_group_members"
    __table_args__ = (
        UniqueConstraint("group_id", "position", name="uq_route_group_members_group_position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("route_groups.id", ondelete="CASCADE", name="fk_route_group_members_group_id")
    )
    position: Mapped[int] = mapped_column(Integer)
    trunk: Mapped[str] = mapped_column(String(64))
    called_transform: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    calling_transform: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RouteListRow(Base):
    __tablename__ = "route_lists"
    __table_args__ = (UniqueConstraint("name", name="uq_route_lists_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))


class RouteListMemberRow(Base):
    __tablename__ = "route_list_members"
    __table_args__ = (
        UniqueConstraint("list_id", "position", name="uq_route_list_members_list_position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(
        ForeignKey("route_lists.id", ondelete="CASCADE", name="fk_route_list_members_list_id")
    )
    position: Mapped[int] = mapped_column(Integer)
    route_group: Mapped[str] = mapped_column(String(64))


class RoutePatternRow(Base):
    __tablename__ = "route_patterns"
    __table_args__ = (
        UniqueConstraint("pattern", "partition", name="uq_route_patterns_pattern_partition"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pattern: Mapped[str] = mapped_column(String(64))
    partition: Mapped[str] = mapped_column(String(64), default="")
    route_list: Mapped[str | None] = mapped_column(String(64), nullable=True)
    block: Mapped[bool] = mapped_column(Boolean, default=False)
    block_cause: Mapped[int] = mapped_column(Integer, default=21)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    called_transform: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    calling_transform: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TranslationPatternRow(Base):
    __tablename__ = "translation_patterns"
    __table_args__ = (
        UniqueConstraint("pattern", "partition", name="uq_translation_patterns_pattern_partition"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pattern: Mapped[str] = mapped_column(String(64))
    partition: Mapped[str] = mapped_column(String(64), default="")
    css: Mapped[str] = mapped_column(String(64), default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    block: Mapped[bool] = mapped_column(Boolean, default=False)
    called_transform: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    calling_transform: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# -- the media plane (migration 0005) --------------------------------------------


class MohSourceRow(Base):
    __tablename__ = "moh_sources"
    __table_args__ = (UniqueConstraint("name", name="uq_moh_sources_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(4096))


class MeetMeRow(Base):
    __tablename__ = "meetme_numbers"
    __table_args__ = (
        UniqueConstraint("number", "partition", name="uq_meetme_numbers_number_partition"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    partition: Mapped[str] = mapped_column(String(64), default="")
    pin: Mapped[str] = mapped_column(String(16), default="")
    max_parties: Mapped[int] = mapped_column(Integer, default=32)


class MediaResourceGroupRow(Base):
    __tablename__ = "media_resource_groups"
    __table_args__ = (UniqueConstraint("name", name="uq_media_resource_groups_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))


class MediaResourceGroupMemberRow(Base):
    __tablename__ = "media_resource_group_members"
    __table_args__ = (
        UniqueConstraint(
            "group_id", "position", name="uq_media_resource_group_members_group_position"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey(
            "media_resource_groups.id",
            ondelete="CASCADE",
            name="fk_media_resource_group_members_group_id",
        )
    )
    position: Mapped[int] = mapped_column(Integer)
    server: Mapped[str] = mapped_column(String(64))


class MediaResourceListRow(Base):
    __tablename__ = "media_resource_lists"
    __table_args__ = (UniqueConstraint("name", name="uq_media_resource_lists_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))


class MediaResourceListMemberRow(Base):
    __tablename__ = "media_resource_list_members"
    __table_args__ = (
        UniqueConstraint(
            "list_id", "position", name="uq_media_resource_list_members_list_position"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(
        ForeignKey(
            "media_resource_lists.id",
            ondelete="CASCADE",
            name="fk_media_resource_list_members_list_id",
        )
    )
    position: Mapped[int] = mapped_column(Integer)
    media_resource_group: Mapped[str] = mapped_column(String(64))


# -- call coverage (migration 0006) ----------------------------------------------


class LineGroupRow(Base):
    __tablename__ = "line_groups"
    __table_args__ = (UniqueConstraint("name", name="uq_line_groups_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    distribution: Mapped[str] = mapped_column(String(16), default="top-down")
    rna_timeout: Mapped[float] = mapped_column(Float, default=10.0)
    on_no_answer: Mapped[str] = mapped_column(String(16), default="next-member")
    on_busy: Mapped[str] = mapped_column(String(16), default="next-member")
    on_unavailable: Mapped[str] = mapped_column(String(16), default="next-member")


class LineGroupMemberRow(Base):
    __tablename__ = "line_group_members"
    __table_args__ = (
        UniqueConstraint("group_id", "position", name="uq_line_group_members_group_position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("line_groups.id", ondelete="CASCADE", name="fk_line_group_members_group_id")
    )
    position: Mapped[int] = mapped_column(Integer)
    dn: Mapped[str] = mapped_column(String(32))


class HuntListRow(Base):
    __tablename__ = "hunt_lists"
    __table_args__ = (UniqueConstraint("name", name="uq_hunt_lists_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))


class HuntListMemberRow(Base):
    __tablename__ = "hunt_list_members"
    __table_args__ = (
        UniqueConstraint("list_id", "position", name="uq_hunt_list_members_list_position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(
        ForeignKey("hunt_lists.id", ondelete="CASCADE", name="fk_hunt_list_members_list_id")
    )
    position: Mapped[int] = mapped_column(Integer)
    line_group: Mapped[str] = mapped_column(String(64))


class HuntPilotRow(Base):
    __tablename__ = "hunt_pilots"
    __table_args__ = (
        UniqueConstraint("pattern", "partition", name="uq_hunt_pilots_pattern_partition"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pattern: Mapped[str] = mapped_column(String(32))
    partition: Mapped[str] = mapped_column(String(64), default="")
    hunt_list: Mapped[str] = mapped_column(String(64))
    final_forward: Mapped[str] = mapped_column(String(32), default="")
    final_css: Mapped[str] = mapped_column(String(64), default="")


class PickupGroupRow(Base):
    __tablename__ = "pickup_groups"
    __table_args__ = (UniqueConstraint("name", name="uq_pickup_groups_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(32), default="")
    partition: Mapped[str] = mapped_column(String(64), default="")


class CallParkRow(Base):
    __tablename__ = "call_park"
    __table_args__ = (UniqueConstraint("first", "partition", name="uq_call_park_first_partition"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first: Mapped[str] = mapped_column(String(32))
    last: Mapped[str] = mapped_column(String(32))
    partition: Mapped[str] = mapped_column(String(64), default="")
    reversion: Mapped[float] = mapped_column(Float, default=60.0)


# -- CTI devices (migration 0008) -----------------------------------------------


class CtiRoutePointRow(Base):
    __tablename__ = "cti_route_points"
    __table_args__ = (UniqueConstraint("name", name="uq_cti_route_points_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    dn: Mapped[str] = mapped_column(String(32))
    partition: Mapped[str] = mapped_column(String(64), default="")
    css: Mapped[str] = mapped_column(String(64), default="")
    timeout: Mapped[float] = mapped_column(Float, default=5.0)
    default_destination: Mapped[str] = mapped_column(String(32), default="")


class CtiPortRow(Base):
    __tablename__ = "cti_ports"
    __table_args__ = (UniqueConstraint("name", name="uq_cti_ports_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    dn: Mapped[str] = mapped_column(String(32))
    partition: Mapped[str] = mapped_column(String(64), default="")
    css: Mapped[str] = mapped_column(String(64), default="")


class FeatureSettingRow(Base):
    """A run-time coverage setting: ``kind`` and its key (``device``, or ``dn`` +
    ``partition``), ``value`` the rest of the event that set it."""

    __tablename__ = "feature_settings"
    __table_args__ = (
        UniqueConstraint("kind", "device", "dn", "partition", name="uq_feature_settings_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    device: Mapped[str] = mapped_column(String(64), default="")
    dn: Mapped[str] = mapped_column(String(32), default="")
    partition: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


# -- web administration (migration 0007) -----------------------------------------


class WebUser(Base):
    __tablename__ = "web_users"
    __table_args__ = (UniqueConstraint("name", name="uq_web_users_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    display: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    devices: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        Index("ix_api_tokens_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("web_users.id", ondelete="CASCADE", name="fk_api_tokens_user_id")
    )
    label: Mapped[str] = mapped_column(String(128), default="")
    token_hash: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AuditLogRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_object", "object_type", "object_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(255), default="")
    before: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    after: Mapped[Any | None] = mapped_column(JSON, nullable=True)
