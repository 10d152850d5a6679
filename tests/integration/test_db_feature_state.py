"""Run-time coverage settings in the database (SQLite and PostgreSQL): what phones set
(forward all, do not disturb, hunt group login) and message waiting is stored off
the call path and given back at start, so that a restarted node has them again."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from offhook.common.clock import FakeClock
from offhook.common.location import MemoryLocationStore
from offhook.core.bus import EventBus
from offhook.core.directory import Forward, PlanSnapshot
from offhook.core.engine import CallEngine
from offhook.core.features.state import Mwi
from offhook.core.records import DndChanged, ForwardChanged, HuntLoginChanged, MwiChanged
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.feature_state import (
    FEATURE_EVENTS,
    FeatureSettingsWriter,
    load_feature_events,
    save_feature_events,
)
from offhook.db.plan import load_plan
from offhook.db.snapshot import load_snapshot

PLAN = """
partitions: [internal]
calling_search_spaces: [{name: staff, partitions: [internal]}]
devices:
  - name: alice
    protocol: sip
    password: alice-Secret-1
    css: staff
    lines:
      - {dn: "1001", partition: internal, forward_all: {destination: "1003"}}
  - name: bob
    protocol: sip
    password: bob-Secret-2
    css: staff
    lines: [{dn: "1002", partition: internal}]
  - name: carol
    protocol: sip
    password: carol-Secret-3
    css: staff
    lines: [{dn: "1003", partition: internal}]
