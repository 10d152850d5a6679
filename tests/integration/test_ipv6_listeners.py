"""SCCP, provisioning (TFTP and HTTP) and the admin endpoint on IPv6 and dual-stack.

Two real ``offhook serve`` nodes (``support.server``):

- ``dual``: every listener on ``"::"`` alone, one dual-stack socket each,
  with ``[sip] external_host = ["127.0.0.1", "::1"]`` (the node's address
  for each family);
- ``v6``: every listener on ``"::1"`` only.

On them the SCCP phone simulator registers and calls over IPv6 and, on the
dual-stack node, over IPv4 to the same socket (RTP flows both ways: SCCP
media addresses are IPv4, so the phones receive on 127.0.0.1 whatever
they signal over); ``offhook status`` (the admin endpoint on ``::`` or
``::1``) lists every phone under its plain address, IPv4 ones never as
``::ffff:``. Debian's ``tftp`` (tftp-hpa, ``-6``/``-4``) and HTTP fetch
``SEP<MAC>.cnf.xml`` over IPv6 and IPv4: the call manager it names is the
node's address of the family the phone used, with the IP addressing mode
elements of an IPv6-capable node. The log names every listen address in
brackets with its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offhook.ris.control import request_at
from offhook.sccp.messages import CallState, OpenReceiveChannel, SetRinger, StartMediaTransmission
from offhook.sccp.ui import RingMode
from support.ports import HOST, HOST6
from support.sccp_phone import SccpPhone
from support.server import OffhookServer

CAROL = "SEP001122334455"
DAVE = "SEP00AABBCCDDEE"
NODE = "devicePool/callManagerGroup/members/member/callManager/processNodeName"
PLAN: dict[str, Any] = {
    "devices": [
        {
            "name": CAROL,
            "protocol": "sccp",
            "model": "7960",
            "lines": [{"dn": "1003", "display": "Carol"}],
        },
        {
            "name": DAVE,
            "protocol": "sccp",
            "model": "7941",
            "lines": [{"dn": "1005", "display": "Dave"}],
        },
    ]
}

TFTP = shutil.which("tftp")
if TFTP is None and os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
    raise RuntimeError("tftp (Debian tftp-hpa) is missing under CI=true")


@pytest.fixture(scope="module")
def dual(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OffhookServer]:
    server = OffhookServer(
        tmp_path_factory.mktemp("dual"),
        PLAN,
        listen="::",
        extra_config={"sip": {"external_host": [HOST, HOST6]}},
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def v6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OffhookServer]:
    with OffhookServer(tmp_path_factory.mktemp("v6"), PLAN, listen=HOST6) as server:
        yield server


def run(body: Any, timeout: float = 60.0) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(body(), timeout)

    return asyncio.run(main())


def on_hook(m: Any) -> bool:
    return isinstance(m, CallState) and m.call_state == 2


def rings(m: Any) -> bool:
    return isinstance(m, SetRinger) and m.ring_mode == RingMode.INSIDE


async def call_with_rtp(caller: SccpPhone, callee: SccpPhone, dn: str) -> None:
    """``caller`` dials ``dn``; ``callee`` answers; RTP both ways; both hang up."""
    marks = {caller: caller.mark(), callee: callee.mark()}
    rtp_before = {caller: caller.rtp_received, callee: callee.rtp_received}
    caller.off_hook(1)
    await caller.wait_for(CallState, since=marks[caller])
    caller.dial(dn)
    await callee.wait_for(rings, timeout=10, since=marks[callee])
    callee.off_hook(1)
    for phone in (caller, callee):
        await phone.wait_for(OpenReceiveChannel, timeout=10, since=marks[phone])
        start = await phone.wait_for(StartMediaTransmission, timeout=10, since=marks[phone])
        assert start.remote_ip == HOST  # SCCP media: the far phone's IPv4 RTP port
    for phone in (caller, callee):
        assert await phone.wait_rtp(rtp_before[phone] + 10) >= rtp_before[phone] + 10
    caller.on_hook(1)
    await callee.wait_for(on_hook, timeout=10, since=marks[callee])
    callee.on_hook(1)
    await caller.keepalive()
    await callee.keepalive()


def sources(server: OffhookServer) -> dict[str, str]:
    status = server.status()
    assert "::ffff:" not in json.dumps(status)  # one address form, whatever the socket
    return {r["device"]: r["source"] for r in status["registrations"]}


def bracketed(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def test_sccp_over_ipv6_and_ipv4_on_one_dual_stack_socket(dual: OffhookServer) -> None:
    async def body() -> None:
        async with (
            SccpPhone(CAROL, dual.sccp_port, HOST6) as carol,
            SccpPhone(DAVE, dual.sccp_port, HOST, model="7941", version=0x11) as dave,
        ):
            await carol.register()
            await dave.register()
            assert carol.local_address[0] == HOST6 and dave.local_address[0] == HOST
            regs = await asyncio.to_thread(sources, dual)
            assert regs[CAROL] == bracketed(*carol.local_address)
            assert regs[DAVE] == bracketed(*dave.local_address)  # not ::ffff:127.0.0.1
            await call_with_rtp(carol, dave, "1005")  # IPv6 phone calls the IPv4 one
            await call_with_rtp(dave, carol, "1003")  # and back
            await carol.unregister()
            await dave.unregister()

    run(body)


def test_sccp_register_and_call_on_an_ipv6_only_node(v6: OffhookServer) -> None:
    async def body() -> None:
        async with (
            SccpPhone(CAROL, v6.sccp_port, HOST6) as carol,
            SccpPhone(DAVE, v6.sccp_port, HOST6, model="7941", version=0x11) as dave,
        ):
            await carol.register()
            await dave.register()
            regs = await asyncio.to_thread(sources, v6)
            assert regs[CAROL] == bracketed(*carol.local_address)
            assert regs[DAVE].startswith("[::1]:")
            await call_with_rtp(dave, carol, "1003")
            await carol.keepalive()
        # Nothing listens on IPv4.
        with pytest.raises(OSError):
            await asyncio.open_connection(HOST, v6.sccp_port)

    run(body)
    status = v6.status()  # offhook status reads the admin endpoint on ::1
    assert status["sccp"]["listen"] == ["::1"] and status["sccp"]["port"] == v6.sccp_port
    text = v6.run_cli("status", check=True).stdout
    assert "SCCP port" in text


def tftp_hpa(server: OffhookServer, host: str, name: str, out: Path) -> bytes:
    if TFTP is None:
        pytest.skip("tftp-hpa not installed")
    if out.exists():
        out.unlink()
    flag = "-6" if ":" in host else "-4"
    proc = subprocess.run(
        [TFTP, flag, host, str(server.tftp_port), "-m", "binary", "-c", "get", name, str(out)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0 and out.exists(), proc.stdout + proc.stderr
    return out.read_bytes()


def http_get(host: str, port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=5.0)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def addressing(data: bytes) -> tuple[str | None, str | None, str | None]:
    root = ET.fromstring(data)
    return (
        root.findtext(NODE),
        root.findtext("ipAddressMode"),
        root.findtext("ipPreferenceModeControl"),
    )


def test_provisioning_names_the_node_by_the_family_the_phone_used(
    dual: OffhookServer, tmp_path: Path
) -> None:
    cnf = f"{CAROL}.cnf.xml"
    # TFTP over IPv6 and over IPv4, to the same dual-stack socket.
    over6 = tftp_hpa(dual, HOST6, cnf, tmp_path / "v6.xml")
    over4 = tftp_hpa(dual, HOST, cnf, tmp_path / "v4.xml")
    assert addressing(over6) == (HOST6, "2", "1")  # IPv4 and IPv6; signal over IPv6
    assert addressing(over4) == (HOST, "2", "0")
    port = f"<ethernetPhonePort>{dual.sccp_port}<"
    assert port.encode() in over6 and port.encode() in over4
    default6 = tftp_hpa(dual, HOST6, "XMLDefault.cnf.xml", tmp_path / "d6.xml")
    assert addressing(default6)[0] == HOST6
    # The same bytes over HTTP, per family.
    assert http_get(HOST6, dual.tftp_http_port, f"/{cnf}") == (200, over6)
    assert http_get(HOST, dual.tftp_http_port, f"/{cnf}") == (200, over4)
    status = dual.status()["tftp"]
    assert status["listen"] == ["::"]
    assert status["call_manager"] == f"{HOST}:{dual.sccp_port}, [{HOST6}]:{dual.sccp_port}"
    assert status["completed"] >= 3 and status["http_served"] >= 2


def test_provisioning_on_an_ipv6_only_node(v6: OffhookServer, tmp_path: Path) -> None:
    data = tftp_hpa(v6, HOST6, f"{DAVE}.cnf.xml", tmp_path / "dave.xml")
    assert addressing(data) == (HOST6, "1", "1")  # IPv6 only: the node's listen address
    status, body = http_get(HOST6, v6.tftp_http_port, f"/{DAVE}.cnf.xml")
    assert (status, body) == (200, data)
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        assert s.connect_ex((HOST, v6.tftp_http_port)) != 0  # no IPv4 socket


def test_listen_addresses_are_logged_bracketed(dual: OffhookServer, v6: OffhookServer) -> None:
    log = dual.log()
    assert f"SCCP listening on [::]:{dual.sccp_port}" in log
    assert f"TFTP listening on [::]:{dual.tftp_port}/udp" in log
    assert f"provisioning HTTP on [::]:{dual.tftp_http_port}" in log
    assert f"admin endpoint on [::]:{dual.admin_port}" in log
    log6 = v6.log()
    assert f"SCCP listening on [::1]:{v6.sccp_port}" in log6
    assert f"admin endpoint on [::1]:{v6.admin_port}" in log6


def test_status_over_an_admin_list(tmp_path: Path) -> None:
    """``[admin] listen`` as a list: ``offhook status`` reads the first address."""
    config = {"admin": {"listen": [HOST6, HOST], "allow": ["::1/128", "127.0.0.0/8"]}}
    with OffhookServer(tmp_path, PLAN, extra_config=config) as server:
        assert server.status()["sccp"]["port"] == server.sccp_port
        for host in (HOST, HOST6):
            assert request_at(host, server.admin_port, "status")["plan_version"] >= 1
        log = server.log()
        assert f"admin endpoint on [::1]:{server.admin_port}, {HOST}:{server.admin_port}" in log
