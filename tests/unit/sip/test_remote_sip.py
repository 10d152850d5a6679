"""CTI Answer on a ringing SIP phone: the ``talk`` event (``OutboundLeg.remote``).

A phone that says ``Allow-Events: talk`` in its 18x is sent a NOTIFY with
``Event: talk`` in the early dialog; it answers the NOTIFY and then the
INVITE, and the call connects as any answered call. A phone that does not
say so, a call not ringing, Hold and Resume: False, and nothing is sent. A
phone that refuses the NOTIFY keeps ringing. Real endpoint and transaction
layer (``sip_rig``), the phone written by hand.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sip_rig import CALLEE, Peer, Rig, call_out, requests, sdp

from offhook.common.location import Binding
from offhook.core.events import PartyInfo, Setup
from offhook.core.ports import RemoteAction
from offhook.sip.message import Headers, SipRequest
from offhook.sip.outbound_leg import OutboundLeg
from offhook.sip.remote_control import MAX_EVENTS, allowed_events

ANSWER, HOLD, RESUME = RemoteAction.ANSWER, RemoteAction.HOLD, RemoteAction.RESUME
TALKS = [("Allow-Events", "talk, hold, conference")]


def ringing(
    headers: list[tuple[str, str]] | None = None,
) -> tuple[Rig, Peer, OutboundLeg, SipRequest]:
    """offhook INVITEs the callee, which rings (180 with ``headers``)."""
    rig, callee = Rig(), Peer(CALLEE)
    driver, _, invite = call_out(rig, callee)
    rig.feed(callee.answer(invite, 180, headers=headers), CALLEE)
    assert rig.engine.named("on_alerting")
    rig.take()
    return rig, callee, driver, invite


def test_a_phone_that_takes_talk_is_asked_in_the_early_dialog() -> None:
    rig, callee, driver, invite = ringing(TALKS)
    assert driver.remote(ANSWER) is True
    (notify,) = requests(rig.take(), "NOTIFY")
    assert notify.uri == f"sip:{callee.user}@{CALLEE[0]}:{CALLEE[1]}"  # the 180's Contact
    assert notify.call_id == invite.call_id
    assert notify.from_tag == invite.from_tag and notify.to_tag == callee.tag
    assert notify.cseq == (invite.cseq[0] + 1, "NOTIFY")
    assert notify.headers.get("Event") == "talk"
    assert notify.headers.get("Subscription-State") == "active"
    assert notify.headers.get("Contact") and not notify.body
    # asked again before the phone's answer: the same request, not a second one
    assert driver.remote(ANSWER) is True
    assert requests(rig.take(), "NOTIFY") == []
    # the phone takes it, then answers the call: an ordinary answered call
    rig.feed(callee.answer(notify, 200), CALLEE)
    rig.feed(callee.answer(invite, 200, body=sdp(43000)), CALLEE)
    (ack,) = requests(rig.take(), "ACK")
    assert ack.cseq == (invite.cseq[0], "ACK")
    assert rig.engine.named("on_connect")[0][0] is driver.leg
    assert rig.engine.named("on_release") == []
    assert driver.remote(ANSWER) is False  # connected
    driver.release(16)
    (bye,) = requests(rig.take(), "BYE")
    assert bye.cseq == (invite.cseq[0] + 2, "BYE")  # after the NOTIFY's


@pytest.mark.parametrize(
    "headers",
    [
        None,  # baresip 1.0's 180: no Allow-Events
        [("Allow-Events", "presence, dialog")],
        [("Allow-Events", "talking, talk.more")],
        [("Allow-Events", "")],
    ],
)
def test_a_phone_that_does_not_say_talk_is_not_asked(
    headers: list[tuple[str, str]] | None,
) -> None:
    rig, _, driver, _ = ringing(headers)
    assert driver.remote(ANSWER) is False
    assert rig.take() == []


@pytest.mark.parametrize("header", [("u", "talk"), ("ALLOW-EVENTS", "Hold,TALK")])
def test_allow_events_in_any_spelling(header: tuple[str, str]) -> None:
    rig, _, driver, _ = ringing([header])
    assert driver.remote(ANSWER) is True
    assert len(requests(rig.take(), "NOTIFY")) == 1


def test_allow_events_of_a_183_count_until_a_later_response_says_otherwise() -> None:
    rig, callee = Rig(), Peer(CALLEE)
    driver, _, invite = call_out(rig, callee)
    rig.feed(callee.answer(invite, 183, body=sdp(43000), headers=TALKS), CALLEE)
    rig.feed(callee.answer(invite, 180), CALLEE)  # says nothing: still talk
    assert driver.talk.supported
    rig.feed(callee.answer(invite, 180, headers=[("Allow-Events", "dialog")]), CALLEE)
    rig.take()
    assert driver.remote(ANSWER) is False


def test_not_ringing_yet_is_refused() -> None:
    rig, callee = Rig(), Peer(CALLEE)
    driver, _, invite = call_out(rig, callee)
    assert driver.remote(ANSWER) is False  # no provisional yet
    rig.feed(callee.answer(invite, 100), CALLEE)
    assert driver.remote(ANSWER) is False  # 100 Trying: not ringing, no dialog
    assert requests(rig.take(), "NOTIFY") == []


def test_a_cancelled_call_is_refused() -> None:
    rig, _, driver, _ = ringing(TALKS)
    driver.release(16)
    assert requests(rig.take(), "CANCEL")
    assert driver.remote(ANSWER) is False
    assert requests(rig.take(), "NOTIFY") == []


@pytest.mark.parametrize("status", [489, 481, 403, 501])
def test_a_phone_that_refuses_keeps_ringing(status: int) -> None:
    rig, callee, driver, invite = ringing(TALKS)
    assert driver.remote(ANSWER) is True
    (notify,) = requests(rig.take(), "NOTIFY")
    rig.feed(callee.answer(notify, status), CALLEE)
    assert rig.take() == []  # no CANCEL, no BYE
    assert rig.engine.named("on_release") == []
    assert not driver.done and driver.dialog is not None
    assert driver.remote(ANSWER) is False  # not asked again
    assert requests(rig.take(), "NOTIFY") == []
    rig.feed(callee.answer(invite, 200, body=sdp(43000)), CALLEE)  # its user answers
    assert requests(rig.take(), "ACK")
    assert rig.engine.named("on_connect")


def test_a_phone_that_never_answers_the_notify_keeps_ringing() -> None:
    rig, _, driver, _ = ringing(TALKS)
    assert driver.remote(ANSWER) is True
    rig.advance(40.0)  # Timer F (64*T1, T1 0.5 s) runs out
    assert rig.engine.named("on_release") == []
    assert not driver.done
    assert driver.talk.pending is None and driver.remote(ANSWER) is False


def test_a_provisional_for_the_notify_is_not_its_answer() -> None:
    rig, callee, driver, _ = ringing(TALKS)
    assert driver.remote(ANSWER) is True
    (notify,) = requests(rig.take(), "NOTIFY")
    rig.feed(callee.answer(notify, 100), CALLEE)
    assert driver.talk.pending is not None  # still waiting for its final answer
    rig.feed(callee.answer(notify, 202), CALLEE)
    assert driver.talk.pending is None and driver.talk.supported


@pytest.mark.parametrize("action", [HOLD, RESUME])
def test_hold_and_resume_are_left_to_call_control(action: RemoteAction) -> None:
    rig, callee, driver, invite = ringing(TALKS)
    assert driver.remote(action) is False
    rig.feed(callee.answer(invite, 200, body=sdp(43000)), CALLEE)
    rig.take()
    assert driver.remote(action) is False
    assert requests(rig.take(), "NOTIFY") == []


def test_the_inbound_side_has_nothing_to_answer() -> None:
    from sip_rig import PHONE, call_in

    rig, peer = Rig(), Peer(PHONE)
    leg = call_in(rig, peer, headers=TALKS)
    assert leg.driver is not None
    for action in RemoteAction:
        assert leg.driver.remote(action) is False


# --- Allow-Events ------------------------------------------------------------------------

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-!%*_+`'~", min_size=1, max_size=8)
_TOKEN = st.builds(lambda a, b: f"{a}.{b}" if b else a, _WORD, st.one_of(st.just(""), _WORD))


@given(st.lists(_TOKEN, max_size=40))
def test_allow_events_lists_every_event_type(tokens: list[str]) -> None:
    events = allowed_events(Headers([("Allow-Events", ", ".join(tokens))]))
    if len(set(tokens)) <= MAX_EVENTS:
        assert events == frozenset(tokens)
    else:
        assert len(events) == MAX_EVENTS and events <= set(tokens)


@given(st.lists(st.text(max_size=30), max_size=5))
def test_allow_events_takes_any_text(values: list[str]) -> None:
    headers = Headers([("Allow-Events", v) for v in values])
    events = allowed_events(headers)
    assert len(events) <= MAX_EVENTS
    for event in events:
        assert event == event.lower() and event.strip() == event and "," not in event


def test_hung_up_before_the_callers_answer_the_2xx_is_still_acked() -> None:
    # The phone answers with an offer (the caller made none: a delayed offer, as an
    # SCCP caller's); the caller hangs up before its answer: ACK (no body), then BYE.
    rig, callee = Rig(), Peer(CALLEE)
    leg = rig.engine.outbound_leg("callee")
    contact = f"sip:callee@{CALLEE[0]}:{CALLEE[1]}"
    binding = Binding("callee", "sip", contact, 1e12, source=CALLEE, transport="udp")
    driver = rig.engine.factory.create(binding, leg)
    leg.driver = driver
    driver.offer(Setup(PartyInfo("1001"), "1002", None))
    (invite,) = requests(rig.take(), "INVITE")
    assert not invite.body
    rig.feed(callee.answer(invite, 180, headers=TALKS), CALLEE)
    assert driver.remote(ANSWER) is True
    (notify,) = requests(rig.take(), "NOTIFY")
    rig.feed(callee.answer(notify, 200), CALLEE)
    rig.feed(callee.answer(invite, 200, body=sdp(43000)), CALLEE)
    assert driver.ack_held and requests(rig.take(), "ACK") == []
    driver.release(16)
    sent = rig.take()
    (ack,) = requests(sent, "ACK")
    (bye,) = requests(sent, "BYE")
    assert not ack.body and sent.index(ack) < sent.index(bye)
    assert rig.engine.named("on_connect")[0][0] is leg
