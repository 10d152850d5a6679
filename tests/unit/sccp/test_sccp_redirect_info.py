"""A redirected call shows where it came from: CallInfo's original called and redirecting parties.

A phone rung by a forwarded call gets, in its CallInfo, the number first
dialled (original called party), the number that redirected it last and
CallManager's redirect reasons (forward all 15, busy 1, no answer 2), so
that it shows "Forward 2002". The phones, plan and engine are
``sccp_coverage_rig``'s; tshark's Skinny dissector reads the same fields
back from the bytes sent.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from sccp_coverage_rig import A, B, FakeLink, Rig

from offhook.core.directory import Forward
from offhook.core.events import Diversion, PartyInfo, RedirectReason, Setup
from offhook.sccp import encode
from offhook.sccp import messages as m
from offhook.sccp.calls import REDIRECT_CODES, PhoneCall
from offhook.sccp.ui import CallStateCode, RedirectCode

TSHARK = shutil.which("tshark")


@pytest.fixture
def rig() -> Rig:
    return Rig()


def ring_info(link: FakeLink) -> m.CallInfo:
    """The CallInfo that came with the last call ringing on ``link``."""
    ring = link.last(m.CallState)
    assert ring.call_state == CallStateCode.RING_IN
    info = [x for x in link.of(m.CallInfo) if x.call_reference == ring.call_reference]
    assert info, "no CallInfo for the ringing call"
    return info[-1]  # type: ignore[no-any-return]


def call(rig: Rig, caller: FakeLink, number: str) -> None:
    rig.press(caller, m.OffHook(1, 0))
    rig.dial(caller, number)


def test_a_call_not_redirected_names_only_the_called_line(rig: Rig) -> None:
    call(rig, rig.c, "2002")
    info = ring_info(rig.b)
    assert (info.calling_party, info.called_party) == ("2003", "2002")
    assert (info.original_called_party, info.original_called_party_name) == ("2002", "Bob")
    assert (info.last_redirecting_party, info.last_redirecting_reason) == ("", 0)
    assert info.original_cdpn_redirect_reason == 0


def test_forward_all_shows_the_forwarding_line(rig: Rig) -> None:
    rig.engine.set_forward_all(A, "2001", "2002")
    call(rig, rig.c, "2001")
    info = ring_info(rig.b)
    assert info.calling_party == "2003"
    assert (info.called_party, info.original_called_party) == ("2002", "2001")
    assert info.last_redirecting_party == "2001"
    assert info.original_cdpn_redirect_reason == RedirectCode.FORWARD_ALL == 15
    assert info.last_redirecting_reason == 15


def test_a_chain_shows_the_first_and_the_last(rig: Rig) -> None:
    rig.engine.set_forward_all(B, "2002", "2001")
    rig.engine.set_forward_all(A, "2001", "2100")  # 2100: A's and B's line 2
    call(rig, rig.c, "2002")
    for link in (rig.a, rig.b):
        info = ring_info(link)
        assert info.line_instance == 2
        assert (info.original_called_party, info.last_redirecting_party) == ("2002", "2001")
        assert (info.original_cdpn_redirect_reason, info.last_redirecting_reason) == (15, 15)


def test_forward_no_answer_has_its_own_reason(rig: Rig) -> None:
    line = rig.snapshot.devices[B].lines[0]
    object.__setattr__(line, "forward_no_answer", Forward("2001"))
    call(rig, rig.c, "2002")
    assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN
    rig.advance(rig.engine.cfna_timer + 0.1)
    info = ring_info(rig.a)
    assert (info.original_called_party, info.last_redirecting_party) == ("2002", "2002")
    assert info.last_redirecting_reason == RedirectCode.FORWARD_NO_ANSWER == 2


def test_the_redirecting_name_is_shown_when_core_knows_it(rig: Rig) -> None:
    diversions = (
        Diversion("5550100", RedirectReason.FORWARD_BUSY, "Front desk"),
        Diversion("2002", RedirectReason.FORWARD_NO_ANSWER, "Bob"),
    )
    # A redirected call offered to A's line 1 as core offers it after two hops.
    ringing = PhoneCall(rig.ep.phones[A], rig.ep.reference(), 1)
    calling = PartyInfo("0612345678", "Caller")
    ringing.offer(Setup(calling, "2001", original_called="5550100", diversions=diversions))
    info = ring_info(rig.a)
    assert (info.original_called_party, info.original_called_party_name) == (
        "5550100",
        "Front desk",
    )
    assert (info.last_redirecting_party, info.last_redirecting_party_name) == ("2002", "Bob")
    assert (info.original_cdpn_redirect_reason, info.last_redirecting_reason) == (1, 2)


def test_every_core_reason_has_a_code_or_is_unknown() -> None:
    assert set(REDIRECT_CODES) == set(RedirectReason) - {RedirectReason.HUNT}
    assert REDIRECT_CODES[RedirectReason.FORWARD_BUSY] == 1
    assert REDIRECT_CODES[RedirectReason.PICKUP] == 5


# ---------------------------------------------------------------- tshark reads it


def tshark_fields(frames: list[bytes], pcap: Path, fields: list[str]) -> list[list[str]]:
    """tshark's Skinny dissection of ``frames`` (TCP from port 2000): ``fields`` per frame."""
    from scapy.all import IP, TCP, Ether, Raw, wrpcap

    assert TSHARK is not None
    seq, packets = 1000, []
    for frame in frames:
        packets.append(
            Ether()
            / IP(src="127.0.0.1", dst="127.0.0.2")
            / TCP(sport=2000, dport=50000, flags="PA", seq=seq, ack=1)
            / Raw(frame)
        )
        seq += len(frame)
    wrpcap(str(pcap), packets)
    args = [TSHARK, "-r", str(pcap), "-d", "tcp.port==2000,skinny", "-T", "fields"]
    for field in ["_ws.malformed", *fields]:
        args += ["-e", field]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert all(not row[0] for row in rows), f"malformed: {rows}"
    return [row[1:] for row in rows]


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
@pytest.mark.parametrize("version", [0, 0x11])
def test_tshark_reads_the_redirect_fields(rig: Rig, tmp_path: Path, version: int) -> None:
    pytest.importorskip("scapy.all")
    rig.engine.set_forward_all(B, "2002", "2001")
    rig.engine.set_forward_all(A, "2001", "2100")
    call(rig, rig.c, "2002")
    info = replace(ring_info(rig.a), version=version)
    fields = [
        "skinny.calledParty",
        "skinny.originalCalledParty",
        "skinny.lastRedirectingParty",
        "skinny.originalCdpnRedirectReason",
        "skinny.lastRedirectingReason",
    ]
    rows = tshark_fields([encode(info, version)], tmp_path / "callinfo.pcap", fields)
    assert rows == [["2100", "2002", "2001", "15", "15"]]
