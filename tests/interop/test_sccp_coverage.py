"""SCCP call coverage against a real ``offhook serve``: CFwdAll, DND, HLog, Messages, lamps.

The phones are the SCCP simulator (``support.sccp_phone``), registered as a
7961 and 7960s do; everything is judged from what the node sends them (the
softkeys are pressed by the labels of the softkey template it gave) and
from the call records.

=================  =====  =====  ========  ===================================
device             model  DN     CSS       coverage
=================  =====  =====  ========  ===================================
SEP00000000D001    7961   2001   staff     voicemail 2003; speed dial 2002;
                          2100             line 2 shared with D002
SEP00000000D002    7960   2002   staff     line 2: 2100 (shared); pickup group sales
                          2100
SEP00000000D003    7960   2003   staff     pickup group sales
SEP00000000D004    7960   2004   boss      partition exec (staff cannot reach)
=================  =====  =====  ========  ===================================

Call park numbers 7000-7009, pickup group ``sales`` (number 8100) and hunt
pilot 1500 (line group ``desk``: 2002 then 2003, top down), all in
partition internal.

A voicemail system (SIPp, from the ``voicemail`` trunk's address) sets
message waiting with an unsolicited NOTIFY message-summary.

One message the phone sends (the DND softkey) is encoded by scapy's Skinny
layer rather than ours, and the lamps' SetLamp the node sends is read by
scapy: two independent codecs agree on the wire. Every wait is
bounded; nothing is judged by how long something took.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from interop.peers import require_binary
from interop.sipp import Sipp
from interop.test_media_features import wait_media_server
from offhook.sccp.messages import CallState, ForwardStat, Message, SetLamp, SetRinger
from offhook.sccp.ui import CallStateCode, LampMode, RingMode, Stimulus
from support.ports import HOST
from support.sccp_phone import SccpPhone
from support.server import OffhookServer
from support.skinny_tshark import TSHARK, tshark_problems

T = TypeVar("T")

A, B, C, X = "SEP00000000D001", "SEP00000000D002", "SEP00000000D003", "SEP00000000D004"


def plan() -> dict[str, Any]:
    def phone(name: str, model: str, dn: str, css: str, **line: Any) -> dict[str, Any]:
        partition = line.pop("partition", "internal")
        return {
            "name": name,
            "protocol": "sccp",
            "model": model,
            "css": css,
            "lines": [{"dn": dn, "display": f"Phone {dn}", "partition": partition, **line}],
        }

    shared = {"dn": "2100", "display": "Shared", "partition": "internal"}
    anna = phone(A, "7961", "2001", "staff", voicemail="2003")
    anna["speed_dials"] = [{"number": "2002", "label": "Bob"}]
    anna["lines"].append(shared)
    bob = phone(B, "7960", "2002", "staff", pickup_group="sales")
    bob["lines"].append(shared)
    return {
        # The voicemail system's trunk: its NOTIFYs set message waiting.
        "trunks": [
            {
                "name": "voicemail",
                "protocol": "sip",
                "host": HOST,
                "port": 5999,
                "css": "staff",
                "options_ping": 0,
                "inbound_addresses": [f"{HOST}/32"],
            }
        ],
        "partitions": ["internal", "exec"],
        "call_park": [{"range": "7000-7009", "partition": "internal", "reversion": 60}],
        "pickup_groups": [{"name": "sales", "number": "8100", "partition": "internal"}],
        "line_groups": [{"name": "desk", "distribution": "top-down", "members": ["2002", "2003"]}],
        "hunt_lists": [{"name": "desk", "line_groups": ["desk"]}],
        "hunt_pilots": [{"pattern": "1500", "partition": "internal", "hunt_list": "desk"}],
        "calling_search_spaces": [
            {"name": "staff", "partitions": ["internal"]},
            {"name": "boss", "partitions": ["internal", "exec"]},
        ],
        "devices": [
            anna,
            bob,
            phone(C, "7960", "2003", "staff", pickup_group="sales"),
            phone(X, "7960", "2004", "boss", partition="exec"),
        ],
    }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, plan())
    srv.start()
    try:
        wait_media_server(srv)  # park plays music on hold
        yield srv
    finally:
        srv.stop()


def run(body: Callable[[], Awaitable[T]], timeout: float = 90.0) -> T:
    async def main() -> T:
        return await asyncio.wait_for(body(), timeout)

    return asyncio.run(main())


@asynccontextmanager
async def phones(server: OffhookServer, *names: str) -> AsyncIterator[list[SccpPhone]]:
    models = {A: "7961"}
    registered = [SccpPhone(n, server.sccp_port, model=models.get(n, "7960")) for n in names]
    try:
        for phone in registered:
            await phone.register()
        yield registered
    finally:
        for phone in registered:
            await phone.close()


def state_is(code: CallStateCode) -> Callable[[Message], bool]:
    return lambda m: isinstance(m, CallState) and m.call_state == code


def forward_of(line: int, number: str) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return (
            isinstance(m, ForwardStat)
            and m.line_number == line
            and m.forward_all_number == number
            and m.forward_all_active == int(bool(number))
        )

    return match


async def set_forward(phone: SccpPhone, number: str) -> None:
    """CFwdAll, the destination on the keypad: the phone shows the forward."""
    mark = phone.mark()
    phone.softkey("CFwdAll", 1)
    await phone.wait_for(state_is(CallStateCode.OFF_HOOK), since=mark, timeout=10)
    phone.dial(number)
    await phone.wait_for(forward_of(1, number), since=mark, timeout=10)
    await phone.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)


async def call(caller: SccpPhone, number: str) -> int:
    """``caller`` goes off hook and dials ``number``; the call reference."""
    mark = caller.mark()
    caller.off_hook(1)
    state = await caller.wait_for(state_is(CallStateCode.OFF_HOOK), since=mark, timeout=10)
    caller.dial(number)
    return int(state.call_reference)


# ---------------------------------------------------------------- forward all


def test_cfwdall_forwards_the_line_and_shows_it(server: OffhookServer) -> None:
    async def body() -> None:
        async with phones(server, A, B, C) as (a, b, c):
            assert "CFwdAll" in a.keys_of(0)  # the idle softkey set offers it
            await set_forward(a, "2003")
            assert a.forwards[1].forward_all_number == "2003"
            assert a.status_line == "Forwarded to 2003"
            # a call to 2001 rings 2003, not 2001
            ring_mark, a_mark = c.mark(), a.mark()
            await call(b, "2001")
            ring = await c.wait_for(state_is(CallStateCode.RING_IN), since=ring_mark, timeout=10)
            assert not [m for m in a.received[a_mark:] if isinstance(m, CallState)]
            c.softkey("Answer", 1, ring.call_reference)
            await b.wait_for(state_is(CallStateCode.CONNECTED), timeout=10)
            b.on_hook(1)
            await c.wait_for(state_is(CallStateCode.ON_HOOK), since=ring_mark, timeout=10)
            # pressed again: the forward is cleared
            mark = a.mark()
            a.softkey("CFwdAll", 1)
            await a.wait_for(forward_of(1, ""), since=mark, timeout=10)
            await a.wait_display("Forward all off", since=len(a.displayed) - 1)
            assert a.status_line == ""

    run(body)
    (row,) = server.wait_cdr(lambda r: r["calling"] == "2002")
    assert (row["called"], row["original_called"]) == ("2003", "2001")
    assert (row["last_redirecting"], row["redirect_reason"]) == ("2001", "forward-all")


def test_cfwdall_outside_the_forward_css_is_refused(server: OffhookServer) -> None:
    async def body() -> None:
        async with phones(server, A) as (a,):
            mark = a.mark()
            since = len(a.displayed)
            a.softkey("CFwdAll", 1)
            await a.wait_for(state_is(CallStateCode.OFF_HOOK), since=mark, timeout=10)
            a.dial("2004")  # in partition exec: staff cannot reach it
            await a.wait_display("Not allowed", since=since)
            assert a.forwards[1].forward_all_active == 0

    run(body)


def test_a_forward_survives_a_restart_of_the_node(server: OffhookServer) -> None:
    async def body(first: bool) -> None:
        async with phones(server, A) as (a,):
            if first:
                await set_forward(a, "2002")
            else:
                # the registration's ForwardStatReq is answered with the stored forward
                assert a.forwards[1].forward_all_number == "2002"
                assert a.status_line == "Forwarded to 2002"

    run(lambda: body(True))
    server.stop()
    server.start()
    wait_media_server(server)
    run(lambda: body(False))


# ---------------------------------------------------------------- park


def test_park_softkey_parks_the_call_and_another_phone_retrieves_it(
    server: OffhookServer,
) -> None:
    async def body() -> None:
        async with phones(server, A, B, C) as (a, b, c):
            b_mark = b.mark()
            a_ref = await call(a, "2002")
            ring = await b.wait_for(state_is(CallStateCode.RING_IN), since=b_mark, timeout=10)
            b.softkey("Answer", 1, ring.call_reference)
            await a.wait_for(state_is(CallStateCode.CONNECTED), timeout=10)
            assert "Park" in a.keys_of(1)  # the connected softkey set offers it
            mark, since = a.mark(), len(a.displayed)
            a.softkey("Park", 1, a_ref)
            shown = await a.wait_display("Call park at 70", since=since, timeout=10)
            number = shown.rsplit(" ", 1)[-1]
            await a.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)
            # B stays in its call (parked, hearing music) until C retrieves it
            b_ref = ring.call_reference
            assert b.call_states[b_ref].call_state == CallStateCode.CONNECTED
            c_mark = c.mark()
            await call(c, number)
            await c.wait_for(state_is(CallStateCode.CONNECTED), since=c_mark, timeout=10)
            assert b.call_states[b_ref].call_state == CallStateCode.CONNECTED
            c.on_hook(1)
            await b.wait_for(
                lambda m: (
                    isinstance(m, CallState)
                    and m.call_state == CallStateCode.ON_HOOK
                    and m.call_reference == b_ref
                ),
                timeout=10,
            )

    run(body)
    rows = server.wait_cdr(lambda r: r["redirect_reason"] == "park")
    assert rows[0]["last_redirecting"] in ("2001", "7000")


# ---------------------------------------------------------------- pickup


async def picked_up(
    picker: SccpPhone, ringing: SccpPhone, caller: SccpPhone, press: Callable[[], None]
) -> None:
    """``caller`` calls ``ringing``'s 2002; ``press`` makes ``picker`` pick it up."""
    ring_mark = ringing.mark()
    await call(caller, "2002")
    ring = await ringing.wait_for(state_is(CallStateCode.RING_IN), since=ring_mark, timeout=10)
    mark = picker.mark()
    press()
    await picker.wait_for(state_is(CallStateCode.CONNECTED), since=mark, timeout=10)
    await caller.wait_for(state_is(CallStateCode.CONNECTED), timeout=10)
    # the picked-up call stopped ringing 2002
    await ringing.wait_for(
        lambda m: (
            isinstance(m, CallState)
            and m.call_state == CallStateCode.ON_HOOK
            and m.call_reference == ring.call_reference
        ),
        since=ring_mark,
        timeout=10,
    )
    caller.on_hook(1)
    await picker.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)


