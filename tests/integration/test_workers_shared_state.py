"""Two workers' call engines share busy lamps and coverage settings over the real bus.

Each worker is what ``app.run`` wires for it: a real ``CallEngine`` on the
plan, its settings writer on the database (behind ``unless_adopted``), and
its ``WorkerContext`` on a real Unix-datagram bus. Forward all, do not
disturb, hunt login and message waiting set on one worker hold on the other
(routing, lamps and NOTIFYs read them there) and are stored once; a line
busy with a call on one worker lights its lamp on the other; a worker that
starts again gets the others' settings and lamps, and what its predecessor
had shared is forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from offhook.common.clock import FakeClock
from offhook.common.location import MemoryLocationStore
from offhook.core.bus import EventBus
from offhook.core.directory import Forward, PlanSnapshot
from offhook.core.engine import CallEngine
from offhook.core.features.linestate import IDLE, RINGING
from offhook.core.features.state import Mwi
from offhook.core.records import LegStateChanged, LineStateChanged, MwiChanged
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.feature_state import FEATURE_EVENTS, FeatureSettingsWriter
from offhook.db.plan import load_plan
from offhook.db.snapshot import load_snapshot
from offhook.sip.aio import SipTransport
from offhook.workers.context import WorkerContext

PLAN = """
partitions: [internal]
calling_search_spaces: [{name: staff, partitions: [internal]}]
devices:
  - {name: alice, protocol: sip, password: alice-Secret-1, css: staff,
     lines: [{dn: "1001", partition: internal}]}
  - {name: bob, protocol: sip, password: bob-Secret-2, css: staff,
     lines: [{dn: "1002", partition: internal}]}
"""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'offhook.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    (tmp_path / "plan.yaml").write_text(PLAN)
    load_plan(tmp_path / "plan.yaml", engine, "realm")
    yield engine
    engine.dispose()


class Worker:
    def __init__(self, index: int, bus_dir: str, db: Engine, plan: PlanSnapshot) -> None:
        self.bus = EventBus()
        self.calls = CallEngine(lambda: plan, MemoryLocationStore(), FakeClock(), self.bus)
        self.context = WorkerContext(index, 2, bus_dir)
        self.writer = FeatureSettingsWriter(db)
        record = self.context.unless_adopted(self.writer.record)
        for kind in FEATURE_EVENTS:
            self.bus.subscribe(kind, record)
        self.lamps: list[tuple[str, str, tuple[str, ...]]] = []
        self.bus.subscribe(
            LineStateChanged, lambda e: self.lamps.append((e.dn, e.state, e.devices))
        )
        self.mwi: list[MwiChanged] = []
        self.bus.subscribe(MwiChanged, self.mwi.append)
        self.transport: SipTransport | None = None

    async def start(self) -> None:
        self.transport = SipTransport(on_message=lambda m, a, t: None, allow=lambda h: True)
        self.context.share_state(self.calls, self.bus)
        await self.context.attach(self.transport)

    async def stop(self) -> None:
        self.context.close()
        if self.transport is not None:
            await self.transport.close()

    def ring(self, leg_id: str, old: str, new: str) -> None:
        self.bus.publish(
            LegStateChanged("c1", leg_id, "bob", "outbound", old, new, None, "1002", "internal")
        )


async def until(what: str, check: Callable[[], Any]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def test_settings_and_lamps_hold_on_every_worker(db: Engine, tmp_path: Path) -> None:
    plan = load_snapshot(db)

    async def scenario() -> None:
        w0, w1 = Worker(0, str(tmp_path), db, plan), Worker(1, str(tmp_path), db, plan)
        await w0.start()
        await w1.start()
        replacement: Worker | None = None
        try:
            # Coverage set on worker 1 holds on worker 0, and is stored once (by worker 1).
            assert w1.calls.set_forward_all("bob", "1002", "1001") is None
            assert w1.calls.set_dnd("alice", True)
            forwards = w0.calls.forward_all_of
            await until("worker 0 forwards bob", lambda: forwards("1002", "internal"))
            assert w0.calls.forward_all_of("1002", "internal") == Forward("1001")
            await until("worker 0 has alice on DND", lambda: w0.calls.dnd("alice"))
            assert (w0.writer.pending, w1.writer.pending) == (0, 2)
            # Message waiting set on worker 0 (a voicemail NOTIFY): published on worker 1.
            assert w0.calls.set_mwi("1001", True, 2, 5)
            await until("worker 1 lights alice's lamp", lambda: w1.mwi)
            assert w1.calls.messages("1001", "internal") == Mwi(True, 2, 5)
            assert w1.context.counters["settings_adopted"] == 1
            assert w0.context.counters["settings_adopted"] == 2
            # Setting what already holds sends nothing new, and nothing bounces back.
            assert w0.calls.set_mwi("1001", True, 2, 5)
            await asyncio.sleep(0.1)
            assert len(w1.mwi) == 1 and w1.context.counters["settings_sent"] == 2

            # bob's line rings on worker 1: worker 0's lamp follows, then goes out.
            w1.ring("b1", "idle", "offered")
            await until("worker 0 shows bob ringing", lambda: w0.lamps)
            assert w0.lamps == [("1002", RINGING, ("bob",))]
            assert w0.calls.lines.view("1002", "internal").state == RINGING
            w1.ring("b1", "offered", "released")
            await until("worker 0's lamp out", lambda: len(w0.lamps) == 2)
            assert w0.lamps[-1] == ("1002", IDLE, ())

            # bob rings again on worker 1, which then dies mid-call; its replacement
            # starts empty: worker 0 forgets the lamp and gives it the settings.
            w1.ring("b2", "idle", "offered")
            await until("worker 0 shows bob ringing", lambda: len(w0.lamps) == 3)
            await w1.stop()
            replacement = Worker(1, str(tmp_path), db, plan)
            await replacement.start()
            await until("the lamp forgotten", lambda: len(w0.lamps) == 4)
            assert w0.lamps[-1] == ("1002", IDLE, ())
            calls = replacement.calls
            await until("the replacement has the settings", lambda: calls.dnd("alice"))
            await until("and the forward", lambda: calls.forward_all_of("1002", "internal"))
            await until("and the MWI", lambda: calls.messages("1001", "internal").waiting)
            assert replacement.writer.pending == 0
        finally:
            for worker in (w0, w1, replacement):
                if worker is not None:
                    await worker.stop()

    asyncio.run(asyncio.wait_for(scenario(), 30))
