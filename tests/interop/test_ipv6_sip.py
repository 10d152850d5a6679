"""SIP over IPv6 and IPv4 on one dual-stack ``offhook serve`` (issue 14).

One node listens on ``::`` (one dual-stack socket: IPv4 phones arrive as
IPv4-mapped sources, which the node turns back into IPv4), with
``external_host`` pinned to the loopback address of each family so that
every peer is given an address of its own family and no test talks to
anything but loopback. Phones, per test:

=======  ======  ========================================  ========
device   DN      played by                                 family
=======  ======  ========================================  ========
alice    1001    baresip                                   IPv6
bob      1002    baresip                                   IPv4
carol    1003    SIPp UAC (``uac_auth_rtp.xml``)           IPv6
dave     1004    SIPp UAS (``uas_rtp.xml``, register.xml)  IPv6
erin     1005    SIPp UAC                                  IPv4
frank    1006    SIPp UAS                                  IPv4
=======  ======  ========================================  ========

Everyone registers and calls with digest auth. What is checked:

- on the wire (tshark on the node's SIP port): every message the node sends
  to a peer goes over the peer's family and names the node, in Via sent-by,
  Contact, From/To and Call-ID, by an address of that family (``[::1]`` for
  an IPv6 peer, ``127.0.0.1`` for an IPv4 one; RFC 5118 §4), stamps
  ``received`` bare and canonical, and carries SDP (``o=`` and ``c=``) of
  that family; no IPv4-mapped address leaves the node;
- media as in the other interop tests, from the packets each phone receives
  (tshark on the phones' RTP ports): RTP from each side reaches the other
  (same SSRC), over the receiving phone's own family;
- ``offhook status`` (registrations with their sources) and ``offhook cdr``.

Calls between an IPv6 and an IPv4 phone go through the node's cross-family
RTP relay (``[media]``, the SDP rewritten per side); those tests check the
same things.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary, require_capture
from interop.sipp import Sipp, describe
from offhook.common.addr import is_ip, uri_host
from support.capture import Capture, rtp_header
from support.ports import HOST
from support.rtp import PCMU, tone
from support.server import OffhookServer, ServerError, device, plan_of
from support.sipwire import WireMsg, sip_on_wire

V4 = HOST  # 127.0.0.1
V6 = "::1"
LOOPBACK = {4: V4, 6: V6}

PASSWORDS = {
    "alice": "alice-Secret-1",
    "bob": "bob-Secret-2",
    "carol": "carol-Secret-3",
    "dave": "dave-Secret-4",
    "erin": "erin-Secret-5",
    "frank": "frank-Secret-6",
}
DNS = {
    "alice": "1001",
    "bob": "1002",
    "carol": "1003",
    "dave": "1004",
    "erin": "1005",
    "frank": "1006",
}
PLAN = plan_of([device(name, PASSWORDS[name], DNS[name]) for name in DNS])

# The node under test: one dual-stack socket on "::" (IPV6_V6ONLY off),
# advertising loopback per family. Provisioning is not under test here.
DUAL_STACK: dict[str, dict[str, Any]] = {
    "sip": {
        "listen": "::",
        "allow": ["127.0.0.0/8", "::1/128"],
        "external_host": [V4, V6],
    },
    "tftp": {"enabled": False},
}

MIN_RTP = 25  # packets each way: ~0.5 s of 20 ms G.711 in a call of ~1.5 s


def version_of(host: str) -> int:
    return ipaddress.ip_address(host.strip("[]")).version


# -- fixtures and peers ------------------------------------------------------------


def start_dual_stack_node(tmp_path: Path, attempts: int = 3) -> OffhookServer:
    """A started node on ``::``; on a port taken meanwhile, again on other free ports.

    A wildcard bind conflicts with a port held on any local address, while
    ``free_port`` checks 127.0.0.1 and ::1 only, and some time before the
    node binds: another test run on the machine (a flood tool bound to
    ``127.x.y.z``, another node) can hold or take one of its ports meanwhile
    (seen as ``Address already in use`` beside a soak run).
    """
    for attempt in range(attempts):
        srv = OffhookServer(tmp_path, PLAN, extra_config=DUAL_STACK)
        try:
            return srv.start()
        except ServerError as exc:
            if "Address already in use" not in str(exc) or attempt == attempts - 1:
                raise
            srv.stop(show_log=False)
    raise AssertionError("unreachable")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = start_dual_stack_node(tmp_path)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def sipp_dir(tmp_path: Path) -> Path:
    """SIPp's working directory, with the tone its scenarios stream (rtp_stream)."""
    d = tmp_path / "sipp"
    d.mkdir()
    (d / "tone.pcmu").write_bytes(tone(PCMU, 8000))  # 1 s of 1 kHz mu-law, looped
    return d


