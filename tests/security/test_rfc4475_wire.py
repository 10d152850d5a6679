"""RFC 4475 over the wire: all 49 torture messages to a running node, over UDP and TCP.

``tests/vectors/test_rfc4475.py`` checks what the parser and the request
checks say about each message; here the same messages (byte for byte, from
``tests/vectors/sip/rfc4475/``) go to a real ``offhook serve`` and the test
looks at what comes back on the wire, then checks that the node still
registers phones and connects a call.

One node per transport (a UDP and a TCP copy of one message would be one
transaction, RFC 3261 §17.2.3). Each message is sent from its own loopback
source address (127.x.y.z), so that the per-source defences (rate buckets,
the failed-login guard that ``regaut01`` feeds) never mix the cases. The
messages go at once, in two waves (three pairs of vectors share branch,
sent-by and method), and each exchange ends after a quiet period, so the
barrage takes seconds.

- UDP: the answer goes where RFC 3261 §18.2.2 sends it: the source address
  (``received``, §18.2.1) and the port of the top Via's sent-by (5060 when
  absent; ``quotbal`` says 5050), so the client socket is bound to that port
  on its own source address. Every answer carries ``received=<source>``.
- TCP: a fresh connection per message; answers come back on it (§18.2.2).
  A framing error (a request line or Content-Length the framer cannot use,
  RFC 3261 §18.3) closes the connection after the 400 when one can be
  built; otherwise the connection stays open until the client half-closes
  it, and then the node closes it at once (CSCed37403).

Expected answers (statuses from the RFC's text or RFC 3261; a response
message is never answered, §18.1.2):

- valid requests (§3.1.1, §3.3 valid, §3.4): OPTIONS -> 200; REGISTER ->
  401 (every registration is challenged, §22); a new INVITE -> 407 (calls
  are authenticated); ``wsinv`` (an INVITE with a To tag matching no dialog)
  -> 481 (§12.2.2); methods the node does not recognise (``intmeth``,
  ``esc02``: ``RE%47IST%45R`` is not REGISTER) -> 501 (§21.5.2); MESSAGE
  (``mpart01``, known, not supported) -> 405 with Allow (§8.2.1);
- invalid requests: the status of ``VALIDATE_REJECTS`` / ``PARSER_REJECTS``
  in the vector test (400, or 505 ``badvers``, 416, 420 with Unsupported,
  415 with Accept, 483, 406);
- responses (``unreason``, ``noreason``, ``bcast``, ``bigcode``, ``scalarlg``):
  silence.

Transport differences, all from RFC 3261 §18.3 (a stream message needs a
Content-Length and ends where it says; a datagram's extra bytes are
ignored): ``dblreq`` is one REGISTER over UDP (the INVITE after it is noise)
but a REGISTER and an INVITE over TCP, each answered, and the 5 stray bytes
after the INVITE's body then close the connection; ``inv2543`` (an RFC 2543
INVITE without Content-Length) works over UDP and is refused with 400 over
TCP; ``clerr`` (Content-Length past the end) and ``baddn`` (no end of the
header block) are a 400 over UDP and an incomplete message over TCP (nothing
is answered; the half-close closes it); ``bigcode`` (a response with a
four-digit status) closes the TCP connection.

Notes on the vectors: none carries a placeholder any more (the RFC's
``<allOneLine>`` and ``<hex>`` notations are already expanded in the files);
``intmeth`` (UTF-8 and escaped bytes in the URI and method), ``mpart01``
(a binary multipart body) and ``unreason`` (UTF-8 reason phrase) carry
non-ASCII bytes, and ``escnull`` a %00 escape.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from integration.sipclient import SipClient, sdp, tag
from offhook.common.errors import ParseError
from offhook.sip.codec import StreamFramer, parse_message
from offhook.sip.message import SipRequest, SipResponse
from offhook.sip.transaction import server_key
from support.server import OffhookServer, device, plan_of
from vectors.test_rfc4475 import (
    PARSER_DROPS,
    PARSER_REJECTS,
    RESPONSE_DROPS,
    VALID_REQUESTS,
    VALID_RESPONSES,
    VALIDATE_REJECTS,
)

HERE = Path(__file__).resolve().parents[1] / "vectors" / "sip" / "rfc4475"
REALM = "offhook.test"
QUIET = 1.5  # seconds without a new byte that end an exchange
HALF_CLOSE_GRACE = 5.0  # after our FIN, the node must close within this

# Valid requests: the node's answer (see the module doc for the RFC sections).
VALID_ANSWERS: dict[str, int] = {
    "wsinv": 481,
    "intmeth": 501,
    "esc01": 407,
    "escnull": 401,
    "esc02": 501,
    "lwsdisp": 200,
    "longreq": 407,
    "dblreq": 401,
    "semiuri": 200,
    "transports": 200,
    "mpart01": 405,
    "regaut01": 401,
    "cparam01": 401,
    "cparam02": 401,
    "regescrt": 401,
    "inv2543": 407,
}
RESPONSES = set(VALID_RESPONSES) | set(PARSER_DROPS) | set(RESPONSE_DROPS)


@dataclass(frozen=True)
class Expect:
    statuses: tuple[int, ...]  # distinct statuses, in order of first arrival
    closes: bool = False  # TCP: the node closes the connection by itself
    headers: tuple[tuple[str, str], ...] = ()


def expected(name: str, transport: str) -> Expect:
    tcp = transport == "tcp"
    if name in RESPONSES:
        return Expect((), closes=tcp and name == "bigcode")
    if name == "dblreq" and tcp:
        return Expect((401, 407), closes=True)
    if name == "inv2543" and tcp:
        return Expect((400,), closes=True)
    if name in ("clerr", "baddn") and tcp:
        return Expect(())  # an incomplete message on a stream: nothing to answer yet
    if name in VALID_ANSWERS:
        status = VALID_ANSWERS[name]
        headers = (("Allow", "INVITE"),) if status == 405 else ()
        return Expect((status,), headers=headers)
    if name in PARSER_REJECTS:
        return Expect((PARSER_REJECTS[name],), closes=tcp)
    status, extra = VALIDATE_REJECTS[name]
    return Expect((status,), headers=tuple(extra.items()))


def test_every_vector_has_a_wire_expectation() -> None:
    names = {p.stem for p in HERE.glob("*.dat")}
    assert len(names) == 49
    assert set(VALID_REQUESTS) == set(VALID_ANSWERS)
    for name in names:
        expected(name, "udp")
        expected(name, "tcp")


def top_via_port(data: bytes) -> int:
    """The port the top Via's sent-by names (5060 when absent)."""
    m = re.search(rb"^(?:via|v)[ \t]*:[ \t]*SIP[ \t]*/[^/]+/[ \t]*\w+[ \t]+([^;,\r\n]+)",
                  data, re.I | re.M)  # fmt: skip
    assert m is not None
    host = m.group(1).strip()
    port = re.search(rb":(\d+)$", host)
    return int(port.group(1)) if port else 5060


