"""Validating a plan: already-parsed YAML data to a checked ``PlanSpec``, or ``PlanError``.

:func:`parse_plan` runs the schema (``offhook.db.plan_spec``), then the checks
across entries. Every reference (partition, calling search space, trunk, route
group, route list) must exist, names are unique per kind, a pattern is unique
in its partition (a DN counts as a pattern), an SCCP device has a SEP name and a
known model and no password, patterns must compile and transformations be
valid; finally the whole plan is built into a ``DialPlan`` to catch anything
else.

The media plane: a ``moh_source`` (of a device or a line) names a declared
music on hold source (or ``default``, which always exists), a
``media_resource_list`` a declared list, whose groups must exist; a meet-me
number is unique in its partition like a DN (and may not equal a DN or
pattern there). Each music on hold file must be a readable, non-empty
regular file: a relative path is taken from the plan file's directory
(``base``) and the plan comes back with every file made absolute
(normalised, symbolic links kept as written).

Call coverage: a forward's ``css`` and a hunt pilot's ``final_css`` name
declared CSSs, a line's ``pickup_group`` a declared pickup group, a hunt
list's line groups and a hunt pilot's hunt list exist, a line group's members
are DNs of the plan (each once), no line forwards to itself (its external
forwards included) and an intercom line has no forwards. Hunt pilots,
pickup group numbers and every number of a park range are exact numbers in
their partition, like DNs: each must be free there (so park ranges may not
overlap each other or a DN).

CTI route points and ports (``offhook.db.plan_cti``): a name no other
device has, declared partition and CSS, and a DN free in its partition.

A DN may appear on several devices (a shared line). Validation is strict
(unknown keys refused); every problem is reported as
``FILE: devices[1] (bob).lines[0].dn: problem`` (or
``FILE: route_patterns[2] (9.1900XXXXXXX).route_list: problem``) and nothing
is written.

Reading the YAML text itself is ``offhook.db.plan_yaml``'s.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from offhook.core.directory import DEFAULT_MOH_SOURCE
from offhook.db.plan_cti import cti_problems
from offhook.db.plan_spec import (
    MAX_PATH,
    SCCP_MODELS,
    SEP_RE,
    DeviceSpec,
    MohSourceSpec,
    PatternSpec,
    PlanSpec,
    RouteGroupMemberSpec,
    RoutePatternSpec,
    TransformSpec,
    TranslationPatternSpec,
)

MAX_PROBLEMS = 200
"""Problems listed in a :class:`PlanError`; the rest are counted."""


class PlanError(Exception):
    """An invalid plan: ``problems`` are ``(location, message)`` pairs."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems[:MAX_PROBLEMS])
        if len(problems) > MAX_PROBLEMS:
            self.problems.append(("", f"and {len(problems) - MAX_PROBLEMS} more problems"))
        super().__init__(
            "\n".join(
                f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}" for loc, msg in problems
            )
        )


_LABEL_KEYS = {"meetme": ("number",), "call_park": ("range",)}


