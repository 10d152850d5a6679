"""Binding a listener to one or several addresses, IPv4, IPv6 or both.

Every listener's ``listen`` setting is a list of addresses (a single string
is a list of one). ``bind_plan`` turns it into sockets to open:

- ``"0.0.0.0"`` serves IPv4; ``"::"`` alone serves IPv6 *and* IPv4 (a
  dual-stack socket, ``IPV6_V6ONLY`` off: IPv4 peers arrive as
  ``::ffff:a.b.c.d``, which ``common.addr.peer`` turns back into IPv4);
  ``["0.0.0.0", "::"]`` opens one socket per family (``::`` then with
  ``IPV6_V6ONLY`` on, or the two would collide on the port);
- specific addresses of either family bind as given (a link-local IPv6
  address needs its zone: ``fe80::1%eth0``);
- a wildcard and a specific address of the same family cannot share a port
  (the kernel refuses it), so ``bind_plan`` refuses them together, naming
  both, when settings are loaded.

``open_stream_servers`` and ``open_datagram_endpoints`` open the plan on
one port: with port 0 the first socket picks a free port and the others
take the same one, so a listener has one port whatever its addresses (when
that port is taken on another address of the plan, everything opened is
closed and a new port is picked, a few times).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from offhook.common.addr import canonical, host_port, is_wildcard


@dataclass(frozen=True, slots=True)
class BindSpec:
    """One socket to open: its address, family and, for IPv6, whether it is IPv6-only."""

    host: str
    family: int  # socket.AF_INET or socket.AF_INET6
    v6only: bool = True

    @property
    def dual_stack(self) -> bool:
        return self.family == socket.AF_INET6 and not self.v6only

    @property
    def families(self) -> frozenset[int]:
        """The IP versions this socket serves (4, 6)."""
        if self.family == socket.AF_INET:
            return frozenset({4})
        return frozenset({4, 6}) if self.dual_stack else frozenset({6})


def listen_list(value: str | Sequence[str]) -> list[str]:
    """A ``listen`` setting as a list of addresses (a string is one address)."""
    if isinstance(value, str):
        return [value]
    return list(value)


def bind_plan(addresses: str | Sequence[str]) -> list[BindSpec]:
    """The sockets ``addresses`` needs; ValueError naming what cannot be bound together."""
    hosts: list[str] = []
    for item in listen_list(addresses):
        if not isinstance(item, str):
            raise ValueError(f"listen address {item!r} is not a string")
        text = item.strip()
        if is_wildcard(text):
            text = "::" if ":" in text else "0.0.0.0"
        try:
            host = canonical(text, allow_zone=True)
        except ValueError:
            raise ValueError(
                f"listen address {item!r} is not an IP address "
                '(e.g. "0.0.0.0", "::", "192.0.2.10", "2001:db8::10")'
            ) from None
        if host not in hosts:
            hosts.append(host)
    if not hosts:
        raise ValueError("no listen address")
    v4 = [h for h in hosts if ":" not in h]
    v6 = [h for h in hosts if ":" in h]
    for wildcard, same in (("0.0.0.0", v4), ("::", v6)):
        if wildcard in same and len(same) > 1:
            other = next(h for h in same if h != wildcard)
            raise ValueError(
                f"listen addresses {wildcard!r} and {other!r} cannot share a port "
                f"({wildcard!r} already covers every address of its family)"
            )
    # "::" is dual-stack unless IPv4 has sockets of its own.
    dual = "::" in v6 and not v4
    return [
        BindSpec(h, socket.AF_INET6 if ":" in h else socket.AF_INET, v6only=not dual) for h in hosts
    ]


def served_families(addresses: str | Sequence[str]) -> frozenset[int]:
    """The IP versions (4, 6) a ``listen`` setting serves."""
    out: set[int] = set()
    for spec in bind_plan(addresses):
        out |= spec.families
    return frozenset(out)


def _socket(spec: BindSpec, kind: int, port: int) -> socket.socket:
    sock = socket.socket(spec.family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if spec.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if spec.v6only else 0)
        if spec.family == socket.AF_INET6 and "%" in spec.host:
            info = socket.getaddrinfo(spec.host, port, spec.family, kind)[0][4]
            sock.bind(info)
        else:
            sock.bind((spec.host, port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        kind_name = "tcp" if kind == socket.SOCK_STREAM else "udp"
        where = f"{host_port(spec.host, port)}/{kind_name}"
        raise OSError(exc.errno, f"{where}: {exc.strerror or exc}") from exc
    except BaseException:
        sock.close()
        raise
    return sock


def _bound_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


PICK_ATTEMPTS = 8
"""Ports tried with port 0 when the one picked is taken on another address of the plan."""


def _retry_pick(exc: OSError, asked: int, opened: int, attempt: int) -> bool:
    """Port 0, a later address found the picked port taken: pick another one."""
    return asked == 0 and opened > 0 and exc.errno == errno.EADDRINUSE and attempt < PICK_ATTEMPTS


async def open_stream_servers(
    factory: Callable[[], asyncio.BaseProtocol],
    addresses: str | Sequence[str],
    port: int,
    *,
    backlog: int = 100,
    **kwargs: Any,
) -> tuple[list[asyncio.Server], int]:
    """TCP servers on every address of the plan, on one port; (servers, port).

    An address that cannot be bound raises OSError after closing what was opened.
    """
    attempt = 1
    while True:
        opened: list[asyncio.Server] = []
        try:
            return await _stream_servers(factory, addresses, port, opened, backlog, kwargs)
        except OSError as exc:
            if not _retry_pick(exc, port, len(opened), attempt):
                raise
            attempt += 1


async def _stream_servers(
    factory: Callable[[], asyncio.BaseProtocol],
    addresses: str | Sequence[str],
    port: int,
    servers: list[asyncio.Server],
    backlog: int,
    kwargs: dict[str, Any],
) -> tuple[list[asyncio.Server], int]:
    loop = asyncio.get_running_loop()
    try:
        for spec in bind_plan(addresses):
            sock = _socket(spec, socket.SOCK_STREAM, port)
            try:
                port = _bound_port(sock)
                server = await loop.create_server(factory, sock=sock, backlog=backlog, **kwargs)
            except BaseException:
                sock.close()
                raise
            servers.append(server)
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers, port


async def open_datagram_endpoints(
    factory: Callable[[], asyncio.DatagramProtocol],
    addresses: str | Sequence[str],
    port: int,
) -> tuple[list[tuple[BindSpec, asyncio.DatagramTransport]], int]:
    """UDP endpoints on every address of the plan, on one port; (endpoints, port)."""
    attempt = 1
    while True:
        opened: list[tuple[BindSpec, asyncio.DatagramTransport]] = []
        try:
            return await _datagram_endpoints(factory, addresses, port, opened)
        except OSError as exc:
            if not _retry_pick(exc, port, len(opened), attempt):
                raise
            attempt += 1


async def _datagram_endpoints(
    factory: Callable[[], asyncio.DatagramProtocol],
    addresses: str | Sequence[str],
    port: int,
    opened: list[tuple[BindSpec, asyncio.DatagramTransport]],
) -> tuple[list[tuple[BindSpec, asyncio.DatagramTransport]], int]:
    loop = asyncio.get_running_loop()
    try:
        for spec in bind_plan(addresses):
            sock = _socket(spec, socket.SOCK_DGRAM, port)
            try:
                port = _bound_port(sock)
                transport, _ = await loop.create_datagram_endpoint(factory, sock=sock)
            except BaseException:
                sock.close()
                raise
            opened.append((spec, transport))
    except BaseException:
        for _, transport in opened:
            transport.close()
        raise
    return opened, port


def pick_endpoint(
    endpoints: Sequence[tuple[BindSpec, Any]], host: str
) -> tuple[Any, tuple[str, int] | None]:
    """The endpoint to send to ``host`` from, and how to write the address for it.

    IPv4 goes out of an IPv4 socket, else out of a dual-stack one as a mapped
    address; IPv6 out of an IPv6 socket. Returns (None, None) when no socket
    serves the family. The second item is a ``(host, 0)`` template: its host
    is the form to pass to ``sendto``.
    """
    v6 = ":" in host
    fallback = None
    for spec, endpoint in endpoints:
        if v6 and spec.family == socket.AF_INET6:
            return endpoint, (host, 0)
        if not v6:
            if spec.family == socket.AF_INET:
                return endpoint, (host, 0)
            if spec.dual_stack and fallback is None:
                fallback = endpoint
    if fallback is not None:
        return fallback, ("::ffff:" + host, 0)
    return None, None
