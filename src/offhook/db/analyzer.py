"""The dialed number analyzer: what the dial plan does with digits dialed from a device.

``offhook dna`` and the web API's ``GET /api/v1/analyze`` both call
:func:`analyze` on :func:`analysis_snapshot` (the plan in the database with
the auto-registered SCCP phones, as the node sees it; no running node
needed) and show the :class:`Analysis` as text (:func:`analysis_text`) or
JSON (:func:`analysis_json`): each translation, the matched pattern and
partition, the transformations, the route list and its trunks in order, or
why the number is blocked, incomplete or unknown (with the Q.850 cause). A
feature code (``[features] code_*``) is analysed before the dial plan and
named as such. A directory number of a CTI route point or port says so
(and, for a route point, its timeout and default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from offhook.core.causes import cause_text
from offhook.core.dialplan.model import Transform
from offhook.core.dialplan.router import Decision, Step
from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot, with_devices
from offhook.core.features.codes import match
from offhook.core.features.cti_devices import port_of, route_point_of
from offhook.db.autoreg import load_auto_registrations
from offhook.db.models import transform_to_json
from offhook.db.snapshot import load_snapshot

if TYPE_CHECKING:
    from offhook.config import Settings

__all__ = [
    "Analysis",
    "UnknownDevice",
    "analysis_json",
    "analysis_snapshot",
    "analysis_text",
    "analyze",
]


class UnknownDevice(LookupError):
    """The calling device is not in the plan."""


@dataclass(frozen=True, slots=True)
class Analysis:
    """One analysis: a feature code (``feature_code`` set, ``decision`` None) or
    the dial plan's :class:`Decision`."""

    device: DeviceInfo
    digits: str
    calling: str
    snapshot: PlanSnapshot
    decision: Decision | None = None
    feature_code: tuple[str, str] | None = None
    """(feature name, the number after the code); the name is "" for a code
    whose number is missing."""

    def as_json(self) -> dict[str, Any]:
        if self.decision is None:
            name, rest = self.feature_code or ("", "")
            return {"digits": self.digits, "feature_code": name, "number": rest}
        return analysis_json(self.device, self.digits, self.calling, self.decision, self.snapshot)

    def as_text(self) -> str:
        if self.decision is None:
            name, rest = self.feature_code or ("", "")
            what = f"feature code {name}" + (f" with {rest}" if rest else "") if name else ""
            return (
                f"dialed {self.digits} from {self.device.name}: "
                + (what or "an incomplete feature code (its number is missing)")
                + " ([features] code_*; analysed before the dial plan)"
            )
        return analysis_text(self.device, self.digits, self.calling, self.decision, self.snapshot)


def analysis_snapshot(engine: Engine, settings: Settings) -> PlanSnapshot:
    """The plan in the database with the stored auto-registered SCCP phones (when
    ``[sccp] auto_register`` is on), each with its line in
    ``auto_register_partition`` dialing with ``auto_register_css`` as on the node.

    Raises SQLAlchemyError when the database cannot be read and
    ``DialPlanError`` when its dial plan is invalid.
    """
    plan = load_snapshot(engine)
    sccp = settings.sccp
    if not sccp.auto_register:
        return plan
    return with_devices(
        plan,
        (
            DeviceInfo(
                name=r.name,
                protocol="sccp",
                lines=(LineInfo(r.dn, f"Auto {r.dn}", sccp.auto_register_partition),),
                css=sccp.auto_register_css,
                model=r.model,
            )
            for r in load_auto_registrations(engine)
        ),
    )


def analyze(
    snapshot: PlanSnapshot, device_name: str, digits: str, codes: Mapping[str, str]
) -> Analysis:
    """What ``digits`` dialed from ``device_name`` do (calling number: its first
    line); ``codes``: the feature codes (``FeatureSettings.codes()``).
    :class:`UnknownDevice` when the device is not in the plan."""
    device = snapshot.device(device_name)
    if device is None:
        raise UnknownDevice(f"unknown device {device_name!r} (not in the plan)")
    calling = device.lines[0].dn if device.lines else ""
    code = match(dict(codes), digits)
    if code is not None:
        return Analysis(device, digits, calling, snapshot, feature_code=code)
    decision = snapshot.dialplan.route(device.css, digits, calling, rotate=False)
    return Analysis(device, digits, calling, snapshot, decision=decision)


def _transform_text(t: Transform) -> str:
    parts = []
    if t.discard:
        parts.append(f"discard {t.discard}")
    if t.replace is not None:
        parts.append(f"replace {t.replace}")
    if t.mask:
        parts.append(f"mask {t.mask}")
    if t.prefix:
        parts.append(f"prefix {t.prefix}")
    if t.presentation is not None:
        parts.append(f"presentation {t.presentation.value}")
    return ", ".join(parts)


