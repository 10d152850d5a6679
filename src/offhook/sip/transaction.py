"""SIP transaction layer (RFC 3261 §17, RFC 6026), sans-IO.

Theory of operation
-------------------
One ``TransactionLayer`` per SIP endpoint owns every client and server
transaction. It does no I/O and reads no clock: the adapter (``sip/aio.py``)
feeds it parsed messages with the current time ``now`` (``loop.time()``),
sends what it queues, and keeps one timer armed::

    layer = TransactionLayer(TimerConfig())
    events = layer.receive_request(req, addr, transport, now)    # from the wire
    events = layer.receive_response(resp, addr, transport, now)  # from the wire
    txn = layer.send_request(req, dest, transport, now)          # TU -> wire
    events = layer.send_response(txn_or_key, resp, now)          # TU -> wire
    events = layer.handle_timers(now)     # call when now >= layer.next_timer()
    events = layer.transport_error(key, now)   # a send for that txn failed
    layer.send_stateless(msg, dest, transport) # ACK for 2xx, stateless replies
    for out in layer.datagrams_to_send():   # Outgoing(message, addr, transport, key)
        transport.send(out.message, out.addr, out.transport)
    deadline = layer.next_timer()              # float | None, re-arm one timer

Every entry point returns the TU events it produced, in order (frozen,
slotted dataclasses, see ``Event``); outgoing messages are queued and drained
with ``datagrams_to_send()`` after each call. Messages leave as message
objects; the adapter serialises (``msg.serialize()``), so it may still pick
the response destination per RFC 3261 §18.2.2. Server responses are
addressed to the source address of the request.

The four state machines are data in ``txn_fsm.py``; this module executes
them. Matching (§17.1.3, §17.2.3): a response matches the client transaction
keyed by its top Via branch and CSeq method; a request with an RFC 3261
branch (``z9hG4bK``) matches by branch, sent-by and method (ACK matches the
INVITE); any other request by the RFC 2543 rules (Request-URI, From tag,
Call-ID, CSeq, top Via; To tag compared separately). Transport reliability
follows the transport name: everything but ``udp`` is reliable (no
retransmissions, zero wait timers).

What reaches the TU: a new request (``RequestReceived``), every response a
client transaction passes up (``ResponseReceived``), an ACK that belongs to
no transaction or reaches an INVITE server transaction in Accepted
(``AckReceived``: the ACK for a 2xx), a 2xx to INVITE that matches nothing
(``Stray2xx``: re-ACK it), timeouts (Timers B, F, H), transport errors, and
``TransactionTerminated`` when a transaction is gone. Retransmissions are
absorbed. New requests beyond ``max_transactions`` are answered 503 without
creating state.

Timers live in one heap of ``(deadline, seq, key, timer)`` with lazy
deletion: cancelling only forgets the sequence number in the transaction;
stale heap entries are skipped when they surface and the heap is compacted
when they outnumber live ones. Everything is O(log n) per timer. An entry
names its transaction by key, not by reference: a transaction that ended
(a BYE's, 5 s after its answer) is freed at once with its messages, not
when its stale Timer F entry surfaces 27 s later.

A transaction past its final response keeps only what its state still needs
(``LINGERING``): a server answers a retransmitted request with its last
response (Completed), matches an ACK by key (Confirmed, Accepted) and leaves
2xx retransmissions to the TU (Accepted); a client ACKs a retransmitted
300-699 with the ACK it built (Completed) and passes 2xx retransmissions up
(Accepted). So the request it was made for, and a server's 2xx in Accepted
(SDP and all), are let go: a busy node holds these transactions for 32 s
(Timers D, J, L, M) at thousands a second, and every full collection would
walk their messages. Server transactions keyed by the RFC 2543 rules keep
theirs (their To tag is compared with the request's and the response's).

Helpers for the TU: ``build_ack`` (what the client transaction sends for
300-699) and ``build_cancel`` (RFC 3261 §9.1).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from offhook.common.ids import BRANCH_MAGIC
from offhook.sip.message import Headers, SipMessage, SipRequest, SipResponse, make_response
from offhook.sip.timers import TimerConfig, TimerName
from offhook.sip.txn_fsm import (
    INITIAL_STATE,
    ON_CREATE,
    START_TIMER,
    STATE_TIMERS,
    TABLES,
    TIMER_INPUT,
    Action,
    Actions,
    Input,
    Machine,
    State,
)

__all__ = [
    "LINGERING",
    "AckReceived",
    "Addr",
    "ClientTransaction",
    "Event",
    "Outgoing",
    "RequestReceived",
    "ResponseReceived",
    "ServerTransaction",
    "Stray2xx",
    "Transaction",
    "TransactionError",
    "TransactionLayer",
    "TransactionTerminated",
    "TransactionTimeout",
    "TransportError",
    "TxnKey",
    "build_ack",
    "build_cancel",
    "client_key",
    "is_reliable",
    "server_key",
]

Addr = tuple[str, int]
TxnKey = tuple[str, ...]
"""Opaque, hashable transaction key: ("c", branch, method) for client
transactions, ("s", branch, sent-by, method) or ("s2543", ...) for server ones."""


LINGERING: dict[Machine, dict[State, bool]] = {
    Machine.INVITE_SERVER: {State.COMPLETED: True, State.CONFIRMED: False, State.ACCEPTED: False},
    Machine.NON_INVITE_SERVER: {State.COMPLETED: True},
    Machine.INVITE_CLIENT: {State.COMPLETED: False, State.ACCEPTED: False},
    Machine.NON_INVITE_CLIENT: {State.COMPLETED: False},
}
"""The states after the final response, and whether the last response sent is still
resent there (a server's to a retransmitted request)."""


# --- events and outgoing messages ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to put on the wire. ``key`` names the transaction that sent
    it (None for stateless sends): pass it to ``transport_error`` on failure."""

    message: SipMessage
    addr: Addr
    transport: str
    key: TxnKey | None = None


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request created server transaction ``key``; the TU must answer it
    with ``send_response`` (an INVITE gets 100 Trying automatically after
    ``TimerConfig.trying_delay``)."""

    key: TxnKey
    request: SipRequest
    addr: Addr
    transport: str


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """Client transaction ``key`` passes a response up (RFC 3261 §17.1)."""

    key: TxnKey
    response: SipResponse


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK for a 2xx (no transaction, RFC 3261 §17.2.3 / §13.3.1.4).
    ``key`` is the INVITE server transaction it matched in Accepted, if any."""

    request: SipRequest
    addr: Addr
    transport: str
    key: TxnKey | None = None


@dataclass(frozen=True, slots=True)
class Stray2xx:
    """A 2xx to INVITE matching no client transaction (a retransmission after
    Timer M): the TU re-sends its ACK (RFC 3261 §13.2.2.4)."""

    response: SipResponse
    addr: Addr
    transport: str


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B, F (client: the TU acts as if a 408 came) or H (server: no ACK)."""

    key: TxnKey
    method: str


@dataclass(frozen=True, slots=True)
class TransportError:
    """The transport failed for this transaction (RFC 3261 §17.1.4, §17.2.4)."""

    key: TxnKey
    method: str


@dataclass(frozen=True, slots=True)
class TransactionTerminated:
    """The transaction reached Terminated and was removed from the layer."""

    key: TxnKey
    method: str


Event = (
    RequestReceived
    | ResponseReceived
    | AckReceived
    | Stray2xx
    | TransactionTimeout
    | TransportError
    | TransactionTerminated
)


class TransactionError(ValueError):
    """The TU asked for something the transaction layer cannot do (unknown
    transaction, a response not allowed in the current state, a duplicate or
    missing branch)."""


# --- keys ------------------------------------------------------------------------


def is_reliable(transport: str) -> bool:
    """UDP is the only unreliable transport we speak (RFC 3261 §18)."""
    return transport.lower() != "udp"


def _via_param(via: str, key: str) -> str | None:
    for part in via.split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == key:
            return v.strip()
    return None


def _sent_by(via: str) -> str:
    """``host[:port]`` of a Via value, lower-cased, without whitespace."""
    head = via.split(";", 1)[0]
    rest = head[head.rfind("/") + 1 :].split(None, 1)  # ["UDP", "host:port"]
    return "".join(rest[1].split()).lower() if len(rest) == 2 else ""


def client_key(msg: SipMessage) -> TxnKey:
    """RFC 3261 §17.1.3: top Via branch + CSeq method."""
    return ("c", _via_param(msg.top_via, "branch") or "", msg.cseq[1])


def server_key(req: SipRequest, method: str | None = None) -> TxnKey:
    """RFC 3261 §17.2.3 key of the server transaction ``req`` belongs to.

    ACK maps to its INVITE. ``method`` overrides the method (CANCEL -> INVITE).
    The RFC 2543 key leaves out the To tag, which is compared separately.
    """
    via = req.top_via
    if method is None:
        method = "INVITE" if req.method == "ACK" else req.method
    branch = _via_param(via, "branch")
    if branch is not None and branch.startswith(BRANCH_MAGIC):
        return ("s", branch, _sent_by(via), method)
    # RFC 3261 §17.2.3, RFC 2543 compatibility
    return ("s2543", req.uri, req.from_tag or "", req.call_id, str(req.cseq[0]), method, via)


# --- helpers for building requests ----------------------------------------------


def build_ack(request: SipRequest, response: SipResponse) -> SipRequest:
    """ACK for a 300-699 response to ``request`` (RFC 3261 §17.1.1.3)."""
    h = request.headers
    items: list[tuple[str, str]] = [("Via", request.top_via)]
    items.extend(("Route", v) for v in h.get_raw("Route"))
    items.append(("Max-Forwards", "70"))
    items.append(("From", h.get("From") or ""))
    items.append(("To", response.headers.get("To") or ""))
    items.append(("Call-ID", request.call_id))
    items.append(("CSeq", f"{request.cseq[0]} ACK"))
    return SipRequest(method="ACK", uri=request.uri, headers=Headers(items), body=b"")


def build_cancel(request: SipRequest) -> SipRequest:
    """CANCEL for a pending client request (RFC 3261 §9.1): same Request-URI,
    Call-ID, From, To, top Via (so the same branch), Route, CSeq number."""
    h = request.headers
    items: list[tuple[str, str]] = [("Via", request.top_via)]
    items.extend(("Route", v) for v in h.get_raw("Route"))
    items.append(("Max-Forwards", "70"))
    items.append(("From", h.get("From") or ""))
    items.append(("To", h.get("To") or ""))
    items.append(("Call-ID", request.call_id))
    items.append(("CSeq", f"{request.cseq[0]} CANCEL"))
    return SipRequest(method="CANCEL", uri=request.uri, headers=Headers(items), body=b"")


# --- transactions ---------------------------------------------------------------


class Transaction:
    """State of one transaction. Read-only for the TU; the layer drives it."""

    __slots__ = (
        "_ack",
        "_interval",
        "_out_request",
        "_out_response",
        "_table",
        "_timers",
        "addr",
        "key",
        "machine",
        "method",
        "reliable",
        "request",
        "state",
        "transport",
    )

    def __init__(
        self, key: TxnKey, machine: Machine, request: SipRequest, addr: Addr, transport: str
    ) -> None:
        self.key = key
        self.machine = machine
        self.state: State = INITIAL_STATE[machine]
        self.request: SipRequest | None = request  # None once lingering (LINGERING)
        self.method = request.method
        self.addr = addr
        self.transport = transport
        self.reliable = is_reliable(transport)
        self._table = TABLES[machine]
        self._timers: dict[TimerName, int] = {}  # live timer -> heap sequence number
        self._interval = 0.0  # current retransmission interval (A, E or G)
        self._out_request: Outgoing | None = None
        self._out_response: Outgoing | None = None
        self._ack: Outgoing | None = None

    @property
    def last_response(self) -> SipResponse | None:
        """Client: unused. Server: the last response sent."""
        out = self._out_response
        return out.message if out is not None else None  # type: ignore[return-value]

    @property
    def timers(self) -> frozenset[TimerName]:
        """Names of the timers currently running."""
        return frozenset(self._timers)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.state.value} {self.key!r}>"