def _label(node: Any, section: str) -> str:
    """What names an entry of list ``section`` in messages: its name, pattern or
    trunk (a meet-me entry: its number, a park entry: its range), or the entry
    itself."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict):
        keys = _LABEL_KEYS.get(section, ("name", "pattern", "trunk"))
        for key in keys:
            if isinstance(node.get(key), str):
                return str(node[key])
    return ""


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    out = ""
    node = raw
    section = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            try:
                node = node[part]
            except (IndexError, KeyError, TypeError):
                node = None
            label = _label(node, section)
            if label:
                out += f" ({label})"
        else:
            out += f".{part}" if out else part
            node = node.get(part) if isinstance(node, dict) else None
            section = part
    return out


def parse_plan(
    data: Any, source: str, base: Path | None = None, *, require_passwords: bool = False
) -> PlanSpec:
    """Validate already-parsed YAML data; raise :class:`PlanError` on any problem.

    ``base`` is the directory relative music on hold files are read from (the
    plan file's; the current directory when None). ``require_passwords``: a
    sip device without a password is a problem (a plan file for ``offhook
    load``); without it, such a device keeps its stored secret when applied
    with ``keep_passwords`` (an exported or API-edited plan).
    """
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
    if require_passwords:
        missing = sip_without_password(plan)
        if missing:
            raise PlanError(source, missing)
    problems = _references(plan)
    if not problems:
        problems = _compile(plan)
    sources, file_problems = _moh_files(plan.moh_sources, base)
    problems += file_problems
    if problems:
        raise PlanError(source, problems)
    return plan.model_copy(update={"moh_sources": sources})


def sip_without_password(plan: PlanSpec) -> list[tuple[str, str]]:
    """A problem for each sip device of ``plan`` that has no password."""
    return [
        (f"devices[{i}] ({d.name})", "a sip device needs a password (its digest secret)")
        for i, d in enumerate(plan.devices)
        if d.protocol == "sip" and d.password is None
    ]


def _unique(
    kind: str, names: Sequence[str], where: str, suffix: str = ".name"
) -> list[tuple[str, str]]:
    """Duplicate names in one section, reported at the later entry."""
    first: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        if name in first:
            out.append(
                (
                    f"{where}[{i}] ({name}){suffix}",
                    f"duplicate {kind} (first at {where}[{first[name]}])",
                )
            )
        else:
            first[name] = i
    return out


def _references(plan: PlanSpec) -> list[tuple[str, str]]:
    """Unique names and existing references; every problem, in plan order."""
    problems: list[tuple[str, str]] = []
    problems += _unique("device name", [d.name for d in plan.devices], "devices")
    problems += _unique("partition", plan.partitions, "partitions", suffix="")
    problems += _unique(
        "calling search space name",
        [c.name for c in plan.calling_search_spaces],
        "calling_search_spaces",
    )
    problems += _unique("trunk name", [t.name for t in plan.trunks], "trunks")
    problems += _unique("route group name", [g.name for g in plan.route_groups], "route_groups")
    problems += _unique("route list name", [r.name for r in plan.route_lists], "route_lists")
    problems += _unique(
        "music on hold source name", [m.name for m in plan.moh_sources], "moh_sources"
    )
    problems += _unique(
        "media resource group name",
        [g.name for g in plan.media_resource_groups],
        "media_resource_groups",
    )
    problems += _unique(
        "media resource list name",
        [r.name for r in plan.media_resource_lists],
        "media_resource_lists",
    )

    partitions = set(plan.partitions)
    css_names = {c.name for c in plan.calling_search_spaces}
    trunks = {t.name for t in plan.trunks}
    groups = {g.name for g in plan.route_groups}
    lists = {r.name for r in plan.route_lists}
    moh = {m.name for m in plan.moh_sources} | {DEFAULT_MOH_SOURCE}
    media_groups = {g.name for g in plan.media_resource_groups}
    media_lists = {r.name for r in plan.media_resource_lists}

    missing = _missing

    def partition(loc: str, name: str) -> None:
        if name and name not in partitions:
            problems.append((loc, missing("partition", name, partitions)))

    def css(loc: str, name: str) -> None:
        if name and name not in css_names:
            problems.append((loc, missing("calling search space", name, css_names)))

    for i, c in enumerate(plan.calling_search_spaces):
        for j, p in enumerate(c.partitions):
            loc = f"calling_search_spaces[{i}] ({c.name}).partitions[{j}]"
            partition(loc, p)
            if p in c.partitions[:j]:
                problems.append((loc, f"partition {p!r} is listed twice"))

    def moh_source(loc: str, name: str) -> None:
        if name and name not in moh:
            problems.append((loc, missing("music on hold source", name, moh)))

    for i, d in enumerate(plan.devices):
        base = f"devices[{i}] ({d.name})"
        problems += _device_kind(base, d)
        css(f"{base}.css", d.css)
        moh_source(f"{base}.moh_source", d.moh_source)
        if d.media_resource_list and d.media_resource_list not in media_lists:
            problems.append(
                (
                    f"{base}.media_resource_list",
                    missing("media resource list", d.media_resource_list, media_lists),
                )
            )
        for j, ln in enumerate(d.lines):
            partition(f"{base}.lines[{j}].partition", ln.partition)
            moh_source(f"{base}.lines[{j}].moh_source", ln.moh_source)
    for i, t in enumerate(plan.trunks):
        css(f"trunks[{i}] ({t.name}).css", t.css)
    for i, g in enumerate(plan.route_groups):
        for j, m in enumerate(g.members):
            loc = f"route_groups[{i}] ({g.name}).members[{j}] ({m.trunk})"
            if m.trunk not in trunks:
                problems.append((loc, missing("trunk", m.trunk, trunks)))
            elif m.trunk in [x.trunk for x in g.members[:j]]:
                problems.append((loc, f"trunk {m.trunk!r} is listed twice in this group"))
    for i, r in enumerate(plan.route_lists):
        for j, name in enumerate(r.groups):
            loc = f"route_lists[{i}] ({r.name}).groups[{j}]"
            if name not in groups:
                problems.append((loc, missing("route group", name, groups)))
            elif name in r.groups[:j]:
                problems.append((loc, f"route group {name!r} is listed twice in this list"))
    for i, mg in enumerate(plan.media_resource_groups):
        for j, server in enumerate(mg.servers):
            if server in mg.servers[:j]:
                problems.append(
                    (
                        f"media_resource_groups[{i}] ({mg.name}).servers[{j}]",
                        f"media server {server!r} is listed twice in this group",
                    )
                )
    for i, ml in enumerate(plan.media_resource_lists):
        for j, name in enumerate(ml.groups):
            loc = f"media_resource_lists[{i}] ({ml.name}).groups[{j}]"
            if name not in media_groups:
                problems.append((loc, missing("media resource group", name, media_groups)))
            elif name in ml.groups[:j]:
                problems.append(
                    (loc, f"media resource group {name!r} is listed twice in this list")
                )

    # A pattern is unique in its partition; a DN is a pattern too (shared
    # lines are one DN on several devices, so the same DN twice is fine).
    used: dict[tuple[str, str], str] = {}
    for i, d in enumerate(plan.devices):
        for j, ln in enumerate(d.lines):
            used.setdefault((ln.dn, ln.partition), f"devices[{i}] ({d.name}).lines[{j}]")
    # A meet-me number is an exact number like a DN, never shared.
    for i, mm in enumerate(plan.meetme):
        base = f"meetme[{i}] ({mm.number})"
        partition(f"{base}.partition", mm.partition)
        key = (mm.number, mm.partition)
        if key in used:
            problems.append(
                (
                    f"{base}.number",
                    f"{mm.number!r} in partition {mm.partition!r} is already used by {used[key]}",
                )
            )
        else:
            used[key] = base
    problems += _coverage(plan, used, partitions, css_names)
    problems += cti_problems(plan, used, partitions, css_names)
    sections: list[tuple[str, Sequence[PatternSpec]]] = [
        ("route_patterns", plan.route_patterns),
        ("translation_patterns", plan.translation_patterns),
    ]
    for section, entries in sections:
        for i, e in enumerate(entries):
            base = f"{section}[{i}] ({e.pattern})"
            partition(f"{base}.partition", e.partition)
            key = (e.pattern, e.partition)
            if key in used:
                problems.append(
                    (
                        f"{base}.pattern",
                        f"{e.pattern!r} in partition {e.partition!r} is already used by "
                        f"{used[key]}",
                    )
                )
            else:
                used[key] = base
            if isinstance(e, RoutePatternSpec):
                if e.route_list is not None and e.route_list not in lists:
                    problems.append(
                        (f"{base}.route_list", missing("route list", e.route_list, lists))
                    )
            elif isinstance(e, TranslationPatternSpec):
                css(f"{base}.css", e.css)
    return problems


def _missing(kind: str, name: str, known: set[str]) -> str:
    defined = ", ".join(sorted(known)) if known else "none"
    return f"{kind} {name!r} does not exist (defined: {defined})"


_FORWARDS = (
    "forward_all",
    "forward_busy",
    "forward_no_answer",
    "forward_unregistered",
    "forward_busy_external",
    "forward_no_answer_external",
    "forward_unregistered_external",
)


def _coverage(
    plan: PlanSpec,
    used: dict[tuple[str, str], str],
    partitions: set[str],
    css_names: set[str],
) -> list[tuple[str, str]]:
    """Call coverage's names and references; its numbers join ``used``.

    Hunt pilots, pickup group numbers and park numbers are exact numbers in a
    partition, like DNs: each must be free there.
    """
    problems: list[tuple[str, str]] = []
    problems += _unique("line group name", [g.name for g in plan.line_groups], "line_groups")
    problems += _unique("hunt list name", [h.name for h in plan.hunt_lists], "hunt_lists")
    problems += _unique("pickup group name", [p.name for p in plan.pickup_groups], "pickup_groups")
    groups = {g.name for g in plan.line_groups}
    hunt_lists = {h.name for h in plan.hunt_lists}
    pickups = {p.name for p in plan.pickup_groups}
    # (a CTI port may be a member: a pool of ports behind a hunt pilot)
    dns = {ln.dn for d in plan.devices for ln in d.lines} | {p.dn for p in plan.cti_ports}

    def known(loc: str, kind: str, name: str, names: set[str]) -> None:
        if name and name not in names:
            problems.append((loc, _missing(kind, name, names)))

    def number(base: str, field: str, text: str, partition: str, what: str) -> bool:
        key = (text, partition)
        if key in used:
            problems.append(
                (
                    f"{base}.{field}",
                    f"{what} {text!r} in partition {partition!r} is already used by {used[key]}",
                )
            )
            return False
        used[key] = base
        return True

    for i, d in enumerate(plan.devices):
        for j, ln in enumerate(d.lines):
            base = f"devices[{i}] ({d.name}).lines[{j}]"
            for key in _FORWARDS:
                fwd = getattr(ln, key)
                if fwd is None:
                    continue
                if ln.intercom:
                    problems.append((f"{base}.{key}", "an intercom line is never forwarded"))
                known(f"{base}.{key}.css", "calling search space", fwd.css, css_names)
                if fwd.destination == ln.dn:
                    problems.append((f"{base}.{key}.destination", f"{ln.dn} forwards to itself"))
            known(f"{base}.pickup_group", "pickup group", ln.pickup_group, pickups)
    for i, g in enumerate(plan.line_groups):
        for j, dn in enumerate(g.members):
            loc = f"line_groups[{i}] ({g.name}).members[{j}]"
            if dn not in dns:
                problems.append((loc, f"DN {dn!r} is on no device's line"))
            elif dn in g.members[:j]:
                problems.append((loc, f"DN {dn!r} is listed twice in this line group"))
    for i, h in enumerate(plan.hunt_lists):
        for j, name in enumerate(h.line_groups):
            loc = f"hunt_lists[{i}] ({h.name}).line_groups[{j}]"
            if name not in groups:
                problems.append((loc, _missing("line group", name, groups)))
            elif name in h.line_groups[:j]:
                problems.append((loc, f"line group {name!r} is listed twice in this hunt list"))
    for i, hp in enumerate(plan.hunt_pilots):
        base = f"hunt_pilots[{i}] ({hp.pattern})"
        if hp.hunt_list not in hunt_lists:
            problems.append((f"{base}.hunt_list", _missing("hunt list", hp.hunt_list, hunt_lists)))
        known(f"{base}.final_css", "calling search space", hp.final_css, css_names)
        if hp.final_forward == hp.pattern:
            problems.append((f"{base}.final_forward", "the final forward is the pilot itself"))
        known(f"{base}.partition", "partition", hp.partition, partitions)
        number(base, "pattern", hp.pattern, hp.partition, "hunt pilot")
    for i, pg in enumerate(plan.pickup_groups):
        base = f"pickup_groups[{i}] ({pg.name})"
        known(f"{base}.partition", "partition", pg.partition, partitions)
        if pg.number:
            number(base, "number", pg.number, pg.partition, "pickup number")
    for i, park in enumerate(plan.call_park):
        base = f"call_park[{i}] ({park.range})"
        known(f"{base}.partition", "partition", park.partition, partitions)
        for n in park.to_model().numbers():
            if not number(base, "range", n, park.partition, "park number"):
                break  # one problem a range
    return problems


def _moh_files(
    sources: Sequence[MohSourceSpec], base: Path | None
) -> tuple[list[MohSourceSpec], list[tuple[str, str]]]:
    """The music on hold sources with absolute files, and the files that cannot be played.

    A file must be a non-empty regular file this process can open; it is
    not decoded here (the media server does, and plays its built-in tones
    for a file it cannot decode).
    """
    root = str((Path.cwd() if base is None else base).absolute())
    out: list[MohSourceSpec] = []
    problems: list[tuple[str, str]] = []
    for i, m in enumerate(sources):
        loc = f"moh_sources[{i}] ({m.name}).file"
        path = os.path.normpath(os.path.join(root, m.file))
        out.append(m.model_copy(update={"file": path}))
        if len(path) > MAX_PATH:
            problems.append((loc, f"the absolute path is longer than {MAX_PATH} characters"))
            continue
        try:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode):
                problems.append((loc, f"{path} is not a regular file"))
            elif info.st_size == 0:
                problems.append((loc, f"{path} is empty"))
            else:
                with open(path, "rb"):
                    pass
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            problems.append((loc, f"cannot read {path} ({reason})"))
    return out, problems


def _device_kind(base: str, d: DeviceSpec) -> list[tuple[str, str]]:
    """What an SCCP device needs (SEP name, known model, no password); speed dials are SCCP's."""
    if d.protocol != "sccp":
        if d.speed_dials:
            return [(f"{base}.speed_dials", "speed dials are for sccp devices only")]
        return []
    out: list[tuple[str, str]] = []
    if not SEP_RE.fullmatch(d.name):
        out.append(
            (
                f"{base}.name",
                "an sccp device is named SEP and the phone's MAC address "
                "(12 hex digits), such as SEP001122334455",
            )
        )
    known = ", ".join(sorted(SCCP_MODELS))
    if not d.model:
        out.append((f"{base}.model", f"an sccp device needs a model (one of {known})"))
    elif d.model not in SCCP_MODELS:
        out.append((f"{base}.model", f"{d.model!r} is not a known SCCP phone model ({known})"))
    if d.password is not None:
        out.append(
            (f"{base}.password", "an sccp device has no password (SCCP phones do not authenticate)")
        )
    return out


def _compile(plan: PlanSpec) -> list[tuple[str, str]]:
    """Patterns compile, transformations are valid, and the analyzer accepts the plan."""
    from offhook.core.dialplan.pattern import PatternError, compile_pattern
    from offhook.core.dialplan.router import DialPlan, DialPlanError
    from offhook.core.dialplan.transform import validate_transform

    problems: list[tuple[str, str]] = []

    def transforms(base: str, entry: PatternSpec | RouteGroupMemberSpec) -> None:
        for name, calling in (("called_transform", False), ("calling_transform", True)):
            spec: TransformSpec = getattr(entry, name)
            try:
                validate_transform(spec.to_model(), calling=calling)
            except ValueError as exc:
                problems.append((f"{base}.{name}", str(exc)))

    for i, g in enumerate(plan.route_groups):
        for j, m in enumerate(g.members):
            transforms(f"route_groups[{i}] ({g.name}).members[{j}] ({m.trunk})", m)
    sections: list[tuple[str, Sequence[PatternSpec]]] = [
        ("route_patterns", plan.route_patterns),
        ("translation_patterns", plan.translation_patterns),
    ]
    for section, entries in sections:
        for i, e in enumerate(entries):
            base = f"{section}[{i}] ({e.pattern})"
            try:
                compile_pattern(e.pattern)
            except PatternError as exc:
                problems.append((f"{base}.pattern", f"invalid pattern: {exc}"))
            transforms(base, e)
    if problems:
        return problems
    try:
        DialPlan(plan.dialplan_spec())
    except DialPlanError as exc:
        return [(_plan_path(plan, exc.path), exc.message)]
    return []


def _plan_path(plan: PlanSpec, path: str) -> str:
    """The analyzer names DNs ``directory_numbers[i] (dn)``: say which line that is."""
    m = re.match(r"directory_numbers\[\d+\] \((.*)\)$", path)
    if m is None:
        return path
    for i, d in enumerate(plan.devices):
        for j, ln in enumerate(d.lines):
            if ln.dn == m.group(1):
                return f"devices[{i}] ({d.name}).lines[{j}].dn"
    return path
