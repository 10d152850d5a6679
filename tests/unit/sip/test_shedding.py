"""Overload shedding on the SIP side (``sip.shedding`` and ``SipEndpoint._shed``) on a real
endpoint with a hand-driven clock (``sip_rig``): a new INVITE, REGISTER or SUBSCRIBE gets a
stateless 503 with Retry-After before any digest or routing, while established calls,
OPTIONS, retransmissions, registration refreshes and Replaces go on; RFC 7339 ``oc``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st
from sip_rig import NODE, PHONE, Peer, Rig, answer_in, call_in, responses, sdp

from offhook.common.location import Binding, MemoryLocationStore
from offhook.core.overload import OverloadControl, OverloadPolicy
from offhook.sip.auth import Credentials
from offhook.sip.codec import parse_message
from offhook.sip.message import SipRequest, SipResponse, make_response
from offhook.sip.shedding import (
    called_number,
    mark_oc,
    refreshes_binding,
    service_unavailable,
    shed_kind,
    wants_oc,
)

PHONE2 = ("192.0.2.11", 5060)  # not a trunk: its calls would need digest


def overload(rig: Rig, load: float = 10.0, **policy: Any) -> OverloadControl:
    """An overload control that has seen ``load`` (injected) for ten windows, on the endpoint."""
    now = rig.clock.monotonic()
    control = OverloadControl(OverloadPolicy(window=0.5, **policy), now)
    for i in range(10):
        control.observe(now + 0.5 * (i + 1), {"injected": load})
    assert control.overloaded
    rig.ep.overload = control
    return control


def calm(control: OverloadControl) -> None:
    now = control._window_start
    for i in range(12):
        control.observe(now + 0.5 * (i + 1), {"injected": 0.0})
    assert not control.overloaded


def shed_503(msgs: list[Any], method: str) -> SipResponse:
    (resp,) = responses(msgs, method)
    assert resp.status == 503, resp
    assert (resp.headers.get("Retry-After") or "").isdigit()
    assert resp.to_tag
    return resp


@dataclass
class FakeCreds:
    devices: dict[str, str] = field(default_factory=lambda: {"alice": "alice", "1001": "alice"})

    def credentials(self, username: str) -> Credentials | None:
        device = self.devices.get(username)
        return Credentials(username, device) if device else None


class FakeRegistrar:
    """What the endpoint asks the registrar: its store, and ``screen`` (a 401 here)."""

    def __init__(self) -> None:
        self.store = MemoryLocationStore()
        self.screened: list[SipRequest] = []

    def screen(self, req: SipRequest, addr: Any, wall: float) -> SipResponse:
        self.screened.append(req)
        return make_response(req, 401, to_tag="t401")


def register(peer: Peer, call_id: str, auth: str | None = None) -> bytes:
    peer.call_id = call_id
    headers = [("Expires", "300")]
    if auth:
        headers.append(("Authorization", auth))
    return peer.request(
        "REGISTER", uri=f"sip:{NODE[0]}", to_tag="", headers=headers, cseq=peer.cseq + 1
    )


# --- the endpoint -------------------------------------------------------------------


def test_new_invite_is_answered_503_before_digest_or_routing() -> None:
    rig = Rig()  # no authenticator at all: a digest check would raise
    control = overload(rig)
    rig.feed(Peer(PHONE2).invite(sdp()), PHONE2)
    resp = shed_503(rig.take(), "INVITE")
    assert int(resp.headers.get("Retry-After") or 0) == control.retry_after() == 8
    assert rig.engine.named("setup") == []
    assert control.shed["invite"] == 1
    assert len(rig.ep.txl) == 0  # stateless: nothing kept
    # a trunk's call is shed the same way
    rig.feed(Peer(PHONE).invite(sdp()))
    shed_503(rig.take(), "INVITE")
    assert rig.engine.named("setup") == []


def test_shedding_comes_before_the_full_request_check() -> None:
    rig = Rig()
    overload(rig)
    with mock.patch("offhook.sip.endpoint.check_request", side_effect=AssertionError("checked")):
        rig.feed(Peer(PHONE2).invite(sdp()), PHONE2)
    shed_503(rig.take(), "INVITE")


def test_a_request_without_what_an_answer_copies_is_left_to_the_check() -> None:
    rig = Rig()
    control = overload(rig)
    bad = Peer(PHONE2).invite(sdp()).replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")
    rig.feed(bad, PHONE2)
    assert [m.status for m in rig.take() if isinstance(m, SipResponse)] == [400]
    assert control.shed["invite"] == 0


def test_a_retransmitted_shed_invite_gets_the_same_answer() -> None:
    rig = Rig()
    overload(rig)
    data = Peer(PHONE2).invite(sdp())
    rig.feed(data, PHONE2)
    first = shed_503(rig.take(), "INVITE")
    rig.feed(data, PHONE2)
    again = rig.take()
    assert [m.to_tag for m in again] == [first.to_tag]


def test_established_call_survives_overload_and_ends_with_bye() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer)
    answer_in(rig, peer, leg)
    rig.take()
    overload(rig)
    rig.feed(peer.request("OPTIONS", to_tag=""), PHONE)  # keepalive: answered
    assert [r.status for r in responses(rig.take(), "OPTIONS")] == [200]
    rig.feed(peer.request("BYE"))
    assert [r.status for r in responses(rig.take(), "BYE")] == [200]
    assert rig.engine.named("on_release"), rig.engine.calls


def test_a_retransmission_of_an_invite_taken_before_overload_goes_to_its_transaction() -> None:
    rig, peer = Rig(), Peer(PHONE)
    data = peer.invite(sdp())
    rig.feed(data)
    assert rig.engine.named("setup")
    rig.take()
    overload(rig)
    rig.feed(data)
    assert 503 not in [r.status for r in responses(rig.take(), "INVITE")]


def test_invite_with_replaces_and_to_an_exempt_number_go_on() -> None:
    rig, peer = Rig(), Peer(PHONE)
    overload(rig, exempt=frozenset({"112"}))
    replaces = [("Replaces", "abc@x;to-tag=1;from-tag=2")]
    rig.feed(peer.invite(sdp(), headers=replaces))
    assert 503 not in [r.status for r in responses(rig.take(), "INVITE")]  # 481: no such dialog
    emergency = Peer(PHONE)
    rig.feed(emergency.request("INVITE", body=sdp(), cseq=1, to_tag="", uri=f"sip:112@{NODE[0]}"))
    assert rig.engine.named("setup")
    assert 503 not in [r.status for r in responses(rig.take(), "INVITE")]


def test_new_calls_go_through_again_after_recovery() -> None:
    rig = Rig()
    control = overload(rig)
    rig.feed(Peer(PHONE).invite(sdp()))
    shed_503(rig.take(), "INVITE")
    calm(control)
    rig.feed(Peer(PHONE).invite(sdp()))
    assert rig.engine.named("setup")
    assert 503 not in [r.status for r in responses(rig.take(), "INVITE")]


def test_partial_shedding_admits_its_share() -> None:
    rig = Rig()
    overload(rig, load=1000.0, min_admit=0.5)
    statuses = []
    for _ in range(10):
        rig.feed(Peer(PHONE).invite(sdp()))
        statuses += [r.status for r in responses(rig.take(), "INVITE")]
    assert statuses.count(503) == 5
    assert len(rig.engine.named("setup")) == 5


def test_new_registration_is_shed_and_a_refresh_goes_on() -> None:
    rig = Rig()
    rig.ep.creds = FakeCreds()
    registrar = FakeRegistrar()
    rig.ep.registrar = registrar  # type: ignore[assignment]
    overload(rig)
    peer = Peer(PHONE2, user="alice")
    rig.feed(register(peer, "new-reg"), PHONE2)
    shed_503(rig.take(), "REGISTER")
    assert registrar.screened == []
    rig.ep.creds = FakeCreds({"1002": "alice"})
    rig.feed(register(peer, "new-reg"), PHONE2)  # To: 1002, alice's line, no binding yet
    shed_503(rig.take(), "REGISTER")
    registrar.store.put(
        Binding("alice", "sip", f"sip:alice@{PHONE2[0]}", 1e12, PHONE2, call_id="live-reg")
    )
    # the refresh carries its credentials: the device is found by the digest user name
    auth = 'Digest username="alice", realm="r", nonce="n", uri="sip:h", response="x"'
    rig.feed(register(peer, "live-reg", auth), PHONE2)
    assert [r.status for r in responses(rig.take(), "REGISTER")] == [401]  # screened, not shed
    assert len(registrar.screened) == 1


def test_new_subscription_is_shed() -> None:
    rig = Rig()
    control = overload(rig)
    peer = Peer(PHONE2)
    rig.feed(peer.request("SUBSCRIBE", to_tag="", headers=[("Event", "dialog")]), PHONE2)
    shed_503(rig.take(), "SUBSCRIBE")
    assert control.shed["subscribe"] == 1


def test_rfc7339_oc_in_via_is_answered_with_the_reduction() -> None:
    rig = Rig()
    control = overload(rig, load=2.0)
    peer = Peer(PHONE)
    data = peer.invite(sdp()).replace(b";branch=", b";oc;branch=", 1)
    rig.feed(data)
    (resp,) = [m for m in rig.take() if isinstance(m, SipResponse)][:1]
    via = resp.top_via
    assert f";oc={control.reduction()};" in via and 'oc-algo="loss"' in via
    assert "oc-validity=1000" in via and "oc-seq=" in via
    # no oc in the request's Via: none in the answer either
    rig.feed(Peer(PHONE2).invite(sdp()), PHONE2)
    assert all(";oc" not in m.top_via for m in rig.take())


def test_not_overloaded_nothing_is_shed() -> None:
    rig = Rig()
    rig.ep.overload = OverloadControl(OverloadPolicy(), 0.0)
    rig.feed(Peer(PHONE).invite(sdp()))
    assert rig.engine.named("setup")
    assert 503 not in [r.status for r in responses(rig.take(), "INVITE")]


# --- the helpers ----------------------------------------------------------------------


def request(text: str) -> SipRequest:
    msg = parse_message(text.encode())
    assert isinstance(msg, SipRequest)
    return msg


def make(method: str, to_tag: str = "", headers: str = "", uri: str = "sip:1002@h") -> SipRequest:
    to = "<sip:alice@h>" + (f";tag={to_tag}" if to_tag else "")
    return request(
        f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
        f"From: <sip:a@h>;tag=f\r\nTo: {to}\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\n"
        f"{headers}Content-Length: 0\r\n\r\n"
    )


def test_shed_kind() -> None:
    assert shed_kind(make("INVITE")) == "invite"
    assert shed_kind(make("REGISTER")) == "register"
    assert shed_kind(make("SUBSCRIBE")) == "subscribe"
    assert shed_kind(make("INVITE", headers="Replaces: a;to-tag=1;from-tag=2\r\n")) is None
    for method in ("OPTIONS", "ACK", "CANCEL", "BYE", "NOTIFY", "MESSAGE", "INFO"):
        assert shed_kind(make(method)) is None


methods = st.sampled_from(
    ["INVITE", "REGISTER", "SUBSCRIBE", "BYE", "ACK", "UPDATE", "PRACK", "INFO", "REFER", "NOTIFY"]
)


@given(methods, st.text(alphabet="abcdef0123456789", min_size=1, max_size=12))
def test_property_in_dialog_requests_are_never_shed(method: str, to_tag: str) -> None:
    assert shed_kind(make(method, to_tag=to_tag)) is None


@given(methods, st.text(alphabet="abcdef0123456789", min_size=1, max_size=12))
def test_property_in_dialog_requests_are_never_answered_503_on_the_endpoint(
    method: str, to_tag: str
) -> None:
    rig = Rig()
    overload(rig)
    peer = Peer(PHONE)
    rig.feed(peer.request(method, to_tag=to_tag))
    assert 503 not in [m.status for m in rig.take() if isinstance(m, SipResponse)]


def test_called_number() -> None:
    assert called_number(make("INVITE", uri="sip:112@h")) == "112"
    assert called_number(make("INVITE", uri="sip:%31%31%32@h")) == "112"
    assert called_number(make("INVITE", uri="tel:+1")) in ("", "+1")


def test_refreshes_binding_reads_auth_user_then_to() -> None:
    store = MemoryLocationStore()
    store.put(Binding("alice", "sip", "sip:alice@x", 1e12, call_id="c1"))
    devices = {"alice": "alice"}
    auth = 'Digest username="alice", realm="r", nonce="n", uri="sip:h", response="x"\r\n'
    req = make("REGISTER", headers=f"Authorization: {auth}")
    assert refreshes_binding(req, devices.get, lambda d: store.bindings(d, 0.0))
    other = make("REGISTER", headers=f"Authorization: {auth}").headers
    other.set("Call-ID", "c2")
    assert not refreshes_binding(
        SipRequest(method="REGISTER", uri="sip:h", headers=other),
        devices.get,
        lambda d: store.bindings(d, 0.0),
    )
    assert not refreshes_binding(
        make("REGISTER", headers="Authorization: garbage ==\r\n"),
        devices.get,
        lambda d: store.bindings(d, 0.0),
    )
    nobody: dict[str, str] = {}
    assert not refreshes_binding(make("REGISTER"), nobody.get, lambda d: [])


def test_service_unavailable_and_mark_oc() -> None:
    req = make("INVITE")
    resp = service_unavailable(req, 3)
    assert resp.status == 503 and resp.headers.get("Retry-After") == "3"
    assert resp.to_tag == service_unavailable(req, 3).to_tag
    assert not wants_oc(resp)
    req_oc = make("INVITE")
    req_oc.headers.set("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx;oc;rport, SIP/2.0/UDP b")
    assert wants_oc(req_oc)
    resp = service_unavailable(req_oc, 1)
    mark_oc(resp, 140, 500, "1700000000.000")
    vias = resp.headers.get_all("Via")
    assert len(vias) == 2 and vias[1] == "SIP/2.0/UDP b"
    assert vias[0] == (
        'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx;rport;oc=100;oc-algo="loss";'
        "oc-validity=500;oc-seq=1700000000.000"
    )
    empty = SipResponse(status=503, reason="x")
    mark_oc(empty, 5, 500, "1")  # no Via: nothing to mark
    assert empty.headers.get("Via") is None
    assert secrets  # (used for ids in the rig)