def test_pickup_answers_a_call_ringing_in_the_own_group(server: OffhookServer) -> None:
    async def body() -> None:
        async with phones(server, A, B, C) as (a, b, c):
            assert "PickUp" in c.keys_of(0)
            await picked_up(c, b, a, lambda: c.softkey("PickUp", 1))

    run(body)
    rows = server.wait_cdr(lambda r: r["redirect_reason"] == "pickup")
    assert (rows[0]["calling"], rows[0]["called"], rows[0]["last_redirecting"]) == (
        "2001",
        "2003",
        "2002",
    )


def test_gpickup_takes_a_group_number_or_a_directory_number(server: OffhookServer) -> None:
    async def body() -> None:
        async with phones(server, A, B, X) as (a, b, x):

            def gpickup(number: str) -> Callable[[], None]:
                def press() -> None:
                    x.softkey("GPickUp", 1)
                    x.dial(number)

                return press

            await picked_up(x, b, a, gpickup("8100"))  # the group's number
            await picked_up(x, b, a, gpickup("2002"))  # the ringing DN: directed pickup

    run(body)
    rows = server.wait_cdr(lambda r: r["redirect_reason"] == "pickup", count=2)
    assert {r["called"] for r in rows} == {"2004"}


# ---------------------------------------------------------------- DND, HLog


