"""A SipEndpoint on a hand-driven clock, with a recording call engine, for unit tests.

``Rig`` builds a real ``SipEndpoint`` (real transaction layer, dialogs and
legs) whose event loop is ``FakeLoop``: time moves only by ``advance``, which
runs whatever timers fall due, so session timers of 90 s and reliable
provisional retransmissions are tested without waiting. The call engine is
``FakeEngine``: it records what the SIP side reports (``setup``,
``on_media_offer``, ``transfer`` ...) and hands out real core ``Leg``s.
Calls come from a trunk address (no digest needed). Peers are plain text:
``request``/``response`` build a message, ``feed`` delivers it, ``sent``
lists what the endpoint put on the wire (parsed back from its bytes).
"""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from offhook.common.clock import FakeClock
from offhook.common.location import Binding
from offhook.core.events import PartyInfo, Setup
from offhook.core.leg import Direction, Leg
from offhook.core.media import Codec, MediaDescription, MediaStream
from offhook.sip.codec import parse_message
from offhook.sip.endpoint import SipEndpoint, TrunkPeer
from offhook.sip.message import SipMessage, SipRequest, SipResponse
from offhook.sip.outbound_leg import OutboundLeg, SipLegFactory
from offhook.sip.session_timer import SessionTimerSettings
from offhook.sip.timers import TimerConfig
from offhook.sip.transaction import TransactionLayer

PHONE = ("192.0.2.10", 5060)  # the trunk/phone that calls in
CALLEE = ("192.0.2.20", 5062)  # a device offhook calls out to
NODE = ("192.0.2.1", 5060)


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """The parts of an asyncio loop the endpoint uses, on a clock tests move."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, _Handle, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.clock.monotonic()

    def call_at(self, when: float, cb: Callable[..., Any], *args: Any) -> _Handle:
        handle = _Handle()
        heapq.heappush(self._heap, (when, next(self._seq), handle, cb, args))
        return handle

    def call_later(self, delay: float, cb: Callable[..., Any], *args: Any) -> _Handle:
        return self.call_at(self.time() + delay, cb, *args)

    def advance(self, seconds: float) -> None:
        end = self.time() + seconds
        while self._heap and self._heap[0][0] <= end:
            when, _, handle, cb, args = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            self.clock.advance(max(0.0, when - self.time()))
            cb(*args)
        self.clock.advance(max(0.0, end - self.time()))


@dataclass
class FakeEngine:
    """Records the SIP side's reports; hands out real core legs."""

    clock: FakeClock
    calls: list[tuple[str, Any]] = field(default_factory=list)
    legs: list[Leg] = field(default_factory=list)
    factory: Any = None

    def register_factory(self, protocol: str, factory: Any) -> None:
        self.factory = factory

    def inbound_leg(self, driver: Any, device: str, css: str | None = None) -> Leg:
        leg = Leg(f"L{len(self.legs) + 1}", Direction.INBOUND, device, self.clock, driver=driver)
        leg.css = css
        self.legs.append(leg)
        return leg

    def outbound_leg(self, device: str) -> Leg:
        leg = Leg(f"L{len(self.legs) + 1}", Direction.OUTBOUND, device, self.clock)
        self.legs.append(leg)
        return leg

    def device_calls(self, device: str) -> int:
        return 0

    def next_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None

    def __getattr__(self, name: str) -> Callable[..., None]:
        # setup, replace, transfer, transfer_to, on_* : recorded as (name, args)
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.calls if n == name]


def media(port: int = 4000, direction: str = "sendrecv") -> MediaDescription:
    return MediaDescription(
        (MediaStream("audio", "192.0.2.50", port, (Codec("PCMU", 8000, 0),), direction),)
    )


