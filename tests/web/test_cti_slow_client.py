"""A CTI client that never reads is disconnected while calls go on; nobody else notices.

A real node and its web process, SIPp placing calls from carol to dave's
SIPp UAS at a steady rate. Two CTI clients with a full-admin token: one
(the ``websockets`` library) reads everything; the other opens the
WebSocket by hand with a small receive buffer and never reads a byte. The
stuck client's queue ([cti] client_queue 128) overflows: the web process
counts an overflow disconnect and drops the connection (the socket ends),
while every SIPp call succeeds and the reading client gets every call's
``call.ended`` with ``seq`` unbroken.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from interop.peers import require_binary
from interop.sipp import Sipp, describe
from support.ports import HOST
from web.cti_rig import PASSWORDS, WAIT, Watcher, cti_node, raw_ws

CALLS = 120
RATE = 20


def _register(workdir: Path, target: str, uas: Sipp) -> None:
    reg = Sipp(
        workdir,
        "register.xml",
        "register-dave",
        target=target,
        keys={
            "user": "dave",
            "contact_host": HOST,
            "contact_port": str(uas.port),
            "expires": "300",
        },
        auth=("dave", PASSWORDS["dave"]),
        timeout_s=20,
    )
    result = reg.run()
    assert result.ok, describe(result)


def _closed(sock: socket.socket, timeout: float) -> bool:
    """Does the server end the connection within ``timeout`` (reading what is left)?"""
    sock.settimeout(1.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def test_a_client_that_never_reads_is_dropped_while_calls_go_on(tmp_path: Path) -> None:
    require_binary("sipp")
    unlimited = {"rate_per_source": 1e9, "rate_burst": 1e9}
    with cti_node(tmp_path, sip=unlimited, cti={"client_queue": 128}) as node:
        token, _ = node.user("root", "full-admin")
        target = f"{HOST}:{node.server.sip_port}"
        with (
            Sipp(tmp_path, "uas.xml", "uas-dave", calls=CALLS, timeout_s=120) as uas,
            Watcher(node.ws_url, token, max_queue=None) as reader,
        ):
            _register(tmp_path, target, uas)
            stuck, status, _ = raw_ws(HOST, node.server.web_port, token, rcvbuf=4096)
            try:
                assert status == 101
                assert node.metrics(token)["offhook_cti_clients"] == 2
                uac = Sipp(
                    tmp_path,
                    "uac_auth.xml",
                    "uac-carol",
                    target=target,
                    keys={"caller": "carol"},
                    service="1004",
                    auth=("carol", PASSWORDS["carol"]),
                    calls=CALLS,
                    pause_ms=200,
                    timeout_s=120,
                    extra=["-r", str(RATE)],
                )
                result = uac.run()
                assert result.ok, describe(result)
                reader.wait(
                    lambda: len(reader.of_type("call.ended")) == CALLS, "every call's end", 2 * WAIT
                )
                metrics = node.metrics(token)
                assert metrics["offhook_cti_overflow_disconnects_total"] >= 1, metrics
                assert metrics["offhook_cti_events_dropped_total"] >= 1
                assert _closed(stuck, WAIT), "the stuck client was never disconnected"
            finally:
                stuck.close()
            ended = reader.of_type("call.ended")
            assert all(e["answered"] for e in ended)
            assert [e["seq"] for e in reader.events] == list(range(1, len(reader.events) + 1))
            assert reader.closed is None  # still connected
            assert node.metrics(token)["offhook_cti_clients"] == 1
