"""A finished SIP leg on a real SipEndpoint (``sip_rig``): what its dialog's late messages
get from the ended-dialog record (``sip.ended``), and the leg freed by reference counting.

Late messages kept (RFC 3261): a retransmitted 2xx to our INVITE gets the same ACK again,
before and after its client transaction ends (§13.2.2.4, RFC 6026 Timer M); a 2xx from
another fork after the leg ended is ACKed and hung up; an ACK is absorbed; a BYE that
crossed ours gets 200, any other request 481 (§12.2.2); after 32 s the record is gone.
"""

from __future__ import annotations

import gc
import weakref
from collections import Counter
from collections.abc import Iterator

import pytest
from sip_rig import (
    CALLEE,
    PHONE,
    Peer,
    Rig,
    answer_in,
    call_in,
    call_out,
    media,
    requests,
    responses,
    sdp,
)

from offhook.common.location import Binding
from offhook.core.events import PartyInfo, Setup
from offhook.sip.ended import LINGER, EndedDialog, EndedDialogs
from offhook.sip.inbound_leg import InboundLeg
from offhook.sip.message import SipRequest
from offhook.sip.outbound_leg import OutboundLeg


@pytest.fixture
def no_collector() -> Iterator[None]:
    """What must go here goes by reference counting alone."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def answered_out(
    rig: Rig, callee: Peer, body: bytes = b""
) -> tuple[OutboundLeg, SipRequest, bytes]:
    """offhook calls ``callee``, which answers 200; returns (driver, INVITE, the 200)."""
    driver, _, invite = call_out(rig, callee)
    ok = callee.answer(invite, 200, body=body or sdp(42000, CALLEE[0]))
    rig.feed(ok, CALLEE)
    return driver, invite, ok


def test_retransmitted_2xx_after_the_end_gets_the_same_ack() -> None:
    rig, callee = Rig(), Peer(CALLEE)
    driver, invite, ok = answered_out(rig, callee)
    (ack,) = requests(rig.take(), "ACK")
    rig.advance(5.0)
    driver.release(16)
    rig.advance(0.6)  # the endpoint lets go of the leg after what it was doing
    assert requests(rig.take(), "BYE")
    assert rig.ep.dialogs == {} and len(rig.ep.ended) == 1
    assert [type(owner) for owner, _ in rig.ep.client_owner.values()] == [EndedDialog]
    # The INVITE's client transaction is still in Accepted (Timer M): the same ACK.
    rig.feed(ok, CALLEE)
    (again,) = requests(rig.take(), "ACK")
    assert again.branch == ack.branch and again.cseq == ack.cseq
    # Timer M is over (32 s after the 2xx), the record (32 s after the BYE) is not.
    rig.advance(28.0)
    assert rig.ep.txl.get(("c", invite.branch or "", "INVITE")) is None
    rig.feed(ok, CALLEE)
    (stray,) = requests(rig.take(), "ACK")
    assert stray.branch == ack.branch and stray.call_id == ack.call_id
    # The record is gone too: nothing answers the 2xx any more.
    rig.advance(5.0)
    assert len(rig.ep.ended) == 0
    rig.feed(ok, CALLEE)
    assert requests(rig.take(), "ACK") == []


def test_the_same_ack_carries_the_answer_of_a_delayed_offer() -> None:
    rig, callee = Rig(), Peer(CALLEE)
    driver, invite = call_out_without_offer(rig, callee)
    assert not invite.body
    # A delayed offer: the callee's 200 holds the offer, our ACK the caller's answer.
    ok = callee.answer(invite, 200, body=sdp(42000, CALLEE[0]))
    rig.feed(ok, CALLEE)
    assert requests(rig.take(), "ACK") == []  # it waits for the caller's answer
    driver.media_answer(media(4100), None)
    (ack,) = requests(rig.take(), "ACK")
    assert b"m=audio 4100 " in ack.body
    driver.release(16)
    rig.advance(0.6)
    rig.take()
    rig.feed(ok, CALLEE)
    (again,) = requests(rig.take(), "ACK")
    assert again.branch == ack.branch and again.body == ack.body


def call_out_without_offer(rig: Rig, callee: Peer) -> tuple[OutboundLeg, SipRequest]:
    """``call_out`` with a Setup without media: an INVITE without SDP."""
    leg = rig.engine.outbound_leg("callee")
    contact = f"sip:callee@{callee.addr[0]}:{callee.addr[1]}"
    binding = Binding("callee", "sip", contact, 1e12, source=callee.addr, transport="udp")
    driver = rig.engine.factory.create(binding, leg)
    leg.driver = driver
    driver.offer(Setup(PartyInfo("1001"), "1002", None))
    invite = requests(rig.take(), "INVITE")[-1]
    callee.call_id = invite.call_id
    return driver, invite


def test_a_2xx_from_another_fork_after_the_end_is_acked_and_hung_up() -> None:
    rig, callee = Rig(), Peer(CALLEE)
    driver, invite, _ = answered_out(rig, callee)
    driver.release(16)
    rig.advance(0.6)
    rig.take()
    fork = Peer(CALLEE, call_id=invite.call_id)  # another tag: another fork downstream
    rig.feed(fork.answer(invite, 200, body=sdp(42002, CALLEE[0])), CALLEE)
    sent = rig.take()
    (ack,) = requests(sent, "ACK")
    (bye,) = requests(sent, "BYE")
    assert ack.to_tag == bye.to_tag == fork.tag != callee.tag
    # Its BYE's answer goes to the record, which waits for nothing.
    rig.feed(fork.answer(bye, 200), CALLEE)
    assert rig.take() == []


def test_a_long_call_leaves_no_invite_in_its_record() -> None:
    rig, callee = Rig(), Peer(CALLEE)
    driver, invite, _ = answered_out(rig, callee)
    rig.advance(40.0)  # its INVITE's client transaction ended (Timer M)
    driver.release(16)
    rig.advance(0.6)
    record = rig.ep.ended.get((invite.call_id, invite.from_tag or "", callee.tag))
    assert record is not None and record.invite is None and record.ack is not None
    assert rig.ep.client_owner == {}  # its BYE's outcome is awaited by nobody


def test_requests_in_an_ended_dialog() -> None:
    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer)
    answer_in(rig, peer, leg)
    assert leg.driver is not None
    leg.driver.release(16)  # core hangs up: our BYE
    (bye,) = requests(rig.take(), "BYE")
    assert bye.to_tag == peer.tag
    # The phone's own BYE crossed ours: 200 (our side lasted until our BYE's answer).
    rig.feed(peer.request("BYE"))
    assert [r.status for r in responses(rig.take(), "BYE")] == [200]
    # Anything else in the ended dialog: 481 (RFC 3261 §12.2.2); an ACK: nothing.
    rig.feed(
        peer.request("INFO", body=b"Signal=1\r\nDuration=100\r\n", ctype="application/dtmf-relay")
    )
    assert [r.status for r in responses(rig.take(), "INFO")] == [481]
    rig.feed(peer.request("INVITE", body=sdp(41000)))
    assert [r.status for r in responses(rig.take(), "INVITE")] == [481]
    rig.feed(peer.request("ACK", cseq=1))
    assert rig.take() == []
    assert rig.engine.named("on_digits") == [] and rig.engine.named("on_media_offer") == []
    # 32 s later the record is gone: a BYE matches no dialog (481).
    rig.advance(LINGER + 1.0)
    rig.feed(peer.request("BYE"))
    assert [r.status for r in responses(rig.take(), "BYE")] == [481]


def test_a_finished_leg_is_freed_by_reference_counting(no_collector: None) -> None:
    rig, peer, callee = Rig(), Peer(PHONE), Peer(CALLEE)
    leg = call_in(rig, peer)
    answer_in(rig, peer, leg)
    driver, invite, _ = answered_out(rig, callee)
    rig.take()
    inbound = leg.driver
    assert isinstance(inbound, InboundLeg)
    refs = [weakref.ref(inbound), weakref.ref(driver)]
    assert handlers() == {"MidCallOffers": 2, "SessionRefresh": 2, "ReferHandler": 2}
    del inbound, driver
    # The phone hangs up; core would release the other leg: its BYE.
    rig.feed(peer.request("BYE"))
    out = rig.engine.legs[-1].driver
    assert out is not None
    out.release(16)
    del out
    (bye,) = requests(rig.take(), "BYE")
    rig.feed(callee.answer(bye, 200), CALLEE)
    assert [r() for r in refs] == [None] * len(refs)
    assert handlers() == {}
    assert rig.ep.dialogs == {} and len(rig.ep.ended) == 2
    assert {type(owner) for owner, _ in rig.ep.client_owner.values()} == {EndedDialog}
    assert (invite.call_id, invite.from_tag, callee.tag) in rig.ep.ended


def handlers() -> dict[str, int]:
    """The legs' handlers alive now (they point back at their leg)."""
    names = ("MidCallOffers", "SessionRefresh", "ReferHandler")
    found = Counter(type(o).__name__ for o in gc.get_objects() if type(o).__name__ in names)
    return dict(found)


def test_the_table_expires_in_order() -> None:
    table = EndedDialogs(linger=10.0)
    records = [EndedDialog(None, None, ("h", 1), "udp") for _ in range(3)]  # type: ignore[arg-type]
    for n, record in enumerate(records):
        table.add(("c", str(n), "t"), record, now=float(n))
    assert table.next_expiry() == 10.0 and len(table) == 3
    again = EndedDialog(None, None, ("h", 1), "udp")  # type: ignore[arg-type]
    table.add(("c", "0", "t"), again, now=5.0)  # the same dialog ended again
    assert table.expire(10.5) == 0  # its first entry is stale
    assert table.expire(11.0) == 1 and ("c", "1", "t") not in table
    assert table.expire(15.0) == 2 and len(table) == 0 and table.next_expiry() is None
