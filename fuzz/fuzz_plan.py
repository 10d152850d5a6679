"""atheris fuzz target for the plan loader (offhook.db.plan_yaml: YAML text -> validated plan).

Invariant: any bytes either give a ``PlanSpec`` or raise ``PlanError`` whose
message names the source and says what is wrong; anything else (a
``ValueError`` out of the YAML constructors, a ``RecursionError``, a
``KeyError`` in the location formatting ...) is a crash. Three modes, chosen
by the first byte:

- raw: the rest of the input is the YAML text itself (seed it with real plans,
  ``fuzz/corpus/fuzz_plan``, for a head start);
- shapeless: the input drives a generator of plan-shaped data (the plan's
  own keys at random, values full of edge cases: SQL metacharacters, control
  characters, huge and negative numbers, wrong types, dangling references),
  which is validated with ``parse_plan`` and also dumped to YAML and read
  back through ``parse_plan_text``: both must agree;
- apply: the input shapes a plan that is valid by construction (partitions,
  calling search spaces, SIP and SCCP devices with lines and speed dials,
  trunks, route groups and lists, route and translation patterns with
  transforms, music on hold sources (this file is their audio: any readable
  file is), meet-me numbers, media resource groups and lists, call coverage,
  every reference resolving), then replaces, drops or adds a few values anywhere;
  validated both ways as above, and a plan that validates is written to an
  in-memory SQLite database (schema upgraded once at start) with
  ``apply_plan`` and read back with ``load_snapshot``: the devices, lines
  (with their forwards, voicemail, pickup group and intercom), speed dials, dial plan,
  media plane and call coverage (line groups, hunt lists and pilots, pickup
  groups, park ranges) must come back unchanged, and applying the same plan
  again must change nothing; its export (``offhook.db.plan_export``) must be
  the same plan without passwords, and applying the export with
  ``keep_passwords`` must change nothing either.

Plans are validated as ``offhook load`` does (``require_passwords``: a sip
device needs its password).

Run it bounded (libFuzzer flags pass through)::

    python fuzz/fuzz_plan.py -max_total_time=60 -max_len=4096 fuzz/corpus/fuzz_plan

Figures of the long runs are in ``fuzz/README.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import atheris
import yaml
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

with atheris.instrument_imports():
    from offhook.db.plan_apply import apply_plan
    from offhook.db.plan_check import PlanError, parse_plan
    from offhook.db.plan_export import export_plan
    from offhook.db.plan_spec import PlanSpec
    from offhook.db.plan_yaml import parse_plan_text
    from offhook.db.snapshot import load_snapshot

from offhook.db.engine import upgrade

REALM = "fuzz"
AUDIO = str(Path(__file__).resolve())
_ENGINE = create_engine("sqlite://", poolclass=StaticPool)

_TOP = (
    "devices",
    "partitions",
    "calling_search_spaces",
    "trunks",
    "route_groups",
    "route_lists",
    "route_patterns",
    "translation_patterns",
    "moh_sources",
    "meetme",
    "media_resource_groups",
    "media_resource_lists",
    "line_groups",
    "hunt_lists",
    "hunt_pilots",
    "pickup_groups",
    "call_park",
)
_FORWARDS = (
    "forward_all",
    "forward_busy",
    "forward_no_answer",
    "forward_unregistered",
    "forward_busy_external",
    "forward_no_answer_external",
    "forward_unregistered_external",
)
_KEYS: dict[str, tuple[str, ...]] = {
    "devices": (
        "name",
        "protocol",
        "password",
        "description",
        "css",
        "max_calls",
        "lines",
        "model",
        "speed_dials",
        "moh_source",
        "media_resource_list",
        "dnd_option",
        "privacy",
    ),
    "lines": (
        "dn",
        "display",
        "partition",
        "moh_source",
        *_FORWARDS,
        "cfna_timer",
        "voicemail",
        "pickup_group",
        "intercom",
    ),
    **{key: ("destination", "css") for key in _FORWARDS},
    "speed_dials": ("number", "label"),
    "calling_search_spaces": ("name", "partitions"),
    "trunks": (
        "name",
        "protocol",
        "host",
        "port",
        "transport",
        "css",
        "max_calls",
        "username",
        "password",
        "register",
        "options_ping",
        "inbound_addresses",
    ),
    "route_groups": ("name", "distribution", "members"),
    "members": ("trunk", "called_transform", "calling_transform"),
    "route_lists": ("name", "groups"),
    "route_patterns": (
        "pattern",
        "partition",
        "urgent",
        "called_transform",
        "calling_transform",
        "route_list",
        "block",
        "block_cause",
    ),
    "translation_patterns": (
        "pattern",
        "partition",
        "urgent",
        "called_transform",
        "calling_transform",
        "css",
        "block",
    ),
    "called_transform": ("discard", "replace", "mask", "prefix", "presentation"),
    "calling_transform": ("discard", "replace", "mask", "prefix", "presentation"),
    "moh_sources": ("name", "file"),
    "meetme": ("number", "partition", "pin", "max_parties"),
    "media_resource_groups": ("name", "servers"),
    "media_resource_lists": ("name", "groups"),
    "line_groups": (
        "name",
        "distribution",
        "rna_timeout",
        "on_no_answer",
        "on_busy",
        "on_unavailable",
        "members",
    ),
    "hunt_lists": ("name", "line_groups"),
    "hunt_pilots": ("pattern", "partition", "hunt_list", "final_forward", "final_css"),
    "pickup_groups": ("name", "number", "partition"),
    "call_park": ("range", "partition", "reversion"),
}
_STRINGS = (
    "alice",
    "bob",
    "SEP001122334455",
    "sep00aabbccddee",
    "sip",
    "sccp",
    "7960",
    "udp",
    "tcp",
    "tls",
    "internal",
    "pstn",
    "staff",
    "carrier",
    "carriers",
    "pstn-out",
    "1001",
    "1002",
    "+15551234",
    "9.1[2-9]XX[2-9]XXXXXX",
    "9.!",
    "X",
    "[^0]",
    "\\+1XXX",
    "pre-dot",
    "pre-dot-trailing-#",
    "trailing-#",
    "5551XXXX",
    "allowed",
    "restricted",
    "top-down",
    "circular",
    "127.0.0.1",
    "192.0.2.0/24",
    "::1/128",
    "'; DROP TABLE devices; --",
    'a"b\\c',
    "Ünïcødé ☎ 電話",
    "\x00",
    "\t\r\n",
    "x" * 70,
    "",
    "%s%s%n",
    "0100",
    "default",
    "embedded",
    "5000",
    "0042",
    "moh/default.wav",
    "../../etc/passwd",
    "/dev/zero",
    "/nonexistent/x.wav",
    "ringer-off",
    "reject",
    "longest-idle",
    "broadcast",
    "next-member",
    "next-group",
    "stop",
    "support",
    "sales",
    "1500",
    "8100",
    "7000-7009",
    "7009-7000",
    "7000-17000",
    "7000",
)


def _scalar(fdp: atheris.FuzzedDataProvider) -> Any:
    kind = fdp.ConsumeIntInRange(0, 9)
    if kind <= 3:
        return _STRINGS[fdp.ConsumeIntInRange(0, len(_STRINGS) - 1)]
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
    if kind == 5:
        return fdp.ConsumeIntInRange(-(2**40), 2**40)
    if kind == 6:
        return fdp.ConsumeBool()
    if kind == 7:
        return fdp.ConsumeRegularFloat()
    if kind == 8:
        return None
    return str(fdp.ConsumeIntInRange(0, 10**12))


def _value(fdp: atheris.FuzzedDataProvider, key: str, depth: int) -> Any:
    if depth > 4 or fdp.ConsumeIntInRange(0, 7) == 0:
        return _scalar(fdp)
    # "line_groups" here is a hunt list's (names); the section itself is _plan's.
    if key in _KEYS and key != "line_groups":
        if key in ("called_transform", "calling_transform", *_FORWARDS):
            return _mapping(fdp, key, depth + 1)
        return [_entry(fdp, key, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    if key in ("partitions", "groups", "inbound_addresses", "servers", "line_groups"):
        return [_scalar(fdp) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    return _scalar(fdp)


def _entry(fdp: atheris.FuzzedDataProvider, key: str, depth: int) -> Any:
    if key == "members" and fdp.ConsumeBool():
        return _scalar(fdp)  # the short form: a trunk name
    return _mapping(fdp, key, depth)


def _mapping(fdp: atheris.FuzzedDataProvider, key: str, depth: int) -> dict[str, Any]:
    keys = _KEYS[key]
    out: dict[str, Any] = {}
    for _ in range(fdp.ConsumeIntInRange(0, len(keys) + 1)):
        k = keys[fdp.ConsumeIntInRange(0, len(keys) - 1)]
        if fdp.ConsumeIntInRange(0, 15) == 0:
            k = "unknown_" + k
        out[k] = _value(fdp, k, depth)
    return out


def _plan(fdp: atheris.FuzzedDataProvider) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(fdp.ConsumeIntInRange(0, len(_TOP))):
        k = _TOP[fdp.ConsumeIntInRange(0, len(_TOP) - 1)]
        if k == "partitions":
            out[k] = [_scalar(fdp) for _ in range(fdp.ConsumeIntInRange(0, 4))]
        else:
            out[k] = [_entry(fdp, k, 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    return out


_PATTERNS = (
    "9.1[2-9]XX[2-9]XXXXXX",
    "9.011!",
    "9.011!#",
    "8XXX",
    "[2-4]XX",
    "[^0]XX",
    "\\+1XXXXXXXXXX",
    "*67X.",
    "0",
    "911",
    "9.[2-9]XXXXXX",
    "5?",
)
_TRANSFORMS: tuple[dict[str, Any], ...] = (
    {},
    {"discard": "pre-dot"},
    {"discard": "pre-dot", "prefix": "+"},
    {"replace": "1000"},
    {"mask": "5551XXXX"},
    {"prefix": "9", "presentation": "restricted"},
    {"discard": "trailing-#"},
)


def _pick(fdp: atheris.FuzzedDataProvider, options: list[Any] | tuple[Any, ...]) -> Any:
    return options[fdp.ConsumeIntInRange(0, len(options) - 1)] if options else ""


def _subset(fdp: atheris.FuzzedDataProvider, options: list[str], least: int = 0) -> list[str]:
    out = [o for o in options if fdp.ConsumeBool()]
    return out or options[:least]


def _template_plan(fdp: atheris.FuzzedDataProvider) -> dict[str, Any]:
    """A plan that is valid by construction (names, references), of fuzzer-chosen shape."""
    partitions = [f"part{i}" for i in range(fdp.ConsumeIntInRange(0, 3))]
    css = [
        {"name": f"css{i}", "partitions": _subset(fdp, partitions)}
        for i in range(fdp.ConsumeIntInRange(0, 2))
    ]
    css_names = ["", *(c["name"] for c in css)]
    devices = []
    for i in range(fdp.ConsumeIntInRange(0, 4)):
        sccp = fdp.ConsumeBool()
        dev: dict[str, Any] = {
            "name": f"SEP{0xA0000 + i:012X}" if sccp else f"dev{i}",
            "protocol": "sccp" if sccp else "sip",
            "css": _pick(fdp, css_names),
            "description": _pick(fdp, _STRINGS[35:]),
            "lines": [
                {
                    "dn": f"{1000 + 10 * i + j}",
                    "display": _pick(fdp, _STRINGS[35:]),
                    "partition": _pick(fdp, ["", *partitions]),
                }
                for j in range(fdp.ConsumeIntInRange(0, 2))
            ],
        }
        if sccp:
            dev["model"] = _pick(fdp, ("7940", "7960", "7970", "7912"))
            dev["speed_dials"] = [
                {"number": "1000", "label": "x"} for _ in range(fdp.ConsumeIntInRange(0, 2))
            ]
        else:
            dev["password"] = _pick(fdp, ("p", "'; DROP TABLE devices; --", "Ünï ☎"))
            dev["model"] = _pick(fdp, ("", "softphone"))
        devices.append(dev)
    trunks = [
        {
            "name": f"trunk{i}",
            "protocol": "sip",
            "host": _pick(fdp, ("127.0.0.1", "carrier.example.com", "::1")),
            "port": fdp.ConsumeIntInRange(1, 65535),
            "transport": _pick(fdp, ("udp", "tcp", "tls")),
            "css": _pick(fdp, css_names),
            "max_calls": fdp.ConsumeIntInRange(0, 100),
            "inbound_addresses": _subset(fdp, ["127.0.0.0/8", "192.0.2.0/24", "::1"]),
        }
        for i in range(fdp.ConsumeIntInRange(0, 2))
    ]
    names = [t["name"] for t in trunks]
    groups = [
        {
            "name": f"group{i}",
            "distribution": _pick(fdp, ("top-down", "circular")),
            "members": [
                {"trunk": t, "called_transform": _pick(fdp, _TRANSFORMS)}
                if fdp.ConsumeBool()
                else t
                for t in _subset(fdp, names, 1)
            ],
        }
        for i in range(fdp.ConsumeIntInRange(0, 2) if names else 0)
    ]
    lists = [
        {"name": f"list{i}", "groups": _subset(fdp, [g["name"] for g in groups], 1)}
        for i in range(fdp.ConsumeIntInRange(0, 2) if groups else 0)
    ]
    route_patterns: list[dict[str, Any]] = []
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        entry: dict[str, Any] = {
            "pattern": _pick(fdp, _PATTERNS),
            "partition": _pick(fdp, ["", *partitions]),
            "urgent": fdp.ConsumeBool(),
            "called_transform": _pick(fdp, _TRANSFORMS),
            "calling_transform": _pick(fdp, _TRANSFORMS[:1] + _TRANSFORMS[4:6]),
        }
        if lists and fdp.ConsumeBool():
            entry["route_list"] = _pick(fdp, [r["name"] for r in lists])
        else:
            entry["block"] = True
            entry["block_cause"] = fdp.ConsumeIntInRange(1, 127)
        route_patterns.append(entry)
    translations = [
        {
            "pattern": _pick(fdp, _PATTERNS),
            "partition": _pick(fdp, ["", *partitions]),
            "css": _pick(fdp, css_names),
            "called_transform": _pick(fdp, _TRANSFORMS),
        }
        for _ in range(fdp.ConsumeIntInRange(0, 2))
    ]
    media = _template_media(fdp, partitions)
    moh_names = ["", "default", *(m["name"] for m in media["moh_sources"])]
    list_names = ["", *(r["name"] for r in media["media_resource_lists"])]
    for dev in devices:
        dev["moh_source"] = _pick(fdp, moh_names)
        dev["media_resource_list"] = _pick(fdp, list_names)
        for line in dev["lines"]:
            line["moh_source"] = _pick(fdp, moh_names)
    return {
        **media,
        **_template_coverage(fdp, partitions, css_names, devices),
        "partitions": partitions,
        "calling_search_spaces": css,
        "devices": devices,
        "trunks": trunks,
        "route_groups": groups,
        "route_lists": lists,
        "route_patterns": route_patterns,
        "translation_patterns": translations,
    }


def _template_media(fdp: atheris.FuzzedDataProvider, partitions: list[str]) -> dict[str, Any]:
    """The media plane of a valid plan: sources, meet-me numbers (5xxx: no DN is), resources."""
    groups = [
        {"name": f"mrg{i}", "servers": _subset(fdp, ["embedded", "ms1", "ms2"], 1)}
        for i in range(fdp.ConsumeIntInRange(0, 2))
    ]
    meetme: list[dict[str, Any]] = []
    for i in range(fdp.ConsumeIntInRange(0, 3)):
        room: dict[str, Any] = {"number": f"5{i:03d}", "partition": _pick(fdp, ["", *partitions])}
        if fdp.ConsumeBool():
            room["pin"] = str(fdp.ConsumeIntInRange(0, 10**8))
        if fdp.ConsumeBool():
            room["max_parties"] = fdp.ConsumeIntInRange(2, 1000)
        meetme.append(room)
    return {
        "moh_sources": [
            {"name": name, "file": AUDIO} for name in _subset(fdp, ["default", "jazz"])
        ],
        "meetme": meetme,
        "media_resource_groups": groups,
        "media_resource_lists": [
            {"name": f"mrl{i}", "groups": _subset(fdp, [g["name"] for g in groups], 1)}
            for i in range(fdp.ConsumeIntInRange(0, 2) if groups else 0)
        ],
    }


def _template_coverage(
    fdp: atheris.FuzzedDataProvider,
    partitions: list[str],
    css_names: list[str],
    devices: list[dict[str, Any]],
) -> dict[str, Any]:
    """Call coverage of a valid plan: the lines' forwards, voicemail, pickup groups and
    intercom, the devices' DND option and privacy (set on ``devices``), line groups,
    hunt lists, pilots (6xxx), pickup numbers (66xx: no pilot is) and park ranges
    (7xxx), every reference resolving."""
    dns = [line["dn"] for dev in devices for line in dev["lines"]]
    pickups = [
        {"name": f"pickup{i}", "partition": _pick(fdp, ["", *partitions])}
        for i in range(fdp.ConsumeIntInRange(0, 2))
    ]
    for i, pickup in enumerate(pickups):
        if fdp.ConsumeBool():
            pickup["number"] = f"66{i:02d}"
    for dev in devices:
        dev["dnd_option"] = _pick(fdp, ("ringer-off", "reject"))
        dev["privacy"] = fdp.ConsumeBool()
        for line in dev["lines"]:
            # An intercom line takes no forwards.
            line["intercom"] = fdp.ConsumeIntInRange(0, 3) == 0
            for key in _FORWARDS if not line["intercom"] else ():
                if fdp.ConsumeBool():
                    destination = _pick(fdp, ["8000", "+15551234", "*97", *dns])
                    if destination != line["dn"]:
                        line[key] = {"destination": destination, "css": _pick(fdp, css_names)}
            if fdp.ConsumeBool():
                line["cfna_timer"] = fdp.ConsumeIntInRange(1, 600)
            line["voicemail"] = _pick(fdp, ("", "8000", "*97"))
            line["pickup_group"] = _pick(fdp, ["", *(p["name"] for p in pickups)])
    groups = [
        {
            "name": f"lg{i}",
            "distribution": _pick(fdp, ("top-down", "circular", "longest-idle", "broadcast")),
            "rna_timeout": fdp.ConsumeIntInRange(1, 600),
            "on_no_answer": _pick(fdp, ("next-member", "next-group", "stop")),
            "members": _subset(fdp, sorted(set(dns))),
        }
        for i in range(fdp.ConsumeIntInRange(0, 2))
    ]
    hunt_lists = [
        {"name": f"hl{i}", "line_groups": _subset(fdp, [g["name"] for g in groups], 1)}
        for i in range(fdp.ConsumeIntInRange(0, 2) if groups else 0)
    ]
    pilots = [
        {
            "pattern": f"6{i:03d}",
            "partition": _pick(fdp, ["", *partitions]),
            "hunt_list": _pick(fdp, [h["name"] for h in hunt_lists]),
            "final_forward": _pick(fdp, ["", "8000", *dns]),
            "final_css": _pick(fdp, css_names),
        }
        for i in range(fdp.ConsumeIntInRange(0, 2) if hunt_lists else 0)
    ]
    parks = []
    for i in range(fdp.ConsumeIntInRange(0, 2)):
        first = 7000 + 100 * i
        last = first + fdp.ConsumeIntInRange(0, 99)
        parks.append(
            {
                "range": f"{first}-{last}" if fdp.ConsumeBool() else str(first),
                "partition": _pick(fdp, ["", *partitions]),
                "reversion": fdp.ConsumeIntInRange(0, 3600),
            }
        )
    return {
        "line_groups": groups,
        "hunt_lists": hunt_lists,
        "hunt_pilots": pilots,
        "pickup_groups": pickups,
        "call_park": parks,
    }


def _mutate(fdp: atheris.FuzzedDataProvider, node: Any) -> None:
    """Replace, drop or add one value somewhere in ``node`` (a few times)."""
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        here = node
        while True:
            if isinstance(here, dict) and here:
                key = _pick(fdp, sorted(here))
                child = here[key]
                if isinstance(child, dict | list) and child and fdp.ConsumeBool():
                    here = child
                    continue
                action = fdp.ConsumeIntInRange(0, 3)
                if action == 0:
                    del here[key]
                elif action == 1:
                    here["unknown_" + str(key)] = _scalar(fdp)
                else:
                    here[key] = _scalar(fdp)
            elif isinstance(here, list) and here:
                i = fdp.ConsumeIntInRange(0, len(here) - 1)
                if isinstance(here[i], dict | list) and here[i] and fdp.ConsumeBool():
                    here = here[i]
                    continue
                here[i] = _scalar(fdp)
            break


def _checked(fn: Any, *args: Any) -> PlanSpec | None:
    """``fn(*args)``: the plan, or None for a PlanError that names its problems."""
    try:
        plan = fn(*args)
    except PlanError as err:
        text = str(err)
        if not err.problems or not text.startswith("plan.yaml"):
            raise AssertionError(f"PlanError without a located problem: {text!r}") from None
        # Keep no reference to the exception (its traceback holds every frame).
        return None
    assert isinstance(plan, PlanSpec)
    return plan


def _round_trip(plan: PlanSpec) -> None:
    """Write the plan to the in-memory database and read it back unchanged."""
    apply_plan(_ENGINE, plan, REALM)
    again = apply_plan(_ENGINE, plan, REALM)
    if again.changed:
        raise AssertionError(f"applying the same plan twice changed something: {again}")
    snap = load_snapshot(_ENGINE)
    want = {
        d.name: (
            d.protocol,
            list(d.lines),
            [(s.number, s.label) for s in d.speed_dials],
            d.css,
            d.max_calls,
            d.model,
            d.moh_source,
            d.media_resource_list,
            d.dnd_option,
            d.privacy,
        )
        for d in plan.device_infos()
    }
    got = {
        d.name: (
            d.protocol,
            list(d.lines),
            [(s.number, s.label) for s in d.speed_dials],
            d.css,
            d.max_calls,
            d.model,
            d.moh_source,
            d.media_resource_list,
            d.dnd_option,
            d.privacy,
        )
        for d in snap.devices.values()
    }
    if want != got:
        raise AssertionError(f"devices changed in the database: {want!r} != {got!r}")
    spec = plan.dialplan_spec()
    for field in ("partitions", "trunks"):
        if sorted(map(repr, getattr(spec, field))) != sorted(
            map(repr, getattr(snap.dialplan_spec, field))
        ):
            raise AssertionError(f"{field} changed in the database")
    key = lambda p: (p.pattern, p.partition)  # noqa: E731
    for field in ("route_patterns", "translation_patterns"):
        if sorted(getattr(spec, field), key=key) != sorted(
            getattr(snap.dialplan_spec, field), key=key
        ):
            raise AssertionError(f"{field} changed in the database")
    if sorted(spec.meetme, key=repr) != sorted(snap.dialplan_spec.meetme, key=repr):
        raise AssertionError("meet-me numbers changed in the database")
    media = (
        {m.name: m.file for m in plan.moh_sources},
        {g.name: tuple(g.servers) for g in plan.media_resource_groups},
        {r.name: tuple(r.groups) for r in plan.media_resource_lists},
    )
    if media != (
        dict(snap.moh_sources),
        dict(snap.media_resource_groups),
        dict(snap.media_resource_lists),
    ):
        raise AssertionError("the media plane changed in the database")
    coverage = (
        plan.line_group_models(),
        plan.hunt_list_models(),
        sorted(spec.hunt_pilots, key=repr),
        sorted(spec.pickup_groups, key=repr),
        sorted(spec.call_park, key=repr),
    )
    if coverage != (
        dict(snap.line_groups),
        dict(snap.hunt_lists),
        sorted(snap.dialplan_spec.hunt_pilots, key=repr),
        sorted(snap.dialplan_spec.pickup_groups, key=repr),
        sorted(snap.dialplan_spec.call_park, key=repr),
    ):
        raise AssertionError("call coverage changed in the database")
    _export_round_trip(plan)


def _export_round_trip(plan: PlanSpec) -> None:
    """The export is the plan without passwords; applied back keeping them, a no-op."""
    exported = parse_plan(export_plan(_ENGINE), "export")
    bare = plan.model_copy(
        update={
            "devices": [d.model_copy(update={"password": None}) for d in plan.devices],
            "trunks": [t.model_copy(update={"password": ""}) for t in plan.trunks],
        }
    )

    # Rows kept from earlier inputs keep their place: compare each section as a
    # set; a park range as what it holds ("7000-7000" is exported as "7000").
    def entries(spec: PlanSpec, name: str) -> list[str]:
        items = getattr(spec, name)
        if name == "call_park":
            items = [c.to_model() for c in items]
        return sorted(map(repr, items))

    for name in PlanSpec.model_fields:
        if entries(exported, name) != entries(bare, name):
            raise AssertionError(f"the export's {name} differ from the plan's")
    again = apply_plan(_ENGINE, exported, REALM, keep_passwords=True)
    if again.changed:
        raise AssertionError(f"applying the export changed something: {again}")


def _parse_file(raw: Any, source: str) -> PlanSpec:
    return parse_plan(raw, source, require_passwords=True)


def _parse_file_text(text: bytes, source: str) -> PlanSpec:
    return parse_plan_text(text, source, require_passwords=True)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode = data[0] % 4
    if mode < 2:
        _checked(parse_plan_text, data[1:], "plan.yaml")
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    if mode == 2:
        raw = _plan(fdp)
    else:
        raw = _template_plan(fdp)
        _mutate(fdp, raw)
    direct = _checked(_parse_file, raw, "plan.yaml")
    try:
        text = yaml.safe_dump(raw, allow_unicode=fdp.ConsumeBool(), sort_keys=False)
    except yaml.YAMLError:
        return
    via_text = _checked(_parse_file_text, text.encode(), "plan.yaml")
    if direct != via_text:
        raise AssertionError(f"YAML text and data disagree: {direct!r} / {via_text!r}")
    if mode == 3 and direct is not None:
        _round_trip(direct)


def main() -> None:
    upgrade(_ENGINE)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
