"""RFC 4475 SIP torture messages: the combined verdict of parser + validate per vector.

Where each invalid message is refused:

- parser (``parse_message`` raises ParseError; ``salvage_for_400`` still finds
  Via/Call-ID/CSeq so the transport answers): clerr, ncl, lwsruri, lwsstart,
  trws, mcl01 (400), badvers (505), baddn (the vector lacks its final CRLF;
  ``test_baddn_terminated`` shows validate refuses its display names too).
- parser, response dropped (no salvage): bigcode.
- ``validate.check_request``: everything else, with the RFC's status.
- ``validate.check_response``: scalarlg (dropped).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from offhook.common.errors import ParseError
from offhook.sip.codec import StreamFramer, parse_message, salvage_for_400
from offhook.sip.headers import parse_contact_list, parse_name_addr, parse_via
from offhook.sip.message import SipRequest, SipResponse
from offhook.sip.uri import parse_uri
from offhook.sip.validate import check_request, check_response

HERE = Path(__file__).parent / "sip" / "rfc4475"

VALID_REQUESTS = [
    # 3.1.1
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq",
    "semiuri", "transports", "mpart01",
    # 3.3 (valid; the application decides: 401 / 200 / registration)
    "regaut01", "cparam01", "cparam02", "regescrt",
    # 3.4
    "inv2543",
]  # fmt: skip
VALID_RESPONSES = ["unreason", "noreason", "bcast"]

# Refused by the parser: name -> status the transport answers with (salvaged request).
PARSER_REJECTS = {
    "clerr": 400, "ncl": 400, "lwsruri": 400, "lwsstart": 400, "trws": 400,
    "mcl01": 400, "badvers": 505, "baddn": 400,
}  # fmt: skip
PARSER_DROPS = ["bigcode"]

# Refused by validate.check_request: name -> (status, extra headers that must be present)
VALIDATE_REJECTS: dict[str, tuple[int, dict[str, str]]] = {
    "badinv01": (400, {}),
    "scalar02": (400, {}),
    "quotbal": (400, {}),
    "ltgtruri": (400, {}),
    "escruri": (400, {}),
    "baddate": (400, {}),
    "regbadct": (400, {}),
    "badaspec": (400, {}),
    "mismatch01": (400, {}),
    "mismatch02": (400, {}),
    "badbranch": (400, {}),  # RFC 4475 §3.2.1 allows 400 or RFC 2543 fallback
    "insuf": (400, {}),
    "unkscm": (416, {}),
    "novelsc": (416, {}),
    "unksm2": (400, {}),  # a registrar: To must hold a SIP/SIPS AOR
    "bext01": (420, {"Unsupported": "nothingSupportsThis, nothingSupportsThisEither"}),
    "invut": (415, {"Accept": "application/sdp"}),
    "multi01": (400, {}),
    "zeromf": (483, {}),
    "sdp01": (406, {}),
}
RESPONSE_DROPS = ["scalarlg"]


def load(name: str) -> bytes:
    return (HERE / f"{name}.dat").read_bytes()


def test_every_vector_has_a_verdict() -> None:
    names = {p.stem for p in HERE.glob("*.dat")}
    covered = (
        set(VALID_REQUESTS)
        | set(VALID_RESPONSES)
        | set(PARSER_REJECTS)
        | set(PARSER_DROPS)
        | set(VALIDATE_REJECTS)
        | set(RESPONSE_DROPS)
    )
    assert len(names) == 49
    assert names == covered


@pytest.mark.parametrize("name", VALID_REQUESTS)
def test_valid_requests(name: str) -> None:
    msg = parse_message(load(name))
    assert isinstance(msg, SipRequest)
    assert check_request(msg) is None
    # The structured views all read
    parse_uri(msg.uri)
    for v in msg.headers.get_all("Via"):
        parse_via(v)
    parse_name_addr(msg.headers.get("To") or "")
    parse_name_addr(msg.headers.get("From") or "")
    for c in msg.headers.get_raw("Contact"):
        parse_contact_list(c)
    # Round trip: serialise and parse again, same fields
    again = parse_message(msg.serialize())
    assert isinstance(again, SipRequest)
    assert (again.method, again.uri, again.body) == (msg.method, msg.uri, msg.body)
    assert [(n, v) for n, v in again.headers if n != "Content-Length"] == [
        (n, v) for n, v in msg.headers if n != "Content-Length"
    ]


@pytest.mark.parametrize("name", VALID_RESPONSES)
def test_valid_responses(name: str) -> None:
    msg = parse_message(load(name))
    assert isinstance(msg, SipResponse)
    assert check_response(msg) is None


@pytest.mark.parametrize("name", sorted(PARSER_REJECTS))
def test_parser_rejects_and_salvages(name: str) -> None:
    data = load(name)
    with pytest.raises(ParseError) as exc:
        parse_message(data)
    assert exc.value.status_hint == PARSER_REJECTS[name]
    salvaged = salvage_for_400(data)
    assert salvaged is not None
    assert salvaged.call_id
    assert salvaged.cseq
    assert salvaged.top_via


@pytest.mark.parametrize("name", PARSER_DROPS)
def test_parser_drops_responses(name: str) -> None:
    data = load(name)
    with pytest.raises(ParseError):
        parse_message(data)
    assert salvage_for_400(data) is None


@pytest.mark.parametrize("name", sorted(VALIDATE_REJECTS))
def test_validate_rejects(name: str) -> None:
    msg = parse_message(load(name))
    assert isinstance(msg, SipRequest)
    verdict = check_request(msg)
    assert verdict is not None, name
    status, reason, extra = verdict
    want_status, want_extra = VALIDATE_REJECTS[name]
    assert status == want_status, (name, reason)
    for k, v in want_extra.items():
        assert extra[k] == v


@pytest.mark.parametrize("name", RESPONSE_DROPS)
def test_validate_drops_responses(name: str) -> None:
    msg = parse_message(load(name))
    assert isinstance(msg, SipResponse)
    assert check_response(msg) is not None


def test_baddn_terminated() -> None:
    msg = parse_message(load("baddn") + b"\r\n")
    assert isinstance(msg, SipRequest)
    verdict = check_request(msg)
    assert verdict is not None and verdict[0] == 400


def test_dblreq_second_message_ignored_on_udp() -> None:
    msg = parse_message(load("dblreq"))
    assert isinstance(msg, SipRequest)
    assert msg.method == "REGISTER"
    assert msg.body == b""


def test_dblreq_over_a_stream_yields_both() -> None:
    # On TCP, Content-Length frames both requests (the CRLF between them is a
    # keep-alive). The vector's INVITE body is 5 bytes longer than its
    # Content-Length of 150; those leftovers are garbage on a stream.
    data = load("dblreq")
    framer = StreamFramer()
    msgs = framer.feed(data[:-5])
    assert [m.method for m in msgs if isinstance(m, SipRequest)] == ["REGISTER", "INVITE"]
    assert len(msgs[1].body) == 150
    with pytest.raises(ParseError):
        framer.feed(data[-5:])


def test_wsinv_details() -> None:
    msg = parse_message(load("wsinv"))
    assert isinstance(msg, SipRequest)
    assert msg.cseq == (9, "INVITE")
    vias = [parse_via(v) for v in msg.headers.get_all("Via")]
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    frm = parse_name_addr(msg.headers.get("From") or "")
    assert frm.display == 'J Rosenberg \\"'
    assert frm.tag == "98asjd8"
    to = parse_name_addr(msg.headers.get("To") or "")
    assert to.tag == "1918181833n"
    contacts = parse_contact_list(msg.headers.get("Contact") or "")
    assert contacts != "*"
    assert contacts[0].display == 'Quoted string ""'
    assert contacts[0].q == "0.33"
    assert contacts[0].params["newparam"] == "newvalue"
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"


def test_esc01_unescaped_comparison() -> None:
    msg = parse_message(load("esc01"))
    assert isinstance(msg, SipRequest)
    ruri = parse_uri(msg.uri)
    assert ruri.user_unescaped == "sips:user@example.com"
    to = parse_name_addr(msg.headers.get("To") or "")
    assert to.uri.user_unescaped == "user"
    contacts = parse_contact_list(msg.headers.get("Contact") or "")
    assert contacts != "*"
    assert contacts[0].uri.has_param("lr")
    assert contacts[0].uri.param("name") == "value%41"


def test_intmeth_uri_userinfo() -> None:
    msg = parse_message(load("intmeth"))
    assert isinstance(msg, SipRequest)
    ruri = parse_uri(msg.uri)
    assert ruri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert ruri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert ruri.host == "example.com"


def test_unksm2_schemes() -> None:
    msg = parse_message(load("unksm2"))
    assert parse_name_addr(msg.headers.get("To") or "").uri.scheme == "isbn"
    assert parse_name_addr(msg.headers.get("From") or "").uri.scheme == "http"


def test_bcast_vias_parse() -> None:
    msg = parse_message(load("bcast"))
    hosts = [parse_via(v).host for v in msg.headers.get_all("Via")]
    assert hosts == ["192.0.2.198", "255.255.255.255"]
