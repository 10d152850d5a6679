"""Faults around the media server, through a real ``offhook serve``.

* The media server child killed (SIGKILL) under a three-party meet-me and a
  held call: those calls are cleared with cause 38 (network out of order,
  in their CDRs), a direct call between two other phones goes on with RTP
  both ways, the supervisor starts a new media server, and a new hold plays
  music again.
* RTP to a media server endpoint from a source that is not its far end is
  dropped and counted (``dropped_source`` in the media server's stats); a
  bounded flood of it leaves the media server's memory flat and the held
  party hearing music.
* A REFER to a number outside the transferring phone's calling search space
  is refused (NOTIFY with a failure status): no call to the target, the
  two parties stay connected. The transferring phone is SIPp
  (``uas_refer.xml``): baresip 1.0 hangs up by itself when its transfer fails.

Phones as in ``interop.sccp_media`` (SCCP simulators with their own tones,
baresip for SIP); what a phone hears is judged from the RTP it receives.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import struct
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.peers import require_binary, require_capture
from interop.sccp_media import (
    MEETME,
    MOH_HZ,
    PIN,
    SCCP,
    SIP_DN,
    TONES,
    describe,
    dial_uri,
    hears,
    off_hook_call,
    press,
    run,
    sccp_call,
    sccp_heard,
    sccp_phones,
    sccp_plan,
    sip_heard,
    sip_phone,
    start_server,
    state_is,
    tone_of,
    wait_hearing,
)
from interop.sipp import Sipp
from interop.sipp import describe as describe_sipp
from interop.test_sip_calls import register_sipp_uas
from offhook.sccp.messages import StartMediaTransmission
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode
from support.mediaserver import ControlPeer
from support.ports import HOST
from support.rtp import PCMU, tone
from support.sccp_phone import SccpPhone
from support.server import OffhookServer

NETWORK_OUT_OF_ORDER = "38"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = start_server(tmp_path, sccp_plan(tmp_path))
    try:
        yield srv
    finally:
        srv.stop()


def media_status(server: OffhookServer) -> dict[str, Any]:
    media = server.status().get("media_server") or {}
    assert isinstance(media, dict)
    return media


async def wait_media_back(server: OffhookServer, old_pid: int, timeout: float = 30.0) -> int:
    """Wait until a new media server child (not ``old_pid``) is up and connected."""
    deadline = time.monotonic() + timeout
    media: dict[str, Any] = {}
    while time.monotonic() < deadline:
        media = await asyncio.to_thread(media_status, server)
        pid = media.get("pid")
        if media.get("connected") and pid and pid != old_pid:
            return int(pid)
        await asyncio.sleep(0.3)
    raise AssertionError(f"no new media server within {timeout} s: {media}")


async def meetme_party(phone: SccpPhone) -> int:
    ref = await off_hook_call(phone)
    mark = phone.mark()
    phone.dial(MEETME)
    await phone.wait_for(state_is(CallStateCode.CONNECTED, ref), since=mark, timeout=10)
    await phone.wait_for(StartMediaTransmission, since=mark, timeout=10)
    phone.dial(PIN, call_reference=ref)
    return ref


async def rtp_flows(phone: SccpPhone, packets: int = 25, timeout: float = 5.0) -> bool:
    """``phone`` receives ``packets`` more RTP packets within ``timeout`` seconds."""
    before = phone.rtp_received
    return await phone.wait_rtp(before + packets, timeout) >= before + packets


def test_media_server_killed_clears_its_calls_only(server: OffhookServer) -> None:
    async def body() -> None:
        async with sccp_phones(server, *"ABCDEFG") as (a, b, c, d, e, f, g):
            conf = [a, b, c]
            conf_refs = [await meetme_party(p) for p in conf]
            for p in conf:
                others = tuple(tone_of(o) for o in conf if o is not p)
                await wait_hearing(lambda p=p: sccp_heard(p), others, who=p.name)  # type: ignore[misc]
            d_ref, e_ref = await sccp_call(d, e, SCCP["E"][1])
            await press(e, SoftKey.HOLD, e_ref, CallStateCode.HOLD)
            await wait_hearing(lambda: sccp_heard(d), (MOH_HZ,), (tone_of(e),), who="D held")
            f_ref, g_ref = await sccp_call(f, g, SCCP["G"][1])
            await wait_hearing(lambda: sccp_heard(f), (tone_of(g),), who="F")
            await wait_hearing(lambda: sccp_heard(g), (tone_of(f),), who="G")

            media = await asyncio.to_thread(media_status, server)
            old_pid = int(media["pid"])
            marks = {p.name: p.mark() for p in (a, b, c, d, e, f, g)}
            os.kill(old_pid, signal.SIGKILL)

            # the calls the media server anchored are cleared ...
            for p, ref in [*zip(conf, conf_refs, strict=True), (d, d_ref), (e, e_ref)]:
                await p.wait_for(
                    state_is(CallStateCode.ON_HOOK, ref), since=marks[p.name], timeout=15
                )
            # ... the direct call is not: RTP still flows both ways
            for p in (f, g):
                assert await rtp_flows(p), f"{p.name}: RTP stopped"
                cleared = [
                    m for m in p.received[marks[p.name] :] if state_is(CallStateCode.ON_HOOK)(m)
                ]
                assert not cleared, (p.name, cleared)

            new_pid = await wait_media_back(server, old_pid)
            assert new_pid != old_pid
            # a new hold plays music again (F's call with G, untouched until now)
            await press(g, SoftKey.HOLD, g_ref, CallStateCode.HOLD)
            await wait_hearing(
                lambda: sccp_heard(f), (MOH_HZ,), (tone_of(g),), tries=6, who="F held"
            )
            await press(g, SoftKey.RESUME, g_ref, CallStateCode.CONNECTED)
            await wait_hearing(lambda: sccp_heard(f), (tone_of(g),), (MOH_HZ,), who="F resumed")
            f.on_hook(1)
            await g.wait_for(state_is(CallStateCode.ON_HOOK, g_ref), timeout=10)
            assert f_ref

    run(body)
    conf_rows = server.wait_cdr(lambda r: r["called"] == MEETME, count=3)
    assert [r["cause"] for r in conf_rows] == [NETWORK_OUT_OF_ORDER] * 3, conf_rows
    (held_row,) = server.wait_cdr(lambda r: r["called"] == SCCP["E"][1])
    assert held_row["cause"] == NETWORK_OUT_OF_ORDER, held_row
    (direct_row,) = server.wait_cdr(lambda r: r["called"] == SCCP["G"][1])
    assert direct_row["cause"] == "16", direct_row
    status = media_status(server)
    assert status["connected"] and status["starts"] >= 2, status


# -- RTP from a wrong source ------------------------------------------------------------

STRANGER = "127.0.0.2"  # another loopback address: not the held phone's
FLOOD_PACKETS = 20_000
FLOOD_SECONDS = 8.0
RSS_MARGIN_KB = 4096


def rss_kb(pid: int) -> int:
    """The resident set size of process ``pid`` (VmRSS, kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def rtp(seq: int, ssrc: int = 0x5EED) -> bytes:
    """A valid-looking G.711 RTP packet (20 ms of mu-law silence)."""
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, ssrc) + b"\xff" * 160


