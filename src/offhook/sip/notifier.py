"""The SIP notifier: SUBSCRIBE/NOTIFY for busy lamps, presence and message waiting (RFC 6665).

Theory of operation. ``Notifier`` serves three event packages
(``event_packages``): ``dialog`` and ``presence`` of a line a phone may
call (BLF speed dials), and ``message-summary`` of the phone's own line.
What a subscriber may watch, and what it looks like now, comes from an
``EventPolicy`` (the composition root implements it over core's plan,
line states and message waiting), so nothing here imports core.

* A new SUBSCRIBE is screened without a transaction (``screen``: its Event
  names a package we serve, else 489 with ``Allow-Events``; digest, 401
  until it checks out, 403 for wrong credentials), so a flood of
  unauthenticated ones leaves nothing behind. Then (``on_subscribe``) the
  device must be registered, the policy must grant the resource (the same
  404 for a number that does not exist and one the subscriber's CSS does
  not reach: no information leaks), the expiry is checked (423 below
  ``min_expires``, shortened to ``max_expires``; 0 is a fetch: one
  terminated NOTIFY) and ``Accept`` must admit the package's body (406).
* The subscription is a dialog (we answer 200 with our To tag, RFC 6665
  §4.2.1.1) kept in a bounded ``SubscriptionTable``: at most
  ``Limits.per_device`` per device (403 beyond) and ``Limits.total`` in all
  (503 with Retry-After); a device subscribing again to what it watches
  replaces its older subscription.
* NOTIFYs follow the table's state machine (``subscriptions``): one at a
  time per subscription, full state, on start, refresh and every
  ``changed(package, resource)`` the composition root reports; a final one
  (``terminated``) on unsubscribe, expiry or refusal on refresh. A NOTIFY
  that fails (481, any error, timeout) drops the subscription.
* In-dialog SUBSCRIBEs refresh (the policy is asked again) or end
  (Expires: 0) a subscription; anything else in its dialog gets 405.

NOTIFYs go to the subscriber's Contact, or to where its SUBSCRIBE came
from when a NAT sits between (over TCP, the connection it came on). One
endpoint timer (``set_timer``) wakes the table at the next expiry.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from offhook.common.addr import normalize_host
from offhook.common.errors import ParseError
from offhook.common.ids import new_tag
from offhook.sip.dialog import Dialog, DialogError, DialogId
from offhook.sip.event_packages import (
    ALLOW_EVENTS,
    CONTENT_TYPES,
    DIALOG,
    MESSAGE_SUMMARY,
    PACKAGES,
    EventHeader,
    LineStatus,
    accepts,
    dialog_info,
    parse_event,
    pidf,
)
from offhook.sip.incoming_call import digest_check
from offhook.sip.message import SipRequest, SipResponse, derived_tag, make_response
from offhook.sip.message_summary import MessageSummary, build_message_summary
from offhook.sip.mwi_in import unsolicited_notify
from offhook.sip.registrar import parse_delta_seconds
from offhook.sip.subscriptions import (
    Action,
    Admission,
    Limits,
    SubEvent,
    Subscription,
    SubscriptionTable,
)
from offhook.sip.transaction import TxnKey
from offhook.sip.uri import parse_uri

if TYPE_CHECKING:
    from offhook.sip.endpoint import SipEndpoint

log = logging.getLogger("offhook.sip")

__all__ = ["DEFAULT_EXPIRES", "EventPolicy", "Notifier", "Resource", "SipSide"]

Addr = tuple[str, int]
Resource = tuple[str, str]  # (directory number, partition)
DEFAULT_EXPIRES = 3600  # RFC 4235 §3.3, RFC 3856 §6.4, RFC 3842 §4.3
RETRY_AFTER = "60"


class EventPolicy(Protocol):
    """What the notifier asks of the plan and call control (``node_sip.SipEvents``)."""

    def registered(self, device: str) -> bool:
        """Whether ``device`` has a live registration (only those may subscribe)."""

    def resource(self, device: str, package: str, user: str) -> Resource | int:
        """The line ``device`` watches by subscribing to ``package`` of ``user``,
        or the status refusing it (403 not its own line, 404 unknown or unreachable)."""

    def line_status(self, resource: Resource) -> LineStatus: ...

    def summary(self, resource: Resource) -> MessageSummary:
        """The line's message waiting (``account`` is filled in by the notifier)."""

    def set_mwi(self, user: str, summary: MessageSummary) -> bool:
        """A voicemail system's message waiting for line ``user``; False: no such line."""


