"""The two-minute soak: legitimate calls through a flood of malformed traffic.

Runs ``bench/soak.py --duration 120`` (see its docstring and ``bench/README.md``):
a real ``offhook serve`` handles SIP calls from SIPp (5 calls/s, each
digest-authenticated), SIP re-registrations every 10 s and a pair of
simulated SCCP 7960s calling each other, while a second process sends 200
hostile operations a second (RFC 4475 torture messages, crafted lengths,
random frames, traversal names, idle/half-closed/reset connections) to every
listener from random loopback addresses. It fails on any failed legitimate
call or registration, RSS growth after the 40 s warm-up of 15 MB or more,
open descriptors not back to their count before the flood (+- 5), or an
ERROR in the node's log. It takes about two and a half minutes; it runs
in CI with the rest of tests/security (needs ``sipp``).

It runs twice: on a node listening on 127.0.0.1 (as above), and with
``--dual-stack`` on a node whose every listener is one dual-stack socket
(``listen = "::"``), where the same legitimate clients arrive over IPv4 (as
``::ffff:127.0.0.1``) and half of the flood, of every kind, comes over IPv6
from ::1, the other half over IPv4 as before: both families in one run of
the same length (rather than an IPv4 and an IPv6 run against the dual-stack
node), so the dual-stack case adds one run, about two and a half minutes, to
CI. Same bounds, plus: the IPv6 half of the flood was sent, and no
IPv4-mapped address shows in the node's log or status.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from interop.peers import require_binary

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def run_soak(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], int]:
    """``bench/soak.py`` for two minutes; (its JSON result, its exit status)."""
    require_binary("sipp")
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, str(SOAK), "--duration", "120", "--rate", "5", "--json", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    print(proc.stdout[-6000:], proc.stderr[-4000:])  # shown when the test fails
    assert out.exists(), f"soak did not finish (exit {proc.returncode})"
    result: dict[str, Any] = json.loads(out.read_text())
    return result, proc.returncode


def check_soak(result: dict[str, Any], returncode: int) -> None:
    """The bounds of the module doc."""
    legit = result["legit"]
    assert legit["sip_calls_ok"] == legit["sip_calls_planned"] == 600, legit
    assert legit["sip_calls_failed"] == 0, legit
    assert legit["sip_registrations_failed"] == 0 and legit["sip_registrations_ok"] >= 6
    assert legit["sccp_calls_failed"] == 0 and legit["sccp_calls_ok"] >= 20, legit
    assert legit["sccp_registrations_failed"] == 0, legit
    assert result["flood"]["operations"] >= 12000, result["flood"]  # 24,000 planned
    assert result["rss_kib"]["growth_mb"] < 15, result["rss_kib"]
    assert abs(result["fds"]["after"] - result["fds"]["before_flood"]) <= 5, result["fds"]
    assert result["node_errors"] == [], result["node_errors"]
    assert result["passed"], result["checks"]
    assert returncode == 0


@pytest.mark.timeout(600)
def test_two_minute_soak(tmp_path: Path) -> None:
    check_soak(*run_soak(tmp_path))


@pytest.mark.timeout(600)
def test_two_minute_soak_dual_stack(tmp_path: Path) -> None:
    """IPv4 legitimate clients and an IPv4 + IPv6 flood on one dual-stack node."""
    result, returncode = run_soak(tmp_path, "--dual-stack")
    assert result["args"]["dual_stack"] is True
    flood = result["flood"]
    # About half of each kind over IPv6 (connections over the cap are skipped first).
    for kind in ("sip_udp", "sip_tcp", "sccp", "tftp", "http", "admin"):
        assert flood.get(f"{kind}_ipv6", 0) >= 0.2 * flood[kind], (kind, flood)
    assert result["checks"]["one address form (no ::ffff: in log or status)"], result["status"]
    check_soak(result, returncode)
