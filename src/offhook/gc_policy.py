"""The node's garbage collection: thresholds, start-up frozen, and a full collection at least
every ``FULL_EVERY`` seconds.

With Python's default thresholds (700, 10, 10) a node at 150 calls/s spent about
0.3 ms a call collecting, much of it in full collections of 100-150 ms that
stalled the event loop (bench/README.md, issue 13 item 3). So: a young
collection every 20,000 allocations, and what start-up built (the plan, the
modules) frozen out of every collection once the node is up.

A SIP call's objects no longer need the collector: a finished leg breaks its
cycles (its handlers, its core leg) and call control breaks its calls' (leg <->
call), so reference counting frees a call when it ends (``sip.ended``; the
young collections of a busy node find almost nothing). What else forms cycles
(other protocols' legs, features, the exceptions a flood of malformed traffic
raises, libraries) is collected by Python's own rule, which on a quiet node
can take minutes: ``FullCollections`` runs a full collection when none ran for
``FULL_EVERY`` seconds. Each costs about 0.1-0.2 s on a busy node's heap. Once
a minute was tried (session 13): in one soak run (a flood of malformed traffic,
a busy machine) the node then grew 17.6 MB in 80 s, over the test's 15 MB
bound, so every 10 s it stays.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

__all__ = ["FULL_EVERY", "THRESHOLDS", "FullCollections", "freeze_start_up"]

log = logging.getLogger("offhook.gc")

THRESHOLDS = (20_000, 10, 10)
FULL_EVERY = 10.0


def freeze_start_up() -> None:
    """What start-up built lives as long as the node: collected once, then never again."""
    gc.collect()
    gc.freeze()


class FullCollections:
    """Notes each full collection (``gc.callbacks``); ``run()`` makes one when none ran for
    ``every`` seconds. ``clock``: monotonic seconds.

    It also counts the collections of each generation and the time they took
    (``count``, ``seconds``, ``longest``: ``timer`` seconds), logged when ``run`` ends.
    """

    def __init__(
        self,
        every: float = FULL_EVERY,
        clock: Callable[[], float] = time.monotonic,
        timer: Callable[[], float] = time.perf_counter,
    ):
        self.every = every
        self.clock = clock
        self.timer = timer
        self.last = clock()
        self.forced = 0
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def seen(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self.timer()
            return
        generation = info.get("generation")
        if phase != "stop" or generation not in (0, 1, 2):
            return
        took = self.timer() - self._started
        self.count[generation] += 1
        self.seconds[generation] += took
        self.longest[generation] = max(self.longest[generation], took)
        if generation == 2:
            self.last = self.clock()

    def summary(self) -> str:
        return ", ".join(
            f"{name} {n} in {total:.3f} s (longest {1000 * most:.0f} ms)"
            for name, n, total, most in zip(
                ("young", "middle", "full"), self.count, self.seconds, self.longest, strict=True
            )
        )

    def due(self) -> bool:
        return self.clock() - self.last >= self.every

    def collect_if_due(self) -> bool:
        if not self.due():
            return False
        gc.collect()  # the callback notes it
        self.forced += 1
        return True

    async def run(self) -> None:
        gc.callbacks.append(self.seen)
        try:
            while True:
                await asyncio.sleep(max(0.1, self.every - (self.clock() - self.last)))
                self.collect_if_due()
        finally:
            gc.callbacks.remove(self.seen)
            log.info("garbage collections: %s", self.summary())