@dataclass(slots=True)
class SipSide:
    """What a subscription keeps of SIP: its dialog, where NOTIFYs go, its Event."""

    dialog: Dialog
    dest: Addr
    transport: str
    event: EventHeader
    user: str  # the Request-URI's user: what was subscribed to
    host: str  # our host as the subscriber sees it (entity URIs)


Sub = Subscription[SipSide]


def notify_destination(req: SipRequest, addr: Addr, transport: str, target: str) -> Addr:
    """Where NOTIFYs of a subscription go: its Contact, unless a NAT sits between."""
    if transport != "udp":
        return addr  # the connection the SUBSCRIBE came on
    try:
        uri = parse_uri(target)
        contact = (normalize_host(uri.host_addr), uri.port or 5060)
    except ParseError:
        return addr
    return contact if contact[0] == addr[0] else addr


class Notifier:
    """SUBSCRIBE/NOTIFY for the endpoint; see the module docstring."""

    def __init__(
        self,
        ep: SipEndpoint,
        policy: EventPolicy,
        *,
        limits: Limits = Limits(),  # noqa: B008
        min_expires: int = 60,
        max_expires: int = 3600,
    ) -> None:
        self.ep = ep
        self.policy = policy
        self.table: SubscriptionTable[SipSide] = SubscriptionTable(limits)
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = max(min(DEFAULT_EXPIRES, max_expires), min_expires)
        self.counters: Counter[str] = Counter()
        self._timer_at: float | None = None

    # ------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        packages = Counter(sub.package for sub in self.table)
        return {
            "subscriptions": len(self.table),
            "devices": self.table.devices(),
            "by_package": dict(packages),
            "limits": {
                "per_device": self.table.limits.per_device,
                "total": self.table.limits.total,
            },
            "counters": dict(self.counters),
        }

    def unsolicited(self, req: SipRequest, addr: Addr) -> SipResponse:
        """An out-of-dialog NOTIFY: a voicemail system's message waiting (``mwi_in``)."""
        ep = self.ep
        from_trunk = ep.trunk_for is not None and ep.trunk_for(addr) is not None
        return unsolicited_notify(req, from_trunk, self.policy, self.counters)

    # ------------------------------------------------------------ new SUBSCRIBEs
    def screen(self, req: SipRequest, addr: Addr) -> SipResponse | None:
        """A new SUBSCRIBE's stateless answer (bad event, challenge, refusal), or None."""
        refused, _ = self._event_of(req)
        if refused is not None:
            return refused
        refused, _ = self._digest(req, addr, record=False)
        return refused

    def on_subscribe(self, key: TxnKey, req: SipRequest, addr: Addr, transport: str) -> None:
        """A new, authenticated SUBSCRIBE (through its server transaction)."""
        ep = self.ep
        refused, event = self._event_of(req)
        device = ""
        if refused is None:
            refused, device = self._digest(req, addr, record=True)
        if refused is not None or event is None:
            assert refused is not None
            ep.respond(key, refused)
            return
        answer, granted = self._grant(req, device, event)
        if answer is not None:
            self.counters[f"refused_{answer.status}"] += 1
            ep.respond(key, answer)
            return
        resource, expires = granted
        old = self.table.same(device, event.package, resource)
        admission = self.table.admit(device, replacing=old is not None)
        if admission is not Admission.OK:
            self.counters[f"refused_{admission.value}"] += 1
            if admission is Admission.FULL:
                resp = make_response(req, 503, to_tag=new_tag())
                resp.headers.add("Retry-After", RETRY_AFTER)
            else:
                resp = make_response(req, 403, "Too Many Subscriptions", to_tag=new_tag())
            ep.respond(key, resp)
            return
        resp = make_response(req, 200, to_tag=new_tag())
        resp.headers.add("Expires", str(expires))
        resp.headers.add("Contact", ep.contact(transport, addr[0]))
        try:
            dialog = Dialog.from_uas(req, resp)
        except DialogError:  # no Contact
            ep.respond(key, make_response(req, 400, "Missing Contact", to_tag=new_tag()))
            return
        if old is not None:
            self.table.remove(old)  # superseded: the phone subscribed afresh
            self.counters["replaced"] += 1
        dest = notify_destination(req, addr, transport, dialog.remote_target)
        side = SipSide(dialog, dest, transport, event, self._user(req), ep.host_for(dest[0]))
        now = ep.loop.time()
        sub: Sub = Subscription(dialog.id, device, event.package, resource, now + expires, side)
        self.table.add(sub)
        self.counters["accepted"] += 1
        ep.respond(key, resp)
        if expires == 0:  # a fetch (RFC 6665 §4.4.3): the state once, terminated
            self._fire(sub, SubEvent.END)
        else:
            self._fire(sub, SubEvent.CHANGE)
        self._arm()

    def _grant(
        self, req: SipRequest, device: str, event: EventHeader
    ) -> tuple[SipResponse | None, tuple[Resource, int]]:
        """(the refusal, _) or (None, (the resource, the granted expiry))."""
        none: tuple[Resource, int] = (("", ""), 0)
        if not self.policy.registered(device):
            return make_response(req, 403, "Not Registered", to_tag=new_tag()), none
        if not accepts(req.headers.get_all("Accept"), CONTENT_TYPES[event.package]):
            resp = make_response(req, 406, to_tag=new_tag())
            resp.headers.add("Accept", CONTENT_TYPES[event.package])
            return resp, none
        try:
            expires = self._expires(req)
        except ParseError:
            return make_response(req, 400, "Bad Expires", to_tag=new_tag()), none
        if expires is None:
            resp = make_response(req, 423, to_tag=new_tag())
            resp.headers.add("Min-Expires", str(self.min_expires))
            return resp, none
        granted = self.policy.resource(device, event.package, self._user(req))
        if isinstance(granted, int):
            return make_response(req, granted, to_tag=new_tag()), none
        return None, (granted, expires)

    def _expires(self, req: SipRequest) -> int | None:
        """The granted expiry (0: unsubscribe/fetch), None when too brief (423)."""
        text = req.headers.get("Expires")
        asked = self.default_expires if text is None else parse_delta_seconds(text)
        if 0 < asked < self.min_expires:
            return None
        return min(asked, self.max_expires)

    @staticmethod
    def _user(req: SipRequest) -> str:
        try:
            return parse_uri(req.uri).user_unescaped or ""
        except ParseError:
            return ""

    def _event_of(self, req: SipRequest) -> tuple[SipResponse | None, EventHeader | None]:
        raw = req.headers.get("Event")
        try:
            event = parse_event(raw) if raw is not None else None
        except ParseError:
            return make_response(req, 400, "Bad Event", to_tag=derived_tag(req)), None
        if event is None or event.package not in PACKAGES:
            resp = make_response(req, 489, to_tag=derived_tag(req))
            resp.headers.add("Allow-Events", ALLOW_EVENTS)
            return resp, None
        return None, event

    def _digest(
        self, req: SipRequest, addr: Addr, *, record: bool
    ) -> tuple[SipResponse | None, str]:
        """RFC 3261 §22.2, as the registrar: (401/403, "") or (None, the device)."""
        return digest_check(self.ep, req, addr, record=record, proxy=False)

    # ------------------------------------------------------------ in-dialog requests
    def on_in_dialog(self, key: TxnKey, req: SipRequest) -> bool:
        """A request in one of our subscription dialogs (False: not ours)."""
        sub = self.table.get((req.call_id, req.to_tag or "", req.from_tag or ""))
        if sub is None:
            return False
        ep = self.ep
        if req.method != "SUBSCRIBE":
            if req.method != "ACK":
                resp = make_response(req, 405)
                resp.headers.add("Allow", "SUBSCRIBE")
                ep.respond(key, resp)
            return True
        side = sub.data
        if not sub.live:
            ep.respond(key, make_response(req, 481))
            return True
        refused = side.dialog.receive_request(req)
        if refused is not None:
            ep.respond(key, make_response(req, refused))
            return True
        raw = req.headers.get("Event")
        try:
            event = parse_event(raw) if raw is not None else None
        except ParseError:
            event = None
        if event is None or (event.package, event.id) != (side.event.package, side.event.id):
            ep.respond(key, make_response(req, 481))  # not this subscription
            return True
        self._refresh(key, req, sub)
        self._arm()
        return True

    def _refresh(self, key: TxnKey, req: SipRequest, sub: Sub) -> None:
        ep = self.ep
        side = sub.data
        try:
            expires = self._expires(req)
        except ParseError:
            ep.respond(key, make_response(req, 400, "Bad Expires"))
            return
        if expires is None:
            resp = make_response(req, 423)
            resp.headers.add("Min-Expires", str(self.min_expires))
            ep.respond(key, resp)
            return
        if expires == 0:
            resp = make_response(req, 200)
            resp.headers.add("Expires", "0")
            ep.respond(key, resp)
            sub.reason = "timeout"
            self._fire(sub, SubEvent.END)
            return
        granted = self.policy.resource(sub.device, sub.package, side.user)
        if granted != sub.resource:
            # The plan changed since: no longer allowed (RFC 6665 §4.2.2 "rejected").
            ep.respond(key, make_response(req, granted if isinstance(granted, int) else 403))
            sub.reason = "rejected"
            self._fire(sub, SubEvent.END)
            return
        self.table.refresh(sub, ep.loop.time() + expires)
        self.counters["refreshed"] += 1
        resp = make_response(req, 200)
        resp.headers.add("Expires", str(expires))
        resp.headers.add("Contact", ep.contact(side.transport, side.dest[0]))
        ep.respond(key, resp)
        self._fire(sub, SubEvent.CHANGE)  # RFC 6665 §4.2.1.2: the state at once

    # ------------------------------------------------------------ changes -> NOTIFY
    def changed(self, package: str, resource: Resource) -> None:
        """The state ``package`` shows of ``resource`` changed: notify its watchers."""
        for sub in self.table.watching(package, resource):
            self._fire(sub, SubEvent.CHANGE)

    def _fire(self, sub: Sub, event: SubEvent) -> None:
        action = self.table.fire(sub, event)
        if action is Action.NOTIFY:
            self._notify(sub, final=False)
        elif action is Action.FINAL:
            self._notify(sub, final=True)
        elif action is Action.DROP:
            self.counters["ended"] += 1

    def _notify(self, sub: Sub, *, final: bool) -> None:
        ep = self.ep
        side = sub.data
        body, content_type = self._body(sub)
        if final:
            state = f"terminated;reason={sub.reason}"
        else:
            state = f"active;expires={max(0, round(sub.expires_at - ep.loop.time()))}"
        event = side.event.package + (f";id={side.event.id}" if side.event.id else "")
        req = side.dialog.create_request(
            "NOTIFY",
            via=ep.via(side.transport, side.dest[0]),
            contact=ep.contact(side.transport, side.dest[0]),
            body=body,
            content_type=content_type,
            headers=[("Event", event), ("Subscription-State", state), *ep.common_headers()],
        )
        self.counters["notify_sent"] += 1
        if not ep.request(req, side.dest, side.transport, self):
            self._fire(sub, SubEvent.FAILED)

    def _body(self, sub: Sub) -> tuple[bytes, str]:
        side = sub.data
        dn = sub.resource[0]
        entity = f"sip:{dn}@{side.host}"
        if sub.package == MESSAGE_SUMMARY:
            summary = self.policy.summary(sub.resource)
            summary = MessageSummary(summary.waiting, entity, summary.counts)
            return build_message_summary(summary), CONTENT_TYPES[MESSAGE_SUMMARY]
        status = self.policy.line_status(sub.resource)
        if sub.package == DIALOG:
            return dialog_info(entity, sub.version - 1, status, dn), CONTENT_TYPES[DIALOG]
        return pidf(entity, status, f"line-{dn}"), CONTENT_TYPES[sub.package]

    # ------------------------------------------------------------ NOTIFY outcomes
    def _sub_of(self, req: SipRequest) -> Sub | None:
        key: DialogId = (req.call_id, req.from_tag or "", req.to_tag or "")
        return self.table.get(key)

    def on_response(self, req: SipRequest, resp: SipResponse) -> None:
        if resp.status < 200:
            return
        sub = self._sub_of(req)
        if sub is None:
            return
        if resp.status < 300:
            self._fire(sub, SubEvent.ANSWERED)
        else:
            self.counters[f"notify_{resp.status}"] += 1
            self._fire(sub, SubEvent.FAILED)

    def on_timeout(self, req: SipRequest) -> None:
        sub = self._sub_of(req)
        if sub is not None:
            self.counters["notify_timeout"] += 1
            self._fire(sub, SubEvent.FAILED)

    # ------------------------------------------------------------ expiry
    def _arm(self) -> None:
        when = self.table.next_timer()
        if when == self._timer_at:
            return
        self._timer_at = when
        if when is None:
            self.ep.cancel_timer((self, "expiry"))
            return
        self.ep.set_timer((self, "expiry"), max(0.0, when - self.ep.loop.time()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer_at = None
        for sub in self.table.expired(self.ep.loop.time()):
            self.counters["expired"] += 1
            self._fire(sub, SubEvent.END)
        self._arm()
