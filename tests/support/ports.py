"""Free loopback ports for tests and benchmarks.

A SIP listener uses the same port number on UDP and TCP, baresip also binds
TLS on ``port + 1``, and several processes are started side by side, so the
helpers here hand out ports that are free on both transports (and on both
loopbacks, 127.0.0.1 and ::1, for dual-stack nodes) and never give
the same number twice in one process (the kernel may otherwise hand back a
port we just released before its owner binds it).

Under pytest-xdist each worker draws from its own slice of that range
(``PYTEST_XDIST_WORKER`` of ``PYTEST_XDIST_WORKER_COUNT``), so two workers
never hand out the same port.

Ports are drawn below the kernel's ephemeral range
(``net.ipv4.ip_local_port_range``, 32768-60999 by default): a port in that
range is free when checked but can become the source port of any process's
outgoing connection or unbound UDP socket before the server binds it, and a
dual-stack listener on ``::`` collides with such a port on every address of
both families (``Address already in use`` at start, seen on a machine
running other tests). Below it only explicit binds take ports.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
from pathlib import Path

HOST = "127.0.0.1"
HOST6 = "::1"

_lock = threading.Lock()
_handed_out: dict[int, None] = {}  # oldest first


def _free_on_both(port: int) -> bool:
    """Free on UDP and TCP, on IPv4 loopback and (for dual-stack nodes) IPv6 loopback."""
    for family, host in ((socket.AF_INET, HOST), (socket.AF_INET6, HOST6)):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(family, kind)
            try:
                if kind == socket.SOCK_STREAM:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
            except OSError:
                return False
            finally:
                s.close()
    return True


LOWEST = 10000  # under it: well-known and registered services' usual ports

# The media relay's [media] rtp_ports for test nodes: above the kernel's
# ephemeral range and the ports handed out here, so a relayed call's sockets
# never take a port a test is about to give another process.
RELAY_PORTS = "61000-64999"


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_EPHEMERAL = _ephemeral_start()


def _worker_slice(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's part of [low, high) (all of it outside xdist)."""
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    size = (high - low) // count
    return low + (index % count) * size, low + (index % count + 1) * size


def _base_range() -> tuple[int, int]:
    """Where ports are drawn: ``OFFHOOK_TEST_PORTS=LOW-HIGH`` narrows it, so that
    test sessions run side by side on one machine never draw the same port."""
    spec = os.environ.get("OFFHOOK_TEST_PORTS", "")
    if spec:
        low, _, high = spec.partition("-")
        return int(low), int(high)
    return LOWEST, _EPHEMERAL


def _candidate(span: int = 1) -> int:
    low, high = _worker_slice(*_base_range())
    if high - low >= max(4 * span, 64):
        return random.randrange(low, high - span + 1)
    # A range too narrow for this worker: let the kernel pick.
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _recycle() -> None:
    """Forget the oldest half of what was handed out once it fills half the slice:
    long since bound and released by tests that are over, they may be drawn again
    (a narrow ``OFFHOOK_TEST_PORTS`` would otherwise run dry in a long session)."""
    low, high = _worker_slice(*_base_range())
    if len(_handed_out) * 2 <= high - low:
        return
    for port in list(_handed_out)[: len(_handed_out) // 2]:
        del _handed_out[port]


def free_port(span: int = 1) -> int:
    """A port P such that P .. P+span-1 are free on UDP and TCP (loopback)."""
    with _lock:
        _recycle()
        for _ in range(500):
            port = _candidate(span)
            if port + span > 65535:
                continue
            ports = range(port, port + span)
            if any(p in _handed_out for p in ports):
                continue
            if all(_free_on_both(p) for p in ports):
                _handed_out.update(dict.fromkeys(ports))
                return port
    raise RuntimeError(f"no free loopback port range of {span}")


def free_range(count: int) -> tuple[int, int]:
    """An inclusive (first, last) range of ``count`` consecutive free ports.

    The range starts on an even port: RTP takes the even port of a pair
    (RFC 3550 §11), and baresip rounds an odd start down, out of the range.
    """
    first = free_port(count + 1)
    if first % 2:
        first += 1
    return first, first + count - 1
