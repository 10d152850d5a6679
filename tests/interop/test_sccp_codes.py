"""Feature codes typed on SCCP keypads, and a forwarded call's redirect information.

Through a real ``offhook serve`` with ``interop.sccp_media``'s plan (SCCP
simulator phones A-G on 2001-2007, each sending its own sine; the media
server on loopback): ``*78``/``*79`` typed digit by digit set and clear do
not disturb (confirmed by the media server's tone, then cleared), ``**dn``
picks up a ringing phone, ``*21dn``/``#21`` forward all. The forwarded
call's CallInfo names the original called number, the last redirecting
number and CallManager's redirect reason (forward all: 15); tshark's Skinny
dissector reads the phone's whole stream without a malformed frame.
Every wait is bounded; nothing is judged by how long something took.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from interop.sccp_media import (
    SCCP,
    answer,
    off_hook_call,
    run,
    sccp_heard,
    sccp_phones,
    sccp_plan,
    start_server,
    state_is,
    tone_of,
    wait_hearing,
)
from offhook.sccp.messages import CallInfo, CallState, ForwardStat, Message, SetRinger
from offhook.sccp.ui import CallStateCode, RingMode
from support.audio import decode_rtp_payloads, dominant_frequencies, has_tone
from support.sccp_phone import SccpPhone
from support.server import OffhookServer
from support.skinny_tshark import TSHARK, tshark_problems

CONFIRM_HZ = (350, 440)  # the media server's confirmation tone (tone:confirm)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = start_server(tmp_path, sccp_plan(tmp_path))
    try:
        yield srv
    finally:
        srv.stop()


async def typed(phone: SccpPhone, code: str) -> None:
    """Off hook, ``code`` on the keypad: the code's call is confirmed, then cleared."""
    phone.kept.clear()
    ref = await off_hook_call(phone)
    mark = phone.mark()
    phone.dial(code)
    await phone.wait_for(state_is(CallStateCode.CONNECTED, ref), since=mark, timeout=10)
    await phone.wait_for(state_is(CallStateCode.ON_HOOK, ref), since=mark, timeout=15)
    samples = decode_rtp_payloads(list(phone.kept))  # what the phone heard meanwhile
    assert all(has_tone(samples, f) for f in CONFIRM_HZ), dominant_frequencies(samples, count=4)


async def ringer_of_call(caller: SccpPhone, callee: SccpPhone, number: str) -> int:
    """``caller`` dials ``number``; ``callee`` rings: its ring mode (then the caller hangs up)."""
    mark = callee.mark()
    ref = await off_hook_call(caller)
    caller.dial(number)
    await callee.wait_for(state_is(CallStateCode.RING_IN), since=mark, timeout=10)
    ringer = await callee.wait_for(SetRinger, since=mark, timeout=10)
    caller.on_hook(1, ref)
    await callee.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)
    return int(ringer.ring_mode)


def test_keypad_dnd_codes(server: OffhookServer) -> None:
    async def body() -> None:
        async with sccp_phones(server, "A", "B") as (a, b):
            shown = len(a.displayed)
            await typed(a, "*78")
            await a.wait_display("Do Not Disturb active", since=shown)
            assert a.status_line == "Do Not Disturb active"
            assert await ringer_of_call(b, a, "2001") == RingMode.OFF
            await typed(a, "*79")
            assert a.status_line == ""
            assert await ringer_of_call(b, a, "2001") == RingMode.INSIDE

    run(body)


def test_keypad_directed_pickup(server: OffhookServer) -> None:
    async def body() -> None:
        async with sccp_phones(server, "A", "B", "C") as (a, b, c):
            b_mark = b.mark()
            c_ref = await off_hook_call(c)
            c.dial("2002")
            ring = await b.wait_for(state_is(CallStateCode.RING_IN), since=b_mark, timeout=10)
            a_ref = await off_hook_call(a)
            a.dial("**2002")
            await a.wait_for(state_is(CallStateCode.CONNECTED, a_ref), timeout=10)
            await c.wait_for(state_is(CallStateCode.CONNECTED, c_ref), timeout=10)
            await b.wait_for(state_is(CallStateCode.ON_HOOK, ring.call_reference), timeout=10)
            await wait_hearing(lambda: sccp_heard(a), (tone_of(c),), who="A")
            await wait_hearing(lambda: sccp_heard(c), (tone_of(a),), who="C")
            c.on_hook(1, c_ref)
            await a.wait_for(state_is(CallStateCode.ON_HOOK, a_ref), timeout=10)

    run(body)
    rows = server.wait_cdr(lambda r: r["redirect_reason"] == "pickup")
    assert (rows[0]["calling"], rows[0]["called"], rows[0]["last_redirecting"]) == (
        "2003",
        "2001",
        "2002",
    )


def forward_of(number: str) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return isinstance(m, ForwardStat) and m.forward_all_number == number

    return match


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_keypad_forward_and_the_forwarded_calls_redirect_info(
    server: OffhookServer, tmp_path: Path
) -> None:
    pytest.importorskip("scapy.all")

    async def body() -> list[bytes]:
        async with sccp_phones(server, "A", "D", "E") as (a, d, e):
            mark = d.mark()
            await typed(d, "*212005")
            await d.wait_for(forward_of("2005"), since=mark, timeout=10)
            assert d.status_line == "Forwarded to 2005"
            e_mark, d_mark = e.mark(), d.mark()
            a_ref = await off_hook_call(a)
            a.dial("2004")
            ring = await e.wait_for(state_is(CallStateCode.RING_IN), since=e_mark, timeout=10)
            info = next(
                m
                for m in e.received[e_mark:]
                if isinstance(m, CallInfo) and m.call_reference == ring.call_reference
            )
            assert (info.calling_party, info.called_party) == ("2001", "2005")
            assert (info.original_called_party, info.last_redirecting_party) == ("2004", "2004")
            assert (info.original_cdpn_redirect_reason, info.last_redirecting_reason) == (15, 15)
            assert not [m for m in d.received[d_mark:] if isinstance(m, CallState)]
            await answer(e, ring=ring)
            a.on_hook(1, a_ref)
            await e.wait_for(state_is(CallStateCode.ON_HOOK, ring.call_reference), timeout=10)
            mark = d.mark()
            await typed(d, "#21")
            await d.wait_for(forward_of(""), since=mark, timeout=10)
            return e.received_raw

    stream = run(body)
    problems = tshark_problems([stream], tmp_path / "sccp_redirect.pcap")
    assert not problems, json.dumps(problems, indent=1)
    (row,) = server.wait_cdr(lambda r: r["calling"] == "2001")
    assert (row["original_called"], row["last_redirecting"], row["redirect_reason"]) == (
        "2004",
        "2004",
        "forward-all",
    )
    assert SCCP["E"][1] == row["called"]
