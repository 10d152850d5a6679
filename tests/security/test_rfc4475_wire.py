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

Dual stack (the ``udp-dual`` and ``tcp-dual`` cases): the same barrage, the
same expectations, against nodes listening on ``"::"`` alone (one dual-stack
socket per transport), once over IPv4 (from 127.x.y.z to 127.0.0.1: the
node sees ``::ffff:127.x.y.z`` and must answer as to plain IPv4, with
``received=127.x.y.z``) and once over IPv6 (from ::1 to ::1, ``received=::1``,
bare as RFC 3261 and RFC 5118 §4.5 write it). The two barrages go to two
nodes at once (both started together), since a copy of a message on one node
would be one transaction with the first (see above); after them, each node
registers alice over IPv4 and bob over IPv6 (``offhook status`` names their
sources ``127.0.0.1:port`` and ``[::1]:port``; no ``::ffff:`` in the status
or the log) and connects a call between them.
Only one IPv6 loopback address exists, so over IPv6 every message comes from
::1: over TCP each on its own connection, over UDP from the one socket bound
to its sent-by port (47 of the 49 name none: 5060), the answers told apart by
Call-ID (by top Via branch for ``insuf``, which has no Call-ID). The
per-source defences see one source then; the barrage stays far below its rate
and connection limits (49 messages; none is a failed login).

Notes on the vectors: none carries a placeholder any more (the RFC's
``<allOneLine>`` and ``<hex>`` notations are already expanded in the files);
``intmeth`` (UTF-8 and escaped bytes in the URI and method), ``mpart01``
(a binary multipart body) and ``unreason`` (UTF-8 reason phrase) carry
non-ASCII bytes, and ``escnull`` a %00 escape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from integration.sipclient import SipClient, sdp, tag
from offhook.common.addr import host_port
from offhook.common.errors import ParseError
from offhook.sip.codec import StreamFramer, parse_message
from offhook.sip.message import SipRequest, SipResponse
from offhook.sip.transaction import server_key
from support.ports import HOST, HOST6
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


_VIA = re.compile(rb"^(?:via|v)[ \t]*:(.*)$", re.I | re.M)
_BRANCH = re.compile(rb"branch[ \t]*=[ \t]*([^;,\s]+)", re.I)
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(.*?)[ \t]*\r?$", re.I | re.M)


def exchange_key(data: bytes) -> bytes | None:
    """What ties an answer to its request: the Call-ID, else the top Via branch.

    Used over IPv6/UDP, where every request comes from ::1 and the answers to
    most of them arrive on one socket (see the module doc).
    """
    head = data.split(b"\r\n\r\n", 1)[0]
    call_id = _CALL_ID.search(head)
    if call_id is not None:
        return b"i:" + call_id.group(1)
    via = _VIA.search(head)
    branch = _BRANCH.search(via.group(1)) if via is not None else None
    return b"b:" + branch.group(1) if branch is not None else None


@dataclass
class Outcome:
    source: str = ""  # the address the message was sent from
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
    """One message from ``source`` (127.x.y.z) to the node's IPv4 loopback address."""
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
    outcome.source = source
    try:
        transport.sendto(data, (HOST, port))
        await _quiet(arrived)
    finally:
        transport.close()
    return outcome


class _Demux(asyncio.DatagramProtocol):
    """Answers arriving on one shared socket, sorted by ``exchange_key``."""

    def __init__(self, owners: dict[bytes | None, Outcome], arrived: asyncio.Event) -> None:
        self.owners = owners
        self.arrived = arrived

    def datagram_received(self, data: bytes, addr: Any) -> None:
        key = exchange_key(data)
        self.owners.get(key, self.owners[None]).answers.append(data)
        self.arrived.set()