@dataclass
class Outcome:
    answers: list[bytes] = field(default_factory=list)
    closed_by_node: bool = False
    closed_after_fin: bool | None = None

    def statuses(self) -> tuple[int, ...]:
        seen: list[int] = []
        for a in self.answers:
            status = int(a.split(b" ", 2)[1])
            if status not in seen:
                seen.append(status)
        return tuple(seen)


class _Collect(asyncio.DatagramProtocol):
    def __init__(self, outcome: Outcome, arrived: asyncio.Event) -> None:
        self.outcome = outcome
        self.arrived = arrived

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.outcome.answers.append(data)
        self.arrived.set()


async def _quiet(arrived: asyncio.Event) -> None:
    """Return once nothing arrived for QUIET seconds."""
    while True:
        arrived.clear()
        try:
            await asyncio.wait_for(arrived.wait(), QUIET)
        except TimeoutError:
            return


async def over_udp(port: int, source: str, data: bytes) -> Outcome:
    loop = asyncio.get_running_loop()
    outcome = Outcome()
    arrived = asyncio.Event()
    via_port = top_via_port(data)
    for attempt in range(4):
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Collect(outcome, arrived), local_addr=(source, via_port)
            )
            break
        except OSError as exc:
            # Another process holds the port on this address (or on 0.0.0.0).
            if attempt == 3:
                raise RuntimeError(f"cannot bind UDP {source}:{via_port}: {exc}") from exc
            source = f"127.{random.randint(1, 99)}.{random.randint(0, 255)}.{attempt + 200}"
    try:
        transport.sendto(data, ("127.0.0.1", port))
        await _quiet(arrived)
    finally:
        transport.close()
    return outcome


async def over_tcp(port: int, source: str, data: bytes) -> Outcome:
    outcome = Outcome()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    framer = StreamFramer(max_size=1 << 20)
    try:
        writer.write(data)
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), QUIET)
            except TimeoutError:
                break
            except ConnectionError:
                chunk = b""
            if not chunk:
                outcome.closed_by_node = True
                break
            for msg in framer.feed(chunk):
                assert isinstance(msg, SipResponse)
                outcome.answers.append(msg.serialize())
        if not outcome.closed_by_node:
            writer.write_eof()  # half-close: the node must close its side at once
            try:
                rest = await asyncio.wait_for(reader.read(), HALF_CLOSE_GRACE)
                outcome.closed_after_fin = True
                assert rest == b"", rest
            except TimeoutError:
                outcome.closed_after_fin = False
            except ConnectionError:
                outcome.closed_after_fin = True
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return outcome


