"""Dialog creation on both sides and in-dialog requests (RFC 3261 §12)."""

from __future__ import annotations

import pytest

from offhook.sip.dialog import (
    Dialog,
    DialogError,
    DialogState,
    incoming_request_id,
    incoming_response_id,
)
from offhook.sip.message import Headers, SipRequest, SipResponse, make_response


def invite(record_route: tuple[str, ...] = (), uri: str = "sip:bob@example.com") -> SipRequest:
    items = [
        ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv"),
        ("Max-Forwards", "70"),
        ("From", '"Alice" <sip:alice@example.com>;tag=a1'),
        ("To", "Bob <sip:bob@example.com>"),
        ("Call-ID", "call-1@example.com"),
        ("CSeq", "314 INVITE"),
        ("Contact", "<sip:alice@192.0.2.10:5060;transport=udp>"),
    ]
    items += [("Record-Route", rr) for rr in record_route]
    return SipRequest(method="INVITE", uri=uri, headers=Headers(items), body=b"")


def answer(req: SipRequest, status: int = 200, contact: str | None = None) -> SipResponse:
    resp = make_response(req, status, to_tag="b1")
    resp.headers.add("Contact", contact or "<sip:bob@198.51.100.5:5062>")
    return resp


RR = ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")


# --- creation ----------------------------------------------------------------------


def test_uas_dialog_from_request_and_response() -> None:
    req = invite(RR)
    d = Dialog.from_uas(req, answer(req))
    assert d.id == ("call-1@example.com", "b1", "a1")
    assert d.local_uri == "Bob <sip:bob@example.com>"
    assert d.remote_uri == '"Alice" <sip:alice@example.com>'
    assert d.remote_target == "sip:alice@192.0.2.10:5060;transport=udp"
    assert d.route_set == RR  # UAS keeps Record-Route order
    assert d.remote_seq == 314 and d.local_seq is None
    assert not d.is_uac and not d.secure
    assert d.state is DialogState.CONFIRMED
    assert incoming_request_id(req) == ("call-1@example.com", "", "a1")


def test_uac_dialog_from_request_and_response() -> None:
    req = invite()
    resp = answer(req)
    resp.headers.add("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>")
    d = Dialog.from_uac(req, resp)
    assert d.id == ("call-1@example.com", "a1", "b1") == incoming_response_id(resp)
    assert d.local_uri == '"Alice" <sip:alice@example.com>'
    assert d.remote_uri == "Bob <sip:bob@example.com>"
    assert d.remote_target == "sip:bob@198.51.100.5:5062"
    assert d.route_set == ("<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>")  # reversed
    assert d.local_seq == 314 and d.remote_seq is None and d.invite_seq == 314
    assert d.is_uac and d.state is DialogState.CONFIRMED


def test_secure_flag() -> None:
    req = invite(uri="sips:bob@example.com")
    assert Dialog.from_uas(req, answer(req), tls=True).secure
    assert not Dialog.from_uas(req, answer(req), tls=False).secure
    plain = invite()
    assert not Dialog.from_uac(plain, answer(plain), tls=True).secure


def test_creation_errors() -> None:
    req = invite()
    untagged = make_response(req, 200)
    with pytest.raises(DialogError):
        Dialog.from_uas(req, untagged)
    with pytest.raises(DialogError):
        Dialog.from_uac(req, untagged)
    with pytest.raises(DialogError):
        Dialog.from_uac(req, make_response(req, 486, to_tag="x"))
    no_contact = make_response(req, 200, to_tag="b1")
    with pytest.raises(DialogError):
        Dialog.from_uac(req, no_contact)
    req.headers.remove("Contact")
    with pytest.raises(DialogError):
        Dialog.from_uas(req, answer(req))


# --- early dialogs ---------------------------------------------------------------


def test_early_dialog_confirmed_by_2xx_recomputes_route_set_and_target() -> None:
    req = invite()
    ringing = answer(req, 180, contact="<sip:bob@early.example.com>")
    ringing.headers.add("Record-Route", "<sip:early-proxy;lr>")
    d = Dialog.from_uac(req, ringing)
    assert d.state is DialogState.EARLY
    assert d.route_set == ("<sip:early-proxy;lr>",)
    ok = answer(req, 200, contact="<sip:bob@final.example.com>")
    ok.headers.add("Record-Route", "<sip:a;lr>")
    ok.headers.add("Record-Route", "<sip:b;lr>")
    d.receive_response(ok)
    assert d.state.value == "confirmed"
    assert list(d.route_set) == ["<sip:b;lr>", "<sip:a;lr>"]
    assert d.remote_target == "sip:bob@final.example.com"


def test_early_dialog_terminated_by_error() -> None:
    req = invite()
    d = Dialog.from_uac(req, answer(req, 183))
    d.receive_response(make_response(req, 486, to_tag="b1"))
    assert d.state is DialogState.TERMINATED


def test_uas_early_dialog() -> None:
    req = invite()
    d = Dialog.from_uas(req, answer(req, 180))
    assert d.state is DialogState.EARLY


# --- in-dialog requests -----------------------------------------------------------


