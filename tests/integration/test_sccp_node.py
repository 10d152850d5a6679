"""SCCP phones against a real ``offhook serve``: registration, status, tshark.

The node runs as a subprocess (``support.server``) with a plan holding two
SCCP phones (a 7960 speaking header version 0, a 7941 speaking 0x11) and a
SIP phone. The test phone simulator (``support.sccp_phone``) registers like
a 79xx; the node must answer with its lines, speed dials and button
template; an unknown device is rejected; ``offhook status`` lists the phones.
Every frame the node sent to the simulators is then fed to tshark's Skinny
dissector, which must flag none of them.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from offhook.sccp.messages import (
    ButtonTemplate,
    CallState,
    ConfigStat,
    OpenReceiveChannel,
    SetRinger,
    StartMediaTransmission,
    StartTone,
)
from offhook.sccp.ui import DeviceTone, RingMode
from support.sccp_phone import PhoneRejected, SccpPhone
from support.server import OffhookServer, ServerError, device
from support.skinny_tshark import TSHARK, tshark_problems

CAROL = "SEP001122334455"
DAVE = "SEP00AABBCCDDEE"
PLAN: dict[str, Any] = {
    "devices": [
        {
            "name": CAROL,
            "protocol": "sccp",
            "model": "7960",
            "lines": [{"dn": "1003", "display": "Carol"}, {"dn": "1004", "display": "Carol 2"}],
            "speed_dials": [{"number": "1001", "label": "Alice"}, {"number": "1005"}],
        },
        {
            "name": DAVE.lower(),  # the plan loader upper-cases SEP names
            "protocol": "sccp",
            "model": "7941",
            "lines": [{"dn": "1005", "display": "Dave"}],
        },
        device("alice", "alice-Secret-1", "1001"),
    ]
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = OffhookServer(tmp_path_factory.mktemp("sccp"), PLAN)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def run(body: Any, timeout: float = 60.0) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(body(), timeout)

    return asyncio.run(main())


def test_phones_register_with_their_lines_and_speed_dials(server: OffhookServer) -> None:
    async def body() -> None:
        async with (
            SccpPhone(CAROL, server.sccp_port) as carol,
            SccpPhone(DAVE, server.sccp_port, model="7941", version=0x11) as dave,
        ):
            ack = await carol.register()
            assert ack.keep_alive_interval == 30
            template = next(m for m in carol.received if isinstance(m, ButtonTemplate))
            # 7960: 6 buttons, the two lines first, then speed dials.
            assert template.buttons == ((1, 9), (2, 9), (1, 2), (2, 2), (3, 2), (4, 2))
            assert carol.lines[1].line_dir_number == "1003"
            assert carol.lines[1].line_display_name == "Carol"
            assert carol.lines[2].line_dir_number == "1004"
            sd = carol.speed_dials
            assert (sd[1].speed_dial_dir_number, sd[1].speed_dial_display_name) == ("1001", "Alice")
            assert sd[2].speed_dial_dir_number == "1005"
            assert sd[3].speed_dial_dir_number == ""
            config = next(m for m in carol.received if isinstance(m, ConfigStat))
            assert (config.device_name, config.number_lines) == (CAROL, 2)
            assert carol.scapy_mismatches == []

            await dave.register()
            assert dave.lines[1].line_dir_number == "1005"
            assert all(f[4:8] == b"\x11\0\0\0" for f in dave.received_raw)
            await carol.keepalive()

            status = await asyncio.to_thread(server.status)
            regs = {r["device"]: r for r in status["registrations"]}
            assert {CAROL, DAVE} <= set(regs)
            assert regs[CAROL]["transport"] == "tcp"
            assert regs[CAROL]["protocol"] == "sccp"
            assert regs[CAROL]["contact"] == f"sccp:{CAROL}"
            assert regs[CAROL]["source"] == "{}:{}".format(*carol.local_address)
            assert status["sccp"]["registered"] == 2
            assert status["sccp"]["port"] == server.sccp_port
            text = await asyncio.to_thread(server.run_cli, "status", check=True)
            assert "2 phones registered" in text.stdout

            await carol.unregister()
            await asyncio.wait_for(carol.closed.wait(), 5)
            for _ in range(50):
                status = await asyncio.to_thread(server.status)
                if status["sccp"]["registered"] == 1:
                    break
                await asyncio.sleep(0.1)
            assert status["sccp"]["registered"] == 1
            assert CAROL not in {r["device"] for r in status["registrations"]}

    run(body)


def test_unknown_device_is_rejected(server: OffhookServer) -> None:
    async def body() -> None:
        async with SccpPhone("SEP0000DEADBEEF", server.sccp_port) as phone:
            with pytest.raises(PhoneRejected):
                await phone.register()
            await asyncio.wait_for(phone.closed.wait(), 5)
        status = await asyncio.to_thread(server.status)
        assert status["counters"]["rejections"]["sccp"]["unknown-device"] >= 1
        assert "SEP0000DEADBEEF" not in {r["device"] for r in status["registrations"]}

    run(body)


def test_bad_frame_closes_only_that_connection(server: OffhookServer) -> None:
    async def body() -> None:
        async with SccpPhone(CAROL, server.sccp_port) as carol:
            await carol.register()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.sccp_port)
            writer.write(b"\xff\xff\xff\xff\0\0\0\0\1\0\0\0")
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            await carol.keepalive()
            status = await asyncio.to_thread(server.status)
            assert status["counters"]["rejections"]["sccp"]["framing"] >= 1
            assert CAROL in {r["device"] for r in status["registrations"]}

    run(body)


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_reads_every_frame_the_node_sends(server: OffhookServer, tmp_path: Path) -> None:
    pytest.importorskip("scapy.all")

    async def body() -> list[list[bytes]]:
        async with (
            SccpPhone(CAROL, server.sccp_port) as carol,
            SccpPhone(DAVE, server.sccp_port, model="7941", version=0x11) as dave,
        ):
            await carol.register()
            await dave.register()
            # A call between the two phones, for the call-flow messages.
            carol.off_hook(1)
            await carol.wait_for(CallState)
            carol.dial("1005")
            await dave.wait_for(SetRinger, timeout=10)
            dave.off_hook(1)
            for phone in (carol, dave):
                await phone.wait_for(OpenReceiveChannel, timeout=10)
                await phone.wait_for(StartMediaTransmission, timeout=10)
            # RTP flows phone to phone, both ways, to the ports the phones opened.
            assert await carol.wait_rtp(10) >= 10
            assert await dave.wait_rtp(10) >= 10
            carol.on_hook(1)
            await dave.wait_for(lambda m: isinstance(m, CallState) and m.call_state == 2)
            await carol.keepalive()
            await carol.unregister()
            await dave.unregister()
            return [carol.received_raw, dave.received_raw]

    streams = run(body)
    problems = tshark_problems(streams, tmp_path / "sccp_node.pcap")
    assert not problems, json.dumps(problems, indent=1)


def test_sccp_port_in_use_fails_the_start(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        srv = OffhookServer(tmp_path, PLAN, extra_config={"sccp": {"port": port}})
        with pytest.raises(ServerError, match=r"SCCP cannot listen on 127\.0\.0\.1"):
            srv.start(timeout=20)
        assert srv.stop(show_log=False) == 1


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("sip", r"SIP cannot listen on 127\.0\.0\.1:\d+, \[::1\]:\d+ \(\[::1\]:\d+/"),
        ("admin", r"admin endpoint cannot listen on .*\(\[::1\]:\d+/tcp: "),
    ],
)
def test_sip_and_admin_ports_in_use_name_the_listener(
    tmp_path: Path, section: str, message: str
) -> None:
    with socket.socket(socket.AF_INET6) as busy:
        busy.bind(("::1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        keys: dict[str, object] = {"port": port, "listen": ["127.0.0.1", "::1"]}
        srv = OffhookServer(tmp_path, PLAN, extra_config={section: keys})
        with pytest.raises(ServerError, match=message):
            srv.start(timeout=20)
        assert srv.stop(show_log=False) == 1


def test_auto_registration(tmp_path: Path) -> None:
    config = {"sccp": {"auto_register": "2000-2009"}}
    plan = {"devices": [*PLAN["devices"], device("bob", "bob-Secret-2", "2000")]}
    with OffhookServer(tmp_path, plan, extra_config=config) as srv:

        async def body() -> None:
            async with SccpPhone("SEP0000000000A1", srv.sccp_port, model="7940") as phone:
                await phone.register()
                assert phone.lines[1].line_dir_number == "2001"  # 2000 is bob's
                assert len(phone.buttons) == 2
                status = await asyncio.to_thread(srv.status)
                assert "SEP0000000000A1" in {r["device"] for r in status["registrations"]}
            async with SccpPhone("BADNAME", srv.sccp_port) as odd:
                with pytest.raises(PhoneRejected):
                    await odd.register()

        run(body)


def test_auto_registered_phones_keep_their_dn_across_restarts(tmp_path: Path) -> None:
    """The DNs handed out are stored: after a restart, whichever phone comes back
    first, each gets its own number again; a DN the plan took meanwhile is not
    given back, and that phone gets the next free one."""
    config = {"sccp": {"auto_register": "2000-2009"}}
    first, second = "SEP0000000000C1", "SEP0000000000C2"

    async def register(srv: OffhookServer, name: str) -> str:
        async with SccpPhone(name, srv.sccp_port, model="7940") as phone:
            await phone.register()
            return str(phone.lines[1].line_dir_number)

    srv = OffhookServer(tmp_path, PLAN, extra_config=config)
    with srv:
        assert run(lambda: register(srv, first)) == "2000"
        assert run(lambda: register(srv, second)) == "2001"

    with srv:  # the same database; the second phone comes back first
        assert run(lambda: register(srv, second)) == "2001"
        assert run(lambda: register(srv, first)) == "2000"
    # The dialed number analyzer sees them too (no node running).
    dna = json.loads(srv.run_cli("dna", "2001", "--from", CAROL, "--json", check=True).stdout)
    assert dna["outcome"] == "dn" and dna["dn"]["devices"] == [second], dna

    srv.plan = {"devices": [*PLAN["devices"], device("bob", "bob-Secret-2", "2001")]}
    with srv:  # the plan gave 2001 to bob: the second phone gets the next free DN
        assert run(lambda: register(srv, second)) == "2002"
        assert run(lambda: register(srv, first)) == "2000"
        log = srv.log_tail()
    assert "auto-registration: 1 phones keep their DN, 1 stored entries dropped" in log, log


def test_auto_registered_phone_is_called_and_dials_within_its_css(tmp_path: Path) -> None:
    """An auto-registered phone's DN is in the plan (its partition) and it dials with its CSS."""
    config = {
        "sccp": {
            "auto_register": "2000-2009",
            "auto_register_partition": "internal",
            "auto_register_css": "staff",
        }
    }
    plan = {
        "partitions": ["internal", "exec"],
        "calling_search_spaces": [
            {"name": "staff", "partitions": ["internal"]},
            {"name": "all", "partitions": ["internal", "exec"]},
        ],
        "devices": [
            {
                "name": CAROL,
                "protocol": "sccp",
                "model": "7960",
                "css": "all",
                "lines": [{"dn": "1003", "display": "Carol", "partition": "internal"}],
            },
            {
                "name": DAVE,
                "protocol": "sccp",
                "model": "7941",
                "css": "all",
                "lines": [{"dn": "1005", "display": "Dave", "partition": "exec"}],
            },
        ],
    }
    auto_name = "SEP0000000000B2"

    def rings(m: Any) -> bool:
        return isinstance(m, SetRinger) and m.ring_mode == RingMode.INSIDE

    def on_hook(m: Any) -> bool:
        return isinstance(m, CallState) and m.call_state == 2

    with OffhookServer(tmp_path, plan, extra_config=config) as srv:

        async def body() -> None:
            async with (
                SccpPhone(auto_name, srv.sccp_port, model="7940") as auto,
                SccpPhone(CAROL, srv.sccp_port) as carol,
                SccpPhone(DAVE, srv.sccp_port, model="7941", version=0x11) as dave,
            ):
                await auto.register()
                await carol.register()
                await dave.register()
                assert auto.lines[1].line_dir_number == "2000"
                assert auto.lines[1].line_display_name == "Auto 2000"

                # A plan phone calls the auto-registered DN: it rings, answers, hangs up.
                carol.off_hook(1)
                carol.dial("2000")
                await auto.wait_for(rings, timeout=10)
                auto.off_hook(1)
                await auto.wait_for(StartMediaTransmission, timeout=10)
                await carol.wait_for(StartMediaTransmission, timeout=10)
                carol.on_hook(1)
                await auto.wait_for(on_hook, timeout=10)

                # The auto-registered phone dials a DN of its CSS (internal): carol rings.
                mark = carol.mark()
                auto.on_hook(1)
                auto.off_hook(1)
                auto.dial("1003")
                await carol.wait_for(rings, timeout=10, since=mark)
                auto.on_hook(1)
                await carol.wait_for(on_hook, timeout=10, since=mark)

                # ... but not one outside it (exec): reorder, and dave never rings.
                mark = auto.mark()
                dave_mark = dave.mark()
                auto.off_hook(1)
                auto.dial("1005")
                tone = await auto.wait_for(
                    lambda m: isinstance(m, StartTone) and m.tone == DeviceTone.REORDER,
                    timeout=10,
                    since=mark,
                )
                assert tone is not None
                auto.on_hook(1)
                await asyncio.sleep(0.3)
                assert not [m for m in dave.received[dave_mark:] if rings(m)]

        run(body)