def target(node: OffhookServer, host: str) -> str:
    """The node's SIP address over ``host``'s family, as SIPp and URIs take it."""
    return f"{uri_host(host)}:{node.sip_port}"


def baresip_ua(tmp_path: Path, node: OffhookServer, name: str, host: str) -> Baresip:
    require_binary("baresip")
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{target(node, host)}",
        password=PASSWORDS[name],
        regint=120,
        host=host,
    )


def register_sipp(node: OffhookServer, workdir: Path, uas: Sipp, name: str) -> Sipp:
    """REGISTER ``name`` (over the UAS's family) with the Contact of a listening SIPp UAS."""
    reg = Sipp(
        workdir,
        "register.xml",
        f"register-{name}",
        target=target(node, uas.host),
        keys={
            "user": name,
            "contact_host": uri_host(uas.host),
            "contact_port": str(uas.port),
            "expires": "300",
        },
        auth=(name, PASSWORDS[name]),
        timeout_s=15,
        host=uas.host,
    )
    result = reg.run()
    assert result.ok, describe(result)
    return reg


def sipp_uas(workdir: Path, name: str, host: str) -> Sipp:
    """A SIPp UAS that answers and streams RTP after the ACK until the BYE."""
    require_binary("sipp")
    return Sipp(workdir, "uas_rtp.xml", f"uas-{name}", timeout_s=30, host=host)


def sipp_uac(
    node: OffhookServer, workdir: Path, name: str, host: str, number: str, pause_ms: int = 1500
) -> Sipp:
    """A SIPp UAC calling ``number`` as ``name``: 407, INVITE again, RTP, BYE."""
    require_binary("sipp")
    return Sipp(
        workdir,
        "uac_auth_rtp.xml",
        f"uac-{name}",
        target=target(node, host),
        keys={"caller": name},
        service=number,
        auth=(name, PASSWORDS[name]),
        timeout_s=30,
        pause_ms=pause_ms,
        host=host,
    )


def dial_uri(node: OffhookServer, number: str, host: str) -> str:
    return f"sip:{number}@{target(node, host)}"


def assert_answered_cdr(node: OffhookServer, caller: str, callee: str) -> None:
    """The call from device ``caller`` to ``callee``'s DN is recorded answered, cause 16."""
    callers = {caller, DNS[caller]}
    rows = node.wait_cdr(lambda r: r.get("calling") in callers and r.get("called") == DNS[callee])
    row = rows[-1]
    assert row["cause"] == "16", row
    assert row["answer"], row
    assert row["end"], row
    assert (row["calling_device"], row["called_device"]) == (caller, callee), row


# -- SIP on the wire ----------------------------------------------------------------


_SENT_BY = re.compile(r"SIP/2\.0/\w+\s+(\[[^\]]+\]|[^;:\s]+)(?::(\d+))?", re.I)
_URI_HOST = re.compile(r"sips?:(?:[^@;>]*@)?(\[[^\]]+\]|[^;:>?]+)", re.I)
_RECEIVED = re.compile(r";\s*received=([^;,\s]+)", re.I)
_SDP_ADDR = re.compile(r"^(?P<line>[oc])=.*\bIN (?P<type>IP[46]) (?P<addr>\S+)\s*$", re.M)


