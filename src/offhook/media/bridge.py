"""The address-family bridge: anchors a stream between an IPv4 and an IPv6 device.

Implements ``core.ports.MediaBridge`` for the node (until the media server
of DESIGN.md takes media anchoring over, this one job runs in the node's
loop; it costs one ``recvfrom``/``sendto`` pair a packet and only for
cross-family calls, which are rare in a network that is mostly one
family). A signalling adapter calls ``bridge`` when it writes towards a
device of one family a media address of the other family, and ``release``
when its leg ends; a stream's sockets live while any leg uses them, and
never past the end of the call (``end``, on the core's ``CallEnded``).

Each anchored stream holds an RTP/RTCP socket pair per family (even and odd
port of ``[media] rtp_ports``; RFC 3550 §11), bound to the family's
wildcard address, read with ``loop.add_reader`` (so ``bridge`` stays
synchronous: call control never waits on media). The decisions, who may
send and where a packet goes, are ``media.relay.RelayPath``'s. At most
``max_streams`` streams; beyond, ``bridge`` answers None and the call goes
on without a media path (logged and counted). Packets from unexpected
sources are dropped and counted under ``media`` in ``offhook status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from offhook.common.addr import ip_version, peer
from offhook.media.relay import RelayPath

log = logging.getLogger("offhook.media.bridge")

Addr = tuple[str, int]
_BURST = 64  # datagrams read per wake-up, so one stream cannot starve the loop
_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
_ANY = {4: "0.0.0.0", 6: "::"}


@dataclass(slots=True)
class _Stream:
    key: tuple[str, int]
    paths: tuple[RelayPath, RelayPath]  # RTP, RTCP
    # version -> (rtp socket, rtcp socket); the port pair per version
    sockets: dict[int, tuple[socket.socket, socket.socket]] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)


class FamilyBridge:
    """Anchors cross-family streams; see the module docstring."""

    def __init__(
        self,
        hosts: dict[int, str],
        port_range: tuple[int, int],
        max_streams: int,
        count: Callable[[str, int], None] = lambda reason, n: None,
    ) -> None:
        self.hosts = dict(hosts)  # the address each family's devices are given
        self.first, self.last = port_range
        self.max_streams = max_streams
        self._count = count
        self._next = self.first
        self._streams: dict[tuple[str, int], _Stream] = {}
        self._owners: dict[str, set[str]] = {}
        self.loop = asyncio.get_running_loop()

    # --- core.ports.MediaBridge ------------------------------------------------
    def bridge(self, session: str, owner: str, stream: int, version: int, far: Addr) -> Addr | None:
        """The address (of IP ``version``) a device must use to reach ``far`` through us."""
        host = self.hosts.get(version)
        if host is None or ip_version(far[0]) == version:
            return None
        key = (session, stream)
        entry = self._streams.get(key)
        if entry is None:
            if len(self._streams) >= self.max_streams:
                log.warning(
                    "media bridge full (%d streams): %s has no media", self.max_streams, session
                )
                self._count("max-streams", 1)
                return None
            entry = self._open(key)
            if entry is None:
                return None
        self._owners.setdefault(session, set()).add(owner)
        rtp, rtcp = entry.paths
        rtp.expect(version, far)
        rtcp.expect(version, (far[0], far[1] + 1))
        return host, entry.ports[version]

    def release(self, session: str, owner: str) -> None:
        """``owner`` (a leg) no longer needs ``session``'s streams; closed when none does."""
        owners = self._owners.get(session)
        if owners is None:
            return
        owners.discard(owner)
        if owners:
            return
        del self._owners[session]
        for key in [k for k in self._streams if k[0] == session]:
            self._close(self._streams.pop(key))

    def end(self, session: str) -> None:
        """The call is over: close its streams whatever legs still hold them.

        The node calls it on every ``CallEnded``, so that a leg whose
        protocol never reported its end cannot keep ports open.
        """
        if self._owners.pop(session, None) is None:
            return
        for key in [k for k in self._streams if k[0] == session]:
            self._close(self._streams.pop(key))

    # --- status ---------------------------------------------------------------
    def status(self) -> dict[str, int]:
        paths = [p for s in self._streams.values() for p in s.paths]
        return {
            "streams": len(self._streams),
            "forwarded": sum(p.forwarded for p in paths),
        }

    def close(self) -> None:
        for entry in list(self._streams.values()):
            self._close(entry)
        self._streams.clear()
        self._owners.clear()

    # --- sockets --------------------------------------------------------------
    def _open(self, key: tuple[str, int]) -> _Stream | None:
        entry = _Stream(key, (RelayPath(), RelayPath()))
        for version in sorted(self.hosts):
            pair = self._bind_pair(version)
            if pair is None:
                log.warning(
                    "media bridge: no free IPv%d port pair in %d-%d", version, self.first, self.last
                )
                self._count("no-ports", 1)
                self._close(entry)
                return None
            port, rtp, rtcp = pair
            entry.sockets[version] = (rtp, rtcp)
            entry.ports[version] = port
            for component, sock in enumerate((rtp, rtcp)):
                self.loop.add_reader(sock.fileno(), self._readable, entry, version, component)
        self._streams[key] = entry
        return entry

    def _bind_pair(self, version: int) -> tuple[int, socket.socket, socket.socket] | None:
        pairs = (self.last - self.first + 1) // 2
        for _ in range(pairs):
            port = self._next
            self._next = port + 2 if port + 3 <= self.last else self.first
            socks: list[socket.socket] = []
            try:
                for p in (port, port + 1):
                    sock = socket.socket(_FAMILY[version], socket.SOCK_DGRAM)
                    socks.append(sock)
                    if version == 6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sock.bind((_ANY[version], p))
                    sock.setblocking(False)
            except OSError:
                for sock in socks:
                    sock.close()
                continue
            return port, socks[0], socks[1]
        return None

    def _close(self, entry: _Stream) -> None:
        for rtp, rtcp in entry.sockets.values():
            for sock in (rtp, rtcp):
                with contextlib.suppress(ValueError, OSError):
                    self.loop.remove_reader(sock.fileno())
                sock.close()
        entry.sockets.clear()

    def _readable(self, entry: _Stream, version: int, component: int) -> None:
        socks = entry.sockets.get(version)
        out = entry.sockets.get(10 - version)
        if socks is None or out is None:
            return
        sock, out_sock = socks[component], out[component]
        path = entry.paths[component]
        for _ in range(_BURST):
            try:
                data, source = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            target = path.receive(version, peer(source))
            if isinstance(target, str):
                self._count(target, 1)
                continue
            with contextlib.suppress(OSError):
                out_sock.sendto(data, target)
