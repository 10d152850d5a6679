"""CTI Answer, Hold and Resume on a Skinny phone (``PhoneCall.remote``: ``LegDriver.remote``).

An application acting for the user must look to the phone exactly like the
user's own softkey press: each case runs twice on identical rigs
(``sccp_coverage_rig``: phones A, B, C on a real engine), once with the
softkey the phone sends and once with ``remote``, and both phones must
receive the same messages, in the same order. A state that does not allow
the key answers False and sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sccp_coverage_rig import B, FakeLink, Rig

from offhook.common.location import Binding
from offhook.core.leg import Direction, Leg, LegState
from offhook.core.ports import RemoteAction
from offhook.core.records import CallEnded
from offhook.sccp import messages as m
from offhook.sccp.calls import Phase, PhoneCall
from offhook.sccp.templates import KeySet, SoftKey
from offhook.sccp.ui import CallStateCode, LampMode, MicroMode, RingMode, SpeakerMode, Stimulus

ANSWER, HOLD, RESUME = RemoteAction.ANSWER, RemoteAction.HOLD, RemoteAction.RESUME
KEYS = {ANSWER: SoftKey.ANSWER, HOLD: SoftKey.HOLD, RESUME: SoftKey.RESUME}


def call_of(rig: Rig, link: FakeLink, ref: int) -> PhoneCall:
    call = rig.ep.phones[link.name].calls[ref]
    assert call.leg is not None and call.leg.driver is call  # the core leg's driver
    return call


def ring_b(rig: Rig) -> int:
    """A (2001) calls B's 2002: B rings. B's call reference."""
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2002")
    state = rig.b.last(m.CallState)
    assert state.call_state == CallStateCode.RING_IN
    return int(state.call_reference)


def connect_b(rig: Rig) -> int:
    """A calls B and B answers with its Answer softkey; media open both ways."""
    ref = ring_b(rig)
    rig.key(rig.b, SoftKey.ANSWER, 1, ref)
    rig.ack_open(rig.b, 32000)
    rig.ack_open(rig.a, 31000)
    assert rig.b.last(m.CallState).call_state == CallStateCode.CONNECTED
    return ref


def act(rig: Rig, link: FakeLink, ref: int, action: RemoteAction, via: str) -> None:
    """``action`` on ``link``'s call ``ref``: by the softkey, or by an application."""
    if via == "key":
        rig.key(link, KEYS[action], 1, ref)
    else:
        assert call_of(rig, link, ref).remote(action) is True


Step = Callable[[Rig, str], None]


def twice(steps: Step) -> tuple[Rig, Rig]:
    """The same steps with softkeys and with ``remote``: the phones saw the same messages."""
    by_key, by_cti = Rig(), Rig()
    steps(by_key, "key")
    steps(by_cti, "cti")
    for name in ("a", "b", "c"):
        key_sent, cti_sent = getattr(by_key, name).sent, getattr(by_cti, name).sent
        assert cti_sent == key_sent, name
    return by_key, by_cti


def since(link: FakeLink, mark: int) -> list[m.Message]:
    return link.sent[mark:]


# -------------------------------------------------------------------- answer


def test_answer_is_the_answer_softkey() -> None:
    marks: dict[str, int] = {}

    def steps(rig: Rig, via: str) -> None:
        ref = ring_b(rig)
        marks[via] = len(rig.b.sent)
        act(rig, rig.b, ref, ANSWER, via)
        rig.ack_open(rig.b, 32000)
        rig.ack_open(rig.a, 31000)

    _, rig = twice(steps)
    answered = since(rig.b, marks["cti"])
    kinds = [type(x) for x in answered]
    # ringer off, speakerphone on (the handset is down), the line lamp on, the
    # call plane, a receive channel, "Connected"; then transmission to A
    assert m.SetRinger(RingMode.OFF, 1, 0, 0) in answered
    assert m.SetSpeakerMode(SpeakerMode.ON) in answered
    assert m.SetLamp(Stimulus.LINE, 1, LampMode.ON) in answered
    assert kinds.index(m.SetSpeakerMode) < kinds.index(m.OpenReceiveChannel)
    assert rig.b.last(m.CallState).call_state == CallStateCode.CONNECTED
    assert rig.b.last(m.SelectSoftKeys).soft_key_set_index == KeySet.CONNECTED
    assert rig.b.last(m.StartMediaTransmission).remote_port == 31000
    assert rig.a.last(m.StartMediaTransmission).remote_port == 32000
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED
    leg = call_of(rig, rig.b, rig.b.last(m.CallState).call_reference).leg
    assert leg is not None and leg.state is LegState.CONNECTED