def family_problems(msg: WireMsg, version: int, node_port: int) -> list[str]:
    """What in one message from the node does not suit a peer of IP ``version``."""
    me = LOOPBACK[version]
    want_host = uri_host(me)
    bad: list[str] = []
    if version_of(msg.dst) != version:
        bad.append(f"sent over IPv{version_of(msg.dst)}")
    if "::ffff:" in msg.text.lower():
        bad.append("an IPv4-mapped address")
    vias = msg.headers("Via", "v")
    if msg.is_request and vias:
        m = _SENT_BY.match(vias[0])
        sent_by = f"{m.group(1)}:{m.group(2)}" if m else vias[0]
        if sent_by != f"{want_host}:{node_port}":
            bad.append(f"top Via sent-by {sent_by!r}, want {want_host}:{node_port}")
    for via in vias:
        for received in _RECEIVED.findall(via):
            if received != me:  # bare and canonical (RFC 5118 §4.5)
                bad.append(f"Via received={received!r}, want {me}")
    for name, compact in (("From", "f"), ("To", "t")):
        # The node writes these for the legs it starts; the ones it echoes
        # were written by the peer itself, of its own family too here.
        for value in msg.headers(name, compact):
            m = _URI_HOST.search(value)
            host = m.group(1) if m else value
            if host != want_host:
                bad.append(f"{name} host {host!r}, want {want_host}")
    for call_id in msg.headers("Call-ID", "i"):
        # The node's Call-IDs name it in the peer's family (the peers' own
        # Call-IDs here name themselves, of their family too).
        _, at, host = call_id.rpartition("@")
        if at and is_ip(host) and version_of(host) != version:
            bad.append(f"Call-ID {call_id!r} names an IPv{version_of(host)} host")
    for contact in msg.headers("Contact", "m"):
        m = _URI_HOST.search(contact)
        host = m.group(1) if m else contact
        if host != want_host:
            bad.append(f"Contact host {host!r}, want {want_host}")
    for m in _SDP_ADDR.finditer(msg.body):
        addr = m.group("addr")
        try:
            ok = m.group("type") == f"IP{version}" and version_of(addr) == version
        except ValueError:
            ok = False
        if not ok or addr.startswith("["):
            bad.append(f"SDP {m.group('line')}= IN {m.group('type')} {addr}")
    return bad


def assert_family_per_peer(
    msgs: list[WireMsg], node_port: int, peers: dict[str, tuple[int, int]], sdp: bool = True
) -> None:
    """Each peer (name -> (SIP port, IP version)) got only messages of its family.

    ``sdp``: at least one of them carried SDP (the call's offer or answer),
    so that the SDP check is not vacuous.
    """
    problems: list[str] = []
    for name, (port, version) in peers.items():
        to_peer = [m for m in msgs if m.sport == node_port and m.dport == port]
        if not to_peer:
            problems.append(f"{name}: no message from the node on the wire")
            continue
        if sdp and not any(_SDP_ADDR.search(m.body) for m in to_peer):
            problems.append(f"{name}: no SDP from the node")
        for m in to_peer:
            problems.extend(
                f"{name} <- {m.first_line}: {p}" for p in family_problems(m, version, node_port)
            )
    assert not problems, "\n".join(problems)


# -- RTP on the wire -----------------------------------------------------------------


@dataclass(frozen=True)
class RtpSeen:
    src: str
    sport: int
    dst: str
    dport: int
    ssrc: int


def rtp_on_wire(cap: Capture) -> list[RtpSeen]:
    seen = []
    for src, sport, dst, dport, payload in cap.udp_datagrams():
        header = rtp_header(payload)
        if header is not None:
            seen.append(RtpSeen(src, sport, dst, dport, header[0]))
    return seen


