"""The plan's sections as objects one edits one at a time (REST API, web pages).

:data:`SECTIONS` maps each plan key (``devices``, ``partitions``,
``route_patterns``, ...; ``PlanSpec`` field order) to a :class:`Section`: the
pydantic model of one entry, the fields that identify an entry and the fields
never shown (device and trunk passwords). An entry is identified by its key
text: its ``name``, or for the numbered sections (route and translation
patterns, meet-me numbers, hunt pilots, call park ranges) its number with
its partition, ``PARTITION/NUMBER`` (just ``NUMBER`` without a partition;
neither a name nor a pattern holds a ``/``). A partition, a plain name in
the plan, is the object ``{"name": ...}``.

Also here, what an edit needs besides the plan itself: an object's API view
and its ETag (the SHA-256 of its canonical JSON), ``If-Match`` matching, the
merge of a PATCH (RFC 7396 JSON merge patch: mappings merged, lists replaced
whole, ``null`` removes a field so it takes its default) and plan locations
as the API reports them (``devices[alice].lines[0].dn``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from offhook.db.plan_base import Name, Spec
from offhook.db.plan_coverage import (
    CallParkSpec,
    HuntListSpec,
    HuntPilotSpec,
    LineGroupSpec,
    PickupGroupSpec,
)
from offhook.db.plan_cti import CtiPortSpec, CtiRoutePointSpec
from offhook.db.plan_spec import (
    CallingSearchSpaceSpec,
    DeviceSpec,
    MediaResourceGroupSpec,
    MediaResourceListSpec,
    MeetMeSpec,
    MohSourceSpec,
    RouteGroupSpec,
    RouteListSpec,
    RoutePatternSpec,
    TranslationPatternSpec,
    TrunkSpec,
)


class PartitionSpec(Spec):
    """A partition as an API object (the plan lists partitions by name)."""

    name: Name


@dataclass(frozen=True, slots=True)
class Section:
    """One plan section: its entries' model, what identifies an entry, what is secret."""

    name: str
    spec: type[Spec]
    noun: str
    number_field: str = ""
    """The numbered sections' number field (``pattern``, ``number``, ``range``);
    "" for the sections whose entries are identified by ``name``."""
    secrets: tuple[str, ...] = ()

    @property
    def key_fields(self) -> tuple[str, ...]:
        return (self.number_field, "partition") if self.number_field else ("name",)

    def key(self, obj: Any) -> str:
        """The key text of an entry (a plan entry or an API object)."""
        if self.name == "partitions" and isinstance(obj, str):
            return obj
        if not isinstance(obj, Mapping):
            return ""
        if not self.number_field:
            return _text(obj.get("name"))
        number = _text(obj.get(self.number_field))
        partition = _text(obj.get("partition"))
        return f"{partition}/{number}" if partition else number


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


SECTIONS: dict[str, Section] = {
    s.name: s
    for s in (
        Section("devices", DeviceSpec, "device", secrets=("password",)),
        Section("partitions", PartitionSpec, "partition"),
        Section("calling_search_spaces", CallingSearchSpaceSpec, "calling search space"),
        Section("trunks", TrunkSpec, "trunk", secrets=("password",)),
        Section("route_groups", RouteGroupSpec, "route group"),
        Section("route_lists", RouteListSpec, "route list"),
        Section("route_patterns", RoutePatternSpec, "route pattern", number_field="pattern"),
        Section(
            "translation_patterns",
            TranslationPatternSpec,
            "translation pattern",
            number_field="pattern",
        ),
        Section("moh_sources", MohSourceSpec, "music on hold source"),
        Section("meetme", MeetMeSpec, "meet-me number", number_field="number"),
        Section("media_resource_groups", MediaResourceGroupSpec, "media resource group"),
        Section("media_resource_lists", MediaResourceListSpec, "media resource list"),
        Section("line_groups", LineGroupSpec, "line group"),
        Section("hunt_lists", HuntListSpec, "hunt list"),
        Section("hunt_pilots", HuntPilotSpec, "hunt pilot", number_field="pattern"),
        Section("pickup_groups", PickupGroupSpec, "pickup group"),
        Section("call_park", CallParkSpec, "call park range", number_field="range"),
        Section("cti_route_points", CtiRoutePointSpec, "CTI route point"),
        Section("cti_ports", CtiPortSpec, "CTI port"),
    )
}


