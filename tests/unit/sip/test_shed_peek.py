"""``sip.shed_peek``: shedding a new INVITE from its bytes, against the parsed path.

Differential: the same datagrams go to two endpoints in the same overload
state, one through the full path only (``parse_message``, ``stamp_via``,
``on_message``, as ``SipTransport.datagram`` does), the other through
``shed_datagram`` first (the full path when it declines). Both must send the
same bytes (the 503 header by header, its To tag, Retry-After and ``oc``
Via parameters) and end with the same counters (sheds, admissions, the call
memory's, the endpoint's); and the peek may shed only when the full path
sheds. The datagrams: generated INVITEs in the forms peers write (compact
and odd-case names, folded lines, several Via lines, ``rport``/``oc``,
Record-Route, Replaces, To tags, bad Content-Length, non-ASCII, odd start
lines), sequences with retransmissions, and the RFC 4475 torture vectors.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sip_rig import NODE, PHONE, Rig
from test_shedding import overload

from offhook.common.errors import ParseError
from offhook.sip.aio import stamp_via
from offhook.sip.codec import parse_message
from offhook.sip.message import SipRequest
from offhook.sip.shed_peek import peek_invite, shed_datagram

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "sip" / "rfc4475"
KEPT = ("Via", "From", "To", "Call-ID", "CSeq", "Record-Route")


def full_path(rig: Rig, data: bytes, source: tuple[str, int]) -> None:
    """What ``SipTransport.datagram`` does after its guards, without the peek."""
    try:
        msg = parse_message(data)
    except ParseError:
        return
    try:
        if isinstance(msg, SipRequest):
            stamp_via(msg, source)
        rig.ep.on_message(msg, source, "udp")
    except ParseError:
        return


def state(rig: Rig) -> dict[str, Any]:
    control = rig.ep.overload
    assert control is not None
    now = rig.clock.monotonic()
    status = control.status(now)
    del status["shed_unparsed"]  # what the peek did: the differences
    del status["memory"]["absorbed"]
    return {
        "control": status,
        "counters": dict(rig.ep.counters),
        "wire": [(m.serialize(), dest) for m, dest in rig.wire],
    }


def pair(**policy: Any) -> tuple[Rig, Rig]:
    rigs = (Rig(), Rig())
    for rig in rigs:
        overload(rig, load=1000.0, **policy)
    return rigs


def agree(datagrams: list[bytes], source: tuple[str, int] = PHONE, **policy: Any) -> int:
    """Feed both endpoints; they must agree. Returns how many the peek shed."""
    full, peeked = pair(**policy)
    shed = 0
    for data in datagrams:
        before = len(full.wire)
        stats = dict(full.ep.counters)
        full_path(full, data, source)
        if shed_datagram(peeked.ep, data, source):
            shed += 1
            sent = full.wire[before:]
            if data.startswith(b"ACK "):  # the ACK of a shed 503: the full path absorbs it too
                assert not sent and full.ep.counters == stats, data
            elif sent:  # the full path answered it 503 (and nothing else)
                assert [m.status for m, _ in sent] == [503], data  # type: ignore[attr-defined]
            else:  # ... or dropped it (a blocked source)
                assert full.ep.counters["blocked_requests"] == stats.get("blocked_requests", 0) + 1
        else:
            full_path(peeked, data, source)
        assert state(full) == state(peeked), data
    assert peeked.ep.overload is not None and full.ep.overload is not None
    assert full.ep.overload.unparsed == 0 and full.ep.overload.memory.absorbed == 0
    absorbed = peeked.ep.overload.memory.absorbed
    assert peeked.ep.overload.unparsed == shed - peeked.ep.counters["blocked_requests"] - absorbed
    return shed


def check_peek(data: bytes) -> None:
    """What the peek reads, the parser reads the same; what it accepts, the parser accepts."""
    got = peek_invite(data)
    if got is None:
        return
    msg = parse_message(data)  # must not raise
    assert isinstance(msg, SipRequest) and msg.method == "INVITE" and msg.uri == got.uri
    assert [(n, v) for n, v in msg.headers if n in KEPT] == list(got.headers)
    assert "Replaces" not in msg.headers


def invite(
    call_id: str = "c1",
    *,
    cseq: str = "1 INVITE",
    to: str = f"<sip:1002@{NODE[0]}>",
    vias: tuple[str, ...] = (f"SIP/2.0/UDP {PHONE[0]}:5060;branch=z9hG4bK1",),
    extra: tuple[str, ...] = (),
    start: str = f"INVITE sip:1002@{NODE[0]} SIP/2.0",
    body: bytes = b"v=0\r\n",
    length: str | None = None,
) -> bytes:
    lines = [start, *(f"Via: {v}" for v in vias), "From: <sip:1001@192.0.2.10>;tag=f1"]
    lines += [f"To: {to}", f"Call-ID: {call_id}", f"CSeq: {cseq}", *extra]
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def test_a_plain_invite_is_shed_with_the_parsed_paths_503() -> None:
    assert agree([invite()], min_admit=0.0) == 1


def test_retransmissions_and_admissions_agree() -> None:
    calls = [invite(f"c{i}") for i in range(6)]
    seq = [calls[0], calls[1], calls[0], calls[2], calls[1], calls[3], calls[3], calls[4]]
    # One call in two admitted: the admitted one's retransmission goes to its transaction.
    assert agree(seq, min_admit=0.5) >= 2


def test_what_the_peek_leaves_to_the_full_path() -> None:
    for data in (
        invite(to=f"<sip:1002@{NODE[0]}>;tag=x"),  # in-dialog
        invite(extra=("Replaces: a;to-tag=b;from-tag=c",)),
        invite(cseq="1 BYE"),
        invite(call_id=""),
        invite(length="99"),
        invite(length="1x"),
        b"\r\n" + invite(),
        invite().replace(b"To:", b"To :"),
        invite().replace(b"From: <", b"From:\r\n <"),
        invite(start=f"INVITE  sip:1002@{NODE[0]} SIP/2.0"),
        invite(extra=("Subject: caf\u00e9",)),
    ):
        assert agree([data], min_admit=0.0) == 0, data
        check_peek(data)


def ack(call_id: str = "c1", cseq: str = "1 ACK", *, extra: tuple[str, ...] = ()) -> bytes:
    """The ACK a client sends for a non-2xx answer to ``invite(call_id)``."""
    return invite(
        call_id,
        cseq=cseq,
        to=f"<sip:1002@{NODE[0]}>;tag=0f1e2d3c4b5a",
        start=f"ACK sip:1002@{NODE[0]} SIP/2.0",
        body=b"",
        extra=extra,
    )


def test_the_ack_of_a_shed_503_is_absorbed_unparsed() -> None:
    _, peeked = pair(min_admit=0.0)
    assert shed_datagram(peeked.ep, invite("c1"), PHONE)
    assert shed_datagram(peeked.ep, ack("c1"), PHONE)
    assert peeked.ep.overload is not None and peeked.ep.overload.memory.absorbed == 1
    for other in (
        ack("c2"),  # no such call shed
        ack("c1", "2 ACK"),  # another request of the call
        ack("c1", "1 BYE"),
        ack("c1", extra=("Call-ID: c1",)),  # two Call-IDs: the full path judges
        ack("c1", extra=("CSeq: 1 ACK",)),
        ack("c1").replace(b"ACK sip:", b"ACKX sip:"),
    ):
        assert not shed_datagram(peeked.ep, other, PHONE), other
    assert peeked.ep.overload.memory.absorbed == 1
    assert agree([invite("c1"), ack("c1"), ack("c1"), invite("c2"), ack("c2")], min_admit=0.0) == 5
    # Admitted calls' ACKs always take the full path.
    assert agree([invite("c1"), ack("c1"), invite("c2"), ack("c2")], min_admit=1.0) == 0


def test_compact_names_of_the_parsers_table_are_read_as_it_reads_them() -> None:
    data = invite().replace(b"Call-ID:", b"i:").replace(b"\r\nTo:", b"\r\nt:")
    check_peek(data)
    assert agree([data], min_admit=0.0) == 1


def test_exempt_numbers_and_via_stamping() -> None:
    assert agree([invite()], min_admit=0.0, exempt=frozenset({"1002"})) == 0
    vias = (
        "SIP/2.0/UDP 198.51.100.7;rport;branch=z9hG4bKa;oc",
        "SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKb",
    )
    data = invite(vias=vias, extra=("Record-Route: <sip:p1;lr>, <sip:p2;lr>",))
    assert agree([data], min_admit=0.0) == 1
    assert agree([data.replace(b"Via: SIP/2.0/TCP", b"v: SIP/2.0/TCP")], min_admit=0.0) == 1


@pytest.mark.skipif(not VECTORS.is_dir(), reason="no RFC 4475 vectors")
def test_rfc4475_torture_vectors() -> None:
    invites = 0
    for path in sorted(VECTORS.glob("*.dat")):
        data = path.read_bytes()
        check_peek(data)
        if not data.startswith(b"INVITE "):
            assert peek_invite(data) is None  # the rig has no registrar: REGISTER cannot go on
            continue
        agree([data], min_admit=0.0)
        agree([data], min_admit=0.5)
        invites += 1
    assert invites >= 5


NAMES = {
    "Via": ["Via", "via", "VIA", "v", "Via "],
    "To": ["To", "to", "TO", "t"],
    "Call-ID": ["Call-ID", "call-id", "Call-Id", "i", "CALL-ID"],
    "CSeq": ["CSeq", "cseq", "Cseq", "CSEQ"],
    "Record-Route": ["Record-Route", "record-route"],
}
TOKEN = st.text(alphabet="abcXYZ019-.!%*_+`'~", min_size=1, max_size=6)
VIA = st.builds(
    lambda host, params: f"SIP/2.0/UDP {host}" + "".join(params),
    st.sampled_from([PHONE[0], f"{PHONE[0]}:5062", "198.51.100.7", "[2001:db8::1]", "h.example"]),
    st.lists(
        st.sampled_from([";rport", ";rport=9", ";received=1.2.3.4", ";oc", ";oc=20", ";x"])
        | TOKEN.map(lambda t: f";branch=z9hG4bK{t}"),
        max_size=3,
    ),
)


@st.composite
def datagrams(draw: st.DrawFn) -> bytes:
    call = draw(st.sampled_from(["c1", "c2", "c3", " c1 ", "c\u00e91"]))
    vias = tuple(draw(st.lists(VIA, min_size=0, max_size=3)))
    to = draw(st.sampled_from(["<sip:1002@h>", "<sip:1002@h>;tag=z", "<sip:911@h>", "x <sip:a@h>"]))
    extra = draw(
        st.lists(
            st.sampled_from(
                [
                    "Record-Route: <sip:p;lr>",
                    "Replaces: a;to-tag=b;from-tag=c",
                    "Max-Forwards: 70",
                    "Contact: <sip:x@h>",
                    "Content-Length: 0",
                    " folded",
                    "X-Odd :v",
                ]
            ),
            max_size=3,
        )
    )
    cseq = draw(st.sampled_from(["1 INVITE", "2 INVITE", "1 invite", "x INVITE", "1 BYE"]))
    start = draw(
        st.sampled_from(
            [
                "INVITE sip:1002@h SIP/2.0",
                "INVITE sip:911@h SIP/2.0",
                "INVITE sip:1002@h SIP/2.1",
                "INVITE sip:1002@h sip/2.0",
                "INVITE tel:+1002 SIP/2.0",
                "INVITE sip:1002@h  SIP/2.0",
            ]
        )
    )
    if draw(st.integers(0, 3)) == 0:  # now and then the ACK a client sends for a 503
        start = start.replace("INVITE ", "ACK ", 1)
        cseq = cseq.replace("INVITE", "ACK").replace("invite", "ACK")
    data = invite(call, cseq=cseq, to=to, vias=vias, extra=tuple(extra), start=start)
    for canon, spellings in NAMES.items():
        spelt = draw(st.sampled_from(spellings))
        data = data.replace(f"\r\n{canon}:".encode(), f"\r\n{spelt}:".encode())
    if draw(st.booleans()):
        data = data.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\n", 1)
    return data


@settings(max_examples=300, deadline=None)
@given(st.lists(datagrams(), min_size=1, max_size=5), st.sampled_from([0.0, 0.5]))
def test_property_the_peek_agrees_with_the_full_path(batch: list[bytes], share: float) -> None:
    for data in batch:
        check_peek(data)
    agree(batch, min_admit=share, exempt=frozenset({"911"}))


@given(st.binary(max_size=300))
def test_property_the_peek_never_raises_and_accepts_only_what_parses(data: bytes) -> None:
    check_peek(b"INVITE " + data)


class Gate:
    """The failed-login gate's interface (``net.authguard.PeerGate``): a fixed answer."""

    def __init__(self, answer: float | None) -> None:
        self.answer = answer
        self.asked = 0

    def admit(self, peer: tuple[str, int]) -> float | None:
        self.asked += 1
        return self.answer

    def hold(self, peer: tuple[str, int]) -> bool:
        return True

    def release(self, peer: tuple[str, int]) -> None:
        pass


