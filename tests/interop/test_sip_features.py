"""Call features through a real ``offhook serve``, with independent SIP UAs.

Beyond the basic calls of ``test_sip_calls``: a shared line ringing two
phones in parallel, hold/resume by re-INVITE, 480 for a DN with nothing
registered, SIP over TCP, Timer B toward a phone that has gone away, and a
plan change picked up by a running node (music on hold itself is judged by
ear in ``test_media_features``).  Same plan as ``test_sip_calls``
(alice 1001, bob 1002, carol 1003, dave 1004) unless a test says otherwise;
helpers come from there.

Signalling is checked on the wire where the UAs do not tell (tshark on the
server's SIP port, or the offhook debug log, which holds the head of every
SIP message sent and received); media with a tshark capture of the RTP
port ranges; call records with ``offhook cdr``.
"""

from __future__ import annotations

import copy
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary, require_capture
from interop.sipp import Sipp, describe
from interop.test_sip_calls import (
    DNS,
    PASSWORDS,
    PLAN,
    assert_answered_cdr,
    baresip_ua,
    cdr_for,
    dial_uri,
    established_call,
    register_sipp_uas,
    sipp_uac,
)
from support.capture import Capture, count_between
from support.ports import HOST
from support.server import OffhookServer, device, plan_of

SHARED_DN = "1010"


def shared_line_plan() -> dict[str, Any]:
    """alice 1001 and bob 1002 both also carry 1010; carol 1003 calls it."""
    plan = copy.deepcopy(PLAN)
    for dev in plan["devices"]:
        if dev["name"] in ("alice", "bob"):
            dev["lines"].append({"dn": SHARED_DN, "display": "Sales"})
    return plan


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    """The common plan; debug log so the SIP heads can be checked."""
    srv = OffhookServer(tmp_path, PLAN, log_level="debug")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def uas_dir(tmp_path: Path) -> Path:
    d = tmp_path / "sipp"
    d.mkdir()
    return d


# -- wire helpers --------------------------------------------------------------------


@dataclass(frozen=True)
class SipHead:
    """One SIP message head from the offhook debug log."""

    direction: str  # "->" sent by offhook, "<-" received
    peer: str  # host:port/transport
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0]

    def header(self, name: str) -> list[str]:
        prefix = name.lower() + ":"
        return [
            line.split(":", 1)[1].strip()
            for line in self.text.splitlines()
            if line.lower().startswith(prefix)
        ]


_HEAD_RE = re.compile(
    r"(?P<dir><-|->) (?P<peer>\S+:\d+/\w+)\n"
    r"(?P<text>(?:SIP/2\.0 |[A-Z]+ ).*\n"  # status or request line
    r"(?:(?!\d{4}-\d\d-\d\d )[^\n]+\n)*)"  # headers, up to the next log record
)


def sip_heads(log: str) -> list[SipHead]:
    """Every SIP head offhook logged at debug level (``-> host:port/udp``)."""
    return [
        SipHead(m.group("dir"), m.group("peer"), m.group("text"))
        for m in _HEAD_RE.finditer(log + "\n")
    ]


@dataclass(frozen=True)
class WireSip:
    """One SIP message decoded by tshark from a capture on the server port."""

    src_port: int
    dst_port: int
    method: str
    status: str
    cseq: str
    attrs: tuple[str, ...]  # SDP session and media attributes

    @property
    def direction(self) -> str:
        """The SDP direction attribute, sendrecv when none is given (RFC 4566 §6)."""
        for a in self.attrs:
            if a in ("sendonly", "recvonly", "inactive", "sendrecv"):
                return a
        return "sendrecv"