@dataclass(frozen=True)
class Phone:
    """Where a phone's media lives: its RTP ports (inclusive) and IP version."""

    name: str
    ports: tuple[int, int]
    version: int

    def owns(self, port: int) -> bool:
        return self.ports[0] <= port <= self.ports[1]


def phone_of(ua: Baresip | Sipp) -> Phone:
    if isinstance(ua, Baresip):
        return Phone(ua.name, ua.rtp_ports, version_of(ua.host))
    return Phone(ua.role, (ua.media_port, ua.media_port + 1), version_of(ua.host))


def assert_rtp_reaches(packets: list[RtpSeen], sender: Phone, receiver: Phone) -> None:
    """RTP the sender sent (its SSRCs) arrives at the receiver's ports, over its family.

    Judged from the packets the receiver gets, whatever their source: the
    phone itself (direct media) or the node (relayed).
    """
    sent = Counter(p.ssrc for p in packets if sender.owns(p.sport) and not sender.owns(p.dport))
    got = [p for p in packets if receiver.owns(p.dport) and p.ssrc in sent]
    families = Counter(version_of(p.dst) for p in got)
    summary = Counter((p.src, p.sport, p.dst, p.dport) for p in packets)
    assert len(got) >= MIN_RTP, (
        f"{sender.name} -> {receiver.name}: {len(got)} packets of {sender.name}'s SSRCs "
        f"{dict(sent)} reached {receiver.name}; flows: {dict(summary)}"
    )
    assert set(families) == {receiver.version}, (receiver.name, families)


def rtp_bpf(*phones: Phone) -> str:
    return "udp and (" + " or ".join("portrange {}-{}".format(*p.ports) for p in phones) + ")"


# -- registration over both families -------------------------------------------------


def test_sipp_registers_over_ipv6_and_ipv4(node: OffhookServer, sipp_dir: Path) -> None:
    """REGISTER with digest from [::1] and from 127.0.0.1 to the same ``::`` socket."""
    require_capture()
    with (
        Capture(sipp_dir / "sip.pcap", f"udp port {node.sip_port}") as cap,
        sipp_uas(sipp_dir, "dave", V6) as dave,
        sipp_uas(sipp_dir, "frank", V4) as frank,
    ):
        reg6 = register_sipp(node, sipp_dir, dave, "dave")
        reg4 = register_sipp(node, sipp_dir, frank, "frank")
        regs = {r["device"]: r for r in node.status()["registrations"]}
        cap.stop()
        msgs = sip_on_wire(cap)
    assert_family_per_peer(
        msgs, node.sip_port, {"dave": (reg6.port, 6), "frank": (reg4.port, 4)}, sdp=False
    )
    assert set(regs) == {"dave", "frank"}, regs
    assert regs["dave"]["contact"] == f"sip:dave@[::1]:{dave.port};transport=udp", regs
    assert regs["frank"]["contact"] == f"sip:frank@127.0.0.1:{frank.port};transport=udp", regs
    # One address form: the IPv4 phone on the dual-stack socket is 127.0.0.1,
    # never ::ffff:127.0.0.1.
    assert regs["frank"]["source"] == f"127.0.0.1:{reg4.port}", regs
    assert regs["dave"]["source"] == f"[::1]:{reg6.port}", regs
    # Both were challenged (401) then accepted (200), each over its own family.
    for reg, version in ((reg6, 6), (reg4, 4)):
        answers = [m.first_line for m in msgs if m.dport == reg.port]
        assert answers.count("SIP/2.0 401 Unauthorized") >= 1, answers
        assert answers[-1] == "SIP/2.0 200 OK", answers
        assert all(version_of(m.dst) == version for m in msgs if m.dport == reg.port)


# -- SIPp to SIPp, with media: within a family and across ----------------------------------

SIPP_CALLER = {V6: "carol", V4: "erin"}
SIPP_CALLEE = {V6: "dave", V4: "frank"}