def test_answer_while_on_another_call_holds_that_call_first() -> None:
    def steps(rig: Rig, via: str) -> None:
        rig.press(rig.c, m.OffHook(1, 0))
        rig.dial(rig.c, "2002")  # C calls B, B answers
        rig.key(rig.b, SoftKey.ANSWER, 1, rig.b.last(m.CallState).call_reference)
        rig.ack_open(rig.b, 32000)
        rig.ack_open(rig.c, 33000)
        rig.press(rig.a, m.OffHook(1, 0))
        rig.dial(rig.a, "2002")  # A calls B: call waiting
        ref = rig.b.last(m.CallState).call_reference
        assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN
        act(rig, rig.b, ref, ANSWER, via)

    _, rig = twice(steps)
    phone = rig.ep.phones[B]
    phases = sorted(c.phase.value for c in phone.calls.values())
    assert phases == [Phase.CONNECTED.value, Phase.HELD.value]
    assert rig.c.last(m.CallState).call_state == CallStateCode.CONNECTED  # held by B, not C


def test_answer_ends_a_call_being_dialled() -> None:
    def steps(rig: Rig, via: str) -> None:
        rig.press(rig.b, m.OffHook(1, 0))  # B is off hook, dial tone
        rig.press(rig.a, m.OffHook(1, 0))
        rig.dial(rig.a, "2002")
        ref = rig.b.last(m.CallState).call_reference
        act(rig, rig.b, ref, ANSWER, via)

    _, rig = twice(steps)
    [call] = rig.ep.phones[B].calls.values()
    assert call.phase is Phase.CONNECTED


def test_answer_on_an_intercom_call_turns_the_microphone_on() -> None:
    def steps(rig: Rig, via: str) -> None:
        object.__setattr__(rig.snapshot.devices[B].lines[0], "intercom", True)
        rig.press(rig.a, m.OffHook(1, 0))
        rig.dial(rig.a, "2002")  # B answers by itself, muted
        ref = rig.b.last(m.CallState).call_reference
        act(rig, rig.b, ref, ANSWER, via)

    _, rig = twice(steps)
    assert [x.mode for x in rig.b.of(m.SetMicroMode)] == [MicroMode.OFF, MicroMode.ON]


def test_answer_on_an_intercom_call_does_not_take_another_ringing_call() -> None:
    rig = Rig()
    object.__setattr__(rig.snapshot.devices[B].lines[0], "intercom", True)
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2002")  # intercom: B connected, muted
    intercom = call_of(rig, rig.b, rig.b.last(m.CallState).call_reference)
    rig.press(rig.c, m.OffHook(1, 0))
    rig.dial(rig.c, "2100")  # the shared line rings on A and B meanwhile
    ringing = rig.ep.phones[B].ringing()
    assert ringing is not None and ringing is not intercom
    assert intercom.remote(ANSWER) is True
    assert [x.mode for x in rig.b.of(m.SetMicroMode)] == [MicroMode.OFF, MicroMode.ON]
    assert ringing.phase is Phase.RING_IN and intercom.phase is Phase.CONNECTED
    assert intercom.remote(ANSWER) is False  # talking already


# -------------------------------------------------------------------- hold, resume


def test_hold_and_resume_on_an_intercom_call_are_the_softkeys() -> None:
    def steps(rig: Rig, via: str) -> None:
        object.__setattr__(rig.snapshot.devices[B].lines[0], "intercom", True)
        rig.press(rig.a, m.OffHook(1, 0))
        rig.dial(rig.a, "2002")  # B answers by itself, muted
        ref = rig.b.last(m.CallState).call_reference
        rig.ack_open(rig.b, 32000)
        rig.ack_open(rig.a, 31000)
        act(rig, rig.b, ref, HOLD, via)
        assert rig.b.last(m.CallState).call_state == CallStateCode.HOLD
        act(rig, rig.b, ref, RESUME, via)

    _, rig = twice(steps)
    assert [x.mode for x in rig.b.of(m.SetMicroMode)] == [MicroMode.OFF]  # still muted


def test_hold_and_resume_are_the_softkeys() -> None:
    marks: dict[str, tuple[int, int]] = {}

    def steps(rig: Rig, via: str) -> None:
        ref = connect_b(rig)
        marks[via] = (len(rig.a.sent), len(rig.b.sent))
        act(rig, rig.b, ref, HOLD, via)
        act(rig, rig.b, ref, RESUME, via)
        rig.ack_open(rig.b, 32002)

    _, rig = twice(steps)
    a_mark, b_mark = marks["cti"]
    states = [x.call_state for x in since(rig.b, b_mark) if isinstance(x, m.CallState)]
    assert states[:1] == [CallStateCode.HOLD] and states[-1] == CallStateCode.CONNECTED
    assert m.SetLamp(Stimulus.LINE, 1, LampMode.WINK) in since(rig.b, b_mark)
    assert any(isinstance(x, m.CloseReceiveChannel) for x in since(rig.b, b_mark))
    # A heard the hold (its transmission stopped) and the resume (sent to B's new port)
    assert any(isinstance(x, m.StopMediaTransmission) for x in since(rig.a, a_mark))
    assert rig.a.last(m.StartMediaTransmission).remote_port == 32002


def test_hold_by_an_application_then_resume_by_the_user() -> None:
    rig = Rig()
    ref = connect_b(rig)
    call = call_of(rig, rig.b, ref)
    assert call.remote(HOLD) is True
    assert call.phase is Phase.HELD
    rig.key(rig.b, SoftKey.RESUME, 1, ref)  # the phone's own key still works
    assert call.phase is Phase.CONNECTED