"""


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


def rows(engine: Engine) -> list[tuple[str, str, str, str]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT kind, device, dn, partition FROM feature_settings ORDER BY id")
            )
        ]


def test_save_and_load_round_trip(engine: Engine) -> None:
    events = [
        ForwardChanged("1001", "internal", "1003", "alice"),
        ForwardChanged("1002", "internal", "", "bob"),  # off, overriding the plan
        DndChanged("bob", True),
        HuntLoginChanged("carol", False),
        MwiChanged("1002", "internal", True, 3, 1),
        MwiChanged("+49 30 ☎", "", True),  # any text is a bound parameter
    ]
    assert save_feature_events(engine, events) == len(events)
    assert load_feature_events(engine) == events
    # Again: one row per key, the latest value.
    save_feature_events(engine, [ForwardChanged("1001", "internal", "1002", "bob")])
    loaded = load_feature_events(engine)
    assert len(loaded) == len(events)
    assert ForwardChanged("1001", "internal", "1002", "bob") in loaded
    assert ForwardChanged("1001", "internal", "1003", "alice") not in loaded


def test_defaults_remove_the_row(engine: Engine) -> None:
    save_feature_events(
        engine,
        [
            ForwardChanged("1001", "internal", "1003", "alice"),
            DndChanged("bob", True),
            HuntLoginChanged("carol", False),
            MwiChanged("1002", "internal", True, 1, 0),
        ],
    )
    assert len(rows(engine)) == 4
    save_feature_events(
        engine,
        [
            ForwardChanged("1001", "internal", None, "alice"),  # back to the plan
            DndChanged("bob", False),
            HuntLoginChanged("carol", True),
            MwiChanged("1002", "internal", False, 0, 0),
        ],
    )
    assert rows(engine) == []
    assert load_feature_events(engine) == []
    # Message counts without the lamp still count as something to keep.
    save_feature_events(engine, [MwiChanged("1002", "internal", False, 0, 2)])
    assert load_feature_events(engine) == [MwiChanged("1002", "internal", False, 0, 2)]


def test_load_keeps_only_what_the_plan_has(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    load_plan(tmp_path / "plan.yaml", engine, "realm")
    plan = load_snapshot(engine)
    kept = [
        ForwardChanged("1001", "internal", "1002", "alice"),
        DndChanged("bob", True),
        MwiChanged("1003", "internal", True, 1, 0),
    ]
    gone = [
        ForwardChanged("1001", "", "1002", "alice"),  # not in that partition
        ForwardChanged("4711", "internal", "1002", "ghost"),
        DndChanged("ghost", True),
        HuntLoginChanged("ghost", False),
        MwiChanged("4711", "internal", True, 1, 0),
    ]
    save_feature_events(engine, kept + gone)
    assert load_feature_events(engine, plan) == kept
    assert len(load_feature_events(engine)) == len(kept + gone)  # still stored


def test_a_row_that_is_no_setting_is_skipped(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    save_feature_events(engine, [DndChanged("bob", True)])
    with engine.begin() as conn:
        for kind, value in [
            ("dnd", '{"on": "yes"}'),
            ("mwi", '{"waiting": true, "new": -1, "old": 0}'),
            ("forward", '{"destination": 1003}'),
            ("forward", "[1, 2]"),
            ("teleport", '{"on": true}'),
        ]:
            conn.execute(
                text(
                    "INSERT INTO feature_settings (kind, device, dn, partition, value, updated_at)"
                    " VALUES (:k, :d, '', '', :v, :t)"
                ),
                {"k": kind, "d": f"x-{kind}-{len(value)}", "v": value, "t": "2026-01-01 00:00:00"},
            )
    with caplog.at_level(logging.WARNING, logger="offhook.db"):
        assert load_feature_events(engine) == [DndChanged("bob", True)]
    assert caplog.text.count("skipped") == 5


def test_writer_keeps_the_latest_per_key_in_order(engine: Engine) -> None:
    writer = FeatureSettingsWriter(engine)
    assert writer.flush() == 0
    writer.record(DndChanged("bob", True))
    writer.record(ForwardChanged("1001", "internal", "1002", "alice"))
    writer.record(DndChanged("bob", False))
    writer.record(DndChanged("bob", True))
    writer.record(HuntLoginChanged("carol", False))
    assert writer.pending == 3
    assert writer.flush() == 3 and writer.pending == 0 and writer.written == 3
    assert load_feature_events(engine) == [
        ForwardChanged("1001", "internal", "1002", "alice"),
        DndChanged("bob", True),
        HuntLoginChanged("carol", False),
    ]
    assert writer.flush() == 0


def test_failed_write_is_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"
    engine = create_engine_for(url)
    try:
        writer = FeatureSettingsWriter(engine)
        writer.record(DndChanged("bob", True))
        writer.record(ForwardChanged("1001", "internal", "1002", "alice"))
        with caplog.at_level(logging.ERROR, logger="offhook.db"):
            assert writer.flush() == 0  # no schema yet
        assert "storing 2 feature settings failed" in caplog.text
        assert writer.pending == 2
        # A newer setting for the same key, recorded while the write failed, wins.
        writer.record(ForwardChanged("1001", "internal", "1003", "alice"))
        writer.flush()
        upgrade(engine)
        assert writer.flush() == 2 and writer.pending == 0
        assert load_feature_events(engine) == [
            DndChanged("bob", True),
            ForwardChanged("1001", "internal", "1003", "alice"),
        ]
    finally:
        engine.dispose()


def node(engine: Engine, plan: PlanSnapshot) -> tuple[CallEngine, FeatureSettingsWriter]:
    """What app.run wires: a call engine whose coverage changes reach the database,
    and the stored settings restored before anything else happens."""
    bus = EventBus()
    calls = CallEngine(lambda: plan, MemoryLocationStore(), FakeClock(), bus, node="n")
    writer = FeatureSettingsWriter(engine)
    for kind in FEATURE_EVENTS:
        bus.subscribe(kind, writer.record)
    calls.features.restore(load_feature_events(engine, plan))
    return calls, writer


def test_settings_survive_a_restart(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    load_plan(tmp_path / "plan.yaml", engine, "realm")
    plan = load_snapshot(engine)

    first, writer = node(engine, plan)
    assert first.forward_all_of("1001", "internal") == Forward("1003")  # the plan's
    assert first.set_forward_all("bob", "1002", "1003") is None
    assert first.set_forward_all("alice", "1001", "") is None  # off, overriding the plan
    assert first.set_dnd("carol", True)
    assert first.set_hunt_login("bob", False)
    assert first.set_mwi("1003", True, 2, 5)
    assert rows(engine) == []  # nothing written on the call path
    assert writer.flush() == 5

    second, writer2 = node(engine, plan)
    assert second.forward_all_of("1002", "internal") == Forward("1003")
    assert second.forward_all_of("1001", "internal") is None
    assert second.dnd("carol") and not second.dnd("bob")
    assert not second.hunt_logged_in("bob") and second.hunt_logged_in("carol")
    assert second.messages("1003", "internal") == Mwi(True, 2, 5)
    assert writer2.pending == 0  # restoring publishes nothing

    # Back to the defaults on the restarted node, then a third start.
    assert second.set_forward_all("bob", "1002", None) is None
    assert second.set_forward_all("alice", "1001", None) is None
    assert second.set_dnd("carol", False)
    assert second.set_hunt_login("bob", True)
    assert second.set_mwi("1003", False)
    writer2.flush()
    assert rows(engine) == []
    third, _ = node(engine, plan)
    assert third.forward_all_of("1001", "internal") == Forward("1003")
    assert third.forward_all_of("1002", "internal") is None
    assert not third.dnd("carol") and third.hunt_logged_in("bob")
    assert third.messages("1003", "internal") == Mwi()