@pytest.mark.parametrize(
    ("caller_host", "callee_host"),
    [(V6, V6), (V4, V4), (V6, V4), (V4, V6)],
    ids=["ipv6-ipv6", "ipv4-ipv4", "ipv6-ipv4", "ipv4-ipv6"],
)
def test_sipp_calls_sipp_with_media(
    node: OffhookServer, sipp_dir: Path, caller_host: str, callee_host: str
) -> None:
    """A SIPp UAC calls a registered SIPp UAS, each over its own family, on
    the same dual-stack node: carol/dave over IPv6, erin/frank over IPv4.
    Across families the node relays the media (SDP rewritten per side)."""
    require_capture()
    caller, callee = SIPP_CALLER[caller_host], SIPP_CALLEE[callee_host]
    with sipp_uas(sipp_dir, callee, callee_host) as uas:
        register_sipp(node, sipp_dir, uas, callee)
        uac = sipp_uac(node, sipp_dir, caller, caller_host, DNS[callee])
        phones = (phone_of(uac), phone_of(uas))
        with (
            Capture(sipp_dir / "sip.pcap", f"udp port {node.sip_port}") as sip_cap,
            Capture(sipp_dir / "rtp.pcap", rtp_bpf(*phones)) as rtp_cap,
        ):
            result = uac.run()
            served = uas.wait(timeout=20)
            sip_cap.stop()
            rtp_cap.stop()
    assert result.ok, describe(result)
    assert served.ok, describe(served)
    assert_family_per_peer(
        sip_on_wire(sip_cap),
        node.sip_port,
        {caller: (uac.port, version_of(caller_host)), callee: (uas.port, version_of(callee_host))},
    )
    packets = rtp_on_wire(rtp_cap)
    assert_rtp_reaches(packets, phones[0], phones[1])
    assert_rtp_reaches(packets, phones[1], phones[0])
    assert_answered_cdr(node, caller, callee)


# -- baresip over IPv6 and IPv4 ---------------------------------------------------------


def baresip_call(
    node: OffhookServer, tmp_path: Path, caller: Baresip, callee: Baresip, number: str
) -> tuple[list[WireMsg], list[RtpSeen]]:
    """caller dials ``number`` (over its own family), callee answers, ~1.5 s of
    media, caller hangs up; returns the SIP and RTP seen on the wire."""
    phones = (phone_of(caller), phone_of(callee))
    with (
        Capture(tmp_path / "sip.pcap", f"udp port {node.sip_port}") as sip_cap,
        Capture(tmp_path / "rtp.pcap", rtp_bpf(*phones)) as rtp_cap,
    ):
        caller.dial(dial_uri(node, number, caller.host))
        callee.wait_event("CALL_INCOMING", timeout=10)
        caller.wait_event("CALL_RINGING", "CALL_PROGRESS", timeout=10)
        callee.accept()
        caller.wait_event("CALL_ESTABLISHED", timeout=10)
        callee.wait_event("CALL_ESTABLISHED", timeout=10)
        time.sleep(1.5)
        mark = callee.mark()
        caller.hangup()
        callee.wait_event("CALL_CLOSED", timeout=10, since=mark)
        sip_cap.stop()
        rtp_cap.stop()
    return sip_on_wire(sip_cap), rtp_on_wire(rtp_cap)


@pytest.mark.parametrize(
    ("alice_host", "bob_host"),
    [(V6, V6), (V6, V4), (V4, V6)],
    ids=["ipv6-ipv6", "ipv6-ipv4", "ipv4-ipv6"],
)
def test_baresip_registers_and_calls_across_families(
    node: OffhookServer, tmp_path: Path, alice_host: str, bob_host: str
) -> None:
    """alice and bob register over their own family to the same node; alice
    calls bob; each side sees only its own family; RTP reaches both."""
    require_capture()
    alice = baresip_ua(tmp_path, node, "alice", alice_host)
    bob = baresip_ua(tmp_path, node, "bob", bob_host)
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        regs = {r["device"]: r for r in node.status()["registrations"]}
        for name, host in (("alice", alice_host), ("bob", bob_host)):
            assert f"@{uri_host(host)}:" in regs[name]["contact"], regs
            assert regs[name]["source"].startswith(f"{uri_host(host)}:"), regs
        msgs, packets = baresip_call(node, tmp_path, alice, bob, DNS["bob"])
    assert_family_per_peer(
        msgs,
        node.sip_port,
        {
            "alice": (alice.sip_port, version_of(alice_host)),
            "bob": (bob.sip_port, version_of(bob_host)),
        },
    )
    assert_rtp_reaches(packets, phone_of(alice), phone_of(bob))
    assert_rtp_reaches(packets, phone_of(bob), phone_of(alice))
    assert_answered_cdr(node, "alice", "bob")


