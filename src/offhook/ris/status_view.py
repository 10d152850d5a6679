"""``offhook status``: ask the running node over its control endpoint and show the answer.

``fetch_status`` asks the ``status`` op of the node's control endpoint
(``ris.control`` on ``[admin] listen``:``port``: the first address; a
wildcard means this machine's loopback of its family);
``print_status`` prints it as JSON or as tables: the registered devices
and the calls from the real-time information query (ops ``ris_devices``
and ``ris_calls``: model, firmware, lines, address, registration time;
each call's legs with their media addresses), the devices refused
registration, then trunks, provisioning, failed logins, the listeners'
open connections and tracked sources, the media bridge, the media server
and web children and every rejection counter. ``--json`` prints the
``status`` answer with ``ris: {devices, calls}`` added.

``print_devices`` is ``offhook status`` with filters (``--devices
PATTERN``, ``--protocol``, ``--status``, ``--address``, ``--limit``): only
the devices the query selects (and the calls of the devices the pattern
names), as a table or as JSON (the ``ris_devices`` answer plus ``calls``).
Every value a device or a peer chose is shown as text, never as markup.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from offhook.config import Settings
from offhook.ris.control import ControlError, NodeUnavailable, control_request

if TYPE_CHECKING:
    from rich.console import Console

STATUS_LIMIT = 5000
"""Devices ``offhook status`` asks for without filters (the query's most)."""


def fetch_status(settings: Settings, timeout: float = 5.0) -> dict[str, Any]:
    """The node's ``status`` (``NodeUnavailable`` when none answers)."""
    data = control_request(settings, "status", timeout=timeout)
    if not isinstance(data, dict):
        raise ControlError("the node's status is not an object")
    return data


def fetch_ris(
    settings: Settings, timeout: float = 5.0, **query: Any
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The node's ``ris_devices`` (for ``query``) and ``ris_calls`` answers.

    ``query``'s ``name`` also narrows the calls to those devices'. None when
    the node has no such ops (an older node); ``NodeUnavailable`` and
    ``ControlError`` (a query it refuses) otherwise.
    """
    args = {k: v for k, v in query.items() if v is not None}
    try:
        devices = control_request(settings, "ris_devices", timeout=timeout, **args)
    except ControlError as exc:
        if str(exc).startswith("unknown op"):
            return None
        raise
    calls_args = {"device": args["name"]} if args.get("name") else {}
    calls = control_request(settings, "ris_calls", timeout=timeout, **calls_args)
    if not isinstance(devices, dict) or not isinstance(calls, dict):
        raise ControlError("the node's real-time information is not an object")
    return devices, calls


def print_devices(settings: Settings, as_json: bool, **query: Any) -> int:
    """``offhook status`` with filters: the devices selected and their calls."""
    try:
        ris = fetch_ris(settings, **query)
    except (NodeUnavailable, ControlError) as exc:
        sys.stderr.write(f"offhook: {exc}\n")
        return 1
    if ris is None:
        sys.stderr.write("offhook: the node answers no real-time information query\n")
        return 1
    devices, calls = ris
    if as_json:
        sys.stdout.write(json.dumps({**devices, "calls": calls.get("calls", [])}, indent=2) + "\n")
        return 0
    from rich.console import Console

    console = Console()
    _devices_table(console, "Devices", devices)
    _calls_table(console, calls.get("calls", []))
    return 0


def _cell(value: Any) -> str:
    """A table cell: the value as text (markup escaped: devices and peers choose names)."""
    from rich.markup import escape

    return escape("-" if value is None or value == "" else str(value))


def _devices_table(console: Console, title: str, answer: dict[str, Any]) -> None:
    from rich.table import Table

    rows = answer.get("devices", [])
    total = answer.get("total", len(rows))
    shown = f"{len(rows)} of {total}" if answer.get("truncated") else str(len(rows))
    table = Table(title=f"{title} ({shown})")
    for col in (
        "name",
        "protocol",
        "status",
        "model",
        "firmware",
        "lines",
        "address",
        "registered",
        "last rejection",
    ):
        table.add_column(col)
    for d in rows:
        address = f"{d.get('address')}:{d.get('port')}" if d.get("address") else ""
        if address and ":" in str(d.get("address")):
            address = f"[{d.get('address')}]:{d.get('port')}"
        rejection = d.get("last_rejection") or {}
        refused = (
            f"{rejection.get('time')} {rejection.get('reason')} from {rejection.get('source')}"
            f" ({d.get('rejections', 0)} in all)"
            if rejection
            else ""
        )
        table.add_row(
            *(
                _cell(v)
                for v in (
                    d.get("name"),
                    d.get("protocol"),
                    f"{d.get('status')}, source blocked" if d.get("blocked") else d.get("status"),
                    d.get("model"),
                    d.get("firmware"),
                    " ".join(str(n) for n in d.get("lines") or []),
                    address,
                    d.get("registered_at"),
                    refused,
                )
            )
        )
    console.print(table)


def _calls_table(console: Console, calls: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title=f"Active calls ({len(calls)})")
    for col in ("call_id", "calling", "called", "state", "start", "legs (device line state media)"):
        table.add_column(col)
    for c in calls:
        legs = []
        for leg in c.get("legs", []):
            media = ", ".join(
                f"{m.get('address')}:{m.get('port')} {m.get('codec')}" for m in leg.get("media", [])
            )
            legs.append(
                f"{leg.get('device')} {leg.get('line') or '-'} {leg.get('state')}"
                f" {leg.get('direction')} {media or 'no media'}"
            )
        table.add_row(
            *(
                _cell(v)
                for v in (
                    c.get("call_id"),
                    c.get("calling"),
                    c.get("called"),
                    c.get("state"),
                    c.get("start"),
                    "\n".join(legs),
                )
            )
        )
    console.print(table)


def print_status(settings: Settings, as_json: bool) -> int:
    """Entry point of ``offhook status``: ask the running node over its control endpoint."""
    try:
        data = fetch_status(settings)
        ris = fetch_ris(settings, limit=STATUS_LIMIT)
    except (NodeUnavailable, ControlError) as exc:
        sys.stderr.write(f"offhook: {exc}\n")
        return 1
    if as_json:
        if ris is not None:
            data = {**data, "ris": {"devices": ris[0], "calls": ris[1].get("calls", [])}}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"node [bold]{data['node']}[/] up {data['uptime']} s, plan version {data['plan_version']},"
        f" SIP port {data['sip']['port']}"
    )
    sccp = data.get("sccp")
    if sccp:
        console.print(f"SCCP port {sccp['port']}: {sccp['registered']} phones registered")
    if ris is not None:
        devices, calls = ris
        registered = [d for d in devices.get("devices", []) if d.get("status") == "registered"]
        rejected = [d for d in devices.get("devices", []) if d.get("status") == "rejected"]
        _devices_table(console, "Registered devices", {"devices": registered})
        if rejected:
            _devices_table(console, "Refused registration", {"devices": rejected})
        _calls_table(console, calls.get("calls", []))
    else:
        _legacy_tables(console, data)
    trunk_rows = data.get("trunks", [])
    if trunk_rows:
        limits = {r.get("name"): r for r in data.get("trunk_limits") or []}
        trunks = Table(title=f"Trunks ({len(trunk_rows)})")
        for col in ("name", "address", "state", "since", "last_result", "registration"):
            trunks.add_column(col)
        trunks.add_column("calls in (refused busy/rate, dropped datagrams)")
        for t in trunk_rows:
            lim = limits.get(t.get("name")) or {}
            trunks.add_row(
                _cell(t.get("name")),
                _cell(f"{t.get('host')}:{t.get('port')}/{t.get('transport', 'udp')}"),
                str(t.get("state")),
                str(t.get("last_change") or "-"),
                _cell(t.get("last_result")),
                str(t.get("registration")),
                (
                    f"{lim.get('calls_admitted', 0)} ({lim.get('refused_busy', 0)}/"
                    f"{lim.get('refused_rate', 0)}, {lim.get('datagrams_dropped', 0)})"
                    if lim
                    else "-"
                ),
            )
        console.print(trunks)
    tftp = data.get("tftp")
    if tftp:
        console.print(
            f"TFTP port {tftp.get('port') or 'off'}, HTTP port {tftp.get('http_port') or 'off'}: "
            f"{tftp.get('active_transfers')} active transfers, {tftp.get('completed')} completed, "
            f"{tftp.get('failed')} failed"
        )
    auth = data.get("auth")
    if auth:
        console.print(
            f"failed logins: {auth['failures']}, sources blocked now {auth['blocked_now']}"
            f" (blocks {auth['blocks']}), throttled now {auth['throttled_now']}"
            f" (held {auth['throttled']}, dropped {auth['dropped_blocked']} blocked"
            f" + {auth['dropped_throttled']} throttled); accounts under attack:"
            f" {', '.join(json.dumps(a['account']) for a in auth['accounts_under_attack'])}"
            f"{'' if auth['accounts_under_attack'] else 'none'}",
            markup=False,  # account names are whatever attackers claimed
        )
    overload = data.get("overload")
    if overload:
        console.print(overload_line(overload))
    held = {k: v for k, v in (data.get("listeners") or {}).items() if v}
    if held:
        console.print(
            "listeners now: "
            + "; ".join(
                f"{name} {row.get('connections', 0)} connections, "
                f"{row.get('rate_sources', 0)} sources tracked"
                for name, row in sorted(held.items())
            )
        )
    bridge = data.get("media_bridge")
    if bridge:
        console.print(
            f"media bridge (IPv4 <-> IPv6): {bridge.get('streams', 0)} streams relayed now, "
            f"{bridge.get('forwarded', 0)} packets forwarded"
        )
    media = data.get("media_server")
    if media:
        state = "connected" if media.get("connected") else "NOT connected"
        where = "embedded" if media.get("embedded") else "standalone"
        console.print(
            f"media server ({where}, {media.get('control', '')}): {state}, "
            f"{media.get('streams', 0)} endpoints, started {media.get('starts', 0)} times"
        )
    web = data.get("web")
    if web:
        state = "up" if web.get("up") else "NOT up"
        console.print(
            f"web process ({web.get('where', '')}): {state}, pid {web.get('pid')}, "
            f"started {web.get('starts', 0)} times"
        )
    subs = data.get("subscriptions")
    if subs:
        limits = subs.get("limits", {})
        packages = ", ".join(f"{p} {n}" for p, n in sorted(subs.get("by_package", {}).items()))
        console.print(
            f"SIP subscriptions (busy lamps, presence, message waiting): "
            f"{subs.get('subscriptions', 0)} from {subs.get('devices', 0)} devices"
            + (f" ({packages})" if packages else "")
            + f", at most {limits.get('per_device', '?')} a device and {limits.get('total', '?')}"
            f" in all; lines not idle: {subs.get('busy_lines', 0)}"
        )
    rejections = data["counters"]["rejections"]
    if rejections:
        refused = Table(title="Rejections (listener, reason, count)")
        for col in ("listener", "reason", "count"):
            refused.add_column(col)
        for listener_name in sorted(rejections):
            for reason, count in sorted(rejections[listener_name].items()):
                refused.add_row(listener_name, reason, str(count))
        console.print(refused)
    else:
        console.print("rejections: none")
    return 0


def overload_line(o: dict[str, Any]) -> str:
    """One line on overload control: off, normal, or shedding (how much, for how long)."""
    shed = sum(v for v in (o.get("shed") or {}).values() if isinstance(v, int))
    signals = ", ".join(f"{k} {v:.2f}" for k, v in (o.get("signals") or {}).items())
    if not o.get("enabled", True):
        return f"overload control: off (shed so far {shed})"
    if o.get("state") == "overloaded":
        return (
            f"overload control: OVERLOADED for {o.get('overloaded_for', 0):.0f} s, admitting "
            f"{100 * float(o.get('admit_ratio', 0)):.0f} % of new calls (Retry-After "
            f"{o.get('retry_after')} s); load {float(o.get('load', 0)):.2f} ({signals}); "
            f"shed {shed}, episodes {o.get('episodes', 0)}"
        )
    return (
        f"overload control: normal, load {float(o.get('load', 0)):.2f}"
        f"{f' ({signals})' if signals else ''}; shed {shed}, episodes {o.get('episodes', 0)}"
    )


def _legacy_tables(console: Console, data: dict[str, Any]) -> None:
    """Registrations and calls from ``status`` alone (a node without the RIS ops)."""
    from rich.table import Table

    regs = Table(title=f"Registrations ({len(data['registrations'])})")
    cols = ("device", "aor", "contact", "source", "transport", "expires_in", "user_agent")
    for col in cols:
        regs.add_column(col)
    for r in data["registrations"]:
        regs.add_row(*(_cell(r.get(c)) for c in cols))
    console.print(regs)
    calls = data["calls"].get("calls", []) if isinstance(data["calls"], dict) else data["calls"]
    table = Table(title=f"Active calls ({len(calls)})")
    for col in ("call_id", "calling", "called", "state", "legs"):
        table.add_column(col)
    for c in calls:
        legs = ", ".join(f"{leg.get('device')}:{leg.get('state')}" for leg in c.get("legs", []))
        table.add_row(
            *(_cell(c.get(k)) for k in ("call_id", "calling", "called", "state")), _cell(legs)
        )
    console.print(table)
