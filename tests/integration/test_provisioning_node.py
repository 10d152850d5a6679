"""Phone provisioning of a real ``offhook serve``: TFTP and HTTP serve the plan's files.

One node (``tests/support/server.py``, TFTP and HTTP on free loopback ports)
with an SCCP phone in its plan: ``SEP<MAC>.cnf.xml`` fetched with ``tftpy``
(with and without RFC 2348 blksize) and Debian's ``tftp`` (tftp-hpa, plain
RFC 1350) carries what a phone reads; the same bytes over HTTP; a plan change
shows without a restart; traversal gets a TFTP error / HTTP 4xx; refused
sources are counted in ``offhook status``; ports that cannot be bound leave
the node running.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offhook.tftp.protocol import Error, ErrorCode, Opcode, Request, parse_packet
from support.ports import HOST
from support.server import OffhookServer

tftpy = pytest.importorskip("tftpy")

SEP = "SEP001122334455"
SEP2 = "SEP00AABBCCDDEE"
LOAD = "P00308000500"
FIRMWARE = bytes((i * 31) % 251 for i in range(70_000))


def phone(name: str, dn: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "sccp",
        "model": "7960",
        "css": "staff",
        "lines": [{"dn": dn, "partition": "internal", "display": "Carol"}],
        "speed_dials": [{"number": "1001", "label": "Alice"}],
        **extra,
    }


def plan(*phones: dict[str, Any]) -> dict[str, Any]:
    return {
        "partitions": ["internal"],
        "calling_search_spaces": [{"name": "staff", "partitions": ["internal"]}],
        "devices": [
            {
                "name": "alice",
                "protocol": "sip",
                "password": "alice-Secret-1",
                "lines": [{"dn": "1001", "partition": "internal"}],
            },
            *phones,
        ],
    }


@contextlib.contextmanager
def node(tmp_path: Path, data: dict[str, Any], **tftp: Any) -> Iterator[OffhookServer]:
    server = OffhookServer(
        tmp_path,
        data,
        extra_config={
            "tftp": {
                "load_information": LOAD,
                "device_pool": "Lab",
                "time_zone": "Central Standard/Daylight Time",
                **tftp,
            },
        },
    )
    (server.tftp_root / f"{LOAD}.bin").write_bytes(FIRMWARE)
    (server.tftp_root / "Chirp1.raw").write_bytes(b"\x7f" * 4000)
    with server:
        wait_provisioning(server)
        yield server


def wait_provisioning(server: OffhookServer, timeout: float = 15.0) -> dict[str, Any]:
    """``offhook status`` until the node reports its TFTP listener (it starts after SIP)."""
    deadline = time.monotonic() + timeout
    while True:
        tftp: dict[str, Any] | None = server.status().get("tftp")
        if tftp and (tftp.get("port") or time.monotonic() > deadline):
            return tftp
        if time.monotonic() > deadline:
            raise AssertionError(f"no tftp in status: {tftp}")
        time.sleep(0.2)


def tftp_fetch(port: int, name: str, out: Path, options: dict[str, int] | None = None) -> bytes:
    client = tftpy.TftpClient(HOST, port, options or {})
    client.download(name, str(out), timeout=2, retries=2)
    return out.read_bytes()


def http_get(port: int, path: str, source: str = HOST) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=5.0, source_address=(source, 0))
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"{HOST}:{port}")
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def tftp_raw(port: int, name: str, source: str = HOST, timeout: float = 2.0) -> bytes | None:
    """Send one octet RRQ for ``name``; the first datagram answered (None: no answer)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as s:
        s.bind((source, 0))
        s.settimeout(timeout)
        s.sendto(Request(Opcode.RRQ, name, "octet").encode(), (HOST, port))
        try:
            data, _ = s.recvfrom(70_000)
        except TimeoutError:
            return None
        return data


def check_cnf(data: bytes, server: OffhookServer) -> None:
    """The fields a 79xx reads from its SEP<MAC>.cnf.xml."""
    root = ET.fromstring(data)  # well-formed
    assert root.tag == "device"
    assert root.findtext("deviceProtocol") == "SCCP"
    assert root.findtext("devicePool/name") == "Lab"
    dts = root.find("devicePool/dateTimeSetting")
    assert dts is not None
    assert dts.findtext("timeZone") == "Central Standard/Daylight Time"
    assert dts.findtext("dateTemplate")
    members = root.findall("devicePool/callManagerGroup/members/member")
    assert len(members) == 1 and members[0].get("priority") == "0"
    cm = members[0].find("callManager")
    assert cm is not None
    assert cm.findtext("ports/ethernetPhonePort") == str(server.sccp_port)
    assert cm.findtext("processNodeName") == HOST
    assert root.findtext("loadInformation") == LOAD
    assert root.findtext("userLocale/name") == "English_United_States"
    assert root.findtext("networkLocale") == "United_States"


