"""The SIP side of the composition root: what SIP event subscriptions see of core.

``start_sip_events`` gives the SIP endpoint its notifier (``sip.notifier``:
SUBSCRIBE/NOTIFY for busy lamps, presence and message waiting, and a
voicemail system's unsolicited message-summary NOTIFY) with ``SipEvents``
as its policy, and feeds it core's bus events: every ``LineStateChanged``
(``engine.lines``, ``core.features.linestate.LineStates``) notifies the ``dialog`` and
``presence`` watchers of that line, every ``RegistrationChanged`` the
``presence`` watchers of the device's lines (open/closed), every ``MwiChanged`` the
``message-summary`` watchers. ``SipEvents`` answers the notifier from the
plan snapshot, the location store, the line states and the engine's
message waiting:

* a subscriber is a device of the plan with a live registration;
* ``dialog``/``presence`` of a number: what the subscriber's CSS reaches
  when it dials that number (a DN, after translations), else 404, the
  same for a number that does not exist (nothing leaks);
* ``message-summary``: only the subscriber's own lines (its name or one of
  its DNs), else 403;
* a voicemail system's NOTIFY sets message waiting on any line of the plan
  (``CallEngine.set_mwi``), SIP or not.

Only ``app`` calls this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offhook.common.location import LocationStore
from offhook.core.bus import EventBus
from offhook.core.dialplan.router import Outcome
from offhook.core.directory import PlanSnapshot
from offhook.core.engine import CallEngine
from offhook.core.records import LineStateChanged, MwiChanged, RegistrationChanged
from offhook.sip.endpoint import SipEndpoint
from offhook.sip.event_packages import DIALOG, MESSAGE_SUMMARY, PRESENCE, LineStatus
from offhook.sip.message_summary import MessageCounts, MessageSummary
from offhook.sip.notifier import Notifier, Resource
from offhook.sip.subscriptions import Limits

__all__ = ["SipEvents", "start_sip_events"]


class SipEvents:
    """The notifier's ``EventPolicy`` over the plan, registrations, line states and MWI."""

    def __init__(
        self,
        snapshot: Callable[[], PlanSnapshot],
        engine: CallEngine,
        locations: LocationStore,
        now: Callable[[], float],
    ) -> None:
        self.snapshot = snapshot
        self.engine = engine
        self.locations = locations
        self.lines = engine.lines
        self.now = now
        self.notifier: Notifier | None = None

    def registered(self, device: str) -> bool:
        return bool(self.locations.bindings(device, self.now()))

    def resource(self, device: str, package: str, user: str) -> Resource | int:
        snap = self.snapshot()
        dev = snap.device(device)
        if dev is None or not user:
            return 403 if dev is None else 404
        if package == MESSAGE_SUMMARY:
            for line in dev.lines:
                if user in (line.dn, device):
                    return (line.dn, line.partition)
            return 403
        calling = dev.lines[0].dn if dev.lines else ""
        decision = snap.dialplan.route(dev.css, user, calling, rotate=False)
        if decision.outcome is Outcome.DN and decision.dn is not None:
            return (decision.dn.dn, decision.dn.partition)
        return 404

    def line_status(self, resource: Resource) -> LineStatus:
        view = self.lines.view(*resource)
        entry = self.snapshot().dns.get(resource[0])
        devices = entry.devices if entry is not None and entry.partition == resource[1] else ()
        now = self.now()
        available = any(self.locations.bindings(d, now) for d in devices)
        return LineStatus(view.state, view.direction, available)

    def summary(self, resource: Resource) -> MessageSummary:
        mwi = self.engine.messages(*resource)
        return MessageSummary(mwi.waiting, "", (MessageCounts("voice-message", mwi.new, mwi.old),))

    def set_mwi(self, user: str, summary: MessageSummary) -> bool:
        voice = summary.voice
        return self.engine.set_mwi(
            user,
            summary.waiting,
            voice.new if voice is not None else 0,
            voice.old if voice is not None else 0,
        )

    def status(self) -> dict[str, Any]:
        """For the admin endpoint: subscriptions, lines not idle."""
        out: dict[str, Any] = self.notifier.status() if self.notifier is not None else {}
        out["busy_lines"] = len(self.lines)
        return out

    # ------------------------------------------------------------ bus -> NOTIFY
    def on_line(self, ev: LineStateChanged) -> None:
        if self.notifier is not None:
            self.notifier.changed(DIALOG, (ev.dn, ev.partition))
            self.notifier.changed(PRESENCE, (ev.dn, ev.partition))

    def on_registration(self, ev: RegistrationChanged) -> None:
        """A device came or went: its lines' presence (open/closed) may have changed."""
        if self.notifier is None:
            return
        for line in self.snapshot().lines_of(ev.device):
            self.notifier.changed(PRESENCE, (line.dn, line.partition))

    def on_mwi(self, ev: MwiChanged) -> None:
        if self.notifier is not None:
            self.notifier.changed(MESSAGE_SUMMARY, (ev.dn, ev.partition))


def start_sip_events(
    endpoint: SipEndpoint,
    engine: CallEngine,
    bus: EventBus,
    locations: LocationStore,
    snapshot: Callable[[], PlanSnapshot],
    *,
    min_expires: int,
    max_expires: int,
    limits: Limits | None = None,
) -> SipEvents:
    """Give ``endpoint`` its notifier and feed it the bus; returns the policy (``status()``)."""
    events = SipEvents(snapshot, engine, locations, endpoint.loop.time)
    notifier = Notifier(
        endpoint,
        events,
        limits=limits or Limits(),
        min_expires=min_expires,
        max_expires=max_expires,
    )
    events.notifier = notifier
    endpoint.notifier = notifier
    bus.subscribe(LineStateChanged, events.on_line)
    bus.subscribe(MwiChanged, events.on_mwi)
    bus.subscribe(RegistrationChanged, events.on_registration)
    return events
