"""The SIP endpoint: REGISTER, OPTIONS and a B2BUA between SIP phones and the core.

Theory of operation. ``SipEndpoint`` sits between the transport
(``aio.SipTransport``) and the core (``CallEngine``). Every message goes
through the sans-IO ``TransactionLayer``; the events that come out are
dispatched here:

* REGISTER goes to the ``Registrar`` (digest, bindings in the location store);
* OPTIONS is answered 200, without a transaction (as is every out-of-dialog
  request refused outright, ``refusals``: BYE/INFO/PRACK 481, REFER 403,
  405, 501; SUBSCRIBE 489 when no ``notifier`` is set);
* SUBSCRIBE (busy lamps, presence, message waiting) goes to the
  ``notifier`` (``notifier.Notifier``, RFC 6665), challenged statelessly
  like REGISTER; an out-of-dialog NOTIFY is a voicemail system's message
  waiting (``mwi_in``), answered without a transaction;
* trunks (``trunks.TrunkMonitor``): OPTIONS pings mark them up or down
  (RFC 3261 §11), ``register: true`` trunks are registered to their far end
  (REGISTER refreshed at half the expiry), and an outbound INVITE a trunk
  challenges (401/407) is sent once more with digest credentials
  (RFC 3261 §22.2);
* an out-of-dialog request (what may authenticate; not ACK or CANCEL) first
  passes the failed-login guard (``AuthGate``, ``net.authguard``): a blocked
  source gets no answer, a throttled one has its request held back, then
  processed as if it had just arrived;
* while the node is overloaded (``overload``, ``core.overload``), a new
  INVITE, REGISTER (not a refresh) or SUBSCRIBE that it sheds is answered
  503 with Retry-After without a transaction, before digest or routing
  (``shedding``; RFC 7339 ``oc`` in the Via of our responses to peers that ask);
* a new REGISTER or INVITE that is refused or not authenticated is answered
  (401/407, or 403 for a wrong password) without a transaction (RFC 3261
  §8.2.7 stateless UAS), so that failed logins leave nothing behind;
* a new INVITE (``incoming_call.CallIntake``) is challenged (407) until its
  digest checks out, then becomes an inbound leg (``InboundLeg``) handed to
  ``CallEngine.setup`` (or ``CallEngine.replace`` for an RFC 3891 Replaces);
  an unauthenticated request is never routed;
* the engine places each fork through ``SipLegFactory``, which creates an
  ``OutboundLeg`` that INVITEs one registered contact;
* in-dialog requests (ACK, BYE, re-INVITE, UPDATE, PRACK, INFO, REFER) are
  matched to their leg by dialog id (Call-ID, local tag, remote tag); CANCEL
  by its INVITE's server transaction;
* a leg that finished leaves a small record of its dialog for 32 s (``ended``:
  the same ACK for a retransmitted 2xx, 200 to a crossing BYE, else 481) and
  is let go of at once, its reference cycles broken (``retire``).

Both leg kinds (``legs``) translate between SIP and the core's neutral
events: SDP is mapped to ``MediaDescription`` (``sdpmap``) and failures to
Q.850 causes (``causes``, RFC 3398); trunk pings and registrations are
``trunk_client``'s. The endpoint drives one timer for the transaction
layer, the engine, the trunk monitor and the legs' own named timers
(``deadlines``: 2xx and reliable 1xx retransmission, session refresh and
expiry; ``set_timer``). ``session_timers`` are the RFC 4028 settings (None
turns session timers off). It runs on the event loop but does no socket
I/O itself: it sends through the ``send`` callable the transport gives it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Protocol

from offhook.common.addr import host_port, ip_version, normalize_host
from offhook.common.clock import Clock
from offhook.common.errors import ParseError
from offhook.common.ids import PLAIN, Ids, new_tag
from offhook.common.location import Binding
from offhook.core.engine import CallEngine
from offhook.core.ports import MediaBridge
from offhook.net.trunk_admission import TrunkQuota
from offhook.sip.aio import response_destination
from offhook.sip.auth import CredentialLookup, DigestAuthenticator
from offhook.sip.causes import TEMPORARY_FAILURE
from offhook.sip.deadlines import Action, Deadlines
from offhook.sip.dialog import Dialog, DialogId
from offhook.sip.ended import EndedDialogs
from offhook.sip.inbound_leg import InboundLeg
from offhook.sip.incoming_call import CallIntake
from offhook.sip.legs import SDP, USER_AGENT, Addr, SipLeg, message_head
from offhook.sip.message import Headers, SipMessage, SipRequest, SipResponse, make_response
from offhook.sip.node_ring import NODE
from offhook.sip.outbound_leg import SipLegFactory
from offhook.sip.refusals import out_of_dialog_answer
from offhook.sip.registrar import Registrar
from offhook.sip.session_timer import SessionTimerSettings
from offhook.sip.shedding import (
    called_number,
    mark_oc,
    refreshes_binding,
    service_unavailable,
    shed_kind,
    wants_oc,
)
from offhook.sip.transaction import (
    AckReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    Stray2xx,
    TransactionError,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportError,
    TxnKey,
    server_key,
)
from offhook.sip.trunk_client import PingOwner, TrunkRegistration, trunk_uri
from offhook.sip.trunks import TrunkMonitor, TrunkTarget
from offhook.sip.uri import parse_uri
from offhook.sip.validate import KnownGood, check_request, check_response

if TYPE_CHECKING:
    from offhook.core.overload import OverloadControl
    from offhook.sip.notifier import Notifier

log = logging.getLogger("offhook.sip")


@dataclass(frozen=True, slots=True)
class TrunkPeer:
    """A trunk a request came from: its name, CSS and call limit.

    ``quota``: its limits and buckets (``net.trunk_admission``); the intake
    asks ``quota.admit_call`` before it routes a new call from the trunk.
    """

    name: str
    css: str
    max_calls: int = 0
    quota: TrunkQuota | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who an authenticated device calls as: its first line."""

    number: str
    name: str


