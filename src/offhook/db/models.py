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
- ``cdrs``: one row per call attempt, written when it ends.
- ``plan_meta``: key/value; ``plan_version`` is bumped by every change of the
  plan so that running nodes can poll one row to know when to reload.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    lines: Mapped[list[Line]] = relationship(
        back_populates="device",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Line.position",
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

    device: Mapped[Device] = relationship(back_populates="lines")


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


class PlanMeta(Base):
    __tablename__ = "plan_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), default="")