async def send_from(
    source: tuple[str, int], target: tuple[str, int], count: int, seconds: float
) -> int:
    """Send ``count`` RTP packets from ``source`` to ``target`` in about ``seconds``."""
    batch = 100
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(source)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        while sent < count:
            for _ in range(min(batch, count - sent)):
                sock.sendto(rtp(sent), target)
                sent += 1
            due = start + seconds * sent / count
            await asyncio.sleep(max(0.0, due - loop.time()))
    return sent


async def media_stats(control: str) -> dict[str, Any]:
    """The media server's ``stats`` over its control socket (a second, read-only client)."""
    peer = await ControlPeer.connect(control)
    try:
        reply = await peer.ok("stats")
    finally:
        await peer.close()
    return reply


async def moh_source(d: SccpPhone) -> tuple[str, int]:
    """Where the music ``d`` hears comes from: the source that grows while it is held."""
    before = Counter[tuple[str, int]]()
    for endpoint in d.rtp.values():
        before.update(endpoint.sources)
    await asyncio.sleep(1.0)
    after = Counter[tuple[str, int]]()
    for endpoint in d.rtp.values():
        after.update(endpoint.sources)
    grown = after - before
    assert len(grown) == 1, (before, after)
    (source,) = grown
    return source


def test_rtp_from_a_wrong_source_is_dropped_and_a_flood_leaves_memory_flat(
    server: OffhookServer,
) -> None:
    async def body() -> None:
        async with sccp_phones(server, "D", "E") as (d, e):
            _, e_ref = await sccp_call(d, e, SCCP["E"][1])
            await press(e, SoftKey.HOLD, e_ref, CallStateCode.HOLD)
            await wait_hearing(lambda: sccp_heard(d), (MOH_HZ,), (tone_of(e),), who="D held")
            moh = await moh_source(d)
            media = await asyncio.to_thread(media_status, server)
            pid, control = int(media["pid"]), str(media["control"])

            first = (await media_stats(control))["counters"]["dropped_source"]
            await send_from((STRANGER, 0), moh, 50, 0.5)
            await asyncio.sleep(0.3)
            dropped = (await media_stats(control))["counters"]["dropped_source"] - first
            assert dropped >= 50, dropped
            await wait_hearing(lambda: sccp_heard(d), (MOH_HZ,), who="D after strangers")

            await send_from((STRANGER, 0), moh, 1000, 0.5)  # warm up before the baseline
            await asyncio.sleep(0.5)
            base_rss = rss_kb(pid)
            base = (await media_stats(control))["counters"]["dropped_source"]
            flood = asyncio.ensure_future(
                send_from((STRANGER, 0), moh, FLOOD_PACKETS, FLOOD_SECONDS)
            )
            during = await sccp_heard(d, 2.0)  # music goes on under the flood
            sent = await flood
            await asyncio.sleep(0.5)
            after_rss = rss_kb(pid)
            counted = (await media_stats(control))["counters"]["dropped_source"] - base
            assert hears(during, (MOH_HZ,)), describe(during)
            assert counted >= 0.95 * sent, (counted, sent)
            assert after_rss - base_rss <= RSS_MARGIN_KB, (base_rss, after_rss)
            await wait_hearing(lambda: sccp_heard(d), (MOH_HZ,), who="D after the flood")
            # the stranger never got the music: the media server still sends to D only
            assert (await asyncio.to_thread(media_status, server))["pid"] == pid

    run(body)


