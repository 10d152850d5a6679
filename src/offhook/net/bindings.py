"""What the stream listeners share on top of ``net.listen``: servers and their names.

``net.listen`` turns a ``listen`` setting (one address or a list: IPv4,
IPv6, a dual-stack ``"::"``) into sockets on one port. The listeners built
on asyncio streams (the admin endpoint, provisioning HTTP) need the same
sockets behind ``asyncio.StreamReader``/``StreamWriter`` pairs, as
``asyncio.start_server`` would give them: :func:`start_stream_servers` does
that over the bind plan (``start_server`` itself cannot open a dual-stack
socket: it sets ``IPV6_V6ONLY`` on every IPv6 one).

:func:`describe` names a listener's addresses the way logs and error
messages print them: ``host:port`` each, IPv6 in brackets
(``0.0.0.0:2000, [::]:2000``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from offhook.common.addr import host_port
from offhook.net.listen import listen_list, open_stream_servers

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def describe(addresses: str | Sequence[str], port: int) -> str:
    """``addresses`` on ``port`` as logs print them: ``0.0.0.0:69, [::]:69``."""
    return ", ".join(host_port(host, port) for host in listen_list(addresses))


async def start_stream_servers(
    handler: StreamHandler,
    addresses: str | Sequence[str],
    port: int,
    *,
    limit: int,
    backlog: int,
) -> tuple[list[asyncio.Server], int]:
    """``asyncio.start_server`` on every address of the bind plan, one port; (servers, port).

    ``limit`` is the StreamReader's buffer limit (a line or ``readuntil``
    longer than it raises ``LimitOverrunError``), as ``start_server`` takes it.
    """
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.StreamReaderProtocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, handler, loop=loop)

    return await open_stream_servers(factory, addresses, port, backlog=backlog)