def waves(names: list[str]) -> list[list[str]]:
    """Groups to send at once: no two messages of a group are the same transaction.

    RFC 3261 §17.2.3 matches a request to a server transaction by branch,
    sent-by and method; ``cparam01``/``cparam02``, ``escnull``/``regescrt`` and
    ``novelsc``/``unkscm`` share all three, so concurrently one would be taken
    for a retransmission of the other.
    """
    out: list[list[str]] = []
    keys: list[set[tuple[str, ...]]] = []
    for name in names:
        try:
            msg = parse_message((HERE / f"{name}.dat").read_bytes())
            key = server_key(msg) if isinstance(msg, SipRequest) else ("response", name)
        except ParseError:
            key = ("unparsable", name)
        for group, seen in zip(out, keys, strict=True):
            if key not in seen:
                group.append(name)
                seen.add(key)
                break
        else:
            out.append([name])
            keys.append({key})
    return out


@pytest.fixture(scope="module", params=["udp", "tcp"])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One node per transport: a UDP and a TCP copy of one message are one transaction."""
    plan = plan_of(
        [device("alice", "alice-Secret-1", "1001"), device("bob", "bob-Secret-2", "1002")]
    )
    with OffhookServer(tmp_path_factory.mktemp("rfc4475"), plan, realm=REALM) as server:
        yield request.param, server


@pytest.fixture(scope="module")
def barrage(node: tuple[str, OffhookServer]) -> dict[str, Outcome]:
    """Every vector over the node's transport, each from its own source address."""
    transport, server = node
    names = sorted(p.stem for p in HERE.glob("*.dat"))
    octet = random.randint(100, 250)
    send = over_udp if transport == "udp" else over_tcp

    async def run() -> dict[str, Outcome]:
        results: dict[str, Outcome] = {}
        for group in waves(names):
            outcomes = await asyncio.gather(
                *(
                    send(server.sip_port, f"127.{octet}.1.{names.index(n) + 1}", load(n))
                    for n in group
                )
            )
            results.update(zip(group, outcomes, strict=True))
        return results

    return asyncio.run(run())


def load(name: str) -> bytes:
    return (HERE / f"{name}.dat").read_bytes()


NAMES = sorted(p.stem for p in HERE.glob("*.dat"))


@pytest.mark.parametrize("name", NAMES)
def test_torture_message_gets_the_rfc_answer(
    node: tuple[str, OffhookServer], barrage: dict[str, Outcome], name: str
) -> None:
    transport, _ = node
    got = barrage[name]
    want = expected(name, transport)
    assert got.statuses() == want.statuses, [a[:200] for a in got.answers]
    for answer in got.answers:
        head = answer.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        # RFC 3261 §18.2.1: the node stamped the source on the top Via it echoes back.
        vias = [line for line in head.split("\r\n") if line.lower().startswith("via:")]
        assert vias and "received=127." in vias[0], head
        for hname, value in want.headers:
            assert re.search(rf"^{hname}:.*{re.escape(value)}", head, re.M | re.I), head
    if transport == "tcp":
        assert got.closed_by_node == want.closes, got
        if not got.closed_by_node:
            assert got.closed_after_fin, "the node kept a half-closed connection"


def test_the_node_still_registers_and_calls_after_the_barrage(
    node: tuple[str, OffhookServer], barrage: dict[str, Outcome]
) -> None:
    transport, server = node
    assert len(barrage) == 49
    assert server.proc is not None and server.proc.poll() is None, server.log_tail()

    async def call() -> None:
        sip = ("127.0.0.1", server.sip_port)
        alice = await SipClient(sip, "alice", "alice-Secret-1", REALM, transport).start()
        bob = await SipClient(sip, "bob", "bob-Secret-2", REALM, transport).start()
        try:
            for ua in (alice, bob):
                _, ok = await ua.register(expires=300)
                assert ok.status == 200, (ua.user, ok.status, ok.reason)
            call = await alice.call("1002", body=sdp(40000))
            invite = await bob.recv_request("INVITE", timeout=5.0)
            to_tag = tag()
            bob.answer(invite, 180, to_tag=to_tag)
            bob.answer(invite, 200, to_tag=to_tag, body=sdp(40002))
            ok = await call.final(timeout=5.0)
            assert ok.status == 200
            call.ack(ok)
            await bob.recv_request("ACK", timeout=5.0)
            assert call.dialog is not None
            alice.send_bytes(alice.in_dialog(call.dialog, "BYE"))
            bye = await bob.recv_request("BYE", timeout=5.0)
            bob.answer(bye, 200, to_tag=to_tag)
            assert (await alice.recv_response("BYE", timeout=5.0)).status == 200
        finally:
            await alice.close()
            await bob.close()

    asyncio.run(asyncio.wait_for(call(), 60.0))
    rows = server.wait_cdr(lambda r: r["calling"] == "1001" and r["called"] == "1002")
    assert all(r["cause"] == "16" for r in rows), rows
    assert "Traceback" not in server.log(), server.log_tail()
