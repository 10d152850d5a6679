"""The node's log of calls and refused registrations, from the event bus.

``EventLog(bus, clock)`` subscribes one handler to the bus and writes, on
the ``offhook.calls`` logger:

- at the end of every call attempt (not a node leg's far half, which the worker
  that owns the call logs), one INFO line (calling, called, Q.850
  cause, whether it was answered, its duration), like an access log;
- at its start, a DEBUG line;
- for a refused registration (``RegistrationRejected``), a WARNING, at most
  :data:`LOG_REJECTIONS` a minute (a flood of refusals must not flood the
  log): the rest are counted and summed up in one line when the next minute
  starts.

Each line carries its context in ``extra=`` (``call_id``, ``device``,
``source``), which ``[log] format = "json"`` writes as fields of their own
(``common.logsetup``). ``clock`` is monotonic seconds (the loop's time).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from offhook.core.bus import EventBus
from offhook.core.causes import cause_text
from offhook.core.records import CallEnded, CallStarted, RegistrationRejected

__all__ = ["LOG_PERIOD", "LOG_REJECTIONS", "EventLog"]

log = logging.getLogger("offhook.calls")

MAX_NAME = 64
"""Characters of a refused device name logged (the name is what a peer claimed)."""
LOG_PERIOD = 60.0
LOG_REJECTIONS = 20
"""Refused registrations logged one by one per :data:`LOG_PERIOD`; the rest are summed up."""


class EventLog:
    """Logs calls and refused registrations (see the module docstring)."""

    def __init__(self, bus: EventBus, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._period_start = float("-inf")
        self._logged = 0
        self._unlogged = 0
        self._handlers: dict[type, Callable[[Any], None]] = {
            CallStarted: self._started,
            CallEnded: self._ended,
            RegistrationRejected: self._rejected,
        }
        bus.subscribe_all(self.on_event)

    def on_event(self, event: object) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _started(self, event: CallStarted) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "call %s: %s (%s) calls %s",
                event.call_id,
                event.calling.number,
                event.calling_device or "-",
                event.called,
                extra={"call_id": event.call_id, "device": event.calling_device},
            )

    def _ended(self, event: CallEnded) -> None:
        r = event.record
        if r.internal or not log.isEnabledFor(logging.INFO):
            return  # a node leg's far half: the worker that owns the call logs it
        outcome = f"answered by {r.called_device}, {r.duration} s" if r.answer else "not answered"
        log.info(
            "call %s ended: %s (%s) -> %s, %s, cause %d (%s)",
            r.call_id,
            r.calling,
            r.calling_device or "-",
            r.called,
            outcome,
            r.cause,
            r.cause_text or cause_text(r.cause),
            extra={"call_id": r.call_id, "device": r.calling_device},
        )

    def _rejected(self, event: RegistrationRejected) -> None:
        now = self._clock()
        if now - self._period_start >= LOG_PERIOD:
            if self._unlogged:
                log.warning(
                    "%d more registrations refused in the last %.0f s (not logged one by one)",
                    self._unlogged,
                    LOG_PERIOD,
                )
            self._period_start, self._logged, self._unlogged = now, 0, 0
        if self._logged >= LOG_REJECTIONS:
            self._unlogged += 1
            return
        self._logged += 1
        device = event.device[:MAX_NAME]  # what a peer claimed: bounded
        log.warning(
            "%s registration of %r from %s refused: %s",
            event.protocol,
            device,
            event.source or "-",
            event.reason,
            extra={"device": device, "source": event.source},
        )
