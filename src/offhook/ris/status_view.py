"""``offhook status``: ask the running node over its control endpoint and show the answer.

``fetch_status`` asks the ``status`` op of the node's control endpoint
(``ris.control`` on ``[admin] listen``:``port``: the first address; a
wildcard means this machine's loopback of its family);
``print_status`` prints it as JSON or as tables (registrations, calls,
trunks, provisioning, failed logins, the listeners' open connections and
tracked sources, the media bridge, the media server and web children and
every rejection counter).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from offhook.config import Settings
from offhook.ris.control import ControlError, NodeUnavailable, control_request


def fetch_status(settings: Settings, timeout: float = 5.0) -> dict[str, Any]:
    """The node's ``status`` (``NodeUnavailable`` when none answers)."""
    data = control_request(settings, "status", timeout=timeout)
    if not isinstance(data, dict):
        raise ControlError("the node's status is not an object")
    return data


def print_status(settings: Settings, as_json: bool) -> int:
    """Entry point of ``offhook status``: ask the running node over its control endpoint."""
    try:
        data = fetch_status(settings)
    except (NodeUnavailable, ControlError) as exc:
        sys.stderr.write(f"offhook: {exc}\n")
        return 1
    if as_json:
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
    regs = Table(title=f"Registrations ({len(data['registrations'])})")
    for col in ("device", "aor", "contact", "source", "transport", "expires_in", "user_agent"):
        regs.add_column(col)
    for r in data["registrations"]:
        regs.add_row(
            *(
                str(r[c])
                for c in (
                    "device",
                    "aor",
                    "contact",
                    "source",
                    "transport",
                    "expires_in",
                    "user_agent",
                )
            )
        )
    console.print(regs)
    calls = data["calls"].get("calls", []) if isinstance(data["calls"], dict) else data["calls"]
    table = Table(title=f"Active calls ({len(calls)})")
    for col in ("call_id", "calling", "called", "state", "legs"):
        table.add_column(col)
    for c in calls:
        legs = ", ".join(f"{leg.get('device')}:{leg.get('state')}" for leg in c.get("legs", []))
        table.add_row(
            str(c.get("call_id")),
            str(c.get("calling")),
            str(c.get("called")),
            str(c.get("state")),
            legs,
        )
    console.print(table)
    trunk_rows = data.get("trunks", [])
    if trunk_rows:
        trunks = Table(title=f"Trunks ({len(trunk_rows)})")
        for col in ("name", "address", "state", "since", "last_result", "registration"):
            trunks.add_column(col)
        for t in trunk_rows:
            trunks.add_row(
                str(t.get("name")),
                f"{t.get('host')}:{t.get('port')}/{t.get('transport', 'udp')}",
                str(t.get("state")),
                str(t.get("last_change") or "-"),
                str(t.get("last_result") or "-"),
                str(t.get("registration")),
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