@pytest.mark.parametrize("answer", [None, 0.0, 2.0])
def test_the_failed_login_gate_decides_first_as_on_the_parsed_path(answer: float | None) -> None:
    full, peeked = pair(min_admit=0.0)
    gates = Gate(answer), Gate(answer)
    full.ep.auth_gate, peeked.ep.auth_gate = gates  # type: ignore[assignment]
    data = invite()
    full_path(full, data, PHONE)
    if not shed_datagram(peeked.ep, data, PHONE):
        full_path(peeked, data, PHONE)
    assert state(full) == state(peeked)
    assert gates[0].asked == 1 and gates[1].asked >= 1
    assert full.ep.counters["blocked_requests"] == (1 if answer is None else 0)


TSHARK = shutil.which("tshark")


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_reads_the_peeks_503(tmp_path: Path) -> None:
    scapy_all = pytest.importorskip("scapy.all")
    rig = Rig()
    overload(rig, load=1000.0, min_admit=0.0)
    vias = ("SIP/2.0/UDP 192.0.2.10;rport;branch=z9hG4bKt;oc",)
    assert shed_datagram(rig.ep, invite(vias=vias), PHONE)
    ((resp, _),) = rig.wire
    wire = resp.serialize()
    pcap = tmp_path / "shed.pcap"
    scapy_all.wrpcap(
        str(pcap),
        [
            scapy_all.Ether()
            / scapy_all.IP(src=NODE[0], dst=PHONE[0])
            / scapy_all.UDP(sport=NODE[1], dport=PHONE[1])
            / scapy_all.Raw(wire)
        ],
    )
    fields = ["sip.Status-Code", "sip.Via.oc", "sip.Via.rport", "sip.tag", "sip.Call-ID"]
    fields += ["_ws.malformed", "_ws.expert.severity"]
    result = subprocess.run(
        [TSHARK, "-r", str(pcap), "-T", "fields", *(a for f in fields for a in ("-e", f))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (row,) = [line.split("\t") for line in result.stdout.splitlines()]
    status, oc, rport, tags, call_id, malformed, severity = row
    assert status == "503" and call_id == "c1" and not malformed, row
    assert rport == str(PHONE[1]) and oc, row
    assert resp.to_tag in tags.split(","), row
    assert max((int(x, 0) for x in severity.split(",") if x), default=0) < 0x00800000, row
