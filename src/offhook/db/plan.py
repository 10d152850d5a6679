"""The plan loader: ``offhook load PLAN.yaml`` imports a whole telephony plan.

The YAML file is the whole truth about the devices it describes: one
transaction makes the database match it. Devices in the file are created or
updated; devices in the database but absent from the file are deleted
(``prune=False`` / ``offhook load --no-prune`` keeps them). Running the same
file twice changes nothing, and ``plan_version`` (``plan_meta``) is bumped
only when something changed, so running nodes reload only then.

Format (grows with later capabilities)::

    devices:
      - name: alice            # SIP digest user name
        protocol: sip          # sip | sccp
        password: alice-Secret-1   # required for sip; stored as HA1 only
        description: ""        # optional
        css: ""                # optional calling search space
        max_calls: 4           # optional; concurrent calls, 0 = no limit (gateways)
        lines:
          - dn: "1001"         # digits, * # + (quote it: YAML reads 0100 as 64)
            display: Alice Smith
            partition: ""      # optional

A DN may appear on several devices (a shared line). Validation is strict
(unknown keys refused); every problem is reported as
``FILE: devices[1] (bob).lines[0].dn: problem`` and nothing is written.

Passwords become HA1 = H(name:realm:password) for MD5 and SHA-256
(RFC 2617 §3.2.2.2, RFC 7616 §3.4.2, RFC 8760) for the node's realm; the clear
password is never stored. A device is "unchanged" when its HA1s for the
current realm equal the stored ones, so changing the realm updates every
SIP device on the next load.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from offhook.db.engine import create_engine_for, upgrade
from offhook.db.models import PLAN_VERSION_KEY, Device, Line, PlanMeta, utcnow

if TYPE_CHECKING:
    from offhook.config import Settings

DEMO_PLAN = Path(__file__).resolve().parents[1] / "demo" / "plan.yaml"
MAX_PLAN_BYTES = 64 << 20

_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$"
_DN_RE = re.compile(r"^[0-9*#+]{1,32}$")


class PlanError(Exception):
    """An invalid plan: ``problems`` are ``(location, message)`` pairs."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(
            "\n".join(
                f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}" for loc, msg in problems
            )
        )


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LineSpec(_Spec):
    dn: str
    display: str = Field(default="", max_length=128)
    partition: str = Field(default="", max_length=64)

    @field_validator("dn", mode="before")
    @classmethod
    def _dn_type(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(
                f"got the number {value}: write the DN as a quoted string "
                "(YAML reads unquoted digits as a number: 0100 becomes 64)"
            )
        return value

    @field_validator("dn")
    @classmethod
    def _dn(cls, value: str) -> str:
        if not _DN_RE.match(value):
            raise ValueError(f"{value!r} is not a directory number (1-32 of 0-9 * # +)")
        return value


class DeviceSpec(_Spec):
    name: str = Field(pattern=_NAME_RE)
    protocol: Literal["sip", "sccp"]
    password: str | None = Field(default=None, min_length=1, max_length=128)
    description: str = Field(default="", max_length=255)
    css: str = Field(default="", max_length=64)
    max_calls: int = Field(default=4, ge=0, le=100_000)
    lines: list[LineSpec] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _check(self) -> DeviceSpec:
        if self.protocol == "sip" and self.password is None:
            raise ValueError("a sip device needs a password (its digest secret)")
        seen: set[str] = set()
        for line in self.lines:
            if line.dn in seen:
                raise ValueError(f"DN {line.dn} appears twice on this device")
            seen.add(line.dn)
        return self


class PlanSpec(_Spec):
    devices: list[DeviceSpec] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PlanReport:
    """What a load did, per device."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    version: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def __str__(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.deleted} deleted (plan version {self.version})"
        )


def ha1(algorithm: str, name: str, realm: str, password: str) -> str:
    """RFC 2617 §3.2.2.2 / RFC 7616 §3.4.2 HA1 = H(username ":" realm ":" password)."""
    return hashlib.new(algorithm, f"{name}:{realm}:{password}".encode()).hexdigest()


# -- parsing and validation ---------------------------------------------------


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            try:
                node = node[part]
            except (IndexError, KeyError, TypeError):
                node = None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                out += f" ({node['name']})"
        else:
            out += f".{part}" if out else part
            node = node.get(part) if isinstance(node, dict) else None
    return out


def parse_plan(data: Any, source: str) -> PlanSpec:
    """Validate already-parsed YAML data; raise :class:`PlanError` on any problem."""
    if data is None:
        raise PlanError(source, [("", "the plan is empty (write `devices: []` to remove all)")])
    if not isinstance(data, dict):
        raise PlanError(source, [("", "the plan must be a mapping with a `devices` list")])
    try:
        plan = PlanSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            # Drop pydantic's union/function tags such as "function-after[...]".
            loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif err["type"] == "missing":
                msg = "required key missing"
            problems.append((_location(loc, data), msg))
        raise PlanError(source, problems) from None
    first: dict[str, int] = {}
    dups = []
    for i, dev in enumerate(plan.devices):
        if dev.name in first:
            dups.append(
                (
                    f"devices[{i}] ({dev.name}).name",
                    f"duplicate device name (first at devices[{first[dev.name]}])",
                )
            )
        else:
            first[dev.name] = i
    if dups:
        raise PlanError(source, dups)
    return plan


def read_plan(path: Path) -> PlanSpec:
    """Read and validate a YAML plan file."""
    source = str(path)
    try:
        with Path(path).open("rb") as fh:
            text = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanError(source, [("", f"cannot read ({exc.strerror})")]) from None
    if len(text) > MAX_PLAN_BYTES:
        raise PlanError(source, [("", f"larger than {MAX_PLAN_BYTES} bytes")])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlanError(source, [(where, f"invalid YAML: {problem}")]) from None
    return parse_plan(data, source)


# -- applying -------------------------------------------------------------------


def _desired(spec: DeviceSpec, realm: str) -> dict[str, Any]:
    if spec.password is not None:
        md5 = ha1("md5", spec.name, realm, spec.password)
        sha = ha1("sha256", spec.name, realm, spec.password)
    else:
        md5 = sha = ""
    return {
        "protocol": spec.protocol,
        "description": spec.description,
        "css": spec.css,
        "realm": realm if spec.password is not None else "",
        "ha1_md5": md5,
        "ha1_sha256": sha,
        "max_calls": spec.max_calls,
    }


def _line_tuples(lines: Sequence[LineSpec] | Sequence[Line]) -> list[tuple[str, str, str]]:
    return [(ln.dn, ln.display, ln.partition) for ln in lines]


def _lock_version(session: Session) -> PlanMeta:
    meta = session.execute(
        select(PlanMeta).where(PlanMeta.key == PLAN_VERSION_KEY).with_for_update()
    ).scalar_one_or_none()
    if meta is None:
        meta = PlanMeta(key=PLAN_VERSION_KEY, value="0")
        session.add(meta)
    return meta


def apply_plan(engine: Engine, plan: PlanSpec, realm: str, *, prune: bool = True) -> PlanReport:
    """Make the database match ``plan`` in one transaction; see the module doc."""
    created = updated = unchanged = deleted = 0
    with Session(engine) as session, session.begin():
        meta = _lock_version(session)
        existing = {
            d.name: d
            for d in session.scalars(select(Device).options(selectinload(Device.lines))).all()
        }
        now = utcnow()
        for spec in plan.devices:
            want = _desired(spec, realm)
            dev = existing.pop(spec.name, None)
            if dev is None:
                dev = Device(name=spec.name, created_at=now, updated_at=now, **want)
                dev.lines = [
                    Line(position=i, dn=ln.dn, display=ln.display, partition=ln.partition)
                    for i, ln in enumerate(spec.lines)
                ]
                session.add(dev)
                created += 1
                continue
            same_fields = all(getattr(dev, k) == v for k, v in want.items())
            same_lines = _line_tuples(dev.lines) == _line_tuples(spec.lines)
            if same_fields and same_lines:
                unchanged += 1
                continue
            for key, value in want.items():
                setattr(dev, key, value)
            if not same_lines:
                # Update in place by position (no unique-constraint churn), then trim.
                for i, ln in enumerate(spec.lines):
                    if i < len(dev.lines):
                        row = dev.lines[i]
                        row.dn, row.display, row.partition = ln.dn, ln.display, ln.partition
                    else:
                        dev.lines.append(
                            Line(position=i, dn=ln.dn, display=ln.display, partition=ln.partition)
                        )
                del dev.lines[len(spec.lines) :]
            dev.updated_at = now
            updated += 1
        if prune:
            for dev in existing.values():
                session.delete(dev)
                deleted += 1
        version = int(meta.value or 0)
        if created or updated or deleted:
            version += 1
            meta.value = str(version)
    return PlanReport(created, updated, unchanged, deleted, version)


def load_plan(path: Path | str, url: str | Engine, realm: str, *, prune: bool = True) -> PlanReport:
    """Validate ``path`` and import it into the database at ``url`` (schema upgraded first).

    Raises :class:`PlanError` (nothing written) for an invalid plan.
    """
    plan = read_plan(Path(path))
    engine = url if isinstance(url, Engine) else create_engine_for(url)
    try:
        upgrade(engine)
        return apply_plan(engine, plan, realm, prune=prune)
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def device_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Device)).scalar_one())


def ensure_demo_plan(settings: Settings, path: Path = DEMO_PLAN) -> bool:
    """Load the packaged demo plan into a database that never had a plan.

    "Never had a plan" means no devices and ``plan_version`` 0: a database
    emptied on purpose by loading an empty plan is left alone. The schema is
    upgraded first. Returns True when the demo plan was loaded.
    """
    from offhook.db.snapshot import plan_version

    engine = create_engine_for(settings.database.url)
    try:
        upgrade(engine)
        if device_count(engine) or plan_version(engine):
            return False
        apply_plan(engine, read_plan(path), settings.sip.realm)
        return True
    finally:
        engine.dispose()