def section(name: str) -> Section:
    """The section called ``name``; KeyError for a name that is no plan section."""
    return SECTIONS[name]


def plan_model(sec: Section, entry: Any) -> BaseModel:
    """A plan entry (as the plan file holds it) as its section's model."""
    if sec.name == "partitions" and isinstance(entry, str):
        return PartitionSpec(name=entry)
    return sec.spec.model_validate(entry)


def view_of(sec: Section, model: BaseModel) -> dict[str, Any]:
    """The API's view of an entry: every field, secrets left out."""
    return model.model_dump(mode="json", by_alias=True, exclude=set(sec.secrets))


def plan_entry(sec: Section, model: BaseModel) -> Any:
    """An entry as the plan file holds it (secrets kept: they are written, never shown)."""
    if isinstance(model, PartitionSpec):
        return model.name
    return model.model_dump(mode="python", by_alias=True)


def etag_of(view: Mapping[str, Any]) -> str:
    """The ETag of an API object: the quoted SHA-256 of its canonical JSON."""
    text = json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(text.encode()).hexdigest() + '"'


def if_match_ok(if_match: str | None, etag: str) -> bool:
    """Whether an ``If-Match`` header value allows changing an object with ``etag``.

    No header allows it; ``*`` matches any existing object; weak tags
    (``W/"..."``) are compared by their value.
    """
    if if_match is None:
        return True
    for tag in if_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: mappings merged, anything else replaced, null removes."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def model_problems(sec: Section, key: str, exc: ValidationError) -> list[tuple[str, str]]:
    """A model's validation errors as (location, message), located in the plan."""
    base = f"{sec.name}[{key}]"
    out = []
    for err in exc.errors():
        loc = base
        for part in err["loc"]:
            if isinstance(part, int):
                loc += f"[{part}]"
            elif "[" not in part:  # pydantic's union and validator tags
                loc += f".{part}"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key missing"
        out.append((loc, msg))
    return out


_ENTRY_RE = re.compile(r"^([a-z_]+)\[(\d+)\](?: \([^)]*\))?")
_INNER_LABEL_RE = re.compile(r"\[(\d+)\] \([^)]*\)")


def located(loc: str, data: Mapping[str, Any]) -> tuple[str, str, int | None]:
    """A ``plan_check`` location in the API's form, with the entry it is in.

    ``devices[3] (alice).lines[0] (x).dn`` becomes ``devices[alice].lines[0].dn``
    (the key text of entry 3 of ``data['devices']``), returned with the section
    and index (``""`` and None when the location names no entry).
    """
    m = _ENTRY_RE.match(loc)
    if m is None or m.group(1) not in SECTIONS:
        return _INNER_LABEL_RE.sub(r"[\1]", loc), "", None
    sec, index = SECTIONS[m.group(1)], int(m.group(2))
    entries = data.get(sec.name) or []
    key = sec.key(entries[index]) if index < len(entries) else str(index)
    rest = _INNER_LABEL_RE.sub(r"[\1]", loc[m.end() :])
    return f"{sec.name}[{key}]{rest}", sec.name, index


def label_located(loc: str) -> str:
    """A location without the data it was found in: the entry's label as its key."""
    m = re.match(r"^([a-z_]+)\[\d+\] \(([^)]*)\)", loc)
    if m is not None:
        loc = f"{m.group(1)}[{m.group(2)}]{loc[m.end() :]}"
    return _INNER_LABEL_RE.sub(r"[\1]", loc)
