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


def test_it_counts_and_times_each_generation() -> None:
    clock, timer = Clock(), Clock()
    full = FullCollections(every=10.0, clock=clock, timer=timer)
    for generation, took in ((0, 0.001), (0, 0.003), (2, 0.150)):
        full.seen("start", {"generation": generation})
        timer.now += took
        full.seen("stop", {"generation": generation})
    assert full.count == [2, 0, 1]
    assert [round(s, 3) for s in full.seconds] == [0.004, 0.0, 0.15]
    assert round(full.longest[0], 3) == 0.003 and round(full.longest[2], 3) == 0.15
    assert full.summary().startswith("young 2 in 0.004 s (longest 3 ms)")
    assert full.summary().endswith("full 1 in 0.150 s (longest 150 ms)")