def test_resume_takes_the_held_call_back_onto_the_plane() -> None:
    def steps(rig: Rig, via: str) -> None:
        ref = connect_b(rig)
        act(rig, rig.b, ref, HOLD, via)
        rig.press(rig.b, m.OffHook(1, 0))  # B dials something else meanwhile
        act(rig, rig.b, ref, RESUME, via)  # the call being dialled is ended

    _, rig = twice(steps)
    [call] = rig.ep.phones[B].calls.values()
    assert call.phase is Phase.CONNECTED


# -------------------------------------------------------------------- refusals


def refused(rig: Rig, call: PhoneCall, action: RemoteAction) -> None:
    before = [len(x.sent) for x in (rig.a, rig.b, rig.c)]
    assert call.remote(action) is False
    assert [len(x.sent) for x in (rig.a, rig.b, rig.c)] == before


def test_a_state_that_does_not_allow_the_key_is_refused() -> None:
    rig = Rig()
    ref = ring_b(rig)
    ringing = call_of(rig, rig.b, ref)
    refused(rig, ringing, HOLD)
    refused(rig, ringing, RESUME)
    caller = next(iter(rig.ep.phones[rig.a.name].calls.values()))  # A hears ringback
    refused(rig, caller, ANSWER)
    assert ringing.remote(ANSWER) is True
    rig.ack_open(rig.b, 32000)
    refused(rig, ringing, ANSWER)  # connected already
    refused(rig, ringing, RESUME)
    assert ringing.remote(HOLD) is True
    refused(rig, ringing, HOLD)
    refused(rig, ringing, ANSWER)
    assert ringing.remote(RESUME) is True


def test_a_cleared_call_and_a_phone_gone_refuse() -> None:
    rig = Rig()
    ref = ring_b(rig)
    ringing = call_of(rig, rig.b, ref)
    rig.press(rig.a, m.OnHook(1, 0))  # the caller gives up
    assert ringing.phase is Phase.ENDED
    refused(rig, ringing, ANSWER)
    ref = ring_b(rig)
    ringing = call_of(rig, rig.b, ref)
    rig.ep.detach(rig.b, "keepalive timeout", rig.now())
    assert ringing.remote(ANSWER) is False
    assert rig.of(CallEnded)[-1].record.cause == 41  # the phone gone, not answered


def test_a_phone_registered_again_refuses_for_its_old_calls() -> None:
    rig = Rig()
    ref = ring_b(rig)
    old = call_of(rig, rig.b, ref)
    rig.b = rig.attach(B)  # a new connection replaces the old one
    assert old.remote(ANSWER) is False


def test_the_driver_of_an_unregistered_phone_refuses() -> None:
    rig = Rig()
    leg = Leg("L99", Direction.OUTBOUND, "SEP00000000C009", rig.clock)
    driver = rig.ep.create(Binding("SEP00000000C009", "sccp", "sccp:x", 1e9), leg)
    assert not isinstance(driver, PhoneCall)
    for action in RemoteAction:
        assert driver.remote(action) is False


# -------------------------------------------------------------------- anything goes

_PRESS = st.one_of(
    st.builds(m.OffHook, st.integers(0, 2), st.integers(0, 6)),
    st.builds(m.OnHook, st.integers(0, 2), st.integers(0, 6)),
    st.builds(m.SoftKeyEvent, st.sampled_from(list(SoftKey)), st.integers(0, 2), st.integers(0, 6)),
    st.builds(m.KeypadButton, st.integers(0, 9), st.just(1), st.just(0)),
)
_STEP = st.one_of(
    st.tuples(st.sampled_from(["a", "b", "c"]), _PRESS),
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(list(RemoteAction))),
    st.tuples(st.just("ack"), st.sampled_from(["a", "b", "c"])),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_STEP, max_size=30), st.booleans())
def test_applications_and_users_together_never_break_a_phone(
    steps: list[object], intercom: bool
) -> None:
    rig = Rig()
    object.__setattr__(rig.snapshot.devices[B].lines[0], "intercom", intercom)  # 2002
    for step in steps:
        assert isinstance(step, tuple)
        first, second = step
        if first == "ack":
            link = getattr(rig, second)
            if link.of(m.OpenReceiveChannel):
                rig.ack_open(link, 40000)
            continue
        link = getattr(rig, first)
        if isinstance(second, RemoteAction):
            phone = rig.ep.phones[link.name]
            for call in list(phone.calls.values()):
                allowed = call.leg is not None and (
                    (second is ANSWER and (call.phase is Phase.RING_IN or call.whisper))
                    or (second is HOLD and call.phase is Phase.CONNECTED)
                    or (second is RESUME and call.phase is Phase.HELD)
                )
                assert call.remote(second) is allowed
        else:
            rig.press(link, second)
    for name in ("a", "b", "c"):
        phone = rig.ep.phones[getattr(rig, name).name]
        on_plane = [c for c in phone.calls.values() if c.on_plane]
        assert len(on_plane) <= 1  # one call on the handset/speaker at most
        for call in phone.calls.values():
            assert call.phase is not Phase.ENDED
