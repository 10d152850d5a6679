"""Event packages: the Event header, Accept, dialog-info and PIDF bodies, and tshark's view.

The bodies must be well-formed XML in their RFC namespaces; tshark (when
installed) must dissect the NOTIFYs the notifier sends (SIP, its Event and
Subscription-State, the XML body) without a malformed-packet or expert
error.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_subscriptions_notifier import NRig, Subscriber, notifies

from offhook.common.errors import ParseError
from offhook.sip.event_packages import LineStatus, accepts, dialog_info, parse_event, pidf
from offhook.sip.message import SipRequest

DI = "{urn:ietf:params:xml:ns:dialog-info}"
PIDF = "{urn:ietf:params:xml:ns:pidf}"
TSHARK = shutil.which("tshark")


@pytest.mark.parametrize(
    ("text", "package", "event_id"),
    [
        ("dialog", "dialog", ""),
        ("Dialog ; id=abc", "dialog", "abc"),
        ('presence;id="x y"', "presence", "x y"),
        ("message-summary;foo;id=7", "message-summary", "7"),
        ("presence.winfo", "presence.winfo", ""),
    ],
)
def test_parse_event(text: str, package: str, event_id: str) -> None:
    ev = parse_event(text)
    assert (ev.package, ev.id) == (package, event_id)


@pytest.mark.parametrize("text", ["", ";id=1", "dia log", "dialog;id", "dialog;id=", "a" * 300])
def test_parse_event_refuses(text: str) -> None:
    with pytest.raises(ParseError):
        parse_event(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parse_event_any_text(text: str) -> None:
    with contextlib.suppress(ParseError):
        parse_event(text)


def test_accepts() -> None:
    assert accepts([], "application/pidf+xml")
    assert accepts(["application/pidf+xml, application/xpidf+xml"], "application/pidf+xml")
    assert accepts(["application/*"], "application/dialog-info+xml")
    assert accepts(["*/*;q=0.1"], "application/dialog-info+xml")
    assert not accepts(["application/xpidf+xml"], "application/pidf+xml")


@pytest.mark.parametrize(
    ("status", "state", "direction"),
    [
        (LineStatus("idle"), "terminated", None),
        (LineStatus("ringing", "recipient"), "early", "recipient"),
        (LineStatus("in-use", "initiator"), "confirmed", "initiator"),
    ],
)
def test_dialog_info_document(status: LineStatus, state: str, direction: str | None) -> None:
    root = ET.fromstring(dialog_info("sip:1002@pbx", 7, status, "1002"))
    assert root.tag == f"{DI}dialog-info"
    assert root.get("version") == "7" and root.get("state") == "full"
    assert root.get("entity") == "sip:1002@pbx"
    (dialog,) = root.findall(f"{DI}dialog")
    assert dialog.get("id") == "1002" and dialog.get("direction") == direction
    assert dialog.findtext(f"{DI}state") == state


def test_entity_is_escaped() -> None:
    root = ET.fromstring(dialog_info('sip:a"<b>&@pbx', 0, LineStatus(), "x&y"))
    assert root.get("entity") == 'sip:a"<b>&@pbx'
    ET.fromstring(pidf('sip:a"<b>&@pbx', LineStatus("in-use"), "t&1"))


@pytest.mark.parametrize(
    ("status", "basic", "note", "on_phone"),
    [
        (LineStatus("idle"), "open", "Available", False),
        (LineStatus("ringing", "recipient"), "open", "Ringing", False),
        (LineStatus("in-use", "recipient"), "open", "On the phone", True),
        (LineStatus("idle", available=False), "closed", "Offline", False),
    ],
)
def test_pidf_document(status: LineStatus, basic: str, note: str, on_phone: bool) -> None:
    root = ET.fromstring(pidf("sip:1002@pbx", status, "line-1002"))
    assert root.tag == f"{PIDF}presence" and root.get("entity") == "sip:1002@pbx"
    (tup,) = root.findall(f"{PIDF}tuple")
    assert tup.findtext(f"{PIDF}status/{PIDF}basic") == basic
    assert tup.findtext(f"{PIDF}note") == note
    rpid = "{urn:ietf:params:xml:ns:pidf:rpid}"
    assert (root.find(f".//{rpid}on-the-phone") is not None) == on_phone


# -- tshark -----------------------------------------------------------------------------


def _notifies_on_the_wire() -> list[SipRequest]:
    rig = NRig()
    rig.policy.lines[("1002", "internal")] = LineStatus("ringing", "recipient")
    out: list[SipRequest] = []
    for event, target in (("dialog", "1002"), ("presence", "1002"), ("message-summary", "1001")):
        assert Subscriber(rig, event=event, target=target).open().status == 200
        out.append(notifies(rig.take())[-1])
    return out


def tshark_fields(pcap: Path, fields: list[str]) -> list[list[str]]:
    assert TSHARK is not None
    # Debian's Wireshark has no DTDs, so XML bodies are found heuristically.
    cmd = [TSHARK, "-r", str(pcap), "-o", "xml.heuristic:TRUE", "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return [line.split("\t") for line in result.stdout.splitlines()]


def write_pcap(pcap: Path, payloads: list[bytes]) -> None:
    from scapy.all import IP, UDP, Ether, Raw, wrpcap

    wrpcap(
        str(pcap),
        [
            Ether() / IP(src="192.0.2.1", dst="192.0.2.30") / UDP(sport=5060, dport=5060) / Raw(p)
            for p in payloads
        ],
    )


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_dissects_the_notifies(tmp_path: Path) -> None:
    pytest.importorskip("scapy.all")
    sent = _notifies_on_the_wire()
    pcap = tmp_path / "notify.pcap"
    write_pcap(pcap, [n.serialize() for n in sent])
    rows = tshark_fields(
        pcap,
        [
            "sip.Method",
            "sip.Event",
            "sip.Subscription-State",
            "xml.xmlpi.xml.version",
            "_ws.malformed",
            "_ws.expert.severity",
        ],
    )
    assert len(rows) == 3, rows
    events = [row[1] for row in rows]
    assert events == ["dialog", "presence", "message-summary"], rows
    for method, _, state, _xml, malformed, severity in rows:
        assert method == "NOTIFY" and state.startswith("active;expires="), rows
        assert not malformed, rows
        # Wireshark flags nothing worse than a note (severity 0x00400000 warnings are bad too).
        assert all(int(s, 0) < 0x00400000 for s in severity.split(",") if s), rows
    # The XML bodies are dissected as XML; the message summary is text.
    assert [row[3] for row in rows] == ["1.0", "1.0", ""], rows
