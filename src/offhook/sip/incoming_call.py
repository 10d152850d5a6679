"""New calls into offhook: an out-of-dialog INVITE becomes an ``InboundLeg`` and a core call.

Theory of operation. ``CallIntake`` takes the INVITEs the endpoint does not
match to a dialog:

* from a phone: digest (``digest``, RFC 3261 §22.3; 407 until it checks
  out, the same 403 for unknown users and wrong passwords), then the
  caller's line from the plan; from a trunk's address: no digest, the
  trunk's ``max_calls`` and ``max_cps`` before routing
  (``net.trunk_admission``: 503 "Trunk Busy" or "Trunk Call Rate
  Exceeded" with Retry-After), its CSS, and the redirections its
  ``Diversion`` headers carry (RFC 5806: ``Setup.diversions`` and the
  original called number; at most ``max_forward_hops``, a malformed one
  ignored);
* the offer (none: a delayed offer; unusable: 488/400) and the session
  timer (RFC 4028 §9: 422 with our Min-SE when the interval asked for is
  too short, 400 when it is malformed);
* from another worker of this node (transport ``node``, its local bus: a
  call that worker owns and routed to a device held here, or a pickup its
  phone makes of a call this worker owns): no digest, no dial plan;
  ``X-Offhook-Ring`` (``node_ring``) names the one device to ring
  (``engine.ring_device``) or the pickup or park retrieval to make
  (``engine.act_for``);
* ``Replaces`` (RFC 3891): the INVITE takes the place of one of our
  dialogs. It is looked up (``replaces.dialog_ids``) and judged by
  ``replaces.verdict`` (481 none or the caller's own early dialog, 603
  terminated, 486 confirmed but early-only); accepted, core gets
  ``engine.replace(new_leg, replaced_leg, setup)`` instead of ``setup``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from offhook.common.errors import ParseError
from offhook.common.ids import new_tag
from offhook.core.call import WorkerAsk
from offhook.core.events import Diversion, PartyInfo, RedirectReason, Setup
from offhook.core.leg import Leg
from offhook.core.media import MediaDescription
from offhook.sip.auth import AuthStatus
from offhook.sip.dialog import DialogState
from offhook.sip.diversion import parse_diversions
from offhook.sip.headers import parse_name_addr
from offhook.sip.inbound_leg import InboundLeg
from offhook.sip.legs import Addr, SipLeg
from offhook.sip.message import SipRequest, SipResponse, derived_tag, make_response
from offhook.sip.node_ring import NODE, RING_HEADER, NodeRing, parse_ring
from offhook.sip.outbound_leg import OutboundLeg
from offhook.sip.replaces import Found, dialog_ids, parse_replaces, verdict
from offhook.sip.sdpmap import sdp_to_media
from offhook.sip.session_timer import Agreement, TooBrief, as_uas
from offhook.sip.transaction import TxnKey
from offhook.sip.uri import parse_uri

if TYPE_CHECKING:
    from offhook.sip.endpoint import SipEndpoint, TrunkPeer

log = logging.getLogger("offhook.sip")


class CallIntake:
    """Turns authenticated out-of-dialog INVITEs into inbound legs and core calls."""

    def __init__(self, ep: SipEndpoint) -> None:
        self.ep = ep

    def on_invite(self, key: TxnKey, req: SipRequest, addr: Addr, transport: str) -> None:
        ep = self.ep
        if transport == NODE:
            self.on_node_invite(key, req, addr)
            return
        trunk = ep.trunk_for(addr) if ep.trunk_for is not None else None
        if trunk is not None:
            self.on_trunk_invite(key, req, addr, transport, trunk)
            return
        challenge, device = self.digest(req, addr)
        if challenge is not None:
            ep.respond(key, challenge)
            return
        try:
            called = parse_uri(req.uri).user_unescaped or ""
        except ParseError:
            ep.respond(key, make_response(req, 400, to_tag=new_tag()))
            return
        caller = ep.caller_of(device)
        if caller is None:  # the device vanished from the plan since authenticating
            ep.respond(key, make_response(req, 403, to_tag=new_tag()))
            return
        name = caller.name
        if not name:
            try:
                display = parse_name_addr(req.headers.get("From") or "").display
            except ParseError:
                display = None
            name = display or ""
        calling = PartyInfo(number=caller.number, name=name, device=device)
        self._start(key, req, addr, transport, device, None, calling, called)

    def digest(
        self, req: SipRequest, addr: Addr, *, record: bool = True
    ) -> tuple[SipResponse | None, str]:
        """RFC 3261 §22.3: (the 407 to answer, "") or (None, the authenticated device)."""
        return digest_check(self.ep, req, addr, record=record, proxy=True)

    def on_trunk_invite(
        self, key: TxnKey, req: SipRequest, addr: Addr, transport: str, trunk: TrunkPeer
    ) -> None:
        """A call from a trunk's address: no digest, routed with the trunk's CSS."""
        ep = self.ep
        quota = trunk.quota  # max_calls and max_cps (net.trunk_admission), before routing
        if quota is not None:
            refusal = quota.admit_call(ep.clock.monotonic(), ep.engine.device_calls(trunk.name))
            if refusal is not None:
                resp = make_response(req, 503, refusal.reason, to_tag=new_tag())
                resp.headers.add("Retry-After", str(refusal.retry_after))
                ep.respond(key, resp)
                return
        elif trunk.max_calls > 0 and ep.engine.device_calls(trunk.name) >= trunk.max_calls:
            ep.respond(key, make_response(req, 503, "Trunk Busy", to_tag=new_tag()))
            return
        try:
            called, calling = _as_presented(req, trunk.name)
        except ParseError:
            ep.respond(key, make_response(req, 400, to_tag=new_tag()))
            return
        diversions = self._diversions(req)
        self._start(key, req, addr, transport, trunk.name, trunk.css, calling, called, diversions)

    def on_node_invite(self, key: TxnKey, req: SipRequest, addr: Addr) -> None:
        """A call another worker routed to a device here: ring exactly what it names."""
        try:
            ring = parse_ring(req.headers.get(RING_HEADER) or "")
            called, calling = _as_presented(req, ring.caller)
        except ParseError:
            self.ep.respond(key, make_response(req, 400, to_tag=new_tag()))
            return
        device = ring.caller or NODE
        diversions = self._diversions(req)
        self._start(key, req, addr, NODE, device, None, calling, called, diversions, ring)

    def _diversions(self, req: SipRequest) -> tuple[Diversion, ...]:
        """The redirections of a trunk's call, oldest first (RFC 5806 Diversion)."""
        values = req.headers.get_all("Diversion")
        if not values:
            return ()
        try:
            found = parse_diversions(values, self.ep.engine.max_forward_hops)
        except ParseError as exc:
            log.debug("Diversion ignored: %s", exc.reason)
            return ()
        return tuple(Diversion(r.number, RedirectReason(r.reason), r.name) for r in found)

    def _start(
        self,
        key: TxnKey,
        req: SipRequest,
        addr: Addr,
        transport: str,
        device: str,
        css: str | None,
        calling: PartyInfo,
        called: str,
        diversions: tuple[Diversion, ...] = (),
        ring: NodeRing | None = None,
    ) -> None:
        """The checks every new call passes, then the leg and the call (or the replacement)."""
        ep = self.ep
        ok, replaced = self._replaced(key, req)
        if not ok:
            return
        ok, media = self._initial_offer(key, req)
        if not ok:
            return
        ok, agreement = self._session_timer(key, req)
        if not ok:
            return
        inbound = InboundLeg(ep, key, req, addr, transport, agreement)
        ep.inbound_by_key[key] = inbound
        leg = ep.engine.inbound_leg(inbound, device, css=css)
        inbound.leg = leg
        setup = Setup(
            calling=calling,
            called=called,
            media=media,
            original_called=diversions[0].number if diversions else called,
            diversions=diversions,
        )
        if ring is not None and ring.ask:
            ask = WorkerAsk(ring.ask, ring.group, (ring.dn, ring.partition))
            ep.engine.act_for(leg, setup, ask)
        elif ring is not None:
            setup = replace(setup, auto_answer=ring.auto_answer, silent=ring.silent)
            ep.engine.ring_device(leg, setup, ring.device)
        elif replaced is None:
            ep.engine.setup(leg, setup)
        else:
            ep.engine.replace(leg, replaced, setup)

    def _replaced(self, key: TxnKey, req: SipRequest) -> tuple[bool, Leg | None]:
        """(True, the core leg an INVITE's Replaces takes over or None), (False, None): refused."""
        values = req.headers.get_raw("Replaces")
        if not values:
            return True, None
        ep = self.ep
        try:
            if len(values) > 1:
                raise ParseError("more than one Replaces")
            replaces = parse_replaces(values[0])
        except ParseError as exc:
            ep.respond(key, make_response(req, 400, f"Bad Request ({exc.reason})", new_tag()))
            return False, None
        target: SipLeg | None = None
        ended = False  # RFC 3891 §3: a dialog that already ended is declined (603)
        for dialog_id in dialog_ids(replaces):
            target = ep.dialogs.get(dialog_id)
            if target is not None:
                break
            ended = ended or dialog_id in ep.ended
        found = Found.TERMINATED if target is None and ended else self._found(target)
        status = verdict(found, replaces.early_only)
        if status is None and (target is None or target.leg is None):
            status = 481
        if status is not None:
            ep.respond(key, make_response(req, status, to_tag=new_tag()))
            return False, None
        assert target is not None
        return True, target.leg

    @staticmethod
    def _found(target: SipLeg | None) -> Found:
        if target is None or target.dialog is None:
            return Found.NONE
        if target.done or target.dialog.state is DialogState.TERMINATED:
            return Found.TERMINATED
        if target.dialog.state is DialogState.CONFIRMED:
            return Found.CONFIRMED
        return Found.EARLY_OURS if isinstance(target, OutboundLeg) else Found.EARLY_THEIRS

    def _initial_offer(self, key: TxnKey, req: SipRequest) -> tuple[bool, MediaDescription | None]:
        """The offer in a new INVITE (None: delayed offer); answers 488/400 if unusable."""
        if not req.body:
            return True, None
        try:
            return True, sdp_to_media(req.body)
        except ParseError as exc:
            self.ep.respond(key, make_response(req, exc.status_hint or 488, to_tag=new_tag()))
            return False, None

    def _session_timer(self, key: TxnKey, req: SipRequest) -> tuple[bool, Agreement | None]:
        """(True, the session timer of a new INVITE), or (False, None) once refused (400/422)."""
        settings = self.ep.session_timers
        if settings is None:
            return True, None
        try:
            outcome = as_uas(req, settings)
        except ParseError as exc:
            self.ep.respond(key, make_response(req, 400, f"Bad Request ({exc.reason})", new_tag()))
            return False, None
        if isinstance(outcome, TooBrief):
            resp = make_response(req, 422, "Session Interval Too Small", new_tag())
            resp.headers.add("Min-SE", str(outcome.min_se))
            self.ep.respond(key, resp)
            return False, None
        return True, outcome


