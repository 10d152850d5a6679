"""CTI route points and ports (core.features.cti_devices) on the core harness."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from core_harness import FakeDriver, Harness, media
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.core.causes import Cause
from offhook.core.dialplan.model import (
    CallingSearchSpace,
    CtiPort,
    CtiRoutePoint,
    DialPlanSpec,
    DirectoryNumber,
    HuntPilot,
)
from offhook.core.dialplan.router import DialPlan, DialPlanError
from offhook.core.directory import (
    DeviceInfo,
    LineGroup,
    LineInfo,
    PlanSnapshot,
    directory_numbers,
)
from offhook.core.engine import CallEngine
from offhook.core.events import PartyInfo, RedirectReason, Setup
from offhook.core.features.cti_devices import (
    CTI_PROTOCOL,
    CtiDeviceError,
    answer_for,
    device_infos,
    install_cti_devices,
    media_from_json,
    media_to_json,
    port_answer,
    port_call,
    port_media,
)
from offhook.core.leg import LegState
from offhook.core.media import Codec, MediaDescription, MediaStream
from offhook.core.records import (
    CallAnswered,
    CallEnded,
    LegStateChanged,
    RegistrationChanged,
)

APP = {"address": "192.0.2.50", "port": 40000, "codec": "PCMU"}
PCMA = Codec("PCMA", 8000, 8)
DTMF = Codec("telephone-event", 8000, 101, fmtp="0-16")


def plan(
    h: Harness,
    route_points: tuple[CtiRoutePoint, ...] = (),
    ports: tuple[CtiPort, ...] = (),
) -> None:
    """Phones alice 1001 and bob 1002 (CSS staff reaches partition internal) and
    the CTI devices given, installed."""
    phones = [
        DeviceInfo("alice", "sip", (LineInfo("1001", "Alice", "internal"),), css="staff"),
        DeviceInfo("bob", "sip", (LineInfo("1002", "Bob", "internal"),), css="staff"),
    ]
    h.devices[:] = [*phones, *device_infos(route_points, ports)]
    h.spec = DialPlanSpec(
        partitions=("internal",),
        calling_search_spaces=(CallingSearchSpace("staff", ("internal",)),),
        directory_numbers=directory_numbers(h.devices),
        cti_route_points=route_points,
        cti_ports=ports,
    )
    for phone in ("alice", "bob"):
        h.register(phone)
    install_cti_devices(h.engine, h.locations, h.engine.snapshot())


RP = CtiRoutePoint("ivr", "3000", "internal", "staff", timeout=5.0, default="1002")
PORT = CtiPort("port1", "3100", "internal", "staff")


def call(h: Harness, called: str, *, offer: bool = True) -> FakeDriver:
    driver = FakeDriver("alice")
    leg = h.engine.inbound_leg(driver, "alice")
    driver.leg = leg
    h.engine.setup(leg, Setup(PartyInfo("1001"), called, media("10.0.0.1") if offer else None))
    return driver


def call_id(h: Harness) -> str:
    (active,) = h.engine.active_calls()
    return active.id


def leg_states(h: Harness, device: str) -> list[str]:
    return [e.new for e in h.of(LegStateChanged) if e.device == device]


def expire(h: Harness, seconds: float) -> None:
    h.clock.advance(seconds)
    h.engine.handle_timer(h.clock.monotonic())


# ---------------------------------------------------------------- route points


def test_a_call_to_a_route_point_is_offered_to_it_and_rings(h: Harness) -> None:
    plan(h, (RP,))
    caller = call(h, "3000")
    assert leg_states(h, "ivr") == ["offered", "alerting"]
    assert "alert" in caller.names()  # the caller hears ringback
    (active,) = h.engine.active_calls()
    (fork,) = active.live_forks()
    assert (fork.device, fork.line) == ("ivr", ("3000", "internal"))
    assert fork.state is LegState.ALERTING
    assert h.factory.drivers == {}  # no phone rung yet


def test_the_timeout_sends_the_call_to_the_default(h: Harness) -> None:
    plan(h, (RP,))
    caller = call(h, "3000")
    expire(h, 4.9)
    assert h.factory.drivers == {}
    expire(h, 0.1)
    bob_leg, bob = h.out("sip:bob@10.0.0.9")
    offered = bob.last("offer")[1]
    assert (offered.called, offered.original_called) == ("1002", "3000")
    assert offered.diversions[-1].number == "3000"
    assert offered.diversions[-1].reason is RedirectReason.FORWARD_NO_ANSWER
    assert leg_states(h, "ivr")[-1] == "released"
    h.engine.on_connect(bob_leg, media("10.0.0.2"))
    assert caller.last("answer")[1] == media("10.0.0.2")
    h.engine.on_release(bob_leg)
    record = h.record()
    assert (record.called, record.original_called, record.called_device) == (
        "1002",
        "3000",
        "bob",
    )
    assert (record.last_redirecting, record.redirect_reason) == ("3000", "forward-no-answer")


def test_no_default_the_caller_gets_busy_at_the_timeout(h: Harness) -> None:
    plan(h, (replace(RP, default=""),))
    caller = call(h, "3000")
    expire(h, 5.0)
    assert caller.released_with() == [Cause.USER_BUSY]
    assert h.record().cause == Cause.USER_BUSY
    assert h.engine.active_calls() == []


def test_a_default_the_route_point_cannot_reach_gets_the_dial_plan_cause(h: Harness) -> None:
    plan(h, (replace(RP, default="4444"),))
    caller = call(h, "3000")
    expire(h, 5.0)
    assert caller.released_with() == [Cause.UNALLOCATED_NUMBER]


def test_a_default_back_to_the_route_point_is_a_loop(h: Harness) -> None:
    plan(h, (replace(RP, default="3000"),))
    caller = call(h, "3000")
    expire(h, 5.0)
    assert caller.released_with() == [25]


def test_the_route_point_css_routes_the_default(h: Harness) -> None:
    plan(h, (replace(RP, css=""),))  # the null partition only: 1002 is out of reach
    caller = call(h, "3000")
    expire(h, 5.0)
    assert caller.released_with() == [Cause.UNALLOCATED_NUMBER]
    assert h.factory.drivers == {}


def test_the_caller_hanging_up_leaves_nothing_to_time_out(h: Harness) -> None:
    plan(h, (RP,))
    caller = call(h, "3000")
    assert caller.leg is not None
    h.engine.on_release(caller.leg)
    expire(h, 10.0)
    assert h.factory.drivers == {}
    assert h.record().cause == Cause.NORMAL_CLEARING
    assert leg_states(h, "ivr") == ["offered", "alerting", "released"]


def test_many_calls_wait_at_one_route_point(h: Harness) -> None:
    plan(h, (replace(RP, default=""),))
    callers = [call(h, "3000") for _ in range(3)]
    assert len(h.engine.active_calls()) == 3
    expire(h, 5.0)
    assert [c.released_with() for c in callers] == [[Cause.USER_BUSY]] * 3


def test_an_application_redirect_sends_the_call_on_before_the_timeout(h: Harness) -> None:
    plan(h, (replace(RP, default=""),))
    caller = call(h, "3000")
    h.engine.cti_redirect(call_id(h), "1002", device="ivr")
    bob_leg, bob = h.out("sip:bob@10.0.0.9")
    offered = bob.last("offer")[1]
    assert offered.original_called == "3000"
    assert offered.diversions[-1].reason is RedirectReason.DEFLECTION
    expire(h, 5.0)  # the route point's timer finds the call gone from it
    assert caller.released_with() == []
    h.engine.on_connect(bob_leg, media("10.0.0.2"))
    assert h.of(CallAnswered)[-1].device == "bob"


# ---------------------------------------------------------------- ports


def test_a_call_to_a_port_rings_until_the_application_answers(h: Harness) -> None:
    plan(h, ports=(PORT,))
    caller = call(h, "3100")
    assert leg_states(h, "port1") == ["offered", "alerting"]
    expire(h, 30.0)
    assert caller.released_with() == []
    port_answer(h.engine, "port1", call_id(h), media_from_json(APP))
    answer = caller.last("answer")[1]
    assert media_to_json(answer) == APP
    assert answer.streams[0].codecs == (Codec("PCMU", 8000, 0),)  # the caller offered no DTMF
    assert leg_states(h, "port1")[-1] == "connected"
    assert h.of(CallAnswered)[-1].device == "port1"
    assert port_media(h.engine, "port1", call_id(h)) == {
        "address": "10.0.0.1",
        "port": 4000,
        "codec": "PCMU",
    }


def test_a_port_refuses_what_it_cannot_answer(h: Harness) -> None:
    plan(h, (RP,), (PORT,))
    caller = call(h, "3100")
    cid = call_id(h)
    app = media_from_json(APP)
    with pytest.raises(CtiDeviceError, match="did not offer PCMA"):
        port_answer(h.engine, "port1", cid, media_from_json({**APP, "codec": "PCMA"}))
    with pytest.raises(CtiDeviceError, match="no call"):
        port_answer(h.engine, "port1", "nope", app)
    with pytest.raises(CtiDeviceError, match="no CTI port"):
        port_answer(h.engine, "ivr", cid, app)
    with pytest.raises(CtiDeviceError, match="no CTI port"):
        port_answer(h.engine, "bob", cid, app)
    assert caller.released_with() == [] and "answer" not in caller.names()
    port_answer(h.engine, "port1", cid, app)
    with pytest.raises(CtiDeviceError, match="not ringing") as refused:
        port_answer(h.engine, "port1", cid, app)
    assert isinstance(refused.value, ValueError) and refused.value.cause == 101


def test_a_port_takes_one_call_at_a_time(h: Harness) -> None:
    plan(h, ports=(PORT,))
    call(h, "3100")
    second = call(h, "3100")
    assert second.released_with() == [Cause.USER_BUSY]
    with pytest.raises(CtiDeviceError, match="busy"):
        port_call(h.engine, "port1", "1002", media_from_json(APP))


def test_a_caller_without_an_offer_gets_the_application_address_as_one(h: Harness) -> None:
    plan(h, ports=(PORT,))
    caller = call(h, "3100", offer=False)
    port_answer(h.engine, "port1", call_id(h), media_from_json(APP))
    offer = caller.last("answer")[1]
    assert media_to_json(offer) == APP
    assert offer.streams[0].codecs[-1].name == "telephone-event"
    assert caller.leg is not None
    h.engine.on_media_answer(caller.leg, media("10.0.0.7", 4444), None)
    assert port_media(h.engine, "port1", call_id(h)) == {
        "address": "10.0.0.7",
        "port": 4444,
        "codec": "PCMU",
    }


def test_a_port_answers_mid_call_offers_with_the_application_address(h: Harness) -> None:
    plan(h, ports=(PORT,))
    caller = call(h, "3100")
    port_answer(h.engine, "port1", call_id(h), media_from_json(APP))
    assert caller.leg is not None
    h.engine.on_media_offer(caller.leg, media("10.0.0.1", 4000, "sendonly"))  # hold, no MOH
    answer = caller.last("media_answer")[1]
    assert media_to_json(answer) == APP and answer.streams[0].direction == "recvonly"
    video = MediaDescription((MediaStream("video", "10.0.0.1", 5000, (Codec("H264", 90000, 99),)),))
    h.engine.on_media_offer(caller.leg, video)
    assert caller.last("media_answer")[1:] == (None, Cause.INCOMPATIBLE_DESTINATION)


def test_the_application_hanging_up_a_ringing_port_call(h: Harness) -> None:
    plan(h, ports=(PORT,))
    caller = call(h, "3100")
    (active,) = h.engine.active_calls()
    (fork,) = active.live_forks()
    h.engine.on_release(fork, Cause.CALL_REJECTED)
    assert caller.released_with() == [Cause.CALL_REJECTED]
    with pytest.raises(CtiDeviceError, match="no call"):
        port_media(h.engine, "port1", active.id)


def test_a_port_places_a_call_with_the_application_media(h: Harness) -> None:
    plan(h, ports=(PORT,))
    cid = port_call(h.engine, "port1", "1002", media_from_json(APP))
    bob_leg, bob = h.out("sip:bob@10.0.0.9")
    offered = bob.last("offer")[1]
    assert offered.calling.number == "3100" and offered.calling.device == "port1"
    assert media_to_json(offered.media) == APP
    assert leg_states(h, "port1") == ["setup"]
    assert port_media(h.engine, "port1", cid) is None
    h.engine.on_alerting(bob_leg)
    h.engine.on_connect(bob_leg, media("10.0.0.2", 6000))
    assert port_media(h.engine, "port1", cid) == {
        "address": "10.0.0.2",
        "port": 6000,
        "codec": "PCMU",
    }
    assert leg_states(h, "port1")[-1] == "connected"
    h.engine.on_release(bob_leg)
    record = h.record()
    assert (record.calling, record.calling_device, record.called_device) == (
        "3100",
        "port1",
        "bob",
    )


def test_a_port_call_is_routed_with_the_port_css(h: Harness) -> None:
    plan(h, ports=(replace(PORT, css=""),))
    cid = port_call(h.engine, "port1", "1002", media_from_json(APP))
    assert h.factory.drivers == {}
    ended = h.of(CallEnded)[-1].record
    assert (ended.call_id, ended.cause) == (cid, Cause.UNALLOCATED_NUMBER)


def test_port_call_refusals(h: Harness) -> None:
    plan(h, (RP,), (PORT,))
    app = media_from_json(APP)
    with pytest.raises(CtiDeviceError, match="no CTI port"):
        port_call(h.engine, "ivr", "1002", app)
    for number in ("", "12a", "1" * 33):
        with pytest.raises(CtiDeviceError, match="not a number"):
            port_call(h.engine, "port1", number, app)
    assert h.engine.active_calls() == []


def test_a_hunt_pilot_hunts_over_a_pool_of_ports(h: Harness) -> None:
    """Ports as line group members: a busy port is skipped, the next one rings."""
    port2 = CtiPort("port2", "3101", "internal", "staff")
    plan(h, ports=(PORT, port2))
    assert h.spec is not None
    spec = replace(h.spec, hunt_pilots=(HuntPilot("1500", "internal", "ivr"),))
    snap = PlanSnapshot.build(
        h.devices,
        dialplan_spec=spec,
        line_groups={"ports": LineGroup("ports", ("3100", "3101"))},
        hunt_lists={"ivr": ("ports",)},
    )
    engine = CallEngine(lambda: snap, h.locations, h.clock, h.bus, node="n1")
    install_cti_devices(engine, h.locations, snap)
    first = engine.inbound_leg(FakeDriver("alice"), "alice")
    engine.setup(first, Setup(PartyInfo("1001"), "1500", media("10.0.0.1")))
    assert first.call is not None
    port_answer(engine, "port1", first.call.id, media_from_json(APP))
    caller = FakeDriver("bob")
    second = engine.inbound_leg(caller, "bob")
    engine.setup(second, Setup(PartyInfo("1002"), "1500", media("10.0.0.2")))
    assert second.call is not None
    (fork,) = second.call.live_forks()
    assert fork.device == "port2"  # port1 is busy: skipped
    port_answer(engine, "port2", second.call.id, media_from_json({**APP, "port": 40002}))
    assert media_to_json(caller.last("answer")[1]) == {**APP, "port": 40002}


# ---------------------------------------------------------------- install and reload


def test_install_binds_every_cti_device_and_a_reload_follows_the_plan(h: Harness) -> None:
    plan(h, (RP,), (PORT,))
    now = h.clock.monotonic()
    bound = {b.device: b for b in h.locations.all(now) if b.protocol == CTI_PROTOCOL}
    assert set(bound) == {"ivr", "port1"}
    assert bound["ivr"].contact == "cti:ivr" and bound["ivr"].node == "n1"
    assert [(e.device, e.registered) for e in h.of(RegistrationChanged)] == [
        ("ivr", True),
        ("port1", True),
    ]
    # Installing the same plan again changes nothing.
    assert install_cti_devices(h.engine, h.locations, h.engine.snapshot()) == ("ivr", "port1")
    assert len(h.of(RegistrationChanged)) == 2

    # A reload: the port is gone, another route point came.
    other = CtiRoutePoint("queue", "3001", "internal", "staff", default="1002")
    h.events.clear()
    plan(h, (RP, other))
    assert [(e.device, e.registered) for e in h.of(RegistrationChanged)] == [
        ("port1", False),
        ("queue", True),
    ]
    assert h.locations.bindings("port1", now) == []
    call(h, "3001")
    expire(h, 5.0)
    assert h.out("sip:bob@10.0.0.9")[1].last("offer")[1].original_called == "3001"
    assert h.engine.snapshot().device("queue") is not None
    # The phones' bindings were never touched.
    assert h.locations.bindings("alice", h.clock.monotonic())


def test_a_call_waiting_at_a_route_point_removed_by_a_reload_still_times_out(
    h: Harness,
) -> None:
    plan(h, (RP,))
    call(h, "3000")
    plan(h)
    expire(h, 5.0)  # the route point's settings came with the call
    assert h.out("sip:bob@10.0.0.9")[1].last("offer")[1].called == "1002"


def test_device_infos() -> None:
    rp, port = device_infos((RP,), (PORT,))
    assert (rp.name, rp.protocol, rp.css, rp.max_calls) == ("ivr", "cti", "staff", 0)
    assert rp.lines == (LineInfo("3000", "", "internal"),)
    assert (port.name, port.max_calls, port.lines[0].dn) == ("port1", 1, "3100")


def test_the_dial_plan_refuses_a_cti_dn_on_another_device() -> None:
    devices = [
        DeviceInfo("alice", "sip", (LineInfo("3000", "", "internal"),)),
        *device_infos((RP,), ()),
    ]
    spec = DialPlanSpec(
        partitions=("internal",),
        calling_search_spaces=(CallingSearchSpace("staff", ("internal",)),),
        directory_numbers=directory_numbers(devices),
        cti_route_points=(RP,),
    )
    with pytest.raises(DialPlanError, match=r"cti_route_points\[0\] \(ivr\): .*also on alice"):
        DialPlan(spec)
    with pytest.raises(DialPlanError, match="no directory number"):
        DialPlan(replace(spec, directory_numbers=()))
    alone = replace(spec, directory_numbers=(DirectoryNumber("3000", "internal", ("ivr",)),))
    DialPlan(alone)
    with pytest.raises(DialPlanError, match="calling search space 'x'"):
        DialPlan(replace(alone, cti_route_points=(replace(RP, css="x"),)))
    with pytest.raises(DialPlanError, match=r"cti_ports\[0\] \(ivr\): partition 'p'"):
        DialPlan(replace(alone, cti_route_points=(), cti_ports=(CtiPort("ivr", "3000", "p"),)))


# ---------------------------------------------------------------- media


def test_media_from_json() -> None:
    desc = media_from_json({"address": "[2001:DB8::1]", "port": 5004})
    (stream,) = desc.streams
    assert (stream.kind, stream.address, stream.port, stream.ptime) == (
        "audio",
        "2001:db8::1",
        5004,
        20,
    )
    assert [c.name for c in stream.codecs] == ["PCMU", "telephone-event"]
    assert media_to_json(media_from_json({**APP, "codec": "pcma"})) == {**APP, "codec": "PCMA"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "an object"),
        ([], "an object"),
        ({"address": "192.0.2.1", "port": 1, "x": 1}, "unknown key 'x'"),
        ({"port": 4000}, "address"),
        ({"address": 7, "port": 4000}, "address"),
        ({"address": "example.com", "port": 4000}, "not an IP address"),
        ({"address": "0.0.0.0", "port": 4000}, "not a unicast"),
        ({"address": "224.0.0.1", "port": 4000}, "not a unicast"),
        ({"address": "192.0.2.1"}, "port"),
        ({"address": "192.0.2.1", "port": 0}, "port"),
        ({"address": "192.0.2.1", "port": 70000}, "port"),
        ({"address": "192.0.2.1", "port": True}, "port"),
        ({"address": "192.0.2.1", "port": "4000"}, "port"),
        ({"address": "192.0.2.1", "port": 4000, "codec": "G729"}, "codec"),
        ({"address": "192.0.2.1", "port": 4000, "codec": 0}, "codec"),
    ],
)
def test_media_from_json_refuses(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        media_from_json(data)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
MEDIA_DICTS = st.fixed_dictionaries(
    {},
    optional={
        "address": st.one_of(st.ip_addresses().map(str), st.text(max_size=40), JSONISH),
        "port": st.one_of(st.integers(-10, 70000), JSONISH),
        "codec": st.one_of(st.sampled_from(["PCMU", "PCMA", "pcma", "G722"]), JSONISH),
    },
)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(JSONISH, MEDIA_DICTS))
def test_media_from_json_takes_anything(data: Any) -> None:
    try:
        desc = media_from_json(data)
    except ValueError:
        return
    out = media_to_json(desc)
    assert out is not None
    assert media_from_json(out) == desc  # its own JSON gives it back
    assert 1 <= out["port"] <= 65535 and out["codec"] in ("PCMU", "PCMA")


def test_answer_for_keeps_the_offer_shape() -> None:
    offer = MediaDescription(
        (
            MediaStream("video", "10.0.0.1", 5000, (Codec("H264", 90000, 99),)),
            MediaStream("audio", "10.0.0.1", 4000, (PCMA, Codec("PCMU", 8000, 0), DTMF)),
        )
    )
    answer = answer_for(offer, media_from_json({**APP, "codec": "PCMA"}))
    video, audio = answer.streams
    assert video.rejected and video.kind == "video"
    assert (audio.address, audio.port, audio.codecs) == ("192.0.2.50", 40000, (PCMA, DTMF))
    with pytest.raises(ValueError, match="no audio"):
        answer_for(MediaDescription((offer.streams[0],)), media_from_json(APP))