def test_create_request_loose_routing() -> None:
    req = invite()
    resp = answer(req)
    resp.headers.add("Record-Route", "<sip:p1.example.com;lr>")
    resp.headers.add("Record-Route", "<sip:p2.example.com;lr>")
    d = Dialog.from_uac(req, resp)
    bye = d.create_request("BYE", via="SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKbye")
    assert bye.method == "BYE"
    assert bye.uri == "sip:bob@198.51.100.5:5062"  # remote target
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert bye.headers.get("From") == '"Alice" <sip:alice@example.com>;tag=a1'
    assert bye.headers.get("To") == "Bob <sip:bob@example.com>;tag=b1"
    assert bye.call_id == "call-1@example.com"
    assert bye.cseq == (315, "BYE") and d.local_seq == 315
    assert bye.branch == "z9hG4bKbye"
    assert bye.headers.get("Max-Forwards") == "70"
    assert bye.from_tag == "a1" and bye.to_tag == "b1"


def test_create_request_strict_routing() -> None:
    req = invite(("<sip:strict.example.com>", "<sip:loose.example.com;lr>"))
    d = Dialog.from_uas(req, answer(req))
    bye = d.create_request("BYE")
    # RFC 3261 §12.2.1.1: first route (no lr) becomes the Request-URI
    assert bye.uri == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == [
        "<sip:loose.example.com;lr>",
        "<sip:alice@192.0.2.10:5060;transport=udp>",
    ]
    assert "Via" not in bye.headers


def test_create_request_without_routes_and_cseq_rules() -> None:
    req = invite()
    d = Dialog.from_uas(req, answer(req))
    assert d.invite_seq is None
    with pytest.raises(DialogError):
        d.create_request("ACK")
    info = d.create_request(
        "INFO",
        body=b"Signal=1\r\n",
        content_type="application/dtmf-relay",
        headers=[("X-Test", "1")],
    )
    assert info.uri == "sip:alice@192.0.2.10:5060;transport=udp"
    assert "Route" not in info.headers
    assert info.cseq == (1, "INFO")  # UAS local sequence starts when first needed
    assert info.headers.get("To") == '"Alice" <sip:alice@example.com>;tag=a1'
    assert info.headers.get("From") == "Bob <sip:bob@example.com>;tag=b1"
    assert info.headers.get("Content-Type") == "application/dtmf-relay"
    assert info.headers.get("X-Test") == "1"
    assert info.body == b"Signal=1\r\n"
    reinvite = d.create_request("INVITE", contact="<sip:bob@198.51.100.5:5062>")
    assert reinvite.cseq == (2, "INVITE")
    assert reinvite.headers.get("Contact") == "<sip:bob@198.51.100.5:5062>"
    ack = d.create_request("ACK")
    assert ack.cseq == (2, "ACK")
    cancel = d.create_request("CANCEL")
    assert cancel.cseq == (2, "CANCEL")
    assert d.create_request("BYE").cseq == (3, "BYE")


def test_uac_ack_for_2xx_reuses_invite_cseq() -> None:
    req = invite()
    d = Dialog.from_uac(req, answer(req))
    ack = d.create_request("ACK", via="SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKack")
    assert ack.cseq == (314, "ACK") and d.local_seq == 314


# --- receiving in-dialog requests -----------------------------------------------------


def in_dialog(method: str, cseq: int, contact: str | None = None) -> SipRequest:
    items = [
        ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKx"),
        ("From", '"Alice" <sip:alice@example.com>;tag=a1'),
        ("To", "Bob <sip:bob@example.com>;tag=b1"),
        ("Call-ID", "call-1@example.com"),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact:
        items.append(("Contact", contact))
    return SipRequest(method=method, uri="sip:bob@198.51.100.5", headers=Headers(items), body=b"")


def test_receive_request_cseq_order_and_target_refresh() -> None:
    req = invite()
    d = Dialog.from_uas(req, answer(req))
    assert incoming_request_id(in_dialog("BYE", 1)) == d.id
    assert d.receive_request(in_dialog("ACK", 314)) is None
    assert d.receive_request(in_dialog("INFO", 315)) is None and d.remote_seq == 315
    assert d.receive_request(in_dialog("INFO", 313)) == 500  # RFC 3261 §12.2.2
    assert d.remote_seq == 315
    assert d.receive_request(in_dialog("CANCEL", 1)) is None
    # re-INVITE refreshes the target; INFO with a Contact does not
    assert d.receive_request(in_dialog("INFO", 316, "<sip:alice@203.0.113.1>")) is None
    assert d.remote_target == "sip:alice@192.0.2.10:5060;transport=udp"
    assert d.receive_request(in_dialog("INVITE", 317, "<sip:alice@203.0.113.1>")) is None
    assert d.remote_target == "sip:alice@203.0.113.1"
    assert d.receive_request(in_dialog("UPDATE", 318, "sip:alice@203.0.113.2;ob")) is None
    assert d.remote_target == "sip:alice@203.0.113.2"


def test_uac_remote_seq_empty_then_set() -> None:
    req = invite()
    d = Dialog.from_uac(req, answer(req))
    assert d.receive_request(in_dialog("BYE", 1)) is None
    assert d.remote_seq == 1


def test_uac_target_refresh_from_2xx_to_reinvite() -> None:
    req = invite()
    d = Dialog.from_uac(req, answer(req))
    reinvite = d.create_request("INVITE")
    d.receive_response(answer(reinvite, 200, contact="<sip:bob@moved.example.com>"))
    assert d.remote_target == "sip:bob@moved.example.com"
    d.receive_response(answer(d.create_request("INFO"), 200, contact="<sip:x@y>"))
    assert d.remote_target == "sip:bob@moved.example.com"