def _as_presented(req: SipRequest, device: str) -> tuple[str, PartyInfo]:
    """(the called number, the caller) as a peer that needs no digest presents them: its
    Request-URI and From ("anonymous": presentation restricted). ParseError if unreadable."""
    called = parse_uri(req.uri).user_unescaped or ""
    caller = parse_name_addr(req.headers.get("From") or "")
    number = caller.uri.user_unescaped or ""
    calling = PartyInfo(
        number=number,
        name=caller.display or "",
        device=device,
        presentation_allowed=number.lower() != "anonymous",
    )
    return called, calling


def digest_check(
    ep: SipEndpoint, req: SipRequest, addr: Addr, *, record: bool, proxy: bool
) -> tuple[SipResponse | None, str]:
    """Digest authentication of ``req``: (the challenge or 403 to answer, "") or
    (None, the authenticated device). ``proxy``: 407/Proxy-Authenticate (a call,
    §22.3), else 401/WWW-Authenticate (as the registrar does, §22.2).

    A failed check is counted (``on_auth_failure``); unknown users and wrong
    passwords get the same 403 (unusable credentials: a new challenge).
    """
    wall = ep.clock.wall()
    result = ep.auth.verify(req, ep.creds, wall, proxy=proxy, record=record)
    if result.status is AuthStatus.OK and result.credentials is not None:
        return None, result.credentials.device
    failed = result.status in (AuthStatus.FAILED, AuthStatus.REJECTED)
    if failed and ep.on_auth_failure is not None:
        ep.on_auth_failure(addr, result.username)
    if result.status is AuthStatus.REJECTED:
        return make_response(req, 403, to_tag=derived_tag(req)), ""
    resp = make_response(req, 407 if proxy else 401, to_tag=derived_tag(req))
    stale = result.status is AuthStatus.STALE
    for name, value in ep.auth.challenge(wall, stale=stale, proxy=proxy):
        resp.headers.add(name, value)
    return resp, ""
