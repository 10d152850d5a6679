"""SCCP Barge/cBarge on a shared line and intercom (whisper), through a real ``offhook serve``.

The plan is ``interop.sccp_media``'s (SCCP simulator phones each sending
its own sine, baresip phones, the media server on loopback) with:

- 2100, a line shared by phones A (2001) and B (2002) as their line 2;
- 9003, an intercom line of phone C (line 2 beside its 2003).

Who hears whom is judged from the RTP each phone receives, decoded; each
SCCP phone's microphone is its sine, silent while muted (SetMicroMode off).
Every wait is bounded; nothing is judged by how long something took.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.peers import require_capture
from interop.sccp_media import (
    SCCP,
    TONES,
    answer,
    dial_uri,
    off_hook_call,
    run,
    sccp_heard,
    sccp_phones,
    sccp_plan,
    sip_do,
    sip_heard,
    sip_phone,
    start_server,
    state_is,
    tone_of,
    wait_event,
    wait_hearing,
)
from offhook.sccp.messages import CallState, SetMicroMode
from offhook.sccp.ui import CallStateCode, MicroMode
from support.sccp_phone import SccpPhone
from support.server import OffhookServer

SHARED, INTERCOM = "2100", "9003"


def plan(tmp_path: Path, privacy: bool = False) -> dict[str, Any]:
    """``sccp_plan`` with 2100 shared by A and B, C's intercom 9003, A's privacy."""
    p = copy.deepcopy(sccp_plan(tmp_path))
    for dev in p["devices"]:
        if dev["name"] in (SCCP["A"][0], SCCP["B"][0]):
            dev["lines"].append({"dn": SHARED, "display": "Shared"})
        if dev["name"] == SCCP["A"][0] and privacy:
            dev["privacy"] = True
        if dev["name"] == SCCP["C"][0]:
            dev["lines"].append({"dn": INTERCOM, "display": "Intercom C", "intercom": True})
    return p


@pytest.fixture(params=[False, True], ids=["open", "privacy"])
def shared_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OffhookServer]:
    srv = start_server(tmp_path, plan(tmp_path, privacy=request.param))
    srv.privacy = request.param  # type: ignore[attr-defined]
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = start_server(tmp_path, plan(tmp_path))
    try:
        yield srv
    finally:
        srv.stop()


async def remote_in_use(phone: SccpPhone, since: int) -> int:
    """The call reference line 2 shows remote in use with (waits for it)."""
    state = await phone.wait_for(
        lambda m: state_is(CallStateCode.REMOTE_MULTILINE)(m) and m.line_instance == 2,
        since=since,
        timeout=10,
    )
    return int(state.call_reference)


async def hears_others(phone: SccpPhone, others: tuple[SccpPhone, ...]) -> None:
    """``phone`` hears every one of ``others`` and not itself."""
    await wait_hearing(
        lambda: sccp_heard(phone),
        tuple(tone_of(o) for o in others),
        (tone_of(phone),),
        who=phone.name,
    )


# ---------------------------------------------------------------- barge


def test_barge_joins_the_shared_lines_call(shared_server: OffhookServer) -> None:
    privacy = shared_server.privacy  # type: ignore[attr-defined]

    async def body() -> None:
        async with sccp_phones(shared_server, "A", "B", "C") as (a, b, c):
            assert "Barge" in b.soft_keys and "cBarge" in b.soft_keys
            a_mark, b_mark = a.mark(), b.mark()
            c_ref = await off_hook_call(c)
            c.dial(SHARED)
            await b.wait_for(state_is(CallStateCode.RING_IN), since=b_mark, timeout=10)
            await answer(a, since=a_mark)  # A takes the call on its appearance
            await c.wait_for(state_is(CallStateCode.CONNECTED, c_ref), timeout=10)
            ref = await remote_in_use(b, b_mark)
            assert b.keys_of(b.key_set[(2, ref)]) == ["Barge", "cBarge", "NewCall"]
            await wait_hearing(lambda: sccp_heard(a), (tone_of(c),), who="A")
            mark, shown = b.mark(), len(b.displayed)
            b.softkey("Barge", 2, ref)
            if privacy:
                await b.wait_display("Private", since=shown, timeout=10)
                await b.wait_for(state_is(CallStateCode.ON_HOOK, ref), since=mark, timeout=10)
                await remote_in_use(b, mark)  # still in use over there
                await wait_hearing(
                    lambda: sccp_heard(a), (tone_of(c),), (tone_of(b),), who="A (private)"
                )
                return
            await b.wait_for(state_is(CallStateCode.CONNECTED, ref), since=mark, timeout=10)
            # the three talk through the bridge: each hears the two others, not itself
            for phone, others in ((a, (b, c)), (b, (a, c)), (c, (a, b))):
                await hears_others(phone, others)
            # B leaves: A and C go on, B's appearance shows remote in use again
            mark = b.mark()
            b.on_hook(2, ref)
            await remote_in_use(b, mark)
            await wait_hearing(lambda: sccp_heard(c), (tone_of(a),), (tone_of(b),), who="C")
            await wait_hearing(lambda: sccp_heard(a), (tone_of(c),), (tone_of(b),), who="A")

    run(body)
    if not privacy:
        rows = shared_server.wait_cdr(lambda r: r["calling"] == SHARED)
        assert rows[-1]["cause"] == "16", rows


# ---------------------------------------------------------------- intercom


def test_an_sccp_intercom_call_is_answered_by_the_phone_muted(server: OffhookServer) -> None:
    async def body() -> None:
        async with sccp_phones(server, "A", "C") as (a, c):
            c_mark = c.mark()
            a_ref = await off_hook_call(a)
            a_mark = a.mark()
            a.dial(INTERCOM)
            mute = await c.wait_for(SetMicroMode, since=c_mark, timeout=10)
            assert mute.mode == MicroMode.OFF
            state = await c.wait_for(state_is(CallStateCode.CONNECTED), since=c_mark, timeout=10)
            assert (state.line_instance, c.speaker, c.microphone) == (2, True, False)
            await a.wait_for(state_is(CallStateCode.CONNECTED, a_ref), since=a_mark, timeout=10)
            got = [m.call_state for m in a.received[a_mark:] if isinstance(m, CallState)]
            assert CallStateCode.RING_OUT not in got  # no ringback: answered at once
            assert not [m for m in c.received[c_mark:] if state_is(CallStateCode.RING_IN)(m)]
            # whisper: C's room hears A; A hears C's silence, not C
            await wait_hearing(lambda: sccp_heard(c), (tone_of(a),), who="C")
            await wait_hearing(lambda: sccp_heard(a), (), (tone_of(c),), who="A (whisper)")
            mark = c.mark()
            c.softkey("Answer", 2, state.call_reference)  # C answers: two-way
            unmute = await c.wait_for(SetMicroMode, since=mark, timeout=10)
            assert unmute.mode == MicroMode.ON and c.microphone
            await wait_hearing(lambda: sccp_heard(a), (tone_of(c),), who="A (answered)")
            a.on_hook(1, a_ref)
            await c.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)

    run(body)
    (row,) = server.wait_cdr(lambda r: r["called"] == INTERCOM)
    assert row["calling"] == "2001"


def test_a_sip_intercom_call_is_answered_by_the_sccp_phone(
    server: OffhookServer, tmp_path: Path
) -> None:
    require_capture()
    alice = sip_phone(tmp_path, server, "alice")
    with alice:
        alice.wait_registered()

        async def body() -> None:
            async with sccp_phones(server, "C") as (c,):
                mark, ua_mark = c.mark(), alice.mark()
                await sip_do(alice.dial, dial_uri(server, INTERCOM))
                await wait_event(alice, "CALL_ESTABLISHED", since=ua_mark)
                assert "CALL_RINGING" not in alice.event_types()[ua_mark:]
                state = await c.wait_for(state_is(CallStateCode.CONNECTED), since=mark, timeout=10)
                assert not c.microphone and c.speaker
                await wait_hearing(lambda: sccp_heard(c), (TONES["alice"],), who="C")
                await wait_hearing(
                    lambda: sip_heard(tmp_path, alice), (), (tone_of(c),), tries=2, who="alice"
                )
                c.off_hook(2, state.call_reference)  # C picks up the handset: two-way
                await wait_hearing(
                    lambda: sip_heard(tmp_path, alice), (tone_of(c),), tries=3, who="alice"
                )
                mark = c.mark()
                await sip_do(alice.hangup)
                await c.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)

        run(body)