@pytest.mark.parametrize("options", [None, {"blksize": 1024}, {"blksize": 1428, "tsize": 0}])
def test_tftp_serves_the_plan(tmp_path: Path, options: dict[str, int] | None) -> None:
    with node(tmp_path, plan(phone(SEP, "1003"))) as server:
        data = tftp_fetch(server.tftp_port, f"{SEP}.cnf.xml", tmp_path / "cnf", options)
        check_cnf(data, server)
        # Firmware from the root, byte for byte; XMLDefault for auto-registration.
        fw = tftp_fetch(server.tftp_port, f"{LOAD}.bin", tmp_path / "fw", options)
        assert fw == FIRMWARE
        default = tftp_fetch(server.tftp_port, "XMLDefault.cnf.xml", tmp_path / "def", options)
        cm = ET.fromstring(default).find("devicePool/callManagerGroup/members/member/callManager")
        assert cm is not None and cm.findtext("processNodeName") == HOST
        rings = tftp_fetch(server.tftp_port, "RingList.xml", tmp_path / "rings", options)
        assert [r.findtext("FileName") for r in ET.fromstring(rings)] == ["Chirp1.raw"]
        # A phone that is not in the plan gets "file not found".
        with pytest.raises(tftpy.TftpException):
            tftp_fetch(server.tftp_port, f"{SEP2}.cnf.xml", tmp_path / "none", options)
        status = server.status()
        tftp = status["tftp"]
        assert tftp["port"] == server.tftp_port and tftp["http_port"] == server.tftp_http_port
        assert tftp["completed"] >= 4 and tftp["active_transfers"] == 0
        # The cnf names the port the SCCP listener really has.
        assert status["sccp"]["port"] == server.sccp_port
        assert tftp["call_manager"] == f"{HOST}:{server.sccp_port}"


def test_tftp_hpa_and_http_serve_the_same_file(tmp_path: Path) -> None:
    with node(tmp_path, plan(phone(SEP, "1003"))) as server:
        via_tftpy = tftp_fetch(server.tftp_port, f"{SEP}.cnf.xml", tmp_path / "a")
        status, via_http = http_get(server.tftp_http_port, f"/{SEP}.cnf.xml")
        assert status == 200 and via_http == via_tftpy
        check_cnf(via_http, server)
        status, fw = http_get(server.tftp_http_port, f"/{LOAD}.bin")
        assert status == 200 and fw == FIRMWARE
        hpa = shutil.which("tftp")
        if hpa is not None:  # Debian tftp-hpa: no options at all
            out = tmp_path / "hpa"
            subprocess.run(
                [
                    hpa,
                    HOST,
                    str(server.tftp_port),
                    "-m",
                    "binary",
                    "-c",
                    "get",
                    f"{SEP}.cnf.xml",
                    str(out),
                ],
                check=True,
                timeout=20,
                capture_output=True,
            )
            assert out.read_bytes() == via_tftpy


def test_plan_change_without_restart(tmp_path: Path) -> None:
    with node(tmp_path, plan(phone(SEP, "1003"))) as server:
        assert tftp_fetch(server.tftp_port, f"{SEP}.cnf.xml", tmp_path / "a")
        assert http_get(server.tftp_http_port, f"/{SEP2}.cnf.xml")[0] == 404
        # Add a phone, remove the other: offhook load, no restart.
        server.load(plan(phone(SEP2.lower(), "1004")))
        deadline = time.monotonic() + 10.0
        while http_get(server.tftp_http_port, f"/{SEP2}.cnf.xml")[0] != 200:
            assert time.monotonic() < deadline, "the new phone's cnf.xml never appeared"
            time.sleep(0.2)
        check_cnf(tftp_fetch(server.tftp_port, f"{SEP2}.cnf.xml", tmp_path / "b"), server)
        assert http_get(server.tftp_http_port, f"/{SEP}.cnf.xml")[0] == 404
        with pytest.raises(tftpy.TftpException):
            tftp_fetch(server.tftp_port, f"{SEP}.cnf.xml", tmp_path / "c")


def test_traversal_refused(tmp_path: Path) -> None:
    with node(tmp_path, plan(phone(SEP, "1003"))) as server:
        assert (server.tftp_root.parent / "offhook.toml").exists()  # a file next to the root
        for name in ("../offhook.toml", "/etc/passwd", "a/../../offhook.toml", "..\\offhook.toml"):
            got = tftp_raw(server.tftp_port, name)
            assert got is not None, name
            pkt = parse_packet(got)
            assert isinstance(pkt, Error) and pkt.code == ErrorCode.ACCESS_VIOLATION, (name, pkt)
        for path in ("/../offhook.toml", "/%2e%2e/offhook.toml", "//etc/passwd", "/a/../../x"):
            status, body = http_get(server.tftp_http_port, path)
            assert 400 <= status < 500, (path, status)
            assert b"realm" not in body and b"root:" not in body


def test_allow_list_rejections_counted(tmp_path: Path) -> None:
    with node(tmp_path, plan(phone(SEP, "1003")), allow=["127.0.0.1/32"]) as server:
        assert tftp_raw(server.tftp_port, f"{SEP}.cnf.xml", source="127.0.0.2", timeout=0.5) is None
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            http_get(server.tftp_http_port, f"/{SEP}.cnf.xml", source="127.0.0.2")
        assert http_get(server.tftp_http_port, f"/{SEP}.cnf.xml")[0] == 200  # 127.0.0.1 is fine
        rejections = server.status()["counters"]["rejections"]
        assert rejections.get("tftp", {}).get("acl") == 1, rejections
        assert rejections.get("tftp-http", {}).get("acl") == 1, rejections
        text = server.run_cli("status", check=True).stdout
        assert f"TFTP port {server.tftp_port}" in text


def test_ports_in_use_do_not_stop_the_node(tmp_path: Path) -> None:
    """Port 69 without root, or a port taken: a warning naming the setting; SIP keeps going."""
    server = OffhookServer(tmp_path, plan(phone(SEP, "1003")))
    with (
        contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as udp,
        contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as tcp,
    ):
        udp.bind((HOST, server.tftp_port))
        tcp.bind((HOST, server.tftp_http_port))
        tcp.listen()
        with server:
            tftp = wait_provisioning(server, timeout=3.0)
            assert tftp["port"] is None and tftp["http_port"] is None
            log = server.log()
            assert "[tftp] port (OFFHOOK_TFTP__PORT)" in log
            assert "[tftp] http_port (OFFHOOK_TFTP__HTTP_PORT)" in log
            assert server.proc is not None and server.proc.poll() is None
