"""gc_policy.FullCollections: a full collection when none ran for its interval, none otherwise."""

from __future__ import annotations

import asyncio
import gc
import weakref

from offhook.gc_policy import FullCollections


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_it_collects_only_when_no_full_collection_ran_for_the_interval() -> None:
    clock = Clock()
    full = FullCollections(every=10.0, clock=clock)
    clock.now += 9.0
    assert not full.collect_if_due()
    full.seen("stop", {"generation": 2})  # Python ran one itself: the interval starts again
    clock.now += 9.0
    assert not full.collect_if_due()
    full.seen("stop", {"generation": 1})  # a middle one frees no old cycle: not counted
    clock.now += 1.0
    assert full.collect_if_due() and full.forced == 1


def test_a_cycle_left_behind_is_freed_by_the_task() -> None:
    async def scenario() -> bool:
        full = FullCollections(every=0.1)
        gc.disable()
        try:
            ref = weakref.ref(Cycle())
            task = asyncio.create_task(full.run())
            for _ in range(50):
                await asyncio.sleep(0.05)
                if ref() is None:
                    break
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            gc.enable()
        assert full.seen not in gc.callbacks
        return ref() is None and full.forced >= 1

    assert asyncio.run(scenario())