def _num(number: str) -> str:
    return number or "(none)"


def _translation_css(step: Step, snapshot: PlanSnapshot) -> str:
    """The CSS of the translation pattern a step matched."""
    for tp in snapshot.dialplan_spec.translation_patterns:
        if tp.pattern == step.pattern and tp.partition == step.partition:
            return tp.css
    return ""


def _partitions_text(partitions: tuple[str, ...]) -> str:
    return ", ".join(p or "<None>" for p in partitions)


def _step_lines(n: int, step: Step, snapshot: PlanSnapshot) -> list[str]:
    kind = {
        "dn": "directory number",
        "meetme": "meet-me number",
        "hunt": "hunt pilot",
        "pickup": "pickup group number",
        "park": "call park number",
        "route": "route pattern",
        "translation": "translation pattern",
    }
    partition = step.partition or "<None>"
    out = [
        f"{n}. {kind.get(step.kind, step.kind)} {step.pattern} in partition {partition}"
        f" (searched: {_partitions_text(step.searched)})"
    ]
    for label, before, after, t in (
        ("called", step.called_in, step.called_out, step.called_transform),
        ("calling", step.calling_in, step.calling_out, step.calling_transform),
    ):
        how = _transform_text(t)
        if before != after or how:
            out.append(
                f"   {label} {before or '(none)'} -> {after or '(none)'}"
                + (f" ({how})" if how else "")
            )
    if step.blocked:
        out.append("   blocked")
    elif step.kind == "translation":
        css = _translation_css(step, snapshot)
        out.append(f"   analysed again with calling search space {css or '(none)'}")
    return out


def analysis_text(
    device: DeviceInfo, digits: str, calling: str, d: Decision, snapshot: PlanSnapshot
) -> str:
    searched = snapshot.dialplan.css_partitions(device.css)
    css = device.css or "(none)"
    lines = [
        f"dialed {digits} from {device.name} (calling {calling or '(none)'}; "
        f"calling search space {css}: {_partitions_text(searched)})"
    ]
    for n, step in enumerate(d.steps, 1):
        lines += _step_lines(n, step, snapshot)
    cause = f"Q.850 cause {d.cause}: {cause_text(d.cause)}" if d.cause else ""
    outcome = str(d.outcome)
    if outcome == "dn" and d.dn is not None:
        lines.append(
            f"result: directory number {d.dn.dn} in partition {d.dn.partition or '<None>'}"
            f" on {', '.join(d.dn.devices)} (called {d.called}, calling {d.calling or '(none)'})"
        )
        cti = _cti_text(d, snapshot)
        if cti:
            lines.append(f"   {cti}")
    elif outcome == "meetme" and d.meetme is not None:
        mm = d.meetme
        lines.append(
            f"result: meet-me conference {mm.number} in partition {mm.partition or '<None>'}"
            f" (up to {mm.max_parties} parties{', PIN required' if mm.pin else ''})"
        )
    elif outcome == "hunt" and d.hunt is not None:
        hp = d.hunt
        final = f", then {hp.final_forward}" if hp.final_forward else ""
        groups = ", ".join(snapshot.hunt_lists.get(hp.hunt_list, ())) or "none"
        lines.append(
            f"result: hunt pilot {hp.pattern} in partition {hp.partition or '<None>'}: hunt list "
            f"{hp.hunt_list} (line groups: {groups}){final}"
        )
    elif outcome == "pickup" and d.pickup is not None:
        lines.append(f"result: pick up a call ringing in pickup group {d.pickup.name}")
    elif outcome == "park" and d.park is not None:
        park = d.park
        lines.append(
            f"result: call park number {d.called} (range {park.first}-{park.last} in partition "
            f"{park.partition or '<None>'}; reverts after {park.reversion:g} s)"
        )
    elif outcome == "route" and d.route_list is not None:
        lines.append(
            f"result: route list {d.route_list.name} (called {d.called}, calling {_num(d.calling)})"
        )
        for n, choice in enumerate(d.trunks, 1):
            t = choice.trunk
            pres = f", presentation {choice.presentation.value}" if choice.presentation else ""
            lines.append(
                f"   {n}. trunk {t.name} (route group {choice.group}; {t.protocol} {t.transport} "
                f"{t.host}:{t.port}): called {choice.called}, calling {_num(choice.calling)}{pres}"
            )
    elif outcome == "blocked":
        where = d.steps[-1] if d.steps else None
        what = f" by {where.pattern} in partition {where.partition or '<None>'}" if where else ""
        lines.append(f"result: blocked{what} ({cause})")
    elif outcome == "incomplete":
        lines.append(f"result: incomplete: more digits could match a pattern ({cause}; SIP 484)")
    elif outcome == "unknown":
        last = d.steps[-1] if d.steps else None
        if last is not None and last.kind == "translation":
            searched = snapshot.dialplan.css_partitions(_translation_css(last, snapshot))
        lines.append(
            f"result: unknown: nothing in {_partitions_text(searched)} matches {d.called} ({cause})"
        )
    elif outcome == "loop":
        lines.append(f"result: translation loop stopped ({cause})")
    else:
        lines.append(f"result: {outcome} ({cause})" if cause else f"result: {outcome}")
    return "\n".join(lines)