class ClientTransaction(Transaction):
    __slots__ = ()


class ServerTransaction(Transaction):
    __slots__ = ()


# --- the layer ------------------------------------------------------------------

_RETX = {
    Action.BACKOFF_A: TimerName.A,
    Action.BACKOFF_E: TimerName.E,
    Action.BACKOFF_G: TimerName.G,
}


class TransactionLayer:
    """All transactions of one SIP endpoint. See the module docstring."""

    def __init__(
        self, timers: TimerConfig | None = None, *, max_transactions: int = 200_000
    ) -> None:
        self.timers = timers if timers is not None else TimerConfig()
        self.max_transactions = max_transactions
        self.counters: dict[str, int] = {
            "stray_response": 0,
            "overload": 0,
            "ignored": 0,
        }
        self._txns: dict[TxnKey, Transaction] = {}
        self._out: list[Outgoing] = []
        self._heap: list[tuple[float, int, TxnKey, TimerName]] = []
        self._seq = 0
        self._live = 0  # live timers (heap entries that are not stale)
        cfg = self.timers
        self._dur: dict[bool, dict[TimerName, float | None]] = {
            rel: {t: cfg.duration(t, rel) for t in TimerName} for rel in (False, True)
        }

    # --- inspection -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._txns)

    def get(self, key: TxnKey) -> Transaction | None:
        return self._txns.get(key)

    def find_invite_server_for_cancel(self, cancel: SipRequest) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL cancels (RFC 3261 §9.2)."""
        txn = self._txns.get(server_key(cancel, "INVITE"))
        return txn if isinstance(txn, ServerTransaction) else None

    # --- network -> layer -------------------------------------------------------
    def receive_request(
        self, req: SipRequest, addr: Addr, transport: str, now: float
    ) -> list[Event]:
        """Feed a request from the wire. May raise ParseError (no Via/CSeq/Call-ID)."""
        events: list[Event] = []
        if req.method == "ACK":
            inv = self._match_ack(req)
            if inv is None:
                events.append(AckReceived(req, addr, transport))
            elif not self._step(inv, Input.ACK, now, events, req):
                self.counters["ignored"] += 1
            return events
        key = server_key(req)
        txn = self._txns.get(key)
        if txn is not None:
            # RFC 2543 keys leave out the To tag: compare it here.
            if (
                key[0] == "s2543"
                and txn.request is not None
                and (req.to_tag or "") != (txn.request.to_tag or "")
            ):
                self.counters["ignored"] += 1
            elif not self._step(txn, Input.REQUEST, now, events, req):
                self.counters["ignored"] += 1  # absorbed retransmission
            return events
        if len(self._txns) >= self.max_transactions:
            self.counters["overload"] += 1
            self._out.append(Outgoing(make_response(req, 503), addr, transport))
            return events
        machine = Machine.INVITE_SERVER if req.method == "INVITE" else Machine.NON_INVITE_SERVER
        txn = ServerTransaction(key, machine, req, addr, transport)
        self._txns[key] = txn
        self._run(txn, ON_CREATE[machine], now, events, req)
        return events

    def receive_response(
        self, resp: SipResponse, addr: Addr, transport: str, now: float
    ) -> list[Event]:
        """Feed a response from the wire. May raise ParseError (no Via/CSeq)."""
        events: list[Event] = []
        key = client_key(resp)
        txn = self._txns.get(key)
        status = resp.status
        if txn is None or not 100 <= status <= 699:
            if 200 <= status < 300 and key[2] == "INVITE":
                events.append(Stray2xx(resp, addr, transport))
            else:
                self.counters["stray_response"] += 1
            return events
        if status < 200:
            inp = Input.RESP_1XX
        elif txn.machine is Machine.NON_INVITE_CLIENT:
            inp = Input.RESP_FINAL
        else:
            inp = Input.RESP_2XX if status < 300 else Input.RESP_300_699
        if not self._step(txn, inp, now, events, resp):
            self.counters["ignored"] += 1
        return events

    # --- TU -> layer ------------------------------------------------------------
    def send_request(
        self, req: SipRequest, dest: Addr, transport: str, now: float
    ) -> ClientTransaction:
        """Start a client transaction. ``req`` already carries its top Via with a
        fresh RFC 3261 branch (``offhook.common.ids.new_branch``)."""
        if req.method == "ACK":
            raise TransactionError("ACK is not a transaction: use send_stateless")
        key = client_key(req)
        if not key[1].startswith(BRANCH_MAGIC):
            raise TransactionError("request has no RFC 3261 branch in its top Via")
        if key in self._txns:
            raise TransactionError(f"duplicate client transaction {key!r}")
        machine = Machine.INVITE_CLIENT if req.method == "INVITE" else Machine.NON_INVITE_CLIENT
        txn = ClientTransaction(key, machine, req, dest, transport)
        txn._out_request = Outgoing(req, dest, transport, key)
        self._txns[key] = txn
        events: list[Event] = []
        self._run(txn, ON_CREATE[machine], now, events, None)
        return txn

    def send_response(
        self, txn: ServerTransaction | TxnKey, resp: SipResponse, now: float
    ) -> list[Event]:
        """Send a TU response through its server transaction.

        Raises ``TransactionError`` when the transaction is gone or the response
        is not allowed in its state (e.g. a second final response).
        """
        if not isinstance(txn, Transaction):
            found = self._txns.get(txn)
            if found is None:
                raise TransactionError(f"no transaction {txn!r}")
            txn = found  # type: ignore[assignment]
        if not isinstance(txn, ServerTransaction) or txn.state is State.TERMINATED:
            raise TransactionError(f"cannot respond on {txn!r}")
        status = resp.status
        if status < 200:
            inp = Input.TU_1XX
        elif txn.machine is Machine.NON_INVITE_SERVER:
            inp = Input.TU_FINAL
        else:
            inp = Input.TU_2XX if status < 300 else Input.TU_300_699
        events: list[Event] = []
        if not self._step(txn, inp, now, events, resp):
            raise TransactionError(f"cannot send {status} in state {txn.state.value}")
        return events

    def transport_error(self, key: TxnKey, now: float) -> list[Event]:
        """The adapter could not send for transaction ``key``."""
        events: list[Event] = []
        txn = self._txns.get(key)
        if txn is not None:
            self._step(txn, Input.TRANSPORT_ERROR, now, events, None)
        return events

    def send_stateless(self, msg: SipMessage, dest: Addr, transport: str) -> None:
        """Queue a message outside any transaction (ACK for 2xx, 2xx retransmits)."""
        self._out.append(Outgoing(msg, dest, transport))

    def datagrams_to_send(self) -> list[Outgoing]:
        out = self._out
        self._out = []
        return out

    # --- timers -----------------------------------------------------------------
    def next_timer(self) -> float | None:
        """Earliest live timer deadline, or None."""
        heap = self._heap
        txns = self._txns
        while heap:
            _, seq, key, name = heap[0]
            txn = txns.get(key)
            if txn is not None and txn._timers.get(name) == seq:
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def handle_timers(self, now: float) -> list[Event]:
        """Fire every timer due at ``now``."""
        events: list[Event] = []
        heap = self._heap
        txns = self._txns
        while heap and heap[0][0] <= now:
            _, seq, key, name = heapq.heappop(heap)
            txn = txns.get(key)
            if txn is None or txn._timers.get(name) != seq:
                continue  # stale: cancelled, restarted or its transaction gone
            del txn._timers[name]
            self._live -= 1
            self._step(txn, TIMER_INPUT[name], now, events, None)
        if len(heap) > 1024 and len(heap) > 2 * self._live:
            self._compact()
        return events

    def _compact(self) -> None:
        txns = self._txns
        self._heap = [
            e
            for e in self._heap
            if (t := txns.get(e[2])) is not None and t._timers.get(e[3]) == e[1]
        ]
        heapq.heapify(self._heap)

    def _set_timer(self, txn: Transaction, name: TimerName, deadline: float) -> None:
        self._seq += 1
        if name not in txn._timers:
            self._live += 1
        txn._timers[name] = self._seq
        heapq.heappush(self._heap, (deadline, self._seq, txn.key, name))

    # --- machine execution ------------------------------------------------------
    def _match_ack(self, ack: SipRequest) -> ServerTransaction | None:
        key = server_key(ack)
        found = self._txns.get(key)
        if not isinstance(found, ServerTransaction):
            return None
        txn = found
        if key[0] == "s2543":
            # RFC 3261 §17.2.3: the ACK's To tag matches the response's.
            last = txn.last_response
            if last is not None and (last.to_tag or "") != (ack.to_tag or ""):
                return None
        return txn

    def _step(
        self,
        txn: Transaction,
        inp: Input,
        now: float,
        events: list[Event],
        msg: SipMessage | None,
    ) -> bool:
        entry = txn._table.get((txn.state, inp))
        if entry is None:
            return False
        new_state, actions = entry
        if new_state is not txn.state:
            txn.state = new_state
            if txn._timers:
                keep = STATE_TIMERS[txn.machine][new_state]
                for name in [n for n in txn._timers if n not in keep]:
                    del txn._timers[name]
                    self._live -= 1
        self._run(txn, actions, now, events, msg)
        if txn.state is new_state:
            resends = LINGERING[txn.machine].get(new_state)
            if resends is not None and txn.key[0] != "s2543":
                txn.request = None
                txn._out_request = None
                if not resends:
                    txn._out_response = None
        return True

    def _run(
        self,
        txn: Transaction,
        actions: Actions,
        now: float,
        events: list[Event],
        msg: SipMessage | None,
    ) -> None:
        immediate: list[TimerName] | None = None
        for action in actions:
            if action is Action.SEND_REQUEST:
                assert txn._out_request is not None
                self._out.append(txn._out_request)
            elif action is Action.PASS_TO_TU:
                events.append(self._up_event(txn, msg))
            elif action is Action.SEND_RESPONSE:
                assert msg is not None
                txn._out_response = Outgoing(msg, txn.addr, txn.transport, txn.key)
                self._out.append(txn._out_response)
            elif action is Action.RESEND_RESPONSE:
                if txn._out_response is not None:
                    self._out.append(txn._out_response)
            elif action is Action.SEND_ACK:
                if txn._ack is None:
                    assert isinstance(msg, SipResponse) and txn.request is not None
                    txn._ack = Outgoing(
                        build_ack(txn.request, msg), txn.addr, txn.transport, txn.key
                    )
                self._out.append(txn._ack)
            elif action is Action.SEND_TRYING:
                if txn._out_response is None:  # RFC 3261 §17.2.1: TU was silent
                    assert txn.request is not None
                    trying = make_response(txn.request, 100)
                    ts = txn.request.headers.get("Timestamp")
                    if ts is not None:  # RFC 3261 §8.2.6.1
                        trying.headers.add("Timestamp", ts)
                    txn._out_response = Outgoing(trying, txn.addr, txn.transport, txn.key)
                    self._out.append(txn._out_response)
            elif action is Action.TIMEOUT:
                events.append(TransactionTimeout(txn.key, txn.method))
            elif action is Action.TRANSPORT_ERROR:
                events.append(TransportError(txn.key, txn.method))
            elif action in START_TIMER:
                name = START_TIMER[action]
                duration = self._dur[txn.reliable][name]
                if duration is None:
                    continue
                if name is TimerName.A or name is TimerName.E or name is TimerName.G:
                    txn._interval = duration
                if duration <= 0.0:
                    if immediate is None:
                        immediate = []
                    immediate.append(name)
                else:
                    self._set_timer(txn, name, now + duration)
            elif action in _RETX:
                name = _RETX[action]
                txn._interval = self.timers.backoff(name, txn._interval)
                self._set_timer(txn, name, now + txn._interval)
            elif action is Action.RESTART_E_T2:
                txn._interval = self.timers.t2  # RFC 3261 §17.1.2.2 Proceeding
                self._set_timer(txn, TimerName.E, now + txn._interval)
            else:  # pragma: no cover - the tables only use the actions above
                raise AssertionError(action)
        if txn.state is State.TERMINATED:
            self._terminate(txn, events)
        elif immediate is not None:
            for name in immediate:
                self._step(txn, TIMER_INPUT[name], now, events, None)

    def _up_event(self, txn: Transaction, msg: SipMessage | None) -> Event:
        if isinstance(txn, ClientTransaction):
            assert isinstance(msg, SipResponse)
            return ResponseReceived(txn.key, msg)
        assert isinstance(msg, SipRequest)
        if msg.method == "ACK":
            return AckReceived(msg, txn.addr, txn.transport, txn.key)
        return RequestReceived(txn.key, msg, txn.addr, txn.transport)

    def _terminate(self, txn: Transaction, events: list[Event]) -> None:
        if txn._timers:
            self._live -= len(txn._timers)
            txn._timers.clear()
        if self._txns.get(txn.key) is txn:
            del self._txns[txn.key]
        events.append(TransactionTerminated(txn.key, txn.method))
