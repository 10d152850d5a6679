"""One lookup for many callers asking the same thing at about the same time.

Each CTI connection checks its token again every ``[cti] recheck`` seconds
(``web.cti_ws``): a database query in the thread pool. An application with
many connections under one token would make one query per connection and
period; ``SharedChecks`` lets every periodic check of a key within
``window`` seconds share one lookup (and one still running). A check that
must see the database as it is now (``fresh``: the token is checked on
every client message, so that a revoked token is refused on the next one)
always looks up, and its answer is what later periodic checks share.

Bounded: at most ``limit`` keys are remembered, the oldest forgotten first;
a lookup that failed is not shared.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["SharedChecks"]

T = TypeVar("T")


class SharedChecks(Generic[T]):
    """``lookup(key)`` shared by the non-fresh callers of ``window`` seconds."""

    def __init__(
        self,
        lookup: Callable[[str], Awaitable[T]],
        window: float,
        clock: Callable[[], float],
        *,
        limit: int = 4096,
    ) -> None:
        self._lookup = lookup
        self.window = window
        self._clock = clock
        self._limit = limit
        self._recent: OrderedDict[str, tuple[float, asyncio.Future[T]]] = OrderedDict()
        self.lookups = 0
        """Lookups made (the rest of the checks shared one)."""

    def __len__(self) -> int:
        return len(self._recent)

    async def get(self, key: str, *, fresh: bool = False) -> T:
        now = self._clock()
        hit = self._recent.get(key)
        if not fresh and hit is not None and now - hit[0] < self.window:
            return await asyncio.shield(hit[1])
        self.lookups += 1
        future = asyncio.ensure_future(self._lookup(key))
        self._recent[key] = (now, future)
        self._recent.move_to_end(key)
        while len(self._recent) > self._limit:
            self._recent.popitem(last=False)
        future.add_done_callback(lambda done: self._forget_failed(key, done))
        return await asyncio.shield(future)

    def _forget_failed(self, key: str, done: asyncio.Future[T]) -> None:
        if done.cancelled() or done.exception() is not None:
            entry = self._recent.get(key)
            if entry is not None and entry[1] is done:
                del self._recent[key]
