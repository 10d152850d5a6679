"""RTP port pairs for the media server's endpoints, from ``[media] rtp_ports``.

Each bind address (``net.listen.BindSpec``) has its own pool of the even
ports of the range (RTP on the even port, RTCP on the odd one above,
RFC 3550 §11). Ports are handed out oldest-released first, so a port just
given back is reused as late as possible and stray packets of the call
that had it reach nobody. A port someone else holds (another process, the
node's family bridge sharing the range) fails to bind: it goes to the back
of the pool and the next one is tried, a bounded number of times.
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Callable

ATTEMPTS = 64
"""Ports tried for one endpoint before giving up."""
_TAKEN = {errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL}


class PortsExhausted(OSError):
    """No port of the range could be bound."""


class PortPool:
    """The even ports of ``first..last`` (inclusive), for one bind address."""

    __slots__ = ("_free", "_used", "first", "last")

    def __init__(self, first: int, last: int) -> None:
        first += first % 2
        if not 0 < first < last <= 65535:
            raise ValueError(f"port range {first}-{last} holds no RTP/RTCP pair")
        self.first, self.last = first, last
        self._free: deque[int] = deque(range(first, last, 2))
        self._used: set[int] = set()

    def take(self, bind: Callable[[int], None]) -> int:
        """The first free port ``bind(port)`` accepts (it binds port and port + 1).

        An OSError of a port held elsewhere moves on to the next port; any
        other OSError is raised. ``PortsExhausted`` when none was found.
        """
        free = self._free
        for _ in range(min(ATTEMPTS, len(free))):
            port = free.popleft()
            try:
                bind(port)
            except OSError as exc:
                free.append(port)
                if exc.errno not in _TAKEN:
                    raise
                continue
            self._used.add(port)
            return port
        raise PortsExhausted(errno.EADDRINUSE, f"no free RTP port pair in {self.first}-{self.last}")

    def give(self, port: int) -> None:
        """``port`` is free again (ignored when it was not taken)."""
        if port in self._used:
            self._used.discard(port)
            self._free.append(port)

    @property
    def free(self) -> int:
        return len(self._free)

    @property
    def used(self) -> int:
        return len(self._used)
