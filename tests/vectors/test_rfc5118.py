"""RFC 5118 SIP torture messages for IPv6: the verdict of parser + validate per vector.

The twelve messages of RFC 5118 §4, one ``.dat`` file each under
``sip/rfc5118/``, named as the RFC names them, typed from the RFC text with
CRLF line ends (the RFC indents each message by three spaces for layout;
that indentation is not part of the message).

Verdicts (the RFC's):

- valid: everything except ``ipv6-bad``. Three of them are worth a word:
  ``port-ambiguous`` (§4.3) is well-formed; its Request-URI names host
  ``2001:db8::10:5070`` and no port (a port is read only after the ``]``).
  ``via-received-param-with-delim`` (§4.5) brackets the Via ``received``
  address, which RFC 3261's via-received grammar does not; the RFC asks
  receivers to accept it and the bare form alike. ``ipv6-bug-abnf-3-colons``
  (§4.10) carries ``[2001:db8:::192.0.2.1]``, which RFC 3261's IPv6address
  rule derives and RFC 4291 does not; the RFC asks receivers to tolerate it,
  and we read it as ``2001:db8::192.0.2.1``.
- invalid: ``ipv6-bad`` (§4.2, an IPv6 address without brackets in the
  Request-URI): ``parse_message`` frames it, ``validate.check_request``
  answers 400, as the RFC says.

Content-Length: the three messages with an SDP body print lengths (268, 181,
236) that match neither their bodies with CRLF line ends (251, 189, 245)
nor with LF (242, 180, 236 -- only §4.9 fits, counted with LF). Our files
carry the length of the CRLF body, so that the vectors test IPv6 handling
rather than the RFC's arithmetic; ``test_rfc_printed_content_lengths`` shows
what the printed values would do.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sdp import parse_sdp
from offhook.sip.abnf import parse_ipv6
from offhook.sip.codec import parse_message
from offhook.sip.headers import parse_contact_list, parse_name_addr, parse_via
from offhook.sip.message import SipRequest
from offhook.sip.uri import parse_uri
from offhook.sip.validate import check_request

HERE = Path(__file__).parent / "sip" / "rfc5118"

# name -> (RFC 5118 section, the RFC's verdict: valid?)
VERDICTS: dict[str, tuple[str, bool]] = {
    "ipv6-good": ("4.1", True),
    "ipv6-bad": ("4.2", False),
    "port-ambiguous": ("4.3", True),
    "port-unambiguous": ("4.4", True),
    "via-received-param-with-delim": ("4.5", True),
    "via-received-param-no-delim": ("4.5", True),
    "ipv6-in-sdp": ("4.6", True),
    "mult-ip-in-header": ("4.7", True),
    "mult-ip-in-sdp": ("4.8", True),
    "ipv4-mapped-ipv6": ("4.9", True),
    "ipv6-bug-abnf-3-colons": ("4.10", True),
    "ipv6-correct-abnf-2-colons": ("4.10", True),
}
VALID = [n for n, (_, ok) in VERDICTS.items() if ok]
INVALID = {"ipv6-bad": 400}  # refused by validate.check_request with this status

# Content-Length as printed in the RFC (see the module docstring).
RFC_PRINTED_CONTENT_LENGTH = {"ipv6-in-sdp": 268, "mult-ip-in-sdp": 181, "ipv4-mapped-ipv6": 236}

# What the parser must read out of each valid vector.
#   ruri:     (host_addr, port) of the Request-URI
#   vias:     (transport, host_addr, port, received_addr) per via-parm, top first
#   contacts: host_addr of each Contact URI
#   to:       host_addr of the To URI
#   sdp:      (session c= address or None, [(media, effective c= addrtype, address)])
EXPECT: dict[str, dict[str, Any]] = {
    "ipv6-good": {
        "ruri": ("2001:db8::10", None),
        "vias": [("UDP", "2001:db8::9:1", None, None)],
        "contacts": ["2001:db8::1"],
        "to": "example.com",
    },
    "port-ambiguous": {
        # §4.3: the "5070" is the last group of the address, not a port.
        "ruri": ("2001:db8::10:5070", None),
        "vias": [("UDP", "2001:db8::9:1", None, None)],
        "contacts": ["2001:db8::1"],
        "to": "example.com",
    },
    "port-unambiguous": {
        "ruri": ("2001:db8::10", 5070),
        "vias": [("UDP", "2001:db8::9:1", None, None)],
        "contacts": ["2001:db8::1"],
        "to": "example.com",
    },
    "via-received-param-with-delim": {
        "ruri": ("2001:db8::10", None),
        "vias": [("UDP", "2001:db8::9:1", None, "2001:db8::9:255")],
        "contacts": [],
        "to": "example.com",
    },
    "via-received-param-no-delim": {
        "ruri": ("2001:db8::10", None),
        "vias": [("UDP", "2001:db8::9:1", None, "2001:db8::9:255")],
        "contacts": ["2001:db8::9:1"],
        "to": "example.com",
    },
    "ipv6-in-sdp": {
        "ruri": ("2001:db8::10", None),
        "vias": [("UDP", "2001:db8::20", None, None)],
        "contacts": ["2001:db8::20"],
        "to": "2001:db8::10",
        "sdp": (
            "2001:db8::20",
            [("audio", "IP6", "2001:db8::20"), ("video", "IP6", "2001:db8::20")],
        ),
    },
    "mult-ip-in-header": {
        "ruri": ("host.example.net", None),
        "vias": [
            ("UDP", "2001:db8::9:1", 6050, None),
            ("UDP", "192.0.2.1", None, None),
            ("TCP", "2001:db8::9:255", None, "192.0.2.200"),
        ],
        "contacts": [],
        "to": "example.net",
    },
    "mult-ip-in-sdp": {
        "ruri": ("2001:db8::10", None),
        "vias": [("UDP", "2001:db8::9:1", None, None)],
        "contacts": ["2001:db8::9:1"],
        "to": "2001:db8::10",
        "sdp": (None, [("audio", "IP4", "192.0.2.1"), ("video", "IP6", "2001:db8::1")]),
    },
    "ipv4-mapped-ipv6": {
        "ruri": ("example.com", None),
        "vias": [
            ("UDP", "::ffff:192.0.2.10", 19823, None),
            ("UDP", "::ffff:192.0.2.2", None, None),
        ],
        "contacts": ["::ffff:192.0.2.2"],
        "to": "example.com",
        "sdp": (
            "::ffff:192.0.2.2",
            [("audio", "IP6", "::ffff:192.0.2.2"), ("video", "IP6", "::ffff:192.0.2.2")],
        ),
    },
    "ipv6-bug-abnf-3-colons": {
        # §4.10: the extra colon is ignored when reading the address.
        "ruri": ("2001:db8::192.0.2.1", None),
        "vias": [("UDP", "lab1.east.example.com", None, None)],
        "contacts": [],
        "to": "2001:db8::192.0.2.1",
    },
    "ipv6-correct-abnf-2-colons": {
        "ruri": ("2001:db8::192.0.2.1", None),
        "vias": [("UDP", "lab1.east.example.com", None, None)],
        "contacts": [],
        "to": "2001:db8::192.0.2.1",
    },
}


def load(name: str) -> bytes:
    return (HERE / f"{name}.dat").read_bytes()


def request(name: str) -> SipRequest:
    msg = parse_message(load(name))
    assert isinstance(msg, SipRequest)
    return msg


def test_every_vector_has_a_verdict() -> None:
    names = {p.stem for p in HERE.glob("*.dat")}
    assert len(names) == 12
    assert names == set(VERDICTS)
    assert set(VALID) == set(EXPECT)
    assert set(INVALID) == set(VERDICTS) - set(VALID)


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_files_are_crlf_with_a_true_content_length(name: str) -> None:
    data = load(name)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep
    assert not head.startswith((b" ", b"\t"))
    m = re.search(rb"\r\nContent-Length: ([0-9]+)", head)
    assert m is not None
    assert int(m.group(1)) == len(body)
    assert body == b"" or body.endswith(b"\r\n")


@pytest.mark.parametrize("name", VALID)
def test_valid_requests(name: str) -> None:
    msg = request(name)
    assert check_request(msg) is None
    # The structured views all read
    parse_uri(msg.uri)
    for v in msg.headers.get_all("Via"):
        parse_via(v)
    parse_name_addr(msg.headers.get("To") or "")
    parse_name_addr(msg.headers.get("From") or "")
    for c in msg.headers.get_raw("Contact"):
        parse_contact_list(c)
    if msg.body:
        parse_sdp(msg.body)
    # Round trip: serialise and parse again, same fields
    again = parse_message(msg.serialize())
    assert isinstance(again, SipRequest)
    assert (again.method, again.uri, again.body) == (msg.method, msg.uri, msg.body)
    assert [(n, v) for n, v in again.headers if n != "Content-Length"] == [
        (n, v) for n, v in msg.headers if n != "Content-Length"
    ]
    assert check_request(again) is None


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_requests(name: str) -> None:
    msg = request(name)  # framing is fine ...
    verdict = check_request(msg)  # ... the Request-URI is not
    assert verdict is not None
    assert verdict[0] == INVALID[name]
    with pytest.raises(ParseError):
        parse_uri(msg.uri)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_what_the_parser_reads(name: str) -> None:
    msg = request(name)
    want = EXPECT[name]
    ruri = parse_uri(msg.uri)
    assert (ruri.host_addr, ruri.port) == want["ruri"]
    vias = [parse_via(v) for v in msg.headers.get_all("Via")]
    assert [(v.transport, v.host_addr, v.port, v.received_addr) for v in vias] == want["vias"]
    contacts: list[str] = []
    for raw in msg.headers.get_raw("Contact"):
        parsed = parse_contact_list(raw)
        assert parsed != "*"
        contacts.extend(c.uri.host_addr for c in parsed)
    assert contacts == want["contacts"]
    assert parse_name_addr(msg.headers.get("To") or "").uri.host_addr == want["to"]
    # Every IPv6 host the parser hands out is an address ipaddress accepts.
    for host in [ruri.host, *(v.host for v in vias)]:
        if host.startswith("["):
            parse_ipv6(host)
    if "sdp" in want:
        sdp = parse_sdp(msg.body)
        session_c, media = want["sdp"]
        assert (sdp.connection.address if sdp.connection else None) == session_c
        got = []
        for m in sdp.media:
            conn = sdp.media_connection(m)
            assert conn is not None and conn.nettype == "IN"
            got.append((m.kind, conn.addrtype, conn.address))
            # SDP carries IPv6 addresses without brackets (RFC 8866 §5.7)
            version = 6 if conn.addrtype == "IP6" else 4
            assert ipaddress.ip_address(conn.address).version == version
        assert got == media
    else:
        assert msg.body == b""


def test_port_ambiguous_is_an_address_without_a_port() -> None:
    # RFC 5118 §4.3 (and erratum 1311): well-formed, but the intended port
    # became the last 16 bits of the address.
    ruri = parse_uri(request("port-ambiguous").uri)
    assert ruri.host == "[2001:db8::10:5070]"
    assert ruri.port is None
    assert parse_ipv6(ruri.host) == ipaddress.IPv6Address("2001:db8::10:5070")
    assert parse_ipv6(ruri.host) != ipaddress.IPv6Address("2001:db8::10")
    unambiguous = parse_uri(request("port-unambiguous").uri)
    assert (unambiguous.host, unambiguous.port) == ("[2001:db8::10]", 5070)
    assert str(unambiguous) == "sip:[2001:db8::10]:5070"


def test_via_received_with_and_without_brackets() -> None:
    # RFC 5118 §4.5: both forms parse; the wire text is kept as sent.
    with_delim = parse_via(request("via-received-param-with-delim").top_via)
    no_delim = parse_via(request("via-received-param-no-delim").top_via)
    assert with_delim.received == "[2001:db8::9:255]"
    assert no_delim.received == "2001:db8::9:255"
    assert with_delim.received_addr == no_delim.received_addr == "2001:db8::9:255"
    assert parse_ipv6(with_delim.received) == parse_ipv6(no_delim.received)
    assert with_delim.branch == "z9hG4bKas3-111"
    assert no_delim.branch == "z9hG4bKas3"
    # Re-serialised, each keeps its spelling and parses again.
    for via in (with_delim, no_delim):
        assert parse_via(str(via)) == via


def test_three_colon_reference_reads_as_the_two_colon_one() -> None:
    # RFC 5118 §4.10: tolerate both; the host keeps its wire text.
    bug = request("ipv6-bug-abnf-3-colons")
    fixed = request("ipv6-correct-abnf-2-colons")
    bug_uri, fixed_uri = parse_uri(bug.uri), parse_uri(fixed.uri)
    assert bug_uri.host == "[2001:db8:::192.0.2.1]"
    assert str(bug_uri) == "sip:user@[2001:db8:::192.0.2.1]"
    assert parse_ipv6(bug_uri.host) == parse_ipv6(fixed_uri.host)
    assert parse_ipv6(fixed_uri.host) == ipaddress.IPv6Address("2001:db8::c000:201")
    assert bug_uri.host_addr == fixed_uri.host_addr == "2001:db8::192.0.2.1"


def test_mult_ip_in_header_via_order() -> None:
    vias = [parse_via(v) for v in request("mult-ip-in-header").headers.get_all("Via")]
    assert [v.sent_by for v in vias] == ["[2001:db8::9:1]:6050", "192.0.2.1", "[2001:db8::9:255]"]
    assert [v.branch for v in vias] == [
        "z9hG4bKas3-111",
        "z9hG4bKjhja8781hjuaij65144",
        "z9hG4bK451jj",
    ]


def test_ipv4_mapped_addresses() -> None:
    msg = request("ipv4-mapped-ipv6")
    top = parse_via(msg.top_via)
    assert parse_ipv6(top.host).ipv4_mapped == ipaddress.IPv4Address("192.0.2.10")
    sdp = parse_sdp(msg.body)
    assert sdp.origin.addrtype == "IP6"
    assert ipaddress.IPv6Address(sdp.origin.address).ipv4_mapped == ipaddress.IPv4Address(
        "192.0.2.2"
    )


def _with_content_length(data: bytes, value: int) -> bytes:
    return re.sub(rb"Content-Length: [0-9]+", b"Content-Length: %d" % value, data, count=1)


def test_rfc_printed_content_lengths() -> None:
    # §4.6 as printed claims more body than there is: a truncated message.
    data = _with_content_length(load("ipv6-in-sdp"), RFC_PRINTED_CONTENT_LENGTH["ipv6-in-sdp"])
    with pytest.raises(ParseError):
        parse_message(data)
    # §4.8 and §4.9 as printed claim less: on a datagram the tail is dropped
    # (RFC 3261 §18.3), cutting the SDP short.
    for name in ("mult-ip-in-sdp", "ipv4-mapped-ipv6"):
        printed = RFC_PRINTED_CONTENT_LENGTH[name]
        full = request(name).body
        assert printed < len(full)
        msg = parse_message(_with_content_length(load(name), printed))
        assert msg.body == full[:printed]


# --- properties -------------------------------------------------------------

_ports = st.one_of(st.none(), st.integers(0, 65535))
_v6 = st.ip_addresses(v=6).map(lambda a: ipaddress.IPv6Address(int(a)))
_spellings = st.sampled_from(["compressed", "exploded", "upper"])


def _spell(addr: ipaddress.IPv6Address, how: str) -> str:
    if how == "exploded":
        return addr.exploded
    text = str(addr)
    return text.upper() if how == "upper" else text


@given(_v6, _spellings, _ports, st.sampled_from(["sip", "sips"]), st.booleans())
def test_bracketed_ipv6_in_a_uri_parses_back(
    addr: ipaddress.IPv6Address, how: str, port: int | None, scheme: str, user: bool
) -> None:
    hostport = f"[{_spell(addr, how)}]" + ("" if port is None else f":{port}")
    uri = parse_uri(f"{scheme}:{'alice@' if user else ''}{hostport};transport=udp")
    assert ipaddress.IPv6Address(uri.host_addr) == addr
    assert parse_ipv6(uri.host) == addr
    assert uri.port == port
    assert parse_uri(str(uri)) == uri


@given(_v6, st.sampled_from(["sip", "sips"]), st.booleans())
def test_unbracketed_ipv6_in_a_uri_is_refused(
    addr: ipaddress.IPv6Address, scheme: str, user: bool
) -> None:
    # RFC 5118 §4.2: without "[" "]" an IPv6 address is never a SIP host.
    with pytest.raises(ParseError):
        parse_uri(f"{scheme}:{'bob@' if user else ''}{addr}")


@given(_v6, _ports, _v6, st.booleans())
def test_via_sent_by_and_received(
    addr: ipaddress.IPv6Address,
    port: int | None,
    received: ipaddress.IPv6Address,
    brackets: bool,
) -> None:
    sent_by = f"[{addr}]" + ("" if port is None else f":{port}")
    rtext = f"[{received}]" if brackets else str(received)
    via = parse_via(f"SIP/2.0/UDP {sent_by};received={rtext};rport=5060;branch=z9hG4bKp")
    assert ipaddress.IPv6Address(via.host_addr) == addr
    assert via.port == port
    assert via.received == rtext
    assert via.received_addr is not None
    assert ipaddress.IPv6Address(via.received_addr) == received
    assert via.rport == "5060"
    assert parse_via(str(via)) == via


@given(
    st.lists(st.integers(0, 0xFFFF), max_size=5),
    st.ip_addresses(v=4).map(lambda a: ipaddress.IPv4Address(int(a))),
)
def test_rfc3261_three_colon_form_is_tolerated(
    groups: list[int], v4: ipaddress.IPv4Address
) -> None:
    # RFC 3261's IPv6address = hexpart [ ":" IPv4address ], hexpart ending in "::".
    prefix = ":".join(f"{g:x}" for g in groups)
    uri = parse_uri(f"sip:[{prefix}:::{v4}]:5060")
    want = ipaddress.IPv6Address(f"{prefix}::{v4}")
    assert ipaddress.IPv6Address(uri.host_addr) == want
    assert parse_ipv6(uri.host) == want
    assert uri.port == 5060


@given(st.text(alphabet="0123456789abcdefABCDEF:.", max_size=48))
def test_a_bracketed_host_is_an_address_or_refused(inner: str) -> None:
    try:
        uri = parse_uri(f"sip:[{inner}]")
    except ParseError:
        return
    ipaddress.IPv6Address(uri.host_addr)  # never a reference that is no address