def sdp(port: int = 40000, host: str = "192.0.2.10") -> bytes:
    return (
        f"v=0\r\no=p 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    ).encode()


DEFAULT_SESSION = SessionTimerSettings()


class Rig:
    def __init__(self, *, session: SessionTimerSettings | None = DEFAULT_SESSION) -> None:
        self.clock = FakeClock(start=100.0)
        self.loop = FakeLoop(self.clock)
        self.engine = FakeEngine(self.clock)
        self.wire: list[tuple[SipMessage, tuple[str, int]]] = []
        with mock.patch("offhook.sip.endpoint.asyncio.get_running_loop", return_value=self.loop):
            self.ep = SipEndpoint(
                engine=self.engine,  # type: ignore[arg-type]
                registrar=None,  # type: ignore[arg-type]
                authenticator=None,  # type: ignore[arg-type]
                credentials=None,  # type: ignore[arg-type]
                caller_of=lambda device: None,
                txl=TransactionLayer(TimerConfig(t1=0.5)),
                send=self._send,
                clock=self.clock,
                host=NODE[0],
                port=NODE[1],
                trunk_for=lambda addr: TrunkPeer("pbx", "css") if addr == PHONE else None,
                session_timers=session,
            )

    # --- the wire ----------------------------------------------------------------
    def _send(self, msg: SipMessage, dest: tuple[str, int], transport: str, _err: Any) -> None:
        self.wire.append((parse_message(msg.serialize()), dest))  # type: ignore[attr-defined]

    def feed(self, text: str | bytes, source: tuple[str, int] = PHONE) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.ep.on_message(parse_message(data), source, "udp")

    def take(self) -> list[SipMessage]:
        out = [m for m, _ in self.wire]
        self.wire.clear()
        return out

    def advance(self, seconds: float) -> None:
        self.loop.advance(seconds)


def _once(msgs: list[SipMessage]) -> list[SipMessage]:
    """Without the transaction layer's retransmissions (same first line, branch and CSeq)."""
    seen: set[tuple[str, str, str]] = set()
    out: list[SipMessage] = []
    for m in msgs:
        first = m.method if isinstance(m, SipRequest) else str(m.status)  # type: ignore[attr-defined]
        key = (first, m.branch or "", m.headers.get("CSeq") or "")
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def requests(msgs: list[SipMessage], method: str) -> list[SipRequest]:
    """The ``method`` requests among ``msgs``, each once (retransmissions left out)."""
    return [m for m in _once(msgs) if isinstance(m, SipRequest) and m.method == method]


def responses(msgs: list[SipMessage], method: str | None = None) -> list[SipResponse]:
    """The responses (to ``method``) among ``msgs``, each once (retransmissions left out)."""
    return [
        m
        for m in _once(msgs)
        if isinstance(m, SipResponse) and (method is None or m.cseq[1] == method)
    ]


def branch() -> str:
    return "z9hG4bK" + secrets.token_hex(6)


@dataclass
class Peer:
    """A SIP peer's side of one dialog, written by hand."""

    addr: tuple[str, int]
    call_id: str = field(default_factory=lambda: secrets.token_hex(6) + "@peer")
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    cseq: int = 1
    remote_tag: str = ""  # offhook's tag, once known
    remote_target: str = f"sip:offhook@{NODE[0]}:{NODE[1]}"
    user: str = "phone"

    def request(
        self,
        method: str,
        *,
        body: bytes = b"",
        ctype: str = "application/sdp",
        headers: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
        via_branch: str | None = None,
        to_tag: str | None = None,
        uri: str | None = None,
    ) -> bytes:
        if cseq is None:
            if method not in ("ACK", "CANCEL"):
                self.cseq += 1
            cseq = self.cseq
        tag = self.remote_tag if to_tag is None else to_tag
        to = f"<sip:1002@{NODE[0]}>" + (f";tag={tag}" if tag else "")
        lines = [
            f"{method} {uri or self.remote_target} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.addr[0]}:{self.addr[1]};branch={via_branch or branch()}",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{self.addr[0]}>;tag={self.tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.user}@{self.addr[0]}:{self.addr[1]}>",
        ]
        lines += [f"{n}: {v}" for n, v in headers or []]
        if body:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def invite(self, body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> bytes:
        self.cseq = 1
        uri = f"sip:1002@{NODE[0]}:{NODE[1]}"
        return self.request("INVITE", body=body, headers=headers, cseq=1, to_tag="", uri=uri)

    def answer(
        self,
        req: SipRequest,
        status: int,
        *,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        ctype: str = "application/sdp",
    ) -> bytes:
        """A response from this peer (as the UAS of ``req``)."""
        to = req.headers.get("To") or ""
        if "tag=" not in to and status > 100:
            to += f";tag={self.tag}"
        lines = [f"SIP/2.0 {status} Whatever"]
        lines += [f"Via: {v}" for v in req.headers.get_all("Via")]
        lines += [
            f"From: {req.headers.get('From')}",
            f"To: {to}",
            f"Call-ID: {req.call_id}",
            f"CSeq: {req.headers.get('CSeq')}",
        ]
        if req.method in ("INVITE", "UPDATE") and 100 < status < 300:
            lines.append(f"Contact: <sip:{self.user}@{self.addr[0]}:{self.addr[1]}>")
        lines += [f"{n}: {v}" for n, v in headers or []]
        if body:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def call_in(
    rig: Rig, peer: Peer, headers: list[tuple[str, str]] | None = None, body: bytes | None = None
) -> Leg:
    """``peer`` INVITEs offhook; returns the core leg the engine was given."""
    rig.feed(peer.invite(sdp() if body is None else body, headers))
    setups = rig.engine.named("setup") + rig.engine.named("replace")
    assert setups, rig.take()
    return setups[-1][0]


def answer_in(rig: Rig, peer: Peer, leg: Leg) -> SipResponse:
    """Core answers the inbound call; the peer ACKs. Returns the 200."""
    assert leg.driver is not None
    leg.driver.answer(media())
    ok = responses(rig.take(), "INVITE")[-1]
    assert ok.status == 200, ok
    peer.remote_tag = ok.to_tag or ""
    rig.feed(peer.request("ACK", cseq=1))
    return ok


def call_out(rig: Rig, callee: Peer) -> tuple[OutboundLeg, Leg, SipRequest]:
    """offhook INVITEs ``callee``; returns the driver, its core leg and the INVITE."""
    factory = rig.engine.factory
    assert isinstance(factory, SipLegFactory)
    leg = rig.engine.outbound_leg("callee")
    binding = Binding(
        device="callee",
        protocol="sip",
        contact=f"sip:callee@{callee.addr[0]}:{callee.addr[1]}",
        expires_at=1e12,
        source=callee.addr,
        transport="udp",
    )
    driver = factory.create(binding, leg)
    assert isinstance(driver, OutboundLeg)
    leg.driver = driver
    driver.offer(Setup(PartyInfo("1001"), "1002", media()))
    invite = requests(rig.take(), "INVITE")[-1]
    callee.call_id = invite.call_id
    return driver, leg, invite