def _cti_json(d: Decision, snapshot: PlanSnapshot) -> dict[str, Any] | None:
    """The CTI route point or port a DN is (None: it is a phone's, or no DN)."""
    name = d.dn.devices[0] if d.dn is not None and len(d.dn.devices) == 1 else ""
    rp = route_point_of(snapshot, name) if name else None
    if rp is not None:
        return {
            "kind": "route_point",
            "name": rp.name,
            "timeout": rp.timeout,
            "default": rp.default,
        }
    if name and port_of(snapshot, name) is not None:
        return {"kind": "port", "name": name}
    return None


def _cti_text(d: Decision, snapshot: PlanSnapshot) -> str:
    cti = _cti_json(d, snapshot)
    if cti is None:
        return ""
    if cti["kind"] == "port":
        return f"CTI port {cti['name']}: rings until an application answers it"
    then = f"goes to {cti['default']}" if cti["default"] else "the caller gets busy"
    return (
        f"CTI route point {cti['name']}: waits {cti['timeout']:g} s for an application, then {then}"
    )


def analysis_json(
    device: DeviceInfo, digits: str, calling: str, d: Decision, snapshot: PlanSnapshot
) -> dict[str, Any]:
    def step(s: Step) -> dict[str, Any]:
        return {
            "kind": s.kind,
            "pattern": s.pattern,
            "partition": s.partition,
            "searched": list(s.searched),
            "called_in": s.called_in,
            "called_out": s.called_out,
            "calling_in": s.calling_in,
            "calling_out": s.calling_out,
            "called_transform": transform_to_json(s.called_transform),
            "calling_transform": transform_to_json(s.calling_transform),
            "presentation": s.presentation.value if s.presentation else None,
            "blocked": s.blocked,
        }

    rp = d.route_pattern
    return {
        "device": device.name,
        "css": device.css,
        "partitions": list(snapshot.dialplan.css_partitions(device.css)),
        "dialed": digits,
        "calling_in": calling,
        "outcome": str(d.outcome),
        "called": d.called,
        "calling": d.calling,
        "presentation": d.presentation.value if d.presentation else None,
        "cause": d.cause,
        "cause_text": cause_text(d.cause) if d.cause else "",
        "steps": [step(s) for s in d.steps],
        "dn": (
            {"dn": d.dn.dn, "partition": d.dn.partition, "devices": list(d.dn.devices)}
            if d.dn
            else None
        ),
        "meetme": (
            {
                "number": d.meetme.number,
                "partition": d.meetme.partition,
                "max_parties": d.meetme.max_parties,
                "pin_required": bool(d.meetme.pin),
            }
            if d.meetme
            else None
        ),
        "hunt": (
            {
                "pattern": d.hunt.pattern,
                "partition": d.hunt.partition,
                "hunt_list": d.hunt.hunt_list,
                "line_groups": list(snapshot.hunt_lists.get(d.hunt.hunt_list, ())),
                "final_forward": d.hunt.final_forward,
            }
            if d.hunt
            else None
        ),
        "pickup": {"name": d.pickup.name, "number": d.pickup.number} if d.pickup else None,
        "park": (
            {
                "first": d.park.first,
                "last": d.park.last,
                "partition": d.park.partition,
                "reversion": d.park.reversion,
            }
            if d.park
            else None
        ),
        "route_pattern": (
            {
                "pattern": rp.pattern,
                "partition": rp.partition,
                "route_list": rp.route_list,
                "block": rp.block,
            }
            if rp
            else None
        ),
        "cti": _cti_json(d, snapshot),
        "route_list": d.route_list.name if d.route_list else None,
        "trunks": [
            {
                "trunk": c.trunk.name,
                "group": c.group,
                "host": c.trunk.host,
                "port": c.trunk.port,
                "transport": c.trunk.transport,
                "called": c.called,
                "calling": c.calling,
                "presentation": c.presentation.value if c.presentation else None,
            }
            for c in d.trunks
        ],
    }
