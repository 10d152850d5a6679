"""SCCP phones with the media server: hold music, transfer, conference, meet-me, DTMF.

Through a real ``offhook serve`` (see ``interop.sccp_media`` for the plan):
SCCP phones (the simulator, each streaming its own sine) and SIP phones
(baresip, each with its own sine). What a phone hears is judged from the
RTP it receives, decoded: an SCCP phone keeps its received payloads, a
baresip phone's are captured with tshark.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from interop.peers import require_capture
from interop.sccp_media import (
    MOH_HZ,
    TONES,
    answer,
    dial_uri,
    off_hook_call,
    press,
    run,
    sccp_call,
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
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode
from support.server import OffhookServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = start_server(tmp_path, sccp_plan(tmp_path))
    try:
        yield srv
    finally:
        srv.stop()


def test_sccp_hold_plays_music_then_the_holder_again(server: OffhookServer) -> None:
    async def body() -> None:
        async with sccp_phones(server, "A", "B") as (a, b):
            _, b_ref = await sccp_call(a, b, "2002")
            await wait_hearing(lambda: sccp_heard(a), (tone_of(b),), who="A")
            await wait_hearing(lambda: sccp_heard(b), (tone_of(a),), who="B")
            mark = b.mark()
            b.softkey(SoftKey.HOLD, 1, b_ref)
            await b.wait_for(state_is(CallStateCode.HOLD, b_ref), since=mark, timeout=10)
            await wait_hearing(lambda: sccp_heard(a), (MOH_HZ,), (tone_of(b),), who="A held")
            mark = b.mark()
            b.softkey(SoftKey.RESUME, 1, b_ref)
            await b.wait_for(state_is(CallStateCode.CONNECTED, b_ref), since=mark, timeout=10)
            await wait_hearing(lambda: sccp_heard(a), (tone_of(b),), (MOH_HZ,), who="A resumed")
            await wait_hearing(lambda: sccp_heard(b), (tone_of(a),), who="B resumed")

    run(body)


def test_sip_caller_held_by_sccp_phone_hears_music(server: OffhookServer, tmp_path: Path) -> None:
    require_capture()
    alice = sip_phone(tmp_path, server, "alice")
    with alice:
        alice.wait_registered()

        async def body() -> None:
            async with sccp_phones(server, "B") as (b,):
                mark = b.mark()
                await sip_do(alice.dial, dial_uri(server, "2002"))
                b_ref = await answer(b, since=mark)
                await wait_event(alice, "CALL_ESTABLISHED")
                await wait_hearing(lambda: sccp_heard(b), (TONES["alice"],), who="B")
                await wait_hearing(
                    lambda: sip_heard(tmp_path, alice), (tone_of(b),), tries=2, who="alice"
                )
                await press(b, SoftKey.HOLD, b_ref, CallStateCode.HOLD)
                await wait_hearing(
                    lambda: sip_heard(tmp_path, alice),
                    (MOH_HZ,),
                    (tone_of(b),),
                    tries=3,
                    who="alice held",
                )
                await press(b, SoftKey.RESUME, b_ref, CallStateCode.CONNECTED)
                await wait_hearing(
                    lambda: sip_heard(tmp_path, alice),
                    (tone_of(b),),
                    (MOH_HZ,),
                    tries=3,
                    who="alice resumed",
                )
                await wait_hearing(lambda: sccp_heard(b), (TONES["alice"],), who="B resumed")
                mark = alice.mark()
                b.softkey(SoftKey.END_CALL, 1, b_ref)
                await wait_event(alice, "CALL_CLOSED", since=mark)

        run(body)


def test_sccp_caller_held_by_sip_phone_hears_music(server: OffhookServer, tmp_path: Path) -> None:
    require_capture()
    alice = sip_phone(tmp_path, server, "alice")
    with alice:
        alice.wait_registered()

        async def body() -> None:
            async with sccp_phones(server, "A") as (a,):
                ref = await off_hook_call(a)
                mark, ua_mark = a.mark(), alice.mark()
                a.dial("1001")
                await wait_event(alice, "CALL_INCOMING", since=ua_mark)
                await sip_do(alice.accept)
                await a.wait_for(state_is(CallStateCode.CONNECTED, ref), since=mark, timeout=10)
                await wait_event(alice, "CALL_ESTABLISHED", since=ua_mark)
                await wait_hearing(lambda: sccp_heard(a), (TONES["alice"],), who="A")
                await sip_do(alice.hold)
                await wait_hearing(
                    lambda: sccp_heard(a), (MOH_HZ,), (TONES["alice"],), who="A held"
                )
                await sip_do(alice.resume)
                await wait_hearing(
                    lambda: sccp_heard(a), (TONES["alice"],), (MOH_HZ,), who="A resumed"
                )
                await wait_hearing(
                    lambda: sip_heard(tmp_path, alice), (tone_of(a),), tries=3, who="alice"
                )
                mark = alice.mark()
                a.on_hook(1)
                await wait_event(alice, "CALL_CLOSED", since=mark)

        run(body)
