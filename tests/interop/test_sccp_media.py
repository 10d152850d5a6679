"""SCCP phones with the media server: hold music, transfer, conference, meet-me, DTMF.

Through a real ``offhook serve`` (see ``interop.sccp_media`` for the plan):
SCCP phones (the simulator, each streaming its own sine) and SIP phones
(baresip, each with its own sine). What a phone hears is judged from the
RTP it receives, decoded: an SCCP phone keeps its received payloads, a
baresip phone's are captured with tshark.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary, require_capture
from interop.sccp_media import (
    MEETME,
    MOH_HZ,
    PIN,
    SCCP,
    TONES,
    answer,
    consult,
    describe,
    devices_in_calls,
    dial_uri,
    hears,
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
from interop.sipp import Sipp
from interop.sipp import describe as describe_sipp
from interop.test_sip_calls import PASSWORDS
from offhook.sccp.messages import StartMediaTransmission, StartTone, StopTone
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode, DeviceTone
from support.audio import has_tone
from support.ports import HOST
from support.sccp_phone import SccpPhone
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


def loop_deadline(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


def dtmf_digits(ua: Baresip, since: int) -> list[str]:
    """The digits ``ua`` reported receiving (CALL_DTMF_START events) from event ``since``."""
    return [e.param for e in ua.events[since:] if e.type == "CALL_DTMF_START"]


def extra(row: dict[str, str]) -> dict[str, Any]:
    """A CDR row's ``extra`` JSON (transfer and conference links)."""
    value = json.loads(row.get("extra") or "{}")
    assert isinstance(value, dict), row
    return value


async def all_calls_gone(phone: SccpPhone, *refs: int, since: int = 0) -> None:
    for ref in refs:
        await phone.wait_for(state_is(CallStateCode.ON_HOOK, ref), since=since, timeout=10)


@pytest.mark.parametrize("when", ["answered", "ringing"])
def test_sccp_transfer_joins_the_caller_to_the_target(server: OffhookServer, when: str) -> None:
    async def body() -> None:
        async with sccp_phones(server, "A", "B", "C") as (a, b, c):
            _, b_ref = await sccp_call(a, b, "2002")
            await wait_hearing(lambda: sccp_heard(a), (tone_of(b),), who="A")
            c_mark = c.mark()
            consult_ref = await consult(b, SoftKey.TRANSFER, b_ref, "2003")
            await wait_hearing(lambda: sccp_heard(a), (MOH_HZ,), (tone_of(b),), who="A held")
            ring = await c.wait_for(state_is(CallStateCode.RING_IN), since=c_mark, timeout=10)
            if when == "answered":
                await answer(c, ring=ring)
                await wait_hearing(lambda: sccp_heard(c), (tone_of(b),), who="C consulted")
            else:
                await b.wait_for(state_is(CallStateCode.RING_OUT, consult_ref), timeout=10)
            b_mark = b.mark()
            b.softkey(SoftKey.TRANSFER, 1, consult_ref)
            await all_calls_gone(b, b_ref, consult_ref, since=b_mark)
            if when == "ringing":
                await answer(c, ring=ring)
            await wait_hearing(lambda: sccp_heard(a), (tone_of(c),), (MOH_HZ,), who="A")
            await wait_hearing(lambda: sccp_heard(c), (tone_of(a),), (tone_of(b),), who="C")
            in_calls = await asyncio.to_thread(devices_in_calls, server)
            assert b.name not in in_calls, in_calls
            a.on_hook(1)
            await c.wait_for(state_is(CallStateCode.ON_HOOK), since=c_mark, timeout=10)

    run(body)
    (row,) = server.wait_cdr(lambda r: extra(r).get("transferred_by") == SCCP["B"][0])
    assert row["calling_device"] == SCCP["A"][0] and row["called_device"] == SCCP["C"][0], row


