"""SCCP phones under overload (core.overload on SccpEndpoint): a dialled call the node sheds
gets reorder and never reaches core; a call already connected goes on; after recovery
phones call again."""

from __future__ import annotations

import pytest
from test_sccp_endpoint import Rig

from offhook.core.overload import OverloadControl, OverloadPolicy
from offhook.sccp import messages as m
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode, DeviceTone, Prompt, prompt


def overloaded(rig: Rig, **policy: object) -> OverloadControl:
    control = OverloadControl(OverloadPolicy(window=0.5, **policy), 0.0)  # type: ignore[arg-type]
    for i in range(10):
        control.observe(0.5 * (i + 1), {"injected": 10.0})
    assert control.overloaded and control.admit_ratio == 0.0
    rig.ep.overload = control
    return control


def calm(control: OverloadControl) -> None:
    for i in range(12):
        control.observe(100.0 + 0.5 * i, {"injected": 0.0})
    assert not control.overloaded


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_a_shed_call_gets_reorder_and_no_core_call(rig: Rig) -> None:
    control = overloaded(rig)
    rig.press(rig.a, m.OffHook(1, 0))  # dial tone still: digit collection is cheap
    assert rig.a.last(m.StartTone).tone == DeviceTone.INSIDE_DIAL
    rig.dial(rig.a, "1002")
    assert rig.a.last(m.StartTone).tone == DeviceTone.REORDER
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONGESTION
    assert rig.a.last(m.DisplayPromptStatus).text == prompt(Prompt.TEMP_FAIL)
    assert not rig.b.of(m.CallState)  # B never rang
    assert rig.engine.snapshot_state()["calls"] == []
    assert control.shed["sccp"] == 1
    rig.press(rig.a, m.OnHook(1, 0))
    assert rig.a.last(m.CallState).call_state == CallStateCode.ON_HOOK


def test_connected_call_survives_overload_and_new_calls_work_after_recovery(rig: Rig) -> None:
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "1002")
    rig.press(rig.b, m.OffHook(1, 0))
    rig.ack_open(rig.b, 30002)
    rig.ack_open(rig.a, 30001)
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED
    control = overloaded(rig)
    # hold and resume (mid-call work) are not new calls
    ref = rig.a.last(m.CallState).call_reference
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.HOLD, 1, ref))
    assert rig.a.last(m.CallState).call_state == CallStateCode.HOLD
    rig.press(rig.a, m.SoftKeyEvent(SoftKey.RESUME, 1, ref))
    rig.ack_open(rig.a, 30003)
    assert rig.a.last(m.CallState).call_state == CallStateCode.CONNECTED
    rig.press(rig.a, m.OnHook(1, 0))
    (record,) = rig.ended()
    assert record.cause == 16 and record.answer is not None
    calm(control)
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "1002")
    assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN


def test_exempt_number_is_routed_while_shedding(rig: Rig) -> None:
    overloaded(rig, exempt=frozenset({"1002"}))
    rig.press(rig.a, m.OffHook(1, 0))
    rig.dial(rig.a, "1002")
    assert rig.b.last(m.CallState).call_state == CallStateCode.RING_IN
