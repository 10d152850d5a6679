"""The node leg on the SIP side: what one worker's INVITE says and how the other takes it.

Two real endpoints (``sip_rig``): worker 1's places a call to an SCCP phone
that worker 0 holds (``workers.node_leg.NodeLeg``), worker 0's takes the
INVITE over the ``node`` transport: it rings exactly the device named, with
no digest and no dial plan, and refuses what a node leg never sends.
"""

from __future__ import annotations

from sip_rig import Rig, requests, responses, sdp

from offhook.common.location import Binding
from offhook.core.events import Diversion, PartyInfo, RedirectReason, Setup
from offhook.sip.codec import parse_message
from offhook.sip.message import SipMessage, SipRequest
from offhook.sip.node_ring import NODE, RING_HEADER, parse_ring
from offhook.workers.node_leg import NodeLeg, NodeLegFactory, node_address

CAROL = Binding("SEP1", "sccp", "sccp:SEP1", 1e12, ("192.0.2.77", 50000), "tcp", worker=0)


class NodeRig(Rig):
    """A rig that also keeps the transport and destination of what it sends."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, tuple[str, int]]] = []
        super().__init__()

    def _send(self, msg: SipMessage, dest: tuple[str, int], transport: str, _err: object) -> None:
        self.routes.append((transport, dest))
        super()._send(msg, dest, transport, _err)


def invite_from_worker_1(setup: Setup) -> tuple[NodeRig, SipRequest]:
    one = NodeRig()
    leg = one.engine.outbound_leg("SEP1")
    leg.line = ("1003", "staff")
    driver = NodeLegFactory(one.ep, index=1).create(CAROL, leg)
    assert isinstance(driver, NodeLeg)
    driver.offer(setup)
    (invite,) = requests(one.take(), "INVITE")
    assert one.routes == [(NODE, node_address(0))]
    return one, invite


def test_the_invite_names_the_device_line_and_caller_and_goes_to_the_holder() -> None:
    setup = Setup(
        PartyInfo("1004", "Dave", device="dave"),
        "1003",
        None,
        auto_answer=True,
        diversions=(Diversion("1009", RedirectReason.FORWARD_ALL),),
        original_called="1009",
    )
    _, invite = invite_from_worker_1(setup)
    ring = parse_ring(invite.headers.get(RING_HEADER) or "")
    assert (ring.device, ring.dn, ring.partition, ring.caller) == ("SEP1", "1003", "staff", "dave")
    assert ring.auto_answer and not ring.silent
    assert invite.headers.get("Via", "").startswith("SIP/2.0/NODE ")
    assert invite.uri == "sip:1003@127.0.0.1:1"  # what the caller dialled


def test_the_holder_rings_that_device_without_digest_or_dial_plan() -> None:
    setup = Setup(
        PartyInfo("1004", "Dave", device="dave"),
        "1003",
        None,
        diversions=(Diversion("1009", RedirectReason.FORWARD_ALL, "Nine"),),
        original_called="1009",
    )
    _, invite = invite_from_worker_1(setup)
    invite.body = sdp()
    invite.headers.set("Content-Type", "application/sdp")
    zero = NodeRig()
    zero.engine.max_forward_hops = 12  # type: ignore[attr-defined]
    zero.ep.on_message(parse_message(invite.serialize()), node_address(1), NODE)
    assert zero.engine.named("setup") == []
    ((leg, got, device),) = zero.engine.named("ring_device")
    assert device == "SEP1"
    assert leg.device == "dave"  # the calling device, as the owner knows it
    assert got.calling == PartyInfo("1004", "Dave", device="dave")
    assert got.called == "1003" and got.original_called == "1009"
    assert [d.number for d in got.diversions] == ["1009"]
    assert got.media is not None
    assert all(r.status < 200 for r in responses(zero.take()))  # no challenge, no refusal


def test_what_a_node_leg_never_sends_is_refused() -> None:
    zero = NodeRig()
    peer_via = "SIP/2.0/NODE 127.0.0.1:5060;branch=z9hG4bKw1-abc"
    base = [
        f"Via: {peer_via}",
        "Max-Forwards: 70",
        "From: <sip:1004@127.0.0.1>;tag=w1-x",
        "To: <sip:1003@127.0.0.1>",
        "Call-ID: w1-call@127.0.0.1",
        "Content-Length: 0",
    ]
    for method, status in (("REGISTER", 403), ("OPTIONS", 403), ("INVITE", 400)):
        text = "\r\n".join([f"{method} sip:1003@127.0.0.1:1 SIP/2.0", *base, f"CSeq: 1 {method}"])
        zero.ep.on_message(parse_message((text + "\r\n\r\n").encode()), node_address(1), NODE)
        (answer,) = responses(zero.take())
        assert answer.status == status, (method, answer)
    assert zero.engine.named("ring_device") == []
