"""Socket-level probes for the attack suite (tests/security): many connections, /proc.

What the advisory tests need to see from outside a running ``offhook serve``:

- :func:`open_connections` opens many TCP connections to one listener
  (blocking connects with a timeout, from an optional source address), and
  :func:`closed_by_peer` waits until the server has closed each of them
  (EOF or reset seen by the client), with one deadline for all, using
  ``selectors`` so thousands of sockets cost one ``epoll``.
- :func:`abort` closes a socket with a reset (``SO_LINGER`` 0), the way a
  client dies mid-message.
- :func:`tcp_states` reads ``/proc/net/tcp`` and ``/proc/net/tcp6`` for the
  sockets whose *local* port is the server's (state ``08`` is CLOSE_WAIT:
  the peer closed and the server has not).
- :func:`fd_count`, :func:`rss_kib` and :func:`hwm_kib` read a process's open
  descriptors, resident memory and peak resident memory from ``/proc``.
- :func:`raise_nofile` lifts this process's soft open-file limit (children
  started afterwards inherit it).
- :func:`wait_until` polls a condition with a generous deadline: the suite
  asserts outcomes, never timings.

Loopback only; Linux only (``/proc``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import selectors
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable

TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


def raise_nofile(want: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``want`` (at most the hard limit); the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return want if soft == resource.RLIM_INFINITY else soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _proc_status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    return _proc_status(pid, "VmRSS")


def hwm_kib(pid: int) -> int:
    """VmHWM (peak resident memory since start) of ``pid`` in KiB."""
    return _proc_status(pid, "VmHWM")


def fd_count(pid: int) -> int:
    """Open file descriptors of ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def tcp_states(port: int) -> Counter[str]:
    """States of the TCP sockets whose local port is ``port`` (IPv4 and IPv6)."""
    states: Counter[str] = Counter()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)  # header
                for line in fh:
                    fields = line.split()
                    local, state = fields[1], fields[3]
                    if int(local.rsplit(":", 1)[1], 16) == port:
                        states[TCP_STATES.get(state, state)] += 1
        except FileNotFoundError:
            continue
    return states


def server_holds(port: int) -> Counter[str]:
    """Sockets on ``port`` that still hold something for the server: anything but
    the listener itself and the kernel's own closing states (TIME_WAIT,
    FIN_WAIT2 and the like have no descriptor left in the process)."""
    held = tcp_states(port)
    for state in ("LISTEN", "TIME_WAIT", "FIN_WAIT1", "FIN_WAIT2", "CLOSE", "CLOSING", "LAST_ACK"):
        held.pop(state, None)
    return held


def open_connections(
    port: int,
    count: int,
    *,
    host: str = "127.0.0.1",
    source: str | None = None,
    timeout: float = 10.0,
) -> list[socket.socket]:
    """``count`` connected TCP sockets to ``host:port`` (non-blocking once connected)."""
    out: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                if source is not None:
                    sock.bind((source, 0))
                sock.settimeout(timeout)
                sock.connect((host, port))
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            out.append(sock)
    except BaseException:
        for sock in out:
            sock.close()
        raise
    return out


def abort(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER on, 0 s): a client dying mid-message."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _peer_closed(sock: socket.socket) -> bool | None:
    """Read what is there: True at EOF/reset, False if data only, None if nothing yet."""
    seen = False
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return False if seen else None
        except OSError as exc:
            if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT):
                return True
            raise
        if not data:
            return True
        seen = True


def closed_by_peer(
    socks: Iterable[socket.socket],
    deadline: float,
    tick: Callable[[], object] | None = None,
) -> tuple[list[socket.socket], list[socket.socket]]:
    """Wait (until ``deadline``, a ``time.monotonic()`` value) for the server to
    close each socket; returns (closed, still open). Data the server sends
    before closing (an error answer) is read and ignored. ``tick`` is called
    between waits (to sample the server meanwhile)."""
    pending = {s.fileno(): s for s in socks}
    closed: list[socket.socket] = []
    with selectors.DefaultSelector() as sel:
        for sock in pending.values():
            sel.register(sock, selectors.EVENT_READ)
        while pending:
            if tick is not None:
                tick()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in sel.select(min(left, 1.0)):
                ready = pending.get(key.fd)
                if ready is None:
                    continue
                if _peer_closed(ready):
                    sel.unregister(ready)
                    del pending[key.fd]
                    closed.append(ready)
    return closed, list(pending.values())


def received_before_close(sock: socket.socket, timeout: float) -> bytes | None:
    """Everything the server sends until it closes (None: not closed within ``timeout``).

    A reset counts as a close; bytes received before it are returned.
    """
    sock.setblocking(True)
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return data
    except TimeoutError:
        return None


def wait_until(cond: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
