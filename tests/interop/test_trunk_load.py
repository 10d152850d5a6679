"""A trunk with default limits carries 100 calls/s through a real ``offhook serve``.

SIPp plays a carrier (``uac.xml``: INVITE, ACK, BYE, 0 s calls) sending 100
calls a second from its trunk's address into offhook, which routes them by
the plan to a second trunk, another SIPp (``uas_trunk.xml``: 100, 180, 200, the
BYE's 200). Both SIPps send from 127.0.0.1, like a carrier's SBC and a PBX on
one host: 7 datagrams a call, 700 a second into the node, well over the
anonymous per-source bucket of ``[sip]`` (200/s, burst 400). The trunks have
no rate or call limit in the plan: the defaults (``max_cps`` 100, its
datagram ceiling of 20 a call) must carry it.

Not one call may fail (SIPp's exit status and counts), and the node must not
have dropped a single datagram for its rate (``rate-limit`` in its rejection
counters): a drop recovered by a retransmission is still a failure here.
Before trunks were admitted by the plan, this test failed there: some 2,100
datagrams dropped in its 4 s (INVITEs, and the far end's 180/200); over a
longer run retransmissions no longer recover them and calls fail with 408.

A few seconds of calls (CI-sized); no timed assertion: SIPp's own timeouts
only bound the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.peers import require_binary
from interop.sipp import Sipp, describe
from support.ports import HOST, free_port
from support.server import OffhookServer

RATE = 100  # calls a second: the figure, and the default max_cps
SECONDS = 4
CALLS = RATE * SECONDS


def plan(carrier_port: int, far_port: int) -> dict[str, Any]:
    """The carrier's calls to 2XXX go to the far trunk. Limits: all defaults."""
    return {
        "partitions": ["pstn"],
        "calling_search_spaces": [{"name": "inbound", "partitions": ["pstn"]}],
        "trunks": [
            # options_ping 0: SIPp's scenarios answer no OPTIONS (not a limit).
            {
                "name": "carrier",
                "protocol": "sip",
                "host": HOST,
                "port": carrier_port,
                "css": "inbound",
                "options_ping": 0,
            },
            {"name": "far", "protocol": "sip", "host": HOST, "port": far_port, "options_ping": 0},
        ],
        "route_groups": [{"name": "far", "members": ["far"]}],
        "route_lists": [{"name": "far", "groups": ["far"]}],
        "route_patterns": [{"pattern": "2XXX", "partition": "pstn", "route_list": "far"}],
    }


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def server(tmp_path: Path, ports: tuple[int, int]) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, plan(*ports))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def sipp_counts(output: str) -> dict[str, int]:
    """SIPp's final screen: "Successful call" and "Failed call" (cumulative column)."""
    counts: dict[str, int] = {}
    for line in output.splitlines():
        for key in ("Successful call", "Failed call"):
            if line.strip().startswith(key):
                fields = line.split("|")
                if len(fields) >= 3 and fields[2].strip().isdigit():
                    counts[key] = int(fields[2].strip())
    return counts


def test_default_trunk_carries_100_calls_per_second(
    tmp_path: Path, server: OffhookServer, ports: tuple[int, int]
) -> None:
    require_binary("sipp")
    carrier_port, far_port = ports
    work = tmp_path / "sipp"
    work.mkdir()
    timeout_s = SECONDS * 4 + 20
    far = Sipp(work, "uas_trunk", "far", calls=CALLS, local_port=far_port, timeout_s=timeout_s)
    carrier = Sipp(
        work,
        "uac",
        "carrier",
        target=f"{HOST}:{server.sip_port}",
        keys={"caller": "+12125550100"},
        service="2000",
        calls=CALLS,
        local_port=carrier_port,
        timeout_s=timeout_s,
        extra=["-r", str(RATE), "-l", str(RATE * 10), "-recv_timeout", "10000"],
    )
    with far:
        sent = carrier.run()
        answered = far.wait()
    counts = sipp_counts(sent.output)
    rejections = server.status()["counters"]["rejections"].get("sip", {})
    assert rejections.get("rate-limit", 0) == 0, (rejections, counts, sipp_counts(answered.output))
    assert sent.ok, describe(sent)
    assert counts.get("Successful call") == CALLS and counts.get("Failed call", 0) == 0, counts
    assert answered.ok, describe(answered)
    rows = server.wait_cdr(lambda row: row.get("calling_device") == "carrier", count=CALLS)
    assert len(rows) == CALLS
    assert {(row.get("called_device"), row.get("cause")) for row in rows} == {("far", "16")}
