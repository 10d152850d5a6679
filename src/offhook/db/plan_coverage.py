"""Call coverage's plan keys: forwards, hunt groups, pickup groups and call park.

The pydantic models of the coverage sections of the YAML plan (the format is
in ``offhook.db.plan_spec``'s module doc) and their conversion to the core's
types: a line's :class:`ForwardSpec` becomes ``core.directory.Forward``, a
:class:`LineGroupSpec` ``core.directory.LineGroup``, and hunt pilots, pickup
groups and park ranges the dial plan's ``HuntPilot``, ``PickupGroup`` and
``CallPark``. Each model checks its own fields; references between sections
(partitions, CSSs, hunt lists, line groups, member DNs, pickup groups) and
numbers that collide are ``offhook.db.plan_check``'s.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from offhook.core.dialplan.model import CallPark, HuntPilot, PickupGroup
from offhook.core.directory import Forward, HuntDistribution, HuntStep, LineGroup
from offhook.db.plan_base import DN_RE, NUMBER_RE, Name, Ref, Spec, not_a_number

MAX_PARK_RANGE = 1000
"""Most numbers one ``call_park`` range may hold (the dial plan indexes each)."""
_RANGE_RE = re.compile(r"([0-9]{1,32})(?:-([0-9]{1,32}))?")

HuntStepName = Literal["next-member", "next-group", "stop"]


def _dialable(value: str, what: str) -> str:
    if not DN_RE.match(value):
        raise ValueError(f"{value!r} is not {what} (1-32 of 0-9 * # +)")
    return value


class ForwardSpec(Spec):
    """Where a line forwards, and the CSS the destination is dialled with ("" = the device's)."""

    destination: str
    css: Ref = ""

    @field_validator("destination", mode="before")
    @classmethod
    def _destination_type(cls, value: object) -> object:
        return not_a_number(value, "destination")

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str) -> str:
        return _dialable(value, "a dialable number")

    def to_model(self) -> Forward:
        return Forward(self.destination, self.css)


def forward_model(spec: ForwardSpec | None) -> Forward | None:
    return None if spec is None else spec.to_model()


class LineGroupSpec(Spec):
    """A hunt line group: member DNs in order, how calls are spread, what a failure does."""

    name: Name
    distribution: Literal["top-down", "circular", "longest-idle", "broadcast"] = "top-down"
    rna_timeout: float = Field(default=10.0, ge=1, le=600)
    on_no_answer: HuntStepName = "next-member"
    on_busy: HuntStepName = "next-member"
    on_unavailable: HuntStepName = "next-member"
    members: list[str] = Field(default_factory=list, max_length=256)

    @field_validator("members", mode="before")
    @classmethod
    def _members_type(cls, value: object) -> object:
        if isinstance(value, list):
            for item in value:
                not_a_number(item, "member DN")
        return value

    @field_validator("members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        return [_dialable(dn, "a directory number") for dn in value]

    def to_model(self) -> LineGroup:
        return LineGroup(
            name=self.name,
            members=tuple(self.members),
            distribution=HuntDistribution(self.distribution),
            rna_timeout=float(self.rna_timeout),
            on_no_answer=HuntStep(self.on_no_answer),
            on_busy=HuntStep(self.on_busy),
            on_unavailable=HuntStep(self.on_unavailable),
        )


class HuntListSpec(Spec):
    """Line groups a hunt pilot tries, in order."""

    name: Name
    line_groups: list[Ref] = Field(min_length=1, max_length=64)


class HuntPilotSpec(Spec):
    """A hunt pilot number in a partition, its hunt list and its final forward."""

    pattern: str = Field(max_length=32)
    partition: Ref = ""
    hunt_list: Ref
    final_forward: str = ""
    final_css: Ref = ""

    @field_validator("pattern", "final_forward", mode="before")
    @classmethod
    def _digits_type(cls, value: object) -> object:
        return not_a_number(value, "number")

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if not NUMBER_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a hunt pilot number (0-9 * #, after an optional +)")
        return value

    @field_validator("final_forward")
    @classmethod
    def _final_forward(cls, value: str) -> str:
        return value and _dialable(value, "a dialable number")

    def to_model(self) -> HuntPilot:
        return HuntPilot(
            self.pattern, self.partition, self.hunt_list, self.final_forward, self.final_css
        )


class PickupGroupSpec(Spec):
    """A call pickup group; ``number`` (optional) lets other groups pick up from it (GPickUp)."""

    name: Name
    number: str = ""
    partition: Ref = ""

    @field_validator("number", mode="before")
    @classmethod
    def _number_type(cls, value: object) -> object:
        return not_a_number(value, "number")

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        if value and not NUMBER_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a pickup number (0-9 * #, after an optional +)")
        return value

    def to_model(self) -> PickupGroup:
        return PickupGroup(self.name, self.number, self.partition)


class CallParkSpec(Spec):
    """Call park numbers: ``range`` "7000-7009" (or one number "7000") in a partition;
    ``reversion``: seconds before a parked call rings its parker again (0: never)."""

    range: str
    partition: Ref = ""
    reversion: float = Field(default=60.0, ge=0, le=86_400)

    @field_validator("range", mode="before")
    @classmethod
    def _range_type(cls, value: object) -> object:
        return not_a_number(value, "range")

    @field_validator("range")
    @classmethod
    def _range(cls, value: str) -> str:
        m = _RANGE_RE.fullmatch(value)
        if m is None:
            raise ValueError(f"{value!r} is not a park number or range (such as 7000 or 7000-7009)")
        first, last = m.group(1), m.group(2) or m.group(1)
        if len(first) != len(last):
            raise ValueError(f"{value!r}: both ends of a park range have as many digits")
        if int(last) < int(first):
            raise ValueError(f"{value!r}: a park range runs up (first-last)")
        if int(last) - int(first) >= MAX_PARK_RANGE:
            raise ValueError(f"{value!r}: a park range holds at most {MAX_PARK_RANGE} numbers")
        return value

    @property
    def first(self) -> str:
        return self.range.partition("-")[0]

    @property
    def last(self) -> str:
        return self.range.partition("-")[2] or self.first

    def to_model(self) -> CallPark:
        return CallPark(self.first, self.last, self.partition, float(self.reversion))