# -- baresip and SIPp over IPv6 ------------------------------------------------------------


def test_baresip_ipv6_calls_sipp_ipv6_uas(
    node: OffhookServer, tmp_path: Path, sipp_dir: Path
) -> None:
    """baresip (alice) calls a SIPp UAS registered over IPv6 (dave) and hangs up."""
    require_capture()
    alice = baresip_ua(tmp_path, node, "alice", V6)
    with sipp_uas(sipp_dir, "dave", V6) as dave, alice:
        register_sipp(node, sipp_dir, dave, "dave")
        alice.wait_registered()
        phones = (phone_of(alice), phone_of(dave))
        with (
            Capture(tmp_path / "sip.pcap", f"udp port {node.sip_port}") as sip_cap,
            Capture(tmp_path / "rtp.pcap", rtp_bpf(*phones)) as rtp_cap,
        ):
            alice.dial(dial_uri(node, DNS["dave"], V6))
            alice.wait_event("CALL_ESTABLISHED", timeout=15)
            time.sleep(1.5)
            alice.hangup()
            alice.wait_event("CALL_CLOSED", timeout=10)
            served = dave.wait(timeout=20)
            sip_cap.stop()
            rtp_cap.stop()
    assert served.ok, describe(served)
    assert_family_per_peer(
        sip_on_wire(sip_cap),
        node.sip_port,
        {"alice": (alice.sip_port, 6), "dave": (dave.port, 6)},
    )
    packets = rtp_on_wire(rtp_cap)
    assert_rtp_reaches(packets, phones[0], phones[1])
    assert_rtp_reaches(packets, phones[1], phones[0])
    assert_answered_cdr(node, "alice", "dave")


def test_sipp_ipv6_calls_baresip_ipv6(node: OffhookServer, tmp_path: Path, sipp_dir: Path) -> None:
    """A SIPp UAC over IPv6 (carol) calls baresip over IPv6 (alice) and hangs up."""
    require_capture()
    alice = baresip_ua(tmp_path, node, "alice", V6)
    with alice:
        alice.wait_registered()
        carol = sipp_uac(node, sipp_dir, "carol", V6, DNS["alice"])
        phones = (phone_of(carol), phone_of(alice))
        with (
            Capture(tmp_path / "sip.pcap", f"udp port {node.sip_port}") as sip_cap,
            Capture(tmp_path / "rtp.pcap", rtp_bpf(*phones)) as rtp_cap,
        ):
            carol.start(listening=False)
            try:
                alice.wait_event("CALL_INCOMING", timeout=15)
                alice.accept()
                result = carol.wait()
            finally:
                carol.stop()
            alice.wait_event("CALL_CLOSED", timeout=10)
            sip_cap.stop()
            rtp_cap.stop()
    assert result.ok, describe(result)
    assert_family_per_peer(
        sip_on_wire(sip_cap),
        node.sip_port,
        {"carol": (carol.port, 6), "alice": (alice.sip_port, 6)},
    )
    packets = rtp_on_wire(rtp_cap)
    assert_rtp_reaches(packets, phones[0], phones[1])
    assert_rtp_reaches(packets, phones[1], phones[0])
    assert_answered_cdr(node, "carol", "alice")