# -- REFER outside the calling search space -----------------------------------------------


def css_plan(tmp_path: Path) -> dict[str, Any]:
    """bob's calling search space does not reach carol's partition; alice's does."""
    plan = sccp_plan(tmp_path)
    plan["partitions"] = ["internal", "restricted"]
    plan["calling_search_spaces"] = [
        {"name": "everything", "partitions": ["internal", "restricted"]},
        {"name": "limited", "partitions": ["internal"]},
    ]
    for dev in plan["devices"]:
        if dev["name"] == "carol":
            dev["lines"][0]["partition"] = "restricted"
        elif dev["name"] == "alice":
            dev["css"] = "everything"
        elif dev["name"] == "bob":
            dev["css"] = "limited"
    return plan


def test_refer_outside_the_calling_search_space_is_refused(tmp_path: Path) -> None:
    """alice (baresip) calls bob (SIPp); bob REFERs her to carol, whom his CSS cannot reach."""
    require_capture()
    require_binary("sipp")
    work = tmp_path / "sipp"
    work.mkdir()
    (work / "tone.pcmu").write_bytes(tone(PCMU, 8000, freq=TONES["bob"]))  # 1 s, looped
    server = start_server(tmp_path, css_plan(tmp_path))
    try:
        # carol is reachable in itself (alice's CSS reaches her partition)
        route = server.run_cli("dna", "--from", "alice", SIP_DN["carol"], check=True)
        assert "restricted" in route.stdout, route.stdout
        alice, carol = sip_phone(tmp_path, server, "alice"), sip_phone(tmp_path, server, "carol")
        bob = Sipp(
            work,
            "uas_refer.xml",
            "uas-bob",
            target=f"{HOST}:{server.sip_port}",
            keys={"target": SIP_DN["carol"]},
            pause_ms=8000,
            timeout_s=40,
        )
        with alice, carol, bob:
            register_sipp_uas(server, work, bob, "bob")
            alice.wait_registered()
            carol.wait_registered()
            alice.dial(dial_uri(server, SIP_DN["bob"]))
            alice.wait_event("CALL_ESTABLISHED", timeout=10)
            notify = wait_final_notify(bob)
            # offhook tells bob the transfer failed (404: not a number for him) ...
            assert notify.startswith("SIP/2.0 4"), notify
            # ... nobody rings, and alice still talks to bob
            run(lambda: wait_hearing(lambda: sip_heard(tmp_path, alice), (TONES["bob"],), tries=2))
            assert "CALL_CLOSED" not in alice.event_types(), alice.event_types()
            assert "CALL_INCOMING" not in carol.event_types(), carol.event_types()
            result = bob.wait()  # bob hangs up after his pause
            assert result.ok, describe_sipp(result)
            alice.wait_event("CALL_CLOSED", timeout=10)
        rows = server.cdr_rows()
        assert not [r for r in rows if r.get("called_device") == "carol"], rows
        (call,) = [r for r in rows if r["called"] == SIP_DN["bob"]]
        assert call["cause"] == "16" and call["answer"], call
    finally:
        server.stop()


FINAL_NOTIFY = re.compile(
    r"^NOTIFY sip:.*?^Subscription-State: *terminated.*?^(SIP/2\.0 \d{3}[^\r\n]*)", re.S | re.M
)


def wait_final_notify(uas: Sipp, timeout: float = 15.0) -> str:
    """The sipfrag status line of the NOTIFY that ends the REFER subscription (SIPp's trace)."""
    trace = uas.workdir / f"{uas.role}.messages.log"
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = trace.read_text(errors="replace") if trace.exists() else ""
        found = FINAL_NOTIFY.search(text)
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no final NOTIFY within {timeout} s:\n{text[-3000:]}")