async def udp6_wave(port: int, messages: dict[str, bytes]) -> dict[str, Outcome]:
    """One wave over IPv6 UDP: every message from ::1, on the socket of its sent-by port.

    The node answers a request without ``rport`` at ``received`` and the
    sent-by port (RFC 3261 §18.2.2), so all messages naming one port share
    one socket bound to [::1]:port, and their answers are told apart by
    ``exchange_key`` (distinct within a wave; checked). An answer that
    matches no message is kept under ``""`` (the test expects none).
    """
    loop = asyncio.get_running_loop()
    arrived = asyncio.Event()
    outcomes = {name: Outcome(source=HOST6) for name in messages}
    owners: dict[bytes | None, Outcome] = {None: Outcome(source=HOST6)}
    for name, data in messages.items():
        key = exchange_key(data)
        assert key is not None and key not in owners, (name, key)
        owners[key] = outcomes[name]
    sockets: dict[int, asyncio.DatagramTransport] = {}
    try:
        for via_port in sorted({top_via_port(data) for data in messages.values()}):
            for attempt in range(20):  # another process may hold the port briefly
                try:
                    sockets[via_port], _ = await loop.create_datagram_endpoint(
                        lambda: _Demux(owners, arrived), local_addr=(HOST6, via_port)
                    )
                    break
                except OSError as exc:
                    if attempt == 19:
                        raise RuntimeError(f"cannot bind UDP [{HOST6}]:{via_port}: {exc}") from exc
                    await asyncio.sleep(0.5)
        for data in messages.values():
            sockets[top_via_port(data)].sendto(data, (HOST6, port))
        await _quiet(arrived)
    finally:
        for transport in sockets.values():
            transport.close()
    return {**outcomes, "": owners[None]}


async def over_tcp(port: int, source: str, data: bytes) -> Outcome:
    """One message on a fresh connection from ``source`` (127.x.y.z or ::1) to the node."""
    outcome = Outcome(source=source)
    host = HOST6 if ":" in source else HOST
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
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


@dataclass(frozen=True)
class Bed:
    """The nodes of one case: ``family -> node`` (one IPv4 node, or two dual-stack nodes)."""

    transport: str
    nodes: dict[str, OffhookServer]


DUAL_STACK = {"sip": {"listen": "::", "allow": ["127.0.0.0/8", "::1/128"]}}
# The node fixture's cases: (transport, dual-stack).
CASES = {"udp": ("udp", False), "tcp": ("tcp", False), "udp-dual": ("udp", True),
         "tcp-dual": ("tcp", True)}  # fmt: skip


@pytest.fixture(scope="module", params=list(CASES))
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """One node per transport: a UDP and a TCP copy of one message are one transaction.

    A dual-stack case has two nodes on ``"::"``, for the IPv4 and the IPv6
    barrage (the same message to one node twice would be one transaction),
    started together.
    """
    transport, dual = CASES[request.param]
    plan = plan_of(
        [device("alice", "alice-Secret-1", "1001"), device("bob", "bob-Secret-2", "1002")]
    )
    families = ["ipv4", "ipv6"] if dual else ["ipv4"]
    servers = {
        family: OffhookServer(
            tmp_path_factory.mktemp("rfc4475"),
            plan,
            realm=REALM,
            extra_config=DUAL_STACK if dual else None,
        )
        for family in families
    }
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            for started in [pool.submit(server.start) for server in servers.values()]:
                started.result()
        yield Bed(transport, servers)
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def barrage(node: Bed) -> dict[tuple[str, str], Outcome]:
    """Every vector over the case's transport, per family: ``(family, name) -> Outcome``.

    Over IPv4 each message comes from its own source address; over IPv6 from ::1.
    """
    names = sorted(p.stem for p in HERE.glob("*.dat"))
    octet = random.randint(100, 250)

    async def ipv4(port: int) -> dict[str, Outcome]:
        send = over_udp if node.transport == "udp" else over_tcp
        results: dict[str, Outcome] = {}
        for group in waves(names):
            outcomes = await asyncio.gather(
                *(send(port, f"127.{octet}.1.{names.index(n) + 1}", load(n)) for n in group)
            )
            results.update(zip(group, outcomes, strict=True))
        return results

    async def ipv6(port: int) -> dict[str, Outcome]:
        results: dict[str, Outcome] = {}
        for group in waves(names):
            if node.transport == "udp":
                got = await udp6_wave(port, {n: load(n) for n in group})
                stray = got.pop("")
                results[""] = Outcome(HOST6, [*results.get("", Outcome()).answers, *stray.answers])
                results.update(got)
            else:
                outcomes = await asyncio.gather(*(over_tcp(port, HOST6, load(n)) for n in group))
                results.update(zip(group, outcomes, strict=True))
        return results

    async def run() -> dict[tuple[str, str], Outcome]:
        barrages = {"ipv4": ipv4, "ipv6": ipv6}
        families = list(node.nodes)
        done = await asyncio.gather(
            *(barrages[family](node.nodes[family].sip_port) for family in families)
        )
        return {
            (family, name): outcome
            for family, results in zip(families, done, strict=True)
            for name, outcome in results.items()
        }

    return asyncio.run(run())


