"""SCCP call coverage: CFwdAll, DND, HLog, Messages, PickUp/GPickUp, Park (softkeys and buttons).

The phones, plan and engine are ``sccp_coverage_rig``'s; what a phone is
sent is what it would show.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sccp_coverage_rig import INTERNAL, A, B, FakeLink, Rig

from offhook.core.directory import Forward
from offhook.core.events import Setup
from offhook.core.leg import Leg
from offhook.core.records import DndChanged, ForwardChanged, HuntLoginChanged
from offhook.sccp import messages as m
from offhook.sccp.coverage import BUTTONS, SOFT_KEYS, Coverage
from offhook.sccp.device import DeviceProfile, DeviceSession, forward_stat
from offhook.sccp.templates import SOFT_KEY_SETS, SOFT_KEY_TEMPLATE, KeySet, SoftKey
from offhook.sccp.ui import CallStateCode, RingMode, Stimulus


@pytest.fixture
def rig() -> Rig:
    return Rig()


def connect(rig: Rig) -> None:
    """A calls B (2002), B answers: both connected."""
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2002")
    rig.press(rig.b, m.OffHook(1, 0))
    rig.ack_open(rig.b, 30002)
    rig.ack_open(rig.a, 30001)


def states(link: FakeLink) -> list[int]:
    return [x.call_state for x in link.of(m.CallState)]


# ---------------------------------------------------------------- softkey tables


def test_coverage_softkeys_carry_wiresharks_event_values() -> None:
    events = dict(SOFT_KEY_TEMPLATE)
    assert (events["CFwdAll"], events["Park"], events["PickUp"], events["GPickUp"]) == (
        5,
        14,
        17,
        18,
    )
    # SoftKeyEvent 0x3A "Voicemail", 0x3F "DND", DisplayLabels_200 0x5C "Hlog"
    assert (events["Messages"], events["DND"], events["HLog"]) == (0x3A, 0x3F, 0x5C)


def test_idle_and_off_hook_sets_offer_the_coverage_keys() -> None:
    labels = [label for label, _ in SOFT_KEY_TEMPLATE]

    def keys(key_set: KeySet) -> list[str]:
        return [labels[i - 1] for i in SOFT_KEY_SETS[key_set].template_index]

    assert {"CFwdAll", "PickUp", "GPickUp", "Messages", "DND", "HLog"} <= set(keys(KeySet.ON_HOOK))
    assert {"CFwdAll", "PickUp", "GPickUp", "Messages"} <= set(keys(KeySet.OFF_HOOK))
    assert "Park" in keys(KeySet.CONNECTED)
    info = SOFT_KEY_SETS[KeySet.ON_HOOK].info_index
    assert 300 + SoftKey.DND in info and 300 + SoftKey.HLOG in info


def test_every_coverage_key_and_button_has_a_handler() -> None:
    for table in (SOFT_KEYS, BUTTONS):
        for handler in table.values():
            assert callable(getattr(Coverage, handler))
    coverage_keys = {
        SoftKey.CFWD_ALL,
        SoftKey.PICKUP,
        SoftKey.GROUP_PICKUP,
        SoftKey.PARK,
        SoftKey.MESSAGES,
        SoftKey.DND,
        SoftKey.HLOG,
        SoftKey.BARGE,
        SoftKey.C_BARGE,
    }
    assert set(SOFT_KEYS) == coverage_keys
    assert coverage_keys <= {event for _, event in SOFT_KEY_TEMPLATE}


# ---------------------------------------------------------------- forward all


def test_cfwdall_collects_the_destination_then_forwards(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.CFWD_ALL)
    assert rig.a.last(m.CallState).call_state == CallStateCode.OFF_HOOK
    assert rig.a.last(m.DisplayPromptStatus).text == "Forward all"
    ref = rig.a.last(m.CallState).call_reference
    rig.dial(rig.a, "2002")
    forward = rig.engine.forward_all_of("2001", INTERNAL)
    assert forward is not None and forward.destination == "2002"
    assert rig.of(ForwardChanged) == [ForwardChanged("2001", INTERNAL, "2002", A)]
    # no call was placed: the entry is over, the phone idle and showing the forward
    assert not rig.sip.drivers and rig.engine.device_calls(A) == 0
    assert rig.a.last(m.CallState) == m.CallState(CallStateCode.ON_HOOK, 1, ref, 0, 4, 0)
    assert rig.a.last(m.ForwardStat) == m.ForwardStat(1, 1, 1, "2002", 1, "8000", 0, "")
    assert "Forwarded to 2002" in rig.a.texts()
    assert rig.a.last(m.DisplayPromptStatus) == m.DisplayPromptStatus(0, "Forwarded to 2002", 0, 0)
    assert not rig.b.of(m.ForwardStat)  # B does not carry 2001


def test_cfwdall_pressed_again_clears_the_forward(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.CFWD_ALL)
    rig.dial(rig.a, "2002")
    rig.key(rig.a, SoftKey.CFWD_ALL)
    assert rig.engine.forward_all_of("2001", INTERNAL) is None
    assert rig.of(ForwardChanged)[-1] == ForwardChanged("2001", INTERNAL, "", A)
    assert rig.a.last(m.ForwardStat).forward_all_active == 0
    assert rig.a.texts()[-1] == "Forward all off"
    assert rig.a.last(m.ClearPromptStatus) == m.ClearPromptStatus(0, 0)
    # and no off-hook entry was started for it
    assert states(rig.a).count(CallStateCode.OFF_HOOK) == 1


def test_cfwdall_clears_a_forward_from_the_plan(rig: Rig) -> None:
    line = rig.snapshot.devices[B].lines[0]
    assert line.dn == "2002"
    rig.engine.set_forward_all(B, "2002", "2001")
    rig.key(rig.b, SoftKey.CFWD_ALL)
    assert rig.engine.forward_all_of("2002", INTERNAL) is None


def test_a_second_press_during_the_entry_cancels_it(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.CFWD_ALL)
    rig.dial(rig.a, "20")
    rig.key(rig.a, SoftKey.CFWD_ALL)
    assert rig.a.last(m.CallState).call_state == CallStateCode.ON_HOOK
    assert rig.engine.forward_all_of("2001", INTERNAL) is None
    assert not rig.of(ForwardChanged)


def test_a_destination_outside_the_forward_css_is_refused(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.CFWD_ALL)
    rig.dial(rig.a, "2003")  # in partition exec: A's CSS (staff) cannot reach it
    assert rig.engine.forward_all_of("2001", INTERNAL) is None
    assert rig.a.texts()[-1] == "Not allowed"
    assert rig.a.last(m.CallState).call_state == CallStateCode.ON_HOOK
    assert not rig.of(ForwardChanged)


def test_the_forward_css_decides_not_the_devices(rig: Rig) -> None:
    boss = Forward("", css="boss")
    line = rig.snapshot.devices[A].lines[0]
    object.__setattr__(line, "forward_all", boss)  # the plan gives 2001 a forward CSS
    rig.key(rig.a, SoftKey.CFWD_ALL)
    rig.dial(rig.a, "2003")
    forward = rig.engine.forward_all_of("2001", INTERNAL)
    assert forward is not None and forward.destination == "2003"


def test_forward_to_the_line_itself_is_a_loop(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.CFWD_ALL)
    rig.dial(rig.a, "2001")
    assert rig.engine.forward_all_of("2001", INTERNAL) is None
    assert rig.a.texts()[-1] == "Forward loop"


def test_pound_ends_the_destination(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.CFWD_ALL)
    rig.dial(rig.a, "200#")
    assert rig.a.texts()[-1] == "Not allowed"  # 200 is no number
    assert rig.a.last(m.CallState).call_state == CallStateCode.ON_HOOK


def test_t302_ends_an_incomplete_destination(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.CFWD_ALL)
    rig.dial(rig.a, "200")
    deadline = rig.ep.next_timer()
    assert deadline is not None
    rig.clock.advance(deadline - rig.now())
    rig.ep.handle_timer(rig.now())
    assert rig.a.texts()[-1] == "Not allowed"
    assert rig.ep.next_timer() is None


def test_a_speed_dial_is_a_destination(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.CFWD_ALL)
    rig.press(rig.a, m.Stimulus(Stimulus.SPEED_DIAL, 1, 0))
    forward = rig.engine.forward_all_of("2001", INTERNAL)
    assert forward is not None and forward.destination == "2002"


def test_off_hook_then_cfwdall_takes_over_the_dial_tone(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    ref = rig.a.last(m.CallState).call_reference
    rig.key(rig.a, SoftKey.CFWD_ALL, 1, ref)
    assert rig.a.last(m.DisplayPromptStatus) == m.DisplayPromptStatus(0, "Forward all", 1, ref)
    rig.dial(rig.a, "2002")
    assert rig.engine.forward_all_of("2001", INTERNAL) is not None


def test_the_forward_all_button_is_the_softkey(rig: Rig) -> None:
    rig.press(rig.a, m.Stimulus(Stimulus.FORWARD_ALL, 1, 0))
    rig.dial(rig.a, "2002")
    assert rig.engine.forward_all_of("2001", INTERNAL) is not None


def test_a_shared_lines_forward_shows_on_every_appearance(rig: Rig) -> None:
    rig.key(rig.b, SoftKey.CFWD_ALL, 2)
    rig.dial(rig.b, "2001", line=2)
    assert rig.engine.forward_all_of("2100", INTERNAL) is not None
    assert rig.a.last(m.ForwardStat) == m.ForwardStat(1, 2, 1, "2001", 0, "", 0, "")
    assert rig.b.last(m.ForwardStat) == m.ForwardStat(1, 2, 1, "2001", 0, "", 0, "")
    # line 2's forward is not line 1's: the idle status line stays as it was
    assert not rig.b.of(m.DisplayPromptStatus) or rig.b.last(m.DisplayPromptStatus).line_instance


def test_forward_set_elsewhere_reaches_the_phone(rig: Rig) -> None:
    assert rig.engine.set_forward_all(A, "2001", "2002") is None  # e.g. *21 from a SIP phone
    assert rig.a.last(m.ForwardStat).forward_all_number == "2002"


def test_cfwdall_during_a_call_is_not_available(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2002")
    rig.press(rig.b, m.OffHook(1, 0))
    rig.key(rig.a, SoftKey.CFWD_ALL)
    assert rig.a.of(m.DisplayNotify)[-1].text == "Not available"
    assert rig.engine.forward_all_of("2001", INTERNAL) is None


def test_forward_stat_request_answers_the_real_state(rig: Rig) -> None:
    rig.engine.set_forward_all(A, "2001", "2002")
    lookup = {A: rig.profile(A)}.get
    session = DeviceSession(lookup, 0.0, forwards=rig.ep.coverage.forwards)
    session.receive(m.Register(A, 0, 1, "127.0.0.1", 115, 5, 0, 5), 0.0)
    session.messages_to_send()
    for line in (1, 2, 3):
        session.receive(m.ForwardStatReq(line), 0.0)
    stats = [x for x in session.messages_to_send() if isinstance(x, m.ForwardStat)]
    assert stats == [
        m.ForwardStat(1, 1, 1, "2002", 1, "8000", 0, ""),
        m.ForwardStat(0, 2, 0, "", 0, "", 0, ""),
        m.ForwardStat(0, 3, 0, "", 0, "", 0, ""),  # no such line
    ]


def test_forward_stat_is_built_from_the_three_forwards() -> None:
    assert forward_stat(2, ("1003", "", "8000"), 0x11) == m.ForwardStat(
        1, 2, 1, "1003", 0, "", 1, "8000", version=0x11
    )
    assert forward_stat(1, ("", "", "")) == m.ForwardStat(0, 1, 0, "", 0, "", 0, "")
    assert forward_stat(1, ("9" * 40, "", "")).forward_all_number == "9" * 24


def test_a_registering_phone_is_shown_its_forward(rig: Rig) -> None:
    rig.engine.set_forward_all(A, "2001", "2002")
    again = rig.attach(A)
    assert again.sent == [m.DisplayPromptStatus(0, "Forwarded to 2002", 0, 0)]
    profile = DeviceProfile(B, "7960", (("2002", "Bob"),))
    idle = FakeLink(B, profile)
    rig.ep.attach(idle, rig.now())
    assert idle.sent == []  # nothing in force: nothing sent


# ---------------------------------------------------------------- DND, HLog


def test_dnd_softkey_toggles_do_not_disturb(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.DND)
    assert rig.engine.dnd(A)
    assert rig.of(DndChanged) == [DndChanged(A, True)]
    assert rig.a.of(m.DisplayNotify)[-1].text == "Do Not Disturb active"
    assert rig.a.last(m.DisplayPromptStatus) == m.DisplayPromptStatus(
        0, "Do Not Disturb active", 0, 0
    )
    rig.key(rig.a, SoftKey.DND)
    assert not rig.engine.dnd(A)
    assert rig.a.of(m.DisplayNotify)[-1].text == "Do Not Disturb off"
    assert rig.a.last(m.ClearPromptStatus) == m.ClearPromptStatus(0, 0)


def test_dnd_ringer_off_offers_the_call_without_ringing(rig: Rig) -> None:
    rig.key(rig.b, SoftKey.DND)
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2002")
    assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN
    assert rig.b.last(m.SetRinger).ring_mode == RingMode.OFF
    assert rig.a.last(m.CallState).call_state == CallStateCode.RING_OUT
    ref = rig.b.last(m.CallState).call_reference
    rig.key(rig.b, SoftKey.ANSWER, 1, ref)  # the call can still be answered
    assert rig.b.last(m.CallState).call_state == CallStateCode.CONNECTED


def test_dnd_silences_the_call_waiting_tone_too(rig: Rig) -> None:
    connect(rig)  # B is in a call with A
    rig.key(rig.b, SoftKey.DND)
    tones = len(rig.b.of(m.StartTone))
    rig.press(rig.c, m.OffHook(1, 0))
    rig.dial(rig.c, "2002")
    assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN
    assert len(rig.b.of(m.StartTone)) == tones


def test_dnd_off_rings_again(rig: Rig) -> None:
    rig.key(rig.b, SoftKey.DND)
    rig.key(rig.b, SoftKey.DND)
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2002")
    assert rig.b.last(m.SetRinger).ring_mode == RingMode.INSIDE


def test_dnd_reject_leaves_the_phone_quiet(rig: Rig) -> None:
    info = rig.snapshot.devices[B]
    object.__setattr__(info, "dnd_option", "reject")
    rig.engine.set_dnd(B, True)
    before = len(rig.b.sent)
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "2002")
    assert not [x for x in rig.b.sent[before:] if isinstance(x, m.CallState)]
    assert rig.a.last(m.CallState).call_state == CallStateCode.BUSY


def test_hlog_softkey_toggles_hunt_group_login(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.HLOG)
    assert not rig.engine.hunt_logged_in(A)
    assert rig.of(HuntLoginChanged) == [HuntLoginChanged(A, False)]
    assert rig.a.of(m.DisplayNotify)[-1].text == "Logged out of hunt groups"
    assert rig.a.last(m.DisplayPromptStatus).text == "Logged out of hunt groups"
    rig.key(rig.a, SoftKey.HLOG)
    assert rig.engine.hunt_logged_in(A)
    assert rig.a.of(m.DisplayNotify)[-1].text == "Logged into hunt groups"
    assert rig.a.last(m.ClearPromptStatus) == m.ClearPromptStatus(0, 0)


def test_a_registering_phone_is_shown_dnd_first(rig: Rig) -> None:
    rig.engine.set_dnd(A, True)
    rig.engine.set_hunt_login(A, False)
    again = rig.attach(A)
    assert again.sent == [m.DisplayPromptStatus(0, "Do Not Disturb active", 0, 0)]


def test_a_phone_the_plan_lost_cannot_set_anything(rig: Rig) -> None:
    profile = DeviceProfile("SEP0000000000FF", "7960", (("2999", "Ghost"),))
    ghost = FakeLink("SEP0000000000FF", profile)
    rig.ep.attach(ghost, rig.now())
    for key in (SoftKey.DND, SoftKey.HLOG, SoftKey.CFWD_ALL, SoftKey.MESSAGES):
        rig.key(ghost, key)
    assert [x.text for x in ghost.of(m.DisplayNotify)] == [
        "Not available",
        "Not available",
        "Not available",
        "No voicemail",
    ]


# ---------------------------------------------------------------- voicemail


def test_messages_softkey_calls_the_lines_voicemail(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.MESSAGES)
    (vm,) = rig.sip.drivers
    setup: Setup = vm.calls[0][1]
    assert (setup.called, setup.calling.number) == ("8000", "2001")
    assert rig.a.last(m.DialedNumber).called_party == "8000"


def test_messages_button_calls_the_voicemail(rig: Rig) -> None:
    rig.press(rig.a, m.Stimulus(Stimulus.VOICEMAIL, 0, 0))
    assert rig.sip.drivers and rig.sip.drivers[0].calls[0][1].called == "8000"


def test_no_voicemail_pilot_says_so(rig: Rig) -> None:
    rig.press(rig.b, m.Stimulus(Stimulus.VOICEMAIL, 0, 0))
    assert rig.b.of(m.DisplayNotify)[-1].text == "No voicemail"
    assert not rig.b.of(m.CallState) and not rig.sip.drivers


def test_messages_while_dialing_uses_that_line(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(2, 0))
    rig.key(rig.a, SoftKey.MESSAGES, 1)
    assert rig.a.of(m.DisplayNotify)[-1].text == "No voicemail"  # 2100 has none


# ---------------------------------------------------------------- pickup, park


def test_pickup_softkey_dials_the_pickup_code(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.PICKUP)
    assert rig.a.last(m.DialedNumber).called_party == rig.engine.codes["pickup"]


def test_gpickup_dials_a_group_number_as_it_is(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.GROUP_PICKUP)
    assert rig.a.last(m.DisplayPromptStatus).text == "Group pickup"
    rig.dial(rig.a, "8100")
    assert rig.a.last(m.DialedNumber).called_party == "8100"


def test_gpickup_with_a_directory_number_is_a_directed_pickup(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.GROUP_PICKUP)
    rig.dial(rig.a, "2002")
    assert rig.a.last(m.DialedNumber).called_party == rig.engine.codes["directed_pickup"] + "2002"


def test_gpickup_after_the_directed_code_is_switched_off(rig: Rig) -> None:
    rig.engine.codes["directed_pickup"] = ""
    rig.key(rig.a, SoftKey.GROUP_PICKUP)
    rig.dial(rig.a, "2002")
    assert rig.a.last(m.DialedNumber).called_party == "2002"


def test_pickup_without_a_code_is_not_available(rig: Rig) -> None:
    rig.engine.codes["pickup"] = ""
    rig.key(rig.a, SoftKey.PICKUP)
    assert rig.a.last(m.DisplayNotify).text == "Not available"
    assert not rig.a.of(m.CallState)


def test_park_softkey_parks_the_connected_call(rig: Rig) -> None:
    parked: list[Leg] = []
    rig.engine.park = parked.append  # type: ignore[method-assign]
    connect(rig)
    ref = rig.a.last(m.CallState).call_reference
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED
    rig.key(rig.a, SoftKey.PARK, 1, ref)
    call = rig.ep.phones[A].calls[ref]
    assert parked == [call.leg]


def test_park_with_no_connected_call_is_not_available(rig: Rig) -> None:
    rig.key(rig.a, SoftKey.PARK)
    assert rig.a.last(m.DisplayNotify).text == "Not available"


def test_a_notification_outlasts_the_call_it_came_with(rig: Rig) -> None:
    connect(rig)
    call = rig.ep.phones[A].active()
    assert call is not None and call.leg is not None
    call.show_display("Call park at 7001")
    rig.press(rig.b, m.OnHook(1, 0))  # the call ends: A's appearance is cleared
    sent = rig.a.sent
    notify = max(i for i, x in enumerate(sent) if isinstance(x, m.DisplayNotify))
    assert sent[notify] == m.DisplayNotify(10, "Call park at 7001")
    # the call's clearing clears its own prompt, not the notification
    assert any(isinstance(x, m.ClearPromptStatus) for x in sent[notify:])
    assert not any(isinstance(x, m.ClearNotify) for x in sent[notify:])


# ---------------------------------------------------------------- never stuck


KEYS = (
    SoftKey.CFWD_ALL,
    SoftKey.DND,
    SoftKey.HLOG,
    SoftKey.MESSAGES,
    SoftKey.PICKUP,
    SoftKey.GROUP_PICKUP,
    SoftKey.PARK,
    SoftKey.BARGE,
    SoftKey.C_BARGE,
    SoftKey.END_CALL,
)
ACTION = st.one_of(
    st.sampled_from(KEYS).map(lambda k: ("key", int(k))),
    st.sampled_from("0123456789*#").map(lambda d: ("digit", d)),
    st.just(("onhook", 0)),
    st.just(("timer", 0)),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(ACTION, max_size=30))
def test_any_sequence_keeps_the_phone_and_the_engine_in_step(
    actions: list[tuple[str, object]],
) -> None:
    rig = Rig()
    for kind, value in actions:
        if kind == "key":
            rig.key(rig.a, int(str(value)))
        elif kind == "digit":
            rig.dial(rig.a, str(value))
        elif kind == "onhook":
            rig.press(rig.a, m.OnHook(1, 0))
        else:
            rig.clock.advance(6.0)
            rig.ep.handle_timer(rig.now())
    rig.press(rig.a, m.OnHook(1, 0))
    forward = rig.engine.forward_all_of("2001", INTERNAL)
    stats = rig.a.of(m.ForwardStat)
    if stats:
        assert stats[-1].forward_all_number == (forward.destination if forward else "")
    status = [x for x in rig.a.sent if isinstance(x, m.DisplayPromptStatus | m.ClearPromptStatus)]
    idle = [x for x in status if x.line_instance == 0 and not x.call_reference]
    shown = idle[-1].text if idle and isinstance(idle[-1], m.DisplayPromptStatus) else ""
    expected = ""
    if rig.engine.dnd(A):
        expected = "Do Not Disturb active"
    elif not rig.engine.hunt_logged_in(A):
        expected = "Logged out of hunt groups"
    elif forward is not None:
        expected = f"Forwarded to {forward.destination}"
    assert shown == expected
    assert rig.ep.phones[A].active() is None
    assert B in rig.ep.phones