def sip_on_wire(pcap: Path) -> list[WireSip]:
    out = subprocess.run(
        [
            "tshark", "-n", "-r", str(pcap), "-Y", "sip",
            "-T", "fields", "-E", "separator=|", "-E", "aggregator=,",
            "-e", "udp.srcport", "-e", "udp.dstport", "-e", "sip.Method",
            "-e", "sip.Status-Code", "-e", "sip.CSeq",
            "-e", "sdp.session_attr", "-e", "sdp.media_attr",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    msgs = []
    for line in out.stdout.splitlines():
        f = line.split("|")
        if len(f) < 7 or not f[0]:
            continue
        attrs = tuple(a for a in (f[5] + "," + f[6]).split(",") if a)
        msgs.append(WireSip(int(f[0]), int(f[1]), f[2], f[3], f[4], attrs))
    return msgs


def rtp_bpf(*uas: Baresip) -> str:
    return "udp and (" + " or ".join("portrange {}-{}".format(*ua.rtp_ports) for ua in uas) + ")"


def assert_rtp_both_ways(cap: Capture, a: Baresip, b: Baresip, minimum: int = 25) -> None:
    flows = cap.rtp_flows()
    assert count_between(flows, a.rtp_ports, b.rtp_ports) >= minimum, (a.name, b.name, flows)
    assert count_between(flows, b.rtp_ports, a.rtp_ports) >= minimum, (b.name, a.name, flows)


def hang_up(ender: Baresip, other: Baresip) -> None:
    mark = other.mark()
    ender.hangup()
    other.wait_event("CALL_CLOSED", timeout=10, since=mark)


# -- 1. shared line ------------------------------------------------------------------


def test_shared_line_rings_both_first_answer_wins(tmp_path: Path) -> None:
    """1010 is on alice and bob: both ring, bob answers, alice gets CANCEL."""
    require_capture()
    with (
        OffhookServer(tmp_path, shared_line_plan(), log_level="debug") as srv,
        baresip_ua(tmp_path, srv, "alice") as alice,
        baresip_ua(tmp_path, srv, "bob") as bob,
        baresip_ua(tmp_path, srv, "carol") as carol,
    ):
        for ua in (alice, bob, carol):
            ua.wait_registered()
        with Capture(tmp_path / "shared.pcap", rtp_bpf(alice, bob, carol)) as cap:
            carol.dial(dial_uri(srv, SHARED_DN))
            # Parallel ringing: both phones see the call before anyone answers.
            alice.wait_event("CALL_INCOMING", timeout=10)
            bob.wait_event("CALL_INCOMING", timeout=10)
            carol.wait_event("CALL_RINGING", "CALL_PROGRESS", timeout=10)
            bob.accept()
            carol.wait_event("CALL_ESTABLISHED", timeout=10)
            bob.wait_event("CALL_ESTABLISHED", timeout=10)
            # The loser's call ends unanswered (CANCEL, RFC 3261 §9.1).
            alice.wait_event("CALL_CLOSED", timeout=10)
            assert "CALL_ESTABLISHED" not in alice.event_types(), alice.event_types()
            time.sleep(1.5)
            hang_up(carol, bob)
            cap.stop()
            assert_rtp_both_ways(cap, carol, bob)
            flows = cap.rtp_flows()
            assert count_between(flows, carol.rtp_ports, alice.rtp_ports) == 0, flows
        # The CANCEL to alice says why (RFC 3326, "call completed elsewhere").
        cancels = [
            h
            for h in sip_heads(srv.log())
            if h.direction == "->"
            and h.first_line.startswith("CANCEL ")
            and h.peer.endswith(f":{alice.sip_port}/udp")
        ]
        assert cancels, "no CANCEL sent to alice:\n" + srv.log_tail(80)
        reasons = [r.replace(" ", "").lower() for r in cancels[0].header("Reason")]
        assert any(r.startswith("sip;cause=200") for r in reasons), cancels[0].text
        assert not [
            h
            for h in sip_heads(srv.log())
            if h.first_line.startswith("CANCEL ") and h.peer.endswith(f":{bob.sip_port}/udp")
        ]
        row = cdr_for(srv, "carol", SHARED_DN)
        assert_answered_cdr(row)
        assert row["called_device"] == "bob", row
        assert row["calling_device"] == "carol", row


# -- 2. hold / resume ------------------------------------------------------------------


@pytest.mark.parametrize("holder_side", ["caller", "callee"])
def test_hold_and_resume_by_reinvite(
    server: OffhookServer, tmp_path: Path, holder_side: str
) -> None:
    """One side holds (sendonly offer, RFC 3264 §8.4), resumes (sendrecv); media returns."""
    require_capture()
    alice = baresip_ua(tmp_path, server, "alice")
    bob = baresip_ua(tmp_path, server, "bob")
    sip_pcap = tmp_path / "sip.pcap"
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        with Capture(sip_pcap, f"udp port {server.sip_port}") as sip_cap:
            time.sleep(0.5)  # tshark says "Capturing" a little before it does
            established_call(alice, bob, dial_uri(server, "1002"))
            holder, held = (alice, bob) if holder_side == "caller" else (bob, alice)
            time.sleep(0.5)
            mark = held.mark()
            holder.hold()
            held.wait_event("CALL_REMOTE_SDP", timeout=10, since=mark)
            time.sleep(1.0)
            mark = held.mark()
            holder.resume()
            held.wait_event("CALL_REMOTE_SDP", timeout=10, since=mark)
            time.sleep(0.5)
            with Capture(tmp_path / "rtp.pcap", rtp_bpf(alice, bob)) as rtp_cap:
                time.sleep(1.5)
                rtp_cap.stop()
                assert_rtp_both_ways(rtp_cap, alice, bob)
            # The call stayed up through hold and resume.
            for ua in (alice, bob):
                assert "CALL_CLOSED" not in ua.event_types(), (ua.name, ua.event_types())
            hang_up(alice, bob)
            sip_cap.stop()
        msgs = sip_on_wire(sip_pcap)
    port = server.sip_port

    def offers_to(ua: Baresip) -> list[WireSip]:
        return [m for m in msgs if m.method == "INVITE" and m.dst_port == ua.sip_port]

    def answers(src: int, dst: int) -> list[WireSip]:
        return [
            m
            for m in msgs
            if m.status == "200" and "INVITE" in m.cseq and m.src_port == src
            if m.dst_port == dst and m.attrs
        ]

    # The last two offers, holder -> offhook and offhook -> held, are the hold
    # and the resume (the capture may miss the initial INVITE).
    hold_resume = ["sendonly", "sendrecv"]
    from_holder = [m for m in msgs if m.method == "INVITE" and m.src_port == holder.sip_port]
    assert [m.direction for m in from_holder][-2:] == hold_resume, msgs
    assert [m.direction for m in offers_to(held)][-2:] == hold_resume, msgs
    # The held phone's media moves to the music on hold endpoint (offered
    # sendonly, answered recvonly) and back to the holder (sendrecv); offhook
    # answers the holder's hold itself, inactive (RFC 3264 §6.1).
    answered = ["recvonly", "sendrecv"]
    assert [m.direction for m in answers(held.sip_port, port)][-2:] == answered, msgs
    assert [m.direction for m in answers(port, holder.sip_port)][-2:] == ["inactive", "sendrecv"]
    row = cdr_for(server, "alice", "1002")
    assert_answered_cdr(row)


# -- 3. DN with nothing registered -------------------------------------------------------


def test_registered_nowhere_is_480(server: OffhookServer, uas_dir: Path) -> None:
    """dave (1004) exists but never registered: 480, cause 20 (subscriber absent)."""
    require_binary("sipp")
    result = sipp_uac(server, uas_dir, "uac_unavailable.xml", DNS["dave"]).run()
    assert result.ok, describe(result)
    row = cdr_for(server, "carol", DNS["dave"])
    assert row["cause"] == "20", row
    assert not row["answer"], row


# -- 4. TCP ------------------------------------------------------------------------------


def tcp_ua(tmp_path: Path, server: OffhookServer, name: str) -> Baresip:
    """A baresip whose account registers over TCP."""
    require_binary("baresip")
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{HOST}:{server.sip_port};transport=tcp",
        password=PASSWORDS[name],
        regint=120,
    )


@pytest.mark.parametrize("tcp_side", ["caller", "callee"])
def test_tcp_phone_calls_udp_phone(server: OffhookServer, tmp_path: Path, tcp_side: str) -> None:
    """One phone on TCP, the other on UDP: the B2BUA bridges transports."""
    require_capture()
    tcp_name, udp_name = ("alice", "bob") if tcp_side == "caller" else ("bob", "alice")
    uas = {
        tcp_name: tcp_ua(tmp_path, server, tcp_name),
        udp_name: baresip_ua(tmp_path, server, udp_name),
    }
    alice, bob = uas["alice"], uas["bob"]
    # baresip picks the transport of a dialled URI from its transport param.
    uri = dial_uri(server, "1002") + (";transport=tcp" if tcp_side == "caller" else "")
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        with Capture(tmp_path / "rtp.pcap", rtp_bpf(alice, bob)) as cap:
            established_call(alice, bob, uri)
            time.sleep(1.5)
            hang_up(bob, alice)
            cap.stop()
            assert_rtp_both_ways(cap, alice, bob)
    heads = sip_heads(server.log())
    summary = [(h.direction, h.peer, h.first_line) for h in heads]

    def from_user(h: SipHead, user: str) -> bool:
        return any(f"sip:{user}@" in v for v in h.header("From"))

    tcp_in = [h for h in heads if h.direction == "<-" and h.peer.endswith("/tcp")]
    # The TCP phone registered over TCP, never over UDP.
    assert any(h.first_line.startswith("REGISTER ") and from_user(h, tcp_name) for h in tcp_in), (
        summary
    )
    assert not any(
        h.first_line.startswith("REGISTER ") and from_user(h, tcp_name)
        for h in heads
        if h.peer.endswith("/udp")
    ), summary
    # The call leg of the TCP phone ran over TCP: INVITE from it, or to it.
    if tcp_side == "caller":
        assert any(h.first_line.startswith("INVITE ") for h in tcp_in), summary
    else:
        assert any(
            h.direction == "->" and h.peer.endswith("/tcp") and h.first_line.startswith("INVITE ")
            for h in heads
        ), summary
    assert_answered_cdr(cdr_for(server, "alice", "1002"))


# -- 5. phone gone away: Timer B ------------------------------------------------------------


def test_unanswered_invite_times_out_408(tmp_path: Path, uas_dir: Path) -> None:
    """dave registers from a SIPp UAS that then exits: INVITEs go nowhere.

    With T1 = 0.1 s Timer B fires after 64*T1 = 6.4 s (RFC 3261 §17.1.1.2):
    the caller gets 408 and the CDR says cause 102 (RFC 3398 §8.2.6.1).
    """
    require_binary("sipp")
    with OffhookServer(tmp_path, PLAN, log_level="debug", extra_config={"sip": {"t1": 0.1}}) as srv:
        alice = baresip_ua(tmp_path, srv, "alice")
        uas = Sipp(uas_dir, "uas.xml", "uas-dave", timeout_s=30).start()
        register_sipp_uas(srv, uas_dir, uas)
        uas.stop()
        with alice:
            alice.wait_registered()
            started = time.monotonic()
            alice.dial(dial_uri(srv, DNS["dave"]))
            closed = alice.wait_event("CALL_CLOSED", timeout=20)
            elapsed = time.monotonic() - started
        assert "408" in closed.param or "timeout" in closed.param.lower(), closed.data
        assert 5.0 <= elapsed <= 15.0, elapsed
        sent = [
            h
            for h in sip_heads(srv.log())
            if h.direction == "->"
            and h.first_line.startswith("INVITE ")
            and h.peer.endswith(f":{uas.port}/udp")
        ]
        assert len(sent) >= 3, "INVITE not retransmitted (Timer A)"
        row = cdr_for(srv, "alice", DNS["dave"])
        assert row["cause"] == "102", row
        assert not row["answer"], row


# -- 6. plan change picked up without restart ----------------------------------------------


def test_plan_change_without_restart(server: OffhookServer, tmp_path: Path) -> None:
    """``offhook load`` adds erin 1005 while serving; she registers and is called."""
    before = server.status()
    erin_password = "erin-Secret-5"
    plan = plan_of([*PLAN["devices"], device("erin", erin_password, "1005")])
    server.load(plan)
    deadline = time.monotonic() + 5.0
    while server.status().get("plan_version") == before.get("plan_version"):
        assert time.monotonic() < deadline, "plan_version unchanged after 5 s"
        time.sleep(0.25)
    alice = baresip_ua(tmp_path, server, "alice")
    erin = baresip_ua(tmp_path, server, "erin", password=erin_password)
    with alice, erin:
        alice.wait_registered()
        erin.wait_registered()
        established_call(alice, erin, dial_uri(server, "1005"))
        time.sleep(0.5)
        hang_up(erin, alice)
    row = cdr_for(server, "alice", "1005")
    assert_answered_cdr(row)
    assert row["called_device"] == "erin", row
