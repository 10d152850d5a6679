"""atheris fuzz target for the plan loader (offhook.db.plan: YAML text -> validated plan).

Invariant: any bytes either give a ``PlanSpec`` or raise ``PlanError`` whose
message names the source and says what is wrong; anything else (a
``ValueError`` out of the YAML constructors, a ``RecursionError``, a
``KeyError`` in the location formatting ...) is a crash. Three modes, chosen
by the first byte:

- raw: the rest of the input is the YAML text itself (seed it with real plans,
  ``fuzz/corpus/fuzz_plan``, for a head start);
- structured: the input drives a generator of plan-shaped data (the plan's
  own keys, values full of edge cases: SQL metacharacters, control
  characters, huge and negative numbers, wrong types, dangling references,
  patterns and transforms), which is validated with ``parse_plan`` and also
  dumped to YAML and read back through ``parse_plan_text``: both must agree;
- apply: like structured, and a plan that validates is written to an
  in-memory SQLite database (schema upgraded once at start) with
  ``apply_plan`` and read back with ``load_snapshot``: the devices, lines,
  speed dials and dial plan must come back unchanged, and applying the same
  plan again must change nothing.

Run it bounded (libFuzzer flags pass through)::

    python fuzz/fuzz_plan.py -max_total_time=60 -max_len=4096 fuzz/corpus/fuzz_plan

Figures of the long runs are in ``fuzz/README.md``.
"""

from __future__ import annotations

import sys
from typing import Any

import atheris
import yaml
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

with atheris.instrument_imports():
    from offhook.db.plan import PlanError, PlanSpec, apply_plan, parse_plan, parse_plan_text
    from offhook.db.snapshot import load_snapshot

from offhook.db.engine import upgrade

REALM = "fuzz"
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
    ),
    "lines": ("dn", "display", "partition"),
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
    if key in _KEYS:
        if key in ("called_transform", "calling_transform"):
            return _mapping(fdp, key, depth + 1)
        return [_entry(fdp, key, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    if key in ("partitions", "groups", "inbound_addresses"):
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
            [(ln.dn, ln.display, ln.partition) for ln in d.lines],
            [(s.number, s.label) for s in d.speed_dials],
            d.css,
            d.max_calls,
            d.model,
        )
        for d in plan.devices
    }
    got = {
        d.name: (
            d.protocol,
            [(ln.dn, ln.display, ln.partition) for ln in d.lines],
            [(s.number, s.label) for s in d.speed_dials],
            d.css,
            d.max_calls,
            d.model,
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


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode = data[0] % 4
    if mode < 2:
        _checked(parse_plan_text, data[1:], "plan.yaml")
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    raw = _plan(fdp)
    direct = _checked(parse_plan, raw, "plan.yaml")
    try:
        text = yaml.safe_dump(raw, allow_unicode=fdp.ConsumeBool(), sort_keys=False)
    except yaml.YAMLError:
        return
    via_text = _checked(parse_plan_text, text.encode(), "plan.yaml")
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
