"""The core event bus: synchronous publish/subscribe of typed events.

Call control publishes what happens (``records.CallStarted``, ``CallEnded``,
...); CDR writers, CTI and real-time information subscribe. Delivery is
synchronous and in subscription order. A subscriber that raises is logged and
skipped: a broken listener never breaks call control or other listeners.
A subscriber may publish or (un)subscribe while being called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

E = TypeVar("E")
Unsubscribe = Callable[[], None]


class EventBus:
    def __init__(self) -> None:
        self._subs: list[tuple[type[Any] | None, Callable[[Any], None]]] = []

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> Unsubscribe:
        """Call ``handler`` with every published instance of ``event_type``."""
        return self._add((event_type, handler))

    def subscribe_all(self, handler: Callable[[object], None]) -> Unsubscribe:
        """Call ``handler`` with every published event."""
        return self._add((None, handler))

    def _add(self, entry: tuple[type[Any] | None, Callable[[Any], None]]) -> Unsubscribe:
        self._subs.append(entry)

        def unsubscribe() -> None:
            if entry in self._subs:
                self._subs.remove(entry)

        return unsubscribe

    def publish(self, event: object) -> None:
        for event_type, handler in list(self._subs):
            if event_type is not None and not isinstance(event, event_type):
                continue
            try:
                handler(event)
            except Exception:
                log.exception("event bus subscriber %r failed on %r", handler, event)

    def __len__(self) -> int:
        return len(self._subs)