def test_dnd_offers_calls_without_ringing(server: OffhookServer) -> None:
    from scapy.contrib import skinny

    async def body() -> None:
        async with phones(server, A, B) as (a, b):
            assert a.soft_keys["DND"] == 0x3F
            # the DND softkey, encoded by scapy's Skinny layer
            frame = bytes(skinny.Skinny() / skinny.SkinnyMessageSoftKeyEvent(key=0x3F, instance=1))
            a.send_raw(frame)
            await a.wait_display("Do Not Disturb active")
            assert a.status_line == "Do Not Disturb active"
            mark = a.mark()
            await call(b, "2001")
            await a.wait_for(state_is(CallStateCode.RING_IN), since=mark, timeout=10)
            ringer = await a.wait_for(SetRinger, since=mark, timeout=10)
            assert ringer.ring_mode == RingMode.OFF
            await b.wait_for(state_is(CallStateCode.RING_OUT), timeout=10)
            b.on_hook(1)
            await a.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)
            since = len(a.displayed)
            a.softkey("DND", 1)
            await a.wait_display("Do Not Disturb off", since=since)
            assert a.status_line == ""
            mark = a.mark()
            await call(b, "2001")
            ringer = await a.wait_for(SetRinger, since=mark, timeout=10)
            assert ringer.ring_mode == RingMode.INSIDE

    run(body)