def test_sccp_phone_transfers_a_sip_caller_to_a_sip_phone(
    server: OffhookServer, tmp_path: Path
) -> None:
    require_capture()
    alice, carol = sip_phone(tmp_path, server, "alice"), sip_phone(tmp_path, server, "carol")
    with alice, carol:
        alice.wait_registered()
        carol.wait_registered()

        async def body() -> None:
            async with sccp_phones(server, "B") as (b,):
                mark = b.mark()
                await sip_do(alice.dial, dial_uri(server, "2002"))
                b_ref = await answer(b, since=mark)
                await wait_event(alice, "CALL_ESTABLISHED")
                carol_mark = carol.mark()
                consult_ref = await consult(b, SoftKey.TRANSFER, b_ref, "1003")
                await wait_event(carol, "CALL_INCOMING", since=carol_mark)
                await sip_do(carol.accept)
                await wait_event(carol, "CALL_ESTABLISHED", since=carol_mark)
                await b.wait_for(state_is(CallStateCode.CONNECTED, consult_ref), timeout=10)
                await wait_hearing(lambda: sccp_heard(b), (TONES["carol"],), who="B consulting")
                b_mark = b.mark()
                b.softkey(SoftKey.TRANSFER, 1, consult_ref)
                await all_calls_gone(b, b_ref, consult_ref, since=b_mark)
                await wait_hearing(
                    lambda: sip_heard(tmp_path, alice),
                    (TONES["carol"],),
                    (MOH_HZ, tone_of(b)),
                    tries=3,
                    who="alice",
                )
                await wait_hearing(
                    lambda: sip_heard(tmp_path, carol),
                    (TONES["alice"],),
                    (tone_of(b),),
                    tries=3,
                    who="carol",
                )
                for ua in (alice, carol):
                    assert "CALL_CLOSED" not in ua.event_types(), (ua.name, ua.event_types())
                mark = carol.mark()
                await sip_do(alice.hangup)
                await wait_event(carol, "CALL_CLOSED", since=mark)

        run(body)


async def hear_all(phones: Sequence[SccpPhone], who: str, tries: int = 4) -> None:
    """Every phone hears every other one and not itself (listened to at the same time)."""
    samples: list[Any] = []
    for _ in range(tries):
        samples = await asyncio.gather(*(sccp_heard(p) for p in phones))
        if all(
            hears(s, tuple(tone_of(o) for o in phones if o is not p), (tone_of(p), MOH_HZ))
            for p, s in zip(phones, samples, strict=True)
        ):
            return
    report = {p.name: describe(s) for p, s in zip(phones, samples, strict=True)}
    raise AssertionError(f"{who}: not everyone hears the others only: {report}")


async def add_party(b: SccpPhone, conf_ref: int, party: SccpPhone, number: str) -> None:
    """Confrn on the conference call, dial ``number``, it answers, Confrn again."""
    mark = party.mark()
    consult_ref = await consult(b, SoftKey.CONFERENCE, conf_ref, number)
    await answer(party, since=mark)
    await b.wait_for(state_is(CallStateCode.CONNECTED, consult_ref), timeout=10)
    b_mark = b.mark()
    b.softkey(SoftKey.CONFERENCE, 1, consult_ref)
    await b.wait_for(state_is(CallStateCode.ON_HOOK, consult_ref), since=b_mark, timeout=10)
    await b.wait_for(state_is(CallStateCode.CONNECTED, conf_ref), since=b_mark, timeout=10)


@pytest.mark.parametrize("parties", [3, 5])
def test_sccp_adhoc_conference(server: OffhookServer, parties: int) -> None:
    letters = "ABCDE"[:parties]

    async def body() -> None:
        async with sccp_phones(server, *letters) as phones:
            a, b, *others = phones
            _, conf_ref = await sccp_call(a, b, "2002")
            for party, letter in zip(others, letters[2:], strict=True):
                await add_party(b, conf_ref, party, SCCP[letter][1])
            await hear_all(phones, f"{parties}-party conference")
            leaver = a if parties > 3 else others[-1]
            staying = [p for p in phones if p is not leaver]
            marks = [p.mark() for p in staying]
            leaver.on_hook(1)
            await leaver.wait_for(state_is(CallStateCode.ON_HOOK), timeout=10)
            await hear_all(staying, f"after {leaver.name} left")
            for p, mark in zip(staying, marks, strict=True):
                cleared = [m for m in p.received[mark:] if state_is(CallStateCode.ON_HOOK)(m)]
                assert not cleared, f"{p.name} was cleared: {cleared}"

    run(body)
    rows = server.wait_cdr(lambda r: bool(extra(r).get("conference")), count=parties - 1)
    assert rows, server.cdr_rows()


# -- meet-me with a PIN ------------------------------------------------------------------


async def sccp_meetme(phone: SccpPhone) -> int:
    """``phone`` dials the meet-me number and is answered (the PIN prompt plays)."""
    ref = await off_hook_call(phone)
    mark = phone.mark()
    phone.dial(MEETME)
    await phone.wait_for(state_is(CallStateCode.CONNECTED, ref), since=mark, timeout=10)
    await phone.wait_for(StartMediaTransmission, since=mark, timeout=10)
    return ref