def load(name: str) -> bytes:
    return (HERE / f"{name}.dat").read_bytes()


NAMES = sorted(p.stem for p in HERE.glob("*.dat"))


@pytest.mark.parametrize("name", NAMES)
def test_torture_message_gets_the_rfc_answer(
    node: Bed, barrage: dict[tuple[str, str], Outcome], name: str
) -> None:
    transport = node.transport
    want = expected(name, transport)
    for family in node.nodes:
        got = barrage[family, name]
        assert got.statuses() == want.statuses, (family, [a[:200] for a in got.answers])
        for answer in got.answers:
            head = answer.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
            # RFC 3261 §18.2.1: the node stamped the source on the top Via it echoes
            # back, in its plain form (IPv4 from a dual-stack socket, bare IPv6).
            vias = [line for line in head.split("\r\n") if line.lower().startswith("via:")]
            assert vias and re.search(rf";received={re.escape(got.source)}(?:[;,\s]|$)", vias[0]), (
                family,
                got.source,
                head,
            )
            for hname, value in want.headers:
                assert re.search(rf"^{hname}:.*{re.escape(value)}", head, re.M | re.I), head
        if transport == "tcp":
            assert got.closed_by_node == want.closes, (family, got)
            if not got.closed_by_node:
                assert got.closed_after_fin, f"{family}: the node kept a half-closed connection"


def test_no_answer_went_astray(node: Bed, barrage: dict[tuple[str, str], Outcome]) -> None:
    """Over IPv6/UDP every answer on the shared sockets belongs to a message sent."""
    stray = barrage.get(("ipv6", ""))
    assert stray is None or not stray.answers, [a[:200] for a in stray.answers]


def test_the_node_still_registers_and_calls_after_the_barrage(
    node: Bed, barrage: dict[tuple[str, str], Outcome]
) -> None:
    """Each node connects a call; on a dual-stack node from alice over IPv4 to bob over IPv6."""
    transport = node.transport
    assert len([key for key in barrage if key[1]]) == 49 * len(node.nodes)
    for server in node.nodes.values():
        assert server.proc is not None and server.proc.poll() is None, server.log_tail()
        call_through(server, transport, dual=len(node.nodes) > 1)


def call_through(server: OffhookServer, transport: str, dual: bool) -> None:
    async def call() -> None:
        sip = (HOST, server.sip_port)
        alice = await SipClient(sip, "alice", "alice-Secret-1", REALM, transport).start()
        bob_local = HOST6 if dual else HOST
        bob = await SipClient(
            (bob_local, server.sip_port), "bob", "bob-Secret-2", REALM, transport, local=bob_local
        ).start()
        try:
            for ua in (alice, bob):
                _, ok = await ua.register(expires=300)
                assert ok.status == 200, (ua.user, ok.status, ok.reason)
            # Each registration's source in its plain form (IPv4, never ::ffff:).
            status = await asyncio.to_thread(server.status)
            sources = {r["device"]: r["source"] for r in status["registrations"]}
            assert sources == {
                "alice": host_port(HOST, alice.port),
                "bob": host_port(bob_local, bob.port),
            }, status["registrations"]
            assert "::ffff:" not in json.dumps(status), status
            call = await alice.call("1002", body=sdp(40000))
            invite = await bob.recv_request("INVITE", timeout=5.0)
            to_tag = tag()
            bob.answer(invite, 180, to_tag=to_tag)
            bob.answer(invite, 200, to_tag=to_tag, body=sdp(40002, host=bob_local))
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
    log = server.log()
    assert "Traceback" not in log, server.log_tail()
    assert "::ffff:" not in log, server.log_tail()  # one address form inside the node
