"""Shared pieces of the SCCP media tests: the plan, the node, phones, calls and what they hear.

A real ``offhook serve`` with its embedded media server (``[media] listen``
on loopback, the plan's music on hold a generated 1 kHz WAV, a meet-me
number with a PIN), SCCP phones played by ``support.sccp_phone`` (each
streaming its own sine, keeping what it receives) and SIP phones played by
baresip (each with its own sine; what it hears is taken from a tshark
capture of the RTP sent to its ports, as in ``test_media_features``).

=================  ======  ==========================  =========
device             DN      played by                   tone (Hz)
=================  ======  ==========================  =========
alice              1001    baresip                     440
bob                1002    baresip                     660
carol              1003    baresip                     880
SEP00000000A001    2001    SCCP simulator "A"          500
SEP00000000A002    2002    SCCP simulator "B"          620
SEP00000000A003    2003    SCCP simulator "C"          1150
SEP00000000A004    2004    SCCP simulator "D"          1600
SEP00000000A005    2005    SCCP simulator "E"          1850
SEP00000000A006    2006    SCCP simulator "F"          2100
SEP00000000A007    2007    SCCP simulator "G"          2300
(meet-me)          5000    media server bridge, PIN 1234
=================  ======  ==========================  =========

Music on hold is 1 kHz. Every wait is bounded; nothing is judged by how
long something took.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from interop.baresip import Baresip
from interop.peers import require_binary
from interop.test_media_features import MOH_HZ, TONES, heard, moh_plan, wait_media_server
from interop.test_sip_calls import PASSWORDS
from offhook.sccp.messages import (
    CallState,
    Message,
    StartMediaTransmission,
    StopMediaTransmission,
)
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode
from support.audio import decode_rtp_payloads, dominant_frequencies, has_tone
from support.ports import HOST
from support.sccp_phone import SccpPhone
from support.server import OffhookServer

T = TypeVar("T")

PIN = "1234"
MEETME = "5000"
SCCP = {
    "A": ("SEP00000000A001", "2001", 500),
    "B": ("SEP00000000A002", "2002", 620),
    "C": ("SEP00000000A003", "2003", 1150),
    "D": ("SEP00000000A004", "2004", 1600),
    "E": ("SEP00000000A005", "2005", 1850),
    "F": ("SEP00000000A006", "2006", 2100),
    "G": ("SEP00000000A007", "2007", 2300),
}
SIP_DN = {"alice": "1001", "bob": "1002", "carol": "1003"}
RTP_PACKETS = 3000  # 60 s of 20 ms packets per StartMediaTransmission
KEEP = 400  # 8 s of 20 ms packets kept per phone

__all__ = ["MOH_HZ", "TONES"]


def sccp_plan(tmp_path: Path) -> dict[str, Any]:
    """``test_media_features``' SIP phones and music on hold, SCCP phones, a meet-me PIN."""
    plan = moh_plan(tmp_path)
    plan["meetme"] = [{"number": MEETME, "pin": PIN}]
    for letter, (name, dn, _) in SCCP.items():
        plan["devices"].append(
            {
                "name": name,
                "protocol": "sccp",
                "model": "7960",
                "lines": [{"dn": dn, "display": f"Phone {letter}"}],
            }
        )
    return plan


def start_server(tmp_path: Path, plan: dict[str, Any]) -> OffhookServer:
    srv = OffhookServer(tmp_path, plan, extra_config={"media": {"listen": [HOST]}})
    srv.start()
    try:
        wait_media_server(srv)
    except BaseException:
        srv.stop()
        raise
    return srv


def state_is(code: CallStateCode, ref: int | None = None) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return isinstance(m, CallState) and m.call_state == code and ref in (None, m.call_reference)

    return match


def run(body: Callable[[], Awaitable[T]], timeout: float = 120.0) -> T:
    async def main() -> T:
        return await asyncio.wait_for(body(), timeout)

    return asyncio.run(main())


# ---------------------------------------------------------------- SCCP phones


@contextlib.asynccontextmanager
async def sccp_phones(server: OffhookServer, *letters: str) -> AsyncIterator[list[SccpPhone]]:
    """Registered SCCP phones, one per letter of ``SCCP``."""
    phones = [
        SccpPhone(
            SCCP[letter][0],
            server.sccp_port,
            rtp_packets=RTP_PACKETS,
            tone_hz=SCCP[letter][2],
            keep_payloads=KEEP,
        )
        for letter in letters
    ]
    try:
        for phone in phones:
            await phone.register()
        yield phones
    finally:
        for phone in phones:
            await phone.close()


def tone_of(phone: SccpPhone) -> int:
    return int(phone.tone_hz)


async def sccp_heard(phone: SccpPhone, seconds: float = 1.5) -> np.ndarray:
    """What ``phone`` receives during the next ``seconds``: its G.711 payloads, decoded."""
    phone.kept.clear()
    await asyncio.sleep(seconds)
    return decode_rtp_payloads(list(phone.kept))


async def sip_heard(tmp_path: Path, ua: Baresip, seconds: float = 1.5) -> np.ndarray:
    return await asyncio.to_thread(heard, tmp_path, ua, seconds)


def describe(samples: np.ndarray) -> str:
    return f"{len(samples)} samples, peaks {dominant_frequencies(samples, count=5)}"


