"""SIP over TCP with two workers: real kernel groups, real transports, the real bus.

A peer at 127.0.0.3 (worker 1's source) connects to the node's TCP port:
the kernel hands the connection to worker 1. Worker 0, which owns a call to
the peer, writes to it over TCP: the message goes over the bus to worker 1,
which writes it on the peer's connection (worker 0 opens none). The peer's
answer, whose branch names worker 0, is passed back to worker 0 with its
transport, and worker 0's reply reaches the peer on the same connection. A
message for a peer worker 1 cannot reach fails on worker 0 too.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from offhook.sip.aio import SipTransport
from offhook.sip.message import SipMessage, SipRequest, SipResponse
from offhook.workers.context import WorkerContext
from offhook.workers.reuseport import home_of, sip_groups

PEER = "127.0.0.3"


def options(branch: str, to_tag: str = "") -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    return (
        "OPTIONS sip:dave@127.0.0.3 SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK{branch}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:node@127.0.0.1>;tag=w0-f\r\n"
        f"To: <sip:dave@127.0.0.3>{tag}\r\nCall-ID: w0-call@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def answer_to(request: bytes) -> bytes:
    """The peer's 200 for ``request``: its Via, From, To, Call-ID and CSeq copied."""
    head = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    keep = [h for h in head if h.split(b":", 1)[0] in (b"Via", b"From", b"To", b"Call-ID", b"CSeq")]
    return b"\r\n".join([b"SIP/2.0 200 OK", *keep, b"Content-Length: 0", b"", b""])


async def read_message(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


def test_a_peers_connection_serves_every_worker(tmp_path: Path) -> None:
    assert home_of(PEER, 2) == 1

    async def scenario() -> None:
        udp, tcp, port = sip_groups("127.0.0.1", 0, 2, True, 16)
        got: list[tuple[int, SipMessage, tuple[str, int], str]] = []
        contexts = [WorkerContext(i, 2, str(tmp_path), udp[i], tcp[i]) for i in range(2)]
        transports: list[SipTransport] = []
        for i, ctx in enumerate(contexts):
            transport = SipTransport(
                on_message=lambda m, a, t, i=i: got.append((i, m, a, t)), allow=lambda h: True
            )
            await transport.start("127.0.0.1", port, True, True, udp[i], tcp_sockets=tcp[i])
            await ctx.attach(transport)
            transports.append(transport)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(PEER, 0), family=socket.AF_INET
        )
        peer = writer.get_extra_info("sockname")[:2]
        try:
            # The peer's first message (no To tag: stays where it arrived) is worker 1's.
            writer.write(options("peer-1").replace(b"w0-f", b"p-f").replace(b"w0-call", b"p"))
            while not got:
                await asyncio.sleep(0.01)
            assert [(i, t) for i, _, _, t in got] == [(1, "tcp")]
            assert got[0][2] == peer
            # Worker 0 sends to the peer over TCP: written by worker 1 on that connection.
            request = options("w0-out")
            transports[0].send(request, peer, "tcp")
            assert await read_message(reader) == request
            assert contexts[0].counters["relayed"] == 1
            assert contexts[1].counters["relays_written"] == 1
            assert not transports[0].connections and list(transports[1].connections) == [peer]
            # The peer's answer names worker 0 by its branch: passed there, as TCP.
            writer.write(answer_to(request))
            while len(got) < 2:
                await asyncio.sleep(0.01)
            index, message, source, transport = got[1]
            assert (index, source, transport) == (0, peer, "tcp")
            assert isinstance(message, SipResponse) and message.status == 200
            assert contexts[1].counters["forwarded"] == 1
            assert contexts[0].counters["received"] == 1
            # An in-dialog request whose To tag is worker 0's goes there too; its
            # answer goes back to the peer on the same connection.
            writer.write(options("peer-2", to_tag="w0-t").replace(b"w0-f", b"p-f"))
            while len(got) < 3:
                await asyncio.sleep(0.01)
            index, message, source, transport = got[2]
            assert (index, source, transport) == (0, peer, "tcp")
            assert isinstance(message, SipRequest)
            transports[0].send(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", source, "tcp")
            assert (await read_message(reader)).startswith(b"SIP/2.0 200 OK")
            assert not transports[0].connections
            # A peer of worker 1 that cannot be reached (nothing listens): worker 1
            # fails to connect and says so; the sender's transaction learns of it.
            with socket.socket() as closed:
                closed.bind((PEER, 0))
                gone = closed.getsockname()[:2]
            failed = asyncio.Event()
            transports[0].send(options("w0-lost"), gone, "tcp", on_error=failed.set)
            await asyncio.wait_for(failed.wait(), 10)
            assert contexts[0].counters["relays_failed"] == 1
            assert contexts[0]._relays == {}
        finally:
            writer.close()
            for ctx in contexts:
                ctx.close()
            for transport in transports:
                await transport.close()
            for sock in (*(s for g in udp for s in g), *(s for g in tcp for s in g)):
                sock.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))
