"""bench/sip_calls.py's INVITE -> 180 figures from SIPp's message traces (no SIPp, no
timing): which INVITE starts the clock (the one with credentials, first sending), which
180 stops it, the nearest-rank percentiles."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import sip_calls  # noqa: E402


def entry(stamp: str, sent: bool, start: str, call_id: str, cseq: str) -> str:
    direction = "UDP message sent (400 bytes):" if sent else "UDP message received [300] bytes :"
    return (
        f"----------------------------------------------- 2026-12-03 13:34:{stamp}\n"
        f"{direction}\n\n{start}\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\n"
        f"Call-ID: {call_id}\nCSeq: {cseq}\nContent-Length: 0\n\n"
    )


def test_ringing_latency_from_the_invite_with_credentials_to_its_180(tmp_path: Path) -> None:
    trace = tmp_path / "uac-100.trace"
    trace.mkdir()
    (trace / "uac_auth_101_messages.log").write_text(
        entry("48.000000", True, "INVITE sip:2002@h SIP/2.0", "a", "1 INVITE")
        + entry("48.001000", False, "SIP/2.0 407 Proxy Authentication Required", "a", "1 INVITE")
        + entry("48.002000", True, "INVITE sip:2002@h SIP/2.0", "a", "2 INVITE")
        + entry("48.500000", True, "INVITE sip:2002@h SIP/2.0", "a", "2 INVITE")  # retransmitted
        + entry("48.505000", False, "SIP/2.0 180 Ringing", "a", "2 INVITE")
        + entry("48.506000", False, "SIP/2.0 180 Ringing", "a", "2 INVITE")  # again: not counted
        + entry("49.000000", True, "INVITE sip:2002@h SIP/2.0", "b", "1 INVITE")
        + entry("49.001500", False, "SIP/2.0 180 Ringing", "b", "1 INVITE")
        + entry("49.100000", False, "SIP/2.0 180 Ringing", "c", "1 INVITE")  # no INVITE seen
    )
    (trace / "uac_auth_102_messages.log").write_text(
        entry("50.000000", True, "INVITE sip:2002@h SIP/2.0", "d", "2 INVITE")
        + entry("50.002000", False, "SIP/2.0 180 Ringing", "d", "2 INVITE")
    )
    got = sip_calls.ringing_latency(tmp_path, "uac-100.trace")
    assert got["n"] == 3
    assert got["p50"] == 2.0
    assert got["p95"] == got["p99"] == 503.0


def test_no_trace_no_figures(tmp_path: Path) -> None:
    assert sip_calls.ringing_latency(tmp_path, "absent") == {}


@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.floats(0, 1),
)
def test_percentile_is_the_nearest_rank(values: list[float], q: float) -> None:
    values.sort()
    got = sip_calls.percentile(values, q)
    assert got in values
    assert sum(v <= got for v in values) >= math.ceil(q * len(values))
    assert sum(v < got for v in values) < max(1, math.ceil(q * len(values)))