class AuthGate(Protocol):
    """The failed-login guard as the endpoint sees it (``net.authguard.AuthGuard``).

    ``admit``: None drops the request (source blocked), 0 lets it through, a
    positive delay holds it back that long if ``hold`` grants a slot (else
    it is dropped); ``release`` gives the slot back. Failures are reported
    through ``on_auth_failure``.
    """

    def admit(self, addr: Addr) -> float | None: ...

    def hold(self, addr: Addr) -> bool: ...

    def release(self, addr: Addr) -> None: ...


class ClientOwner(Protocol):
    """Who a client transaction's responses and timeout go to."""

    def on_response(self, req: SipRequest, resp: SipResponse) -> None: ...

    def on_timeout(self, req: SipRequest) -> None: ...


class SipEndpoint:
    """Dispatches SIP traffic between the transaction layer, registrar and core."""

    def __init__(
        self,
        *,
        engine: CallEngine,
        registrar: Registrar,
        authenticator: DigestAuthenticator,
        credentials: CredentialLookup,
        caller_of: Callable[[str], Caller | None],
        txl: TransactionLayer,
        send: Callable[[SipMessage, Addr, str, Callable[[], None] | None], None],
        clock: Clock,
        host: str,
        port: int,
        on_auth_failure: Callable[[Addr, str], None] | None = None,
        auth_gate: AuthGate | None = None,
        trunk_for: Callable[[Addr], TrunkPeer | None] | None = None,
        trunks: TrunkMonitor | None = None,
        hosts: dict[int, str] | None = None,
        resolve_cached: Callable[[str], str | None] | None = None,
        prefetch: Callable[[str], None] | None = None,
        bridge: MediaBridge | None = None,
        session_timers: SessionTimerSettings | None = SessionTimerSettings(),  # noqa: B008
    ) -> None:
        self.engine = engine
        self.registrar = registrar
        self.auth = authenticator
        self.creds = credentials
        self.caller_of = caller_of
        self.txl = txl
        self._send = send
        self.clock = clock
        self.host = host
        self.port = port
        self.host_port = host_port(host, port)
        # The host peers of each IP version are given (RFC 5118: an IPv6 peer
        # must not get an IPv4 Via or Contact, nor the reverse).
        self.hosts: dict[int, str] = dict(hosts or {})
        self.resolve_cached = resolve_cached
        self.prefetch = prefetch
        self.bridge = bridge
        self.session_timers = session_timers  # RFC 4028; None: no session timers
        # The Call-IDs, tags and branches we make (a worker's carry its index: offhook.workers).
        self.ids: Ids = PLAIN
        self.on_auth_failure = on_auth_failure
        self.auth_gate = auth_gate
        self.trunk_for = trunk_for
        self.trunks = trunks
        self._registrations: dict[str, TrunkRegistration] = {}
        self.loop = asyncio.get_running_loop()
        self.t1 = txl.timers.t1
        self.t2 = txl.timers.t2
        self.dialogs: dict[DialogId, SipLeg] = {}  # live dialogs
        self.ended = EndedDialogs()  # finished ones, for their late messages (32 s)
        self.inbound_by_key: dict[TxnKey, InboundLeg] = {}
        self.client_owner: dict[TxnKey, tuple[ClientOwner, SipRequest]] = {}
        self.timers = Deadlines()  # the legs' own timers (2xx, PRACK, session refresh)
        self.intake = CallIntake(self)
        self.known_good = KnownGood()  # header values that passed the checks lately
        self.notifier: Notifier | None = None  # SUBSCRIBE/NOTIFY; set by the composition root
        self.overload: OverloadControl | None = None  # sheds new work; set likewise
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.counters: dict[str, int] = {
            "dropped_responses": 0,
            "rejected_requests": 0,
            "blocked_requests": 0,  # source blocked after failed logins: no answer
            "held_requests": 0,  # source throttled: processed after a delay
            "throttled_dropped": 0,  # source throttled, no hold slot: no answer
            "stateless_answers": 0,  # challenges and refusals sent without a transaction
        }
        engine.register_factory("sip", SipLegFactory(self))

    # --- addressing ---------------------------------------------------------
    def host_for(self, dest: str = "") -> str:
        """Our host as a peer at ``dest`` (an address or a name) must see it."""
        if not self.hosts or not dest:
            return self.host
        version = ip_version(dest)
        if version is None and self.resolve_cached is not None:
            resolved = self.resolve_cached(dest)
            version = ip_version(resolved) if resolved else None
        return self.hosts.get(version or 0) or self.host

    def host_port_for(self, dest: str = "") -> str:
        host = self.host_for(dest)
        return self.host_port if host == self.host else host_port(host, self.port)

    def trunk_dest(self, host: str, port: int) -> Addr:
        """Where a trunk's requests go: its address, or its name's resolved one."""
        if ip_version(host) is None and self.resolve_cached is not None:
            resolved = self.resolve_cached(host)
            if resolved:
                return resolved, port
        return host, port

    def via(self, transport: str, dest: str = "") -> str:
        hp = self.host_port_for(dest)
        return f"SIP/2.0/{transport.upper()} {hp};branch={self.ids.branch()};rport"

    def contact(self, transport: str, dest: str = "") -> str:
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:offhook@{self.host_port_for(dest)}{suffix}>"

    @staticmethod
    def common_headers() -> list[tuple[str, str]]:
        return [("User-Agent", USER_AGENT)]

    @staticmethod
    def binding_destination(binding: Binding) -> tuple[Addr, str]:
        """Where requests to a registered contact go.

        Over TCP: the connection the registration came on (the phone may
        not accept connections). Over UDP: the Contact, unless its host
        differs from the address the REGISTER really came from, which means
        a NAT sits between (then the source flow, as nat_uac_test does);
        a third party registering a contact on the same host keeps it.
        """
        transport = binding.transport or "udp"
        try:
            uri = parse_uri(binding.contact)
            contact: Addr | None = (normalize_host(uri.host_addr), uri.port or 5060)
            transport = (uri.param("transport") or transport).lower()
        except ParseError:
            contact = None
        source = binding.source if binding.source[0] else None
        if binding.transport == "tcp" and source is not None:
            return source, "tcp"
        if contact is not None and (source is None or contact[0] == source[0]):
            return contact, transport
        if source is not None:
            return source, binding.transport or "udp"
        raise ParseError("binding without a reachable address")

    # --- transport entry point ----------------------------------------------
    def on_message(self, msg: SipMessage, addr: Addr, transport: str) -> None:
        now = self.loop.time()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("<- %s:%s/%s\n%s", addr[0], addr[1], transport, message_head(msg))
        if isinstance(msg, SipRequest):
            gate = self.auth_gate
            # Out-of-dialog requests (what may authenticate) pass the failed-login
            # guard first; ACK, CANCEL and in-dialog requests never authenticate.
            if (
                gate is not None
                and msg.method not in ("ACK", "CANCEL")
                and not msg.to_tag
                and transport != NODE  # another worker of this node: trusted
            ):
                delay = gate.admit(addr)
                if delay is None:
                    self.counters["blocked_requests"] += 1
                    return
                if delay > 0:
                    if gate.hold(addr):
                        self.counters["held_requests"] += 1
                        self.loop.call_later(delay, self._release_held, msg, addr, transport)
                    else:
                        self.counters["throttled_dropped"] += 1
                    return
            self._receive_request(msg, addr, transport, now)
        else:
            assert isinstance(msg, SipResponse)
            if check_response(msg, self.known_good) is not None:
                self.counters["dropped_responses"] += 1
                return
            self.process(self.txl.receive_response(msg, addr, transport, now))
            self.flush()
        if self.ended.retired:
            self.ended.reap(self)

    def _release_held(self, msg: SipRequest, addr: Addr, transport: str) -> None:
        """A throttled source's request, after its delay: processed as if it just came."""
        if self.auth_gate is not None:
            self.auth_gate.release(addr)
        self._receive_request(msg, addr, transport, self.loop.time())

    def _receive_request(self, msg: SipRequest, addr: Addr, transport: str, now: float) -> None:
        if transport == NODE:
            self._receive_from_node(msg, addr, now)
            return
        if msg.method != "ACK":
            # Overload shedding first: it is cheaper than the full check (a fifth of it).
            shedding = self.overload is not None and self.overload.overloaded
            if shedding and not msg.to_tag and self._shed(msg, addr, transport):
                return
            verdict = check_request(msg, known=self.known_good)
            if verdict is not None:
                status, reason, extra = verdict
                resp = make_response(msg, status, reason)
                for name, value in extra.items():
                    resp.headers.add(name, value)
                self.counters["rejected_requests"] += 1
                self.txl.send_stateless(resp, addr, transport)
                self.flush()
                return
            if not msg.to_tag and self._answered_statelessly(msg, addr, transport):
                return
        self.process(self.txl.receive_request(msg, addr, transport, now))
        self.flush()

    def _receive_from_node(self, msg: SipRequest, addr: Addr, now: float) -> None:
        """A request of a call between this node's workers (the node leg).

        The worker that sent it admitted the call (overload, digest, plan), so
        nothing is shed or challenged here; only what a node leg sends is
        taken: a new INVITE, and what belongs to its transaction or dialog.
        """
        if msg.method != "ACK":
            verdict = check_request(msg, known=self.known_good)
            refused = not msg.to_tag and msg.method not in ("INVITE", "CANCEL")
            if verdict is not None or refused:
                status, reason = (403, "Not A Node Leg Request") if verdict is None else verdict[:2]
                self.counters["rejected_requests"] += 1
                self.txl.send_stateless(make_response(msg, status, reason), addr, NODE)
                self.flush()
                return
        self.process(self.txl.receive_request(msg, addr, NODE, now))
        self.flush()

    def _shed(self, req: SipRequest, addr: Addr, transport: str) -> bool:
        """Overloaded: a new INVITE/REGISTER/SUBSCRIBE refused with 503 before any digest
        or routing (``sip.shedding``, ``core.overload``), or False: go on.

        A retransmission of a request already taken, a refresh of a live
        registration, an INVITE with Replaces and a call to an exempt number go on;
        so does a request without what an answer copies (``check_request`` answers it).
        """
        overload = self.overload
        kind = shed_kind(req)
        if kind is None or overload is None:
            return False
        try:
            if req.cseq[1] != req.method or "From" not in req.headers or "To" not in req.headers:
                return False
            if not req.call_id or self.txl.get(server_key(req)) is not None:
                return False
        except ParseError:
            return False
        now = self.loop.time()
        memory, call = overload.memory, (req.call_id, req.cseq[0])
        answer = memory.answer(call, now)  # a retransmission of a request shed: same answer
        if isinstance(answer, SipResponse):
            memory.resent += 1
        elif memory.follows(req.call_id, now) or (
            kind == "register"
            and refreshes_binding(
                req, self._device_of, lambda device: self.registrar.store.bindings(device, now)
            )
        ):
            return False  # a call admitted before (its INVITE answering our challenge), a refresh
        elif overload.admit(kind, number := called_number(req) if kind == "invite" else ""):
            if not number or number not in overload.policy.exempt:
                memory.admitted(req.call_id, now)
            return False
        else:
            answer = service_unavailable(req, overload.retry_after())
            memory.shed(call, answer, now)
        self.counters["stateless_answers"] += 1
        self.txl.send_stateless(answer, addr, transport)
        self.flush()
        return True

    def _device_of(self, user: str) -> str | None:
        creds = self.creds.credentials(user)
        return creds.device if creds is not None else None

    def _answered_statelessly(self, req: SipRequest, addr: Addr, transport: str) -> bool:
        """A new out-of-dialog request answered without a transaction, or False.

        OPTIONS and what we refuse outright (out-of-dialog BYE/INFO, SUBSCRIBE
        without a notifier, unknown methods) never need one: the answer is
        final and the same for a retransmission (``derived_tag``); nor does a
        voicemail system's NOTIFY (``mwi_in``). A new REGISTER, INVITE or
        SUBSCRIBE that is refused or not authenticated is answered the same
        way (``_challenged_statelessly``).
        """
        if req.method in ("REGISTER", "INVITE"):
            return self._challenged_statelessly(req, addr, transport)
        if req.method in ("ACK", "CANCEL"):
            return False
        if self.notifier is not None and req.method in ("SUBSCRIBE", "NOTIFY"):
            if req.method == "SUBSCRIBE":
                return self._challenged_statelessly(req, addr, transport)
            answer = self.notifier.unsolicited(req, addr)
            self.counters["stateless_answers"] += 1
            self.txl.send_stateless(answer, addr, transport)
            self.flush()
            return True
        self.counters["stateless_answers"] += 1
        self.txl.send_stateless(out_of_dialog_answer(req), addr, transport)
        self.flush()
        return True

    def _challenged_statelessly(self, req: SipRequest, addr: Addr, transport: str) -> bool:
        """A new REGISTER, INVITE or SUBSCRIBE refused or not authenticated: answer, keep nothing.

        Its 401/407 (or registrar refusal) is sent without a server transaction,
        so a flood of unauthenticated requests or failed logins leaves no state
        (the nonce is stateless too); a retransmission is simply answered again.
        RFC 3261 §8.2.7: a stateless UAS, whose most common use is "to respond
        to unauthenticated requests with challenges". A request whose credentials
        check out, or that matches a transaction already, goes on to the
        transaction layer and is checked again there (recording its nonce count).
        """
        if req.method == "INVITE" and self.trunk_for is not None and self.trunk_for(addr):
            return False  # a trunk's call: no digest (see on_trunk_invite)
        try:
            if self.txl.get(server_key(req)) is not None:
                return False  # a retransmission: the transaction answers it
        except ParseError:
            return False
        if req.method == "REGISTER":
            answer = self.registrar.screen(req, addr, self.clock.wall())
        elif req.method == "SUBSCRIBE":
            assert self.notifier is not None
            answer = self.notifier.screen(req, addr)
        else:
            answer, _ = self.intake.digest(req, addr, record=False)
            if answer is not None and answer.status == 407 and self.overload is not None:
                # Its INVITE with credentials is admitted, should overload begin meanwhile.
                self.overload.memory.admitted(req.call_id, self.loop.time())
        if answer is None:
            return False
        self.counters["stateless_answers"] += 1
        self.txl.send_stateless(answer, addr, transport)
        self.flush()
        return True

    def process(self, events: list[Event]) -> None:
        for ev in events:
            try:
                self._dispatch(ev)
            except Exception:
                log.exception("error handling %s", type(ev).__name__)

    def _dispatch(self, ev: Event) -> None:
        if isinstance(ev, RequestReceived):
            self.on_request(ev.key, ev.request, ev.addr, ev.transport)
        elif isinstance(ev, ResponseReceived):
            owner = self.client_owner.get(ev.key)
            if owner is not None:
                leg, req = owner
                leg.on_response(req, ev.response)
        elif isinstance(ev, AckReceived):
            acked = self.dialogs.get(self._dialog_id_of(ev.request))
            if acked is not None:
                acked.on_ack(ev.request)
            # an ACK in an ended dialog is absorbed
        elif isinstance(ev, Stray2xx):
            resp = ev.response
            dialog_id = (resp.call_id, resp.from_tag or "", resp.to_tag or "")
            answered = self.dialogs.get(dialog_id)
            if answered is not None:
                answered.on_stray_2xx(resp)
            else:
                ended = self.ended.get(dialog_id)
                if ended is not None:
                    ended.on_2xx(resp)
        elif isinstance(ev, TransactionTimeout | TransportError):
            owner = self.client_owner.pop(ev.key, None)
            if owner is not None:
                if isinstance(owner[0], SipLeg):
                    owner[0].client_keys.discard(ev.key)
                owner[0].on_timeout(owner[1])
            else:
                inbound = self.inbound_by_key.get(ev.key)
                if inbound is not None and not inbound.answered and isinstance(ev, TransportError):
                    inbound.finish()
                    inbound._report(lambda leg: self.engine.on_release(leg, TEMPORARY_FAILURE))
        elif isinstance(ev, TransactionTerminated):
            owner = self.client_owner.pop(ev.key, None)
            if owner is not None and isinstance(owner[0], SipLeg):
                owner[0].client_keys.discard(ev.key)

    @staticmethod
    def _dialog_id_of(req: SipRequest) -> DialogId:
        return (req.call_id, req.to_tag or "", req.from_tag or "")

    # --- requests -----------------------------------------------------------
    def on_request(self, key: TxnKey, req: SipRequest, addr: Addr, transport: str) -> None:
        method = req.method
        if req.to_tag:
            dialog_id = self._dialog_id_of(req)
            leg = self.dialogs.get(dialog_id)
            if leg is None or leg.dialog is None:
                ended = self.ended.get(dialog_id)
                answer = ended.answer(req) if ended is not None else None
                if answer is not None:
                    self.respond(key, answer)  # 200 to a BYE that crossed ours, else 481
                elif self.notifier is None or not self.notifier.on_in_dialog(key, req):
                    self.respond(key, make_response(req, 481))
                return
            leg.on_request(key, req)
            return
        if method == "REGISTER":
            resp = self.registrar.handle(req, addr, transport, self.loop.time(), self.clock.wall())
            self.respond(key, resp)
        elif method == "INVITE":
            self.intake.on_invite(key, req, addr, transport)
        elif method == "CANCEL":
            self.on_cancel(key, req)
        elif method == "SUBSCRIBE" and self.notifier is not None:
            self.notifier.on_subscribe(key, req, addr, transport)
        else:
            self.respond(key, out_of_dialog_answer(req))

    def on_cancel(self, key: TxnKey, req: SipRequest) -> None:
        invite_txn = self.txl.find_invite_server_for_cancel(req)
        if invite_txn is None:
            self.respond(key, make_response(req, 481, to_tag=new_tag()))
            return
        # RFC 3261 §9.2: 200 to the CANCEL, then 487 to the INVITE
        self.respond(key, make_response(req, 200))
        inbound = self.inbound_by_key.get(invite_txn.key)
        if inbound is not None:
            inbound.on_cancel()

    # --- trunks ---------------------------------------------------------------
    def configure_trunks(self, targets: list[TrunkTarget]) -> None:
        """Adopt the plan's trunks (at start and after each plan change)."""
        if self.trunks is None:
            return
        self.trunks.configure(targets, self.loop.time())
        if self.prefetch is not None:
            for target in targets:
                if ip_version(target.host) is None:
                    self.prefetch(target.host)
        for name, reg in list(self._registrations.items()):
            if self.trunks.target(name) != reg.target:
                del self._registrations[name]
        self._trunk_work(self.loop.time())
        self.flush()

    def _trunk_work(self, now: float) -> None:
        monitor = self.trunks
        if monitor is None:
            return
        for target in monitor.due_pings(now):
            self._ping(monitor, target)
        for target in monitor.due_registrations(now):
            reg = self._registrations.get(target.name)
            if reg is None or reg.target != target:
                reg = self._registrations[target.name] = TrunkRegistration(self, monitor, target)
            reg.send()

    def _ping(self, monitor: TrunkMonitor, target: TrunkTarget) -> None:
        """OPTIONS to the trunk through the transaction layer (RFC 3261 §11)."""
        uri = trunk_uri(target)
        items = [
            ("Via", self.via(target.transport, target.host)),
            ("Max-Forwards", "70"),
            ("From", f"<sip:offhook@{self.host_port_for(target.host)}>;tag={self.ids.tag()}"),
            ("To", f"<{uri.split(';', 1)[0]}>"),
            ("Call-ID", self.ids.call_id(self.host_for(target.host))),
            ("CSeq", "1 OPTIONS"),
            ("Accept", SDP),
            *self.common_headers(),
        ]
        req = SipRequest(method="OPTIONS", uri=uri, headers=Headers(items), body=b"")
        owner = PingOwner(self, monitor, target.name)
        dest = self.trunk_dest(target.host, target.port)
        if not self.request(req, dest, target.transport, owner):
            monitor.ping_result(target.name, None, self.loop.time())

    # --- sending ------------------------------------------------------------
    def server_request(self, key: TxnKey) -> SipRequest | None:
        txn = self.txl.get(key)
        return None if txn is None else txn.request

    def respond(self, key: TxnKey, resp: SipResponse) -> None:
        try:
            events = self.txl.send_response(key, resp, self.loop.time())
        except TransactionError as exc:
            log.debug("response %s not sent: %s", resp.status, exc)
            return
        self.process(events)
        self.flush()

    def request(self, req: SipRequest, dest: Addr, transport: str, owner: ClientOwner) -> bool:
        """Start a client transaction whose outcome goes to ``owner``; False if refused."""
        try:
            txn = self.txl.send_request(req, dest, transport, self.loop.time())
        except TransactionError as exc:
            log.warning("request %s not sent: %s", req.method, exc)
            return False
        self.client_owner[txn.key] = (owner, req)
        if isinstance(owner, SipLeg):
            owner.client_keys.add(txn.key)
        self.flush()
        return True

    def send_ack(self, dialog: Dialog, dest: Addr, transport: str, body: bytes = b"") -> SipRequest:
        ack = dialog.create_request(
            "ACK",
            via=self.via(transport, dest[0]),
            body=body,
            content_type=SDP if body else None,
            headers=self.common_headers(),
        )
        self.txl.send_stateless(ack, dest, transport)
        self.flush()
        return ack

    def resend(self, msg: SipMessage, dest: Addr, transport: str) -> None:
        self.txl.send_stateless(msg, dest, transport)
        self.flush()

    def retire(self, leg: SipLeg) -> None:
        """A leg finished: its dialog becomes an ended record, the leg is let go (``ended``)."""
        self.ended.retire(self, leg, self.loop.time())

    def flush(self) -> None:
        failed: list[TxnKey] = []
        overload = self.overload
        oc = overload.reduction() if overload is not None and overload.overloaded else 0
        for out in self.txl.datagrams_to_send():
            msg = out.message
            dest = out.addr
            if oc and isinstance(msg, SipResponse) and wants_oc(msg):
                self._mark_oc(msg, oc)
            if isinstance(msg, SipResponse) and out.transport == "udp":
                dest = response_destination(msg, out.addr)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("-> %s:%s/%s\n%s", dest[0], dest[1], out.transport, message_head(msg))
            key = out.key
            on_error = (
                partial(self._send_failed, key) if key is not None and key[0] == "c" else None
            )
            try:
                self._send(msg, dest, out.transport, on_error)
            except Exception:
                log.exception("send to %s:%s failed", dest[0], dest[1])
                if out.key is not None and out.key[0] == "c":
                    failed.append(out.key)  # RFC 3261 §17.1.4: tell the transaction
        for key in failed:
            self.process(self.txl.transport_error(key, self.loop.time()))
        if failed:
            self.flush()
            return
        self._rearm()

    def _mark_oc(self, resp: SipResponse, percent: int) -> None:
        """RFC 7339: a client that supports overload control is asked to reduce."""
        assert self.overload is not None
        validity = round(2000 * self.overload.policy.window)
        mark_oc(resp, percent, validity, f"{self.clock.wall():.3f}")

    def _send_failed(self, key: TxnKey) -> None:
        """A queued send (a TCP connect) failed later: RFC 3261 §17.1.4."""
        self.process(self.txl.transport_error(key, self.loop.time()))
        self.flush()

    # --- timers -------------------------------------------------------------
    def set_timer(self, key: object, delay: float, action: Action) -> None:
        """A leg's timer: ``action`` runs ``delay`` seconds from now (replacing ``key``'s)."""
        self.timers.set(key, self.loop.time() + delay, action)
        self._rearm()

    def cancel_timer(self, key: object) -> None:
        self.timers.cancel(key)

    def _rearm(self) -> None:
        trunk_timer = self.trunks.next_timer() if self.trunks is not None else None
        deadlines = [
            d
            for d in (
                self.txl.next_timer(),
                self.engine.next_timer(),
                trunk_timer,
                self.timers.next_timer(),
                self._ended_expiry(),
            )
            if d is not None
        ]
        if not deadlines:
            return
        when = min(deadlines)
        if self._timer is not None and self._timer_at is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _ended_expiry(self) -> float | None:
        # Whole seconds: at most one wake-up a second for them on a quiet node.
        when = self.ended.next_expiry()
        return None if when is None else float(math.ceil(when))

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.loop.time()
        try:
            self.process(self.txl.handle_timers(now))
            self.engine.handle_timer(now)
            self._trunk_work(now)
        except Exception:
            log.exception("timer handling failed")
        for action in self.timers.due(now):
            try:
                action()
            except Exception:
                log.exception("leg timer failed")
        self.flush()
        self.ended.expire(now)
        if self.ended.retired:
            self.ended.reap(self)