def hears(samples: np.ndarray, want: tuple[float, ...], not_: tuple[float, ...] = ()) -> bool:
    return (
        len(samples) >= 4000
        and all(has_tone(samples, f) for f in want)
        and not any(has_tone(samples, f) for f in not_)
    )


async def wait_hearing(
    listen: Callable[[], Awaitable[np.ndarray]],
    want: tuple[float, ...],
    not_: tuple[float, ...] = (),
    *,
    tries: int = 4,
    who: str = "",
) -> np.ndarray:
    """Listen until ``want`` is heard and ``not_`` is not (media moves take a moment)."""
    samples = np.zeros(0, dtype=np.int16)
    for _ in range(tries):
        samples = await listen()
        if hears(samples, want, not_):
            return samples
    raise AssertionError(f"{who} does not hear {want} without {not_}: {describe(samples)}")


async def off_hook_call(phone: SccpPhone, line: int = 1) -> int:
    """Off hook: the call reference of the new call (dial tone)."""
    mark = phone.mark()
    phone.off_hook(line)
    state = await phone.wait_for(state_is(CallStateCode.OFF_HOOK), since=mark, timeout=10)
    return int(state.call_reference)


async def answer(phone: SccpPhone, since: int = 0, ring: CallState | None = None) -> int:
    """Answer the call ringing on ``phone`` (``ring``, else the next to ring from ``since``);
    returns its call reference once the phone shows it connected."""
    if ring is None:
        ring = await phone.wait_for(state_is(CallStateCode.RING_IN), since=since, timeout=10)
    mark = phone.mark()
    phone.softkey(SoftKey.ANSWER, 1, ring.call_reference)
    await phone.wait_for(
        state_is(CallStateCode.CONNECTED, ring.call_reference), since=mark, timeout=10
    )
    return int(ring.call_reference)


async def sccp_call(caller: SccpPhone, callee: SccpPhone, number: str) -> tuple[int, int]:
    """``caller`` dials ``number``, ``callee`` answers; both send RTP. (caller ref, callee ref)."""
    ring_mark = callee.mark()
    ref = await off_hook_call(caller)
    mark = caller.mark()
    caller.dial(number)
    callee_ref = await answer(callee, since=ring_mark)
    await caller.wait_for(state_is(CallStateCode.CONNECTED, ref), since=mark, timeout=10)
    await caller.wait_for(StartMediaTransmission, since=mark, timeout=10)
    return ref, callee_ref


async def press(phone: SccpPhone, key: SoftKey, ref: int, then: CallStateCode) -> int:
    """Press ``key`` on call ``ref`` and wait for the phone to show ``then``; the state's ref."""
    mark = phone.mark()
    phone.softkey(key, 1, ref)
    state = await phone.wait_for(state_is(then), since=mark, timeout=10)
    return int(state.call_reference)


async def hold_and_resume(phone: SccpPhone, ref: int, packets: int = 20) -> StartMediaTransmission:
    """``phone`` holds call ``ref`` (its media stops) and resumes it: its new
    StartMediaTransmission, once ``packets`` more RTP packets reached it."""
    mark = len(phone.received)
    phone.softkey(SoftKey.HOLD, 1, ref)
    await phone.wait_for(state_is(CallStateCode.HOLD), since=mark, timeout=10)
    await phone.wait_for(StopMediaTransmission, since=mark, timeout=10)
    mark, before = len(phone.received), phone.rtp_received
    phone.softkey(SoftKey.RESUME, 1, ref)
    await phone.wait_for(state_is(CallStateCode.CONNECTED), since=mark, timeout=10)
    smt = await phone.wait_for(StartMediaTransmission, since=mark, timeout=10)
    assert await phone.wait_rtp(before + packets, timeout=10) >= before + packets
    return smt


async def consult(phone: SccpPhone, key: SoftKey, ref: int, number: str) -> int:
    """Trnsfer/Confrn on call ``ref``: it is held, a consultation gets dial tone, ``number``
    is dialed on it. Returns the consultation's call reference."""
    mark = phone.mark()
    phone.softkey(key, 1, ref)
    await phone.wait_for(state_is(CallStateCode.HOLD, ref), since=mark, timeout=10)
    dialing = await phone.wait_for(state_is(CallStateCode.OFF_HOOK), since=mark, timeout=10)
    phone.dial(number)
    return int(dialing.call_reference)


def active_calls(server: OffhookServer) -> list[dict[str, Any]]:
    """The node's active calls (``offhook status --json``)."""
    return list(server.status()["calls"]["calls"])


def devices_in_calls(server: OffhookServer) -> list[str]:
    """The devices with a leg in an active call (media server ports included)."""
    return [leg["device"] for call in active_calls(server) for leg in call["legs"]]


# ---------------------------------------------------------------- SIP phones


def sip_phone(tmp_path: Path, server: OffhookServer, name: str) -> Baresip:
    require_binary("baresip")
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{HOST}:{server.sip_port}",
        password=PASSWORDS[name],
        regint=120,
        tone=TONES[name],
    )


def dial_uri(server: OffhookServer, number: str) -> str:
    return f"sip:{number}@{HOST}:{server.sip_port}"


async def wait_event(ua: Baresip, *events: str, since: int = 0, timeout: float = 15.0) -> Any:
    return await asyncio.to_thread(ua.wait_event, *events, timeout=timeout, since=since)


async def sip_do(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def monotonic_deadline(seconds: float) -> float:
    return time.monotonic() + seconds