def test_meetme_pin_from_sccp_and_sip_phones(server: OffhookServer, tmp_path: Path) -> None:
    require_capture()
    alice = sip_phone(tmp_path, server, "alice")
    with alice:
        alice.wait_registered()

        async def body() -> None:
            async with sccp_phones(server, "A", "B") as (a, b):
                a_ref = await sccp_meetme(a)
                a.dial(PIN, call_reference=a_ref)  # KeypadButton digits on the call
                b_ref = await sccp_meetme(b)
                b.dial("9999", call_reference=b_ref)  # a wrong PIN: not let in
                samples = await sccp_heard(b, 2.0)
                assert not has_tone(samples, tone_of(a)), describe(samples)
                b.dial(PIN, call_reference=b_ref)
                await hear_all([a, b], "A and B in the meet-me")
                mark = alice.mark()
                await sip_do(alice.dial, dial_uri(server, MEETME))
                await wait_event(alice, "CALL_ESTABLISHED", since=mark)
                heard_before = await sip_heard(tmp_path, alice)
                assert not has_tone(heard_before, tone_of(a)), describe(heard_before)
                await sip_do(alice.command, "sndcode", PIN)  # RFC 4733 events
                await wait_hearing(
                    lambda: sip_heard(tmp_path, alice),
                    (tone_of(a), tone_of(b)),
                    tries=3,
                    who="alice in the meet-me",
                )
                for phone in (a, b):
                    await wait_hearing(
                        lambda phone=phone: sccp_heard(phone),  # type: ignore[misc]
                        (TONES["alice"], *(tone_of(p) for p in (a, b) if p is not phone)),
                        (tone_of(phone),),
                        who=phone.name,
                    )

        run(body)
    rows = server.wait_cdr(lambda r: r["called"] == MEETME, count=3)
    assert all(r["called_device"] == "conference" for r in rows), rows


# -- DTMF between SCCP and SIP phones ----------------------------------------------------


def test_sccp_keypad_reaches_a_sip_phone(server: OffhookServer, tmp_path: Path) -> None:
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
                dtmf_mark = alice.mark()
                a.dial("5#", call_reference=ref)
                deadline = loop_deadline(10)
                while dtmf_digits(alice, dtmf_mark) != ["5", "#"]:
                    assert asyncio.get_running_loop().time() < deadline, dtmf_digits(
                        alice, dtmf_mark
                    )
                    await asyncio.sleep(0.1)

        run(body)


def test_sip_info_digits_play_on_an_sccp_phone(server: OffhookServer, tmp_path: Path) -> None:
    require_binary("sipp")
    work = tmp_path / "sipp"
    work.mkdir()

    async def body() -> None:
        async with sccp_phones(server, "B") as (b,):
            caller = Sipp(
                work,
                "uac_auth_info.xml",
                "uac-info",
                target=f"{HOST}:{server.sip_port}",
                keys={"caller": "dave"},
                service=SCCP["B"][1],
                auth=("dave", PASSWORDS["dave"]),
                pause_ms=1500,
                timeout_s=30,
            )
            mark = b.mark()
            caller.start(listening=False)
            try:
                ref = await answer(b, since=mark)
                tones = await b.wait_for(
                    lambda msg: isinstance(msg, StartTone) and msg.tone == DeviceTone.DTMF_5,
                    since=mark,
                    timeout=10,
                )
                assert tones.call_reference == ref
                pound = await b.wait_for(
                    lambda msg: isinstance(msg, StartTone) and msg.tone == DeviceTone.DTMF_POUND,
                    since=mark,
                    timeout=10,
                )
                await b.wait_for(state_is(CallStateCode.ON_HOOK, ref), since=mark, timeout=15)
            finally:
                result = await asyncio.to_thread(caller.wait)
            assert result.ok, describe_sipp(result)
            # each digit's StartTone is followed by its StopTone, in order
            played = [
                ("start", msg.tone) if isinstance(msg, StartTone) else ("stop", None)
                for msg in b.received[b.received.index(tones) :]
                if isinstance(msg, StartTone | StopTone) and msg.call_reference == ref
            ]
            assert played[:4] == [
                ("start", DeviceTone.DTMF_5),
                ("stop", None),
                ("start", DeviceTone.DTMF_POUND),
                ("stop", None),
            ], played
            assert pound.call_reference == ref

    run(body)
