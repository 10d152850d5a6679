"""Sanity of the interop harness itself: two baresip UAs call each other directly.

No offhook involved: if this fails, the driver or the environment is broken,
not the server.  It proves the driver can dial, answer and hang up, and that
the three media checks used against offhook (tshark capture, baresip's own
RTP summary, the recorded audio) all see media both ways.
"""

from __future__ import annotations

import time
from pathlib import Path

from interop.baresip import Baresip, heard_tone
from support.capture import Capture, count_between


def test_p2p_call_rtp_both_ways(baresip_bin: str, capture_ok: None, tmp_path: Path) -> None:
    a = Baresip(tmp_path, "a")
    b = Baresip(tmp_path, "b")
    bpf = "udp and (portrange {}-{} or portrange {}-{})".format(*a.rtp_ports, *b.rtp_ports)
    with a, b, Capture(tmp_path / "p2p.pcap", bpf) as cap:
        a.dial(b.uri)
        b.wait_event("CALL_INCOMING", timeout=10)
        b.accept()
        a.wait_event("CALL_ESTABLISHED", timeout=10)
        b.wait_event("CALL_ESTABLISHED", timeout=10)
        time.sleep(1.5)
        mark = b.mark()
        a.hangup()
        b.wait_event("CALL_CLOSED", timeout=10, since=mark)
        a.wait_event("CALL_CLOSED", timeout=10)
        cap.stop()
        flows = cap.rtp_flows()
        a_to_b = count_between(flows, a.rtp_ports, b.rtp_ports)
        b_to_a = count_between(flows, b.rtp_ports, a.rtp_ports)
        assert a_to_b >= 25, (flows, a.log())
        assert b_to_a >= 25, (flows, b.log())
        time.sleep(0.2)
        for ua in (a, b):
            summaries = ua.rtp_summaries()
            assert summaries, ua.log()
            tx, rx = summaries[-1]
            assert tx >= 25 and rx >= 25, (ua.name, summaries)
            wavs = ua.recorded_wavs()
            assert wavs and heard_tone(wavs[-1]), (ua.name, wavs)


def test_p2p_callee_hangs_up_and_busy(baresip_bin: str, tmp_path: Path) -> None:
    """Callee-side hangup, then a rejected call: the events the tests rely on."""
    a = Baresip(tmp_path, "a")
    b = Baresip(tmp_path, "b")
    with a, b:
        a.dial(b.uri)
        b.wait_event("CALL_INCOMING", timeout=10)
        a.wait_event("CALL_RINGING", timeout=10)
        b.accept()
        a.wait_event("CALL_ESTABLISHED", timeout=10)
        mark = a.mark()
        b.hangup()
        a.wait_event("CALL_CLOSED", timeout=10, since=mark)

        # Rejecting a ringing call (hangup before answer) sends 486 Busy Here.
        mark_a, mark_b = a.mark(), b.mark()
        a.dial(b.uri)
        b.wait_event("CALL_INCOMING", timeout=10, since=mark_b)
        b.hangup()
        closed = a.wait_event("CALL_CLOSED", timeout=10, since=mark_a)
        assert "486" in closed.param or "busy" in closed.param.lower(), closed.data