def test_hlog_logs_out_of_hunt_groups_and_back(server: OffhookServer) -> None:
    async def hunted(caller: SccpPhone, members: list[SccpPhone]) -> SccpPhone:
        """``caller`` calls the pilot: the member that rings (then the caller hangs up)."""
        marks = {member.name: member.mark() for member in members}
        await call(caller, "1500")
        rings = {
            asyncio.ensure_future(
                m.wait_for(state_is(CallStateCode.RING_IN), since=marks[m.name], timeout=10)
            ): m
            for m in members
        }
        done, pending = await asyncio.wait(rings, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        first = done.pop()
        first.result()  # a timeout: nobody rang
        ringing = rings[first]
        caller.on_hook(1)
        await ringing.wait_for(
            state_is(CallStateCode.ON_HOOK), since=marks[ringing.name], timeout=10
        )
        return ringing

    async def body() -> None:
        async with phones(server, A, B, C) as (a, b, c):
            assert "HLog" in b.keys_of(0)
            assert await hunted(a, [b, c]) is b  # top down: 2002 first
            b.softkey("HLog", 1)
            await b.wait_display("Logged out of hunt groups")
            assert b.status_line == "Logged out of hunt groups"
            assert await hunted(a, [b, c]) is c  # 2002 is skipped
            since = len(b.displayed)
            b.softkey("HLog", 1)
            await b.wait_display("Logged into hunt groups", since=since)
            assert b.status_line == ""
            assert await hunted(a, [b, c]) is b

    run(body, timeout=60)


# ---------------------------------------------------------------- voicemail, lamps


def test_messages_calls_the_voicemail_pilot(server: OffhookServer) -> None:
    async def body() -> None:
        async with phones(server, A, B, C) as (a, b, c):
            mark = c.mark()
            a.stimulus(Stimulus.VOICEMAIL)  # the Messages button
            await c.wait_for(state_is(CallStateCode.RING_IN), since=mark, timeout=10)
            a.on_hook(1)
            await c.wait_for(state_is(CallStateCode.ON_HOOK), since=mark, timeout=10)
            since = len(b.displayed)
            b.softkey("Messages", 1)  # 2002 has no voicemail
            await b.wait_display("No voicemail", since=since)

    run(body)
    (row,) = server.wait_cdr(lambda r: r["calling"] == "2001")
    assert row["called"] == "2003"


def test_a_speed_dial_lamp_shows_the_line_in_use(server: OffhookServer) -> None:
    from scapy.contrib import skinny

    async def body() -> None:
        async with phones(server, A, B, C) as (a, b, c):
            sd = (Stimulus.SPEED_DIAL, 1)  # A's speed dial 1 is 2002
            ring_mark, mark = c.mark(), a.mark()
            await call(b, "2003")
            await a.wait_lamp(*sd, LampMode.ON)
            lamp = await a.wait_for(SetLamp, since=mark)
            seen = skinny.Skinny(a.received_raw[a.received.index(lamp)]).payload
            assert (seen.stimulus, seen.instance, seen.mode) == (2, 1, 2)  # scapy's reading
            await c.wait_for(state_is(CallStateCode.RING_IN), since=ring_mark, timeout=10)
            b.on_hook(1)
            await a.wait_lamp(*sd, LampMode.OFF)
            await call(c, "2002")  # 2002 rings: the lamp blinks
            await a.wait_lamp(*sd, LampMode.BLINK)
            c.on_hook(1)
            await a.wait_lamp(*sd, LampMode.OFF)

    run(body)


def test_a_shared_line_in_use_shows_remote_in_use(server: OffhookServer) -> None:
    async def body() -> None:
        async with phones(server, A, B, C) as (a, b, c):
            mark, ring_mark = b.mark(), c.mark()
            a.off_hook(2)  # A takes the shared line 2100 and calls C
            await a.wait_for(state_is(CallStateCode.OFF_HOOK), timeout=10)
            a.dial("2003", line=2)
            remote = await b.wait_for(state_is(CallStateCode.REMOTE_MULTILINE), since=mark)
            assert remote.line_instance == 2
            await b.wait_lamp(Stimulus.LINE, 2, LampMode.ON)
            ring = await c.wait_for(state_is(CallStateCode.RING_IN), since=ring_mark, timeout=10)
            assert ring.line_instance == 1
            a.on_hook(2)
            await b.wait_for(
                lambda m: (
                    isinstance(m, CallState)
                    and m.call_state == CallStateCode.ON_HOOK
                    and m.call_reference == remote.call_reference
                ),
                since=mark,
                timeout=10,
            )
            await b.wait_lamp(Stimulus.LINE, 2, LampMode.OFF)
            # B's own appearance never showed a call of its own
            own = [
                m
                for m in b.received[mark:]
                if isinstance(m, CallState) and m.call_reference != remote.call_reference
            ]
            assert own == []

    run(body)


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_reads_every_coverage_frame(server: OffhookServer, tmp_path: Path) -> None:
    pytest.importorskip("scapy.all")

    async def body() -> list[list[bytes]]:
        async with (
            SccpPhone(A, server.sccp_port, model="7961", version=0x11) as a,
            SccpPhone(B, server.sccp_port) as b,
        ):
            await a.register()
            await b.register()
            await set_forward(a, "2002")  # ForwardStat with a number, the idle prompt
            a.softkey("CFwdAll", 1)
            await a.wait_for(forward_of(1, ""), timeout=10)
            b.softkey("DND", 1)
            await b.wait_display("Do Not Disturb active")
            b.softkey("DND", 1)
            await b.wait_display("Do Not Disturb off")
            mark = b.mark()
            a.off_hook(2)  # the shared line: remote in use on B
            await a.wait_for(state_is(CallStateCode.OFF_HOOK), timeout=10)
            a.dial("2002", line=2)  # and B's line 1 rings: A's busy lamp blinks
            await b.wait_for(state_is(CallStateCode.REMOTE_MULTILINE), since=mark)
            await a.wait_lamp(Stimulus.SPEED_DIAL, 1, LampMode.BLINK)
            a.on_hook(2)
            await a.wait_lamp(Stimulus.SPEED_DIAL, 1, LampMode.OFF)
            await b.wait_lamp(Stimulus.LINE, 2, LampMode.OFF)
            b.softkey("Messages", 1)
            await b.wait_display("No voicemail")
            return [a.received_raw, b.received_raw]

    streams = run(body)
    problems = tshark_problems(streams, tmp_path / "sccp_coverage.pcap")
    assert not problems, json.dumps(problems, indent=1)


def test_a_voicemail_notify_lights_the_message_lamp(server: OffhookServer, tmp_path: Path) -> None:
    from scapy.contrib import skinny

    require_binary("sipp")

    def notify(waiting: bool, new: int) -> None:
        keys = {"waiting": "yes" if waiting else "no", "new": str(new)}
        sipp = Sipp(
            tmp_path,
            "sccp_mwi_notify",
            f"voicemail-{new}",
            target=f"{HOST}:{server.sip_port}",
            service="2001",
            keys=keys,
        )
        result = sipp.run()
        assert result.ok, result.output

    def lamp_to(mode: LampMode) -> Callable[[Message], bool]:
        def match(m: Message) -> bool:
            return (
                isinstance(m, SetLamp) and m.stimulus == Stimulus.VOICEMAIL and m.lamp_mode == mode
            )

        return match

    async def body() -> None:
        async with phones(server, A, B) as (a, b):
            mark = a.mark()
            await asyncio.to_thread(notify, True, 2)
            lamp = await a.wait_for(lamp_to(LampMode.ON), since=mark, timeout=10)
            seen = skinny.Skinny(a.received_raw[a.received.index(lamp)]).payload
            assert (seen.stimulus, seen.instance, seen.mode) == (0x0F, 0, 2)  # scapy's reading
            assert not [m for m in b.received if isinstance(m, SetLamp) and m.stimulus == 0x0F]
            await asyncio.to_thread(notify, False, 0)
            await a.wait_lamp(Stimulus.VOICEMAIL, 0, LampMode.OFF, timeout=10)
        # a phone registering while messages wait gets the lamp at once
        await asyncio.to_thread(notify, True, 1)
        async with phones(server, A) as (a,):
            await a.wait_lamp(Stimulus.VOICEMAIL, 0, LampMode.ON, timeout=10)

    run(body)
