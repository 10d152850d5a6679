"""The CTI plan sections on SQLite and PostgreSQL: migration 0008 (up from 0007 with a
plan in place, and down again), loading route points and ports and reading them back
through the snapshot (devices of protocol cti, their DNs routable), idempotency,
updates and pruning, export round trip, and the analyzer naming them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from offhook.config import Settings
from offhook.core.dialplan.model import CtiPort, CtiRoutePoint
from offhook.core.dialplan.router import Outcome
from offhook.core.directory import LineInfo
from offhook.db.analyzer import analyze
from offhook.db.engine import create_engine_for, current_revision, head_revision, upgrade
from offhook.db.plan import PlanError, apply_plan, load_plan, parse_plan, read_plan
from offhook.db.plan_export import export_plan
from offhook.db.snapshot import load_snapshot, plan_version

REALM = "offhook.test"
CTI_TABLES = ("cti_route_points", "cti_ports")

PLAN = """
partitions: [internal]
calling_search_spaces:
  - {name: staff, partitions: [internal]}
devices:
  - {name: alice, protocol: sip, password: alice-Secret-1, css: staff,
     lines: [{dn: "1001", partition: internal}]}
  - {name: bob, protocol: sip, password: bob-Secret-1, css: staff,
     lines: [{dn: "1002", partition: internal}]}
cti_route_points:
  - {name: ivr, dn: "3000", partition: internal, css: staff, timeout: 2.5, default: "1002"}
  - {name: queue, dn: "3001", partition: internal}
cti_ports:
  - {name: port1, dn: "3100", partition: internal, css: staff}
"""


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


def write(tmp_path: Path, text_: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text_)
    return path


def test_upgrade_0007_database_to_cti_devices(db_url: str) -> None:
    """A database of revision 0007 with a device in it: upgraded in place, the CTI
    tables empty; down to 0007 again, the device stays and the tables go."""
    from alembic import command

    from offhook.db.engine import alembic_config

    upgrade(db_url, "0007")
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO devices (name, protocol) VALUES ('alice', 'sip')"))
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0009"
        assert set(CTI_TABLES) <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            for table in CTI_TABLES:
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO cti_ports (name, dn) VALUES ('p', '3100')"))
            conn.execute(text("INSERT INTO cti_route_points (name, dn) VALUES ('r', '3000')"))
        snap = load_snapshot(engine)  # server defaults: "" and 5 s
        assert snap.dialplan_spec.cti_route_points == (CtiRoutePoint("r", "3000"),)
        assert snap.dialplan_spec.cti_ports == (CtiPort("p", "3100"),)
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0007")
        assert current_revision(engine) == "0007"
        assert not set(CTI_TABLES) & set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM devices")).scalars().all() == ["alice"]
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_cti_devices_load_and_read_back(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, PLAN)
    report = load_plan(path, engine, REALM)
    assert report.created == 2 and report.dialplan[0] >= 3
    snap = load_snapshot(engine)
    spec = snap.dialplan_spec
    assert spec.cti_route_points == (
        CtiRoutePoint("ivr", "3000", "internal", "staff", 2.5, "1002"),
        CtiRoutePoint("queue", "3001", "internal", "", 5.0, ""),
    )
    assert spec.cti_ports == (CtiPort("port1", "3100", "internal", "staff"),)
    port = snap.device("port1")
    assert port is not None and port.protocol == "cti" and port.css == "staff"
    assert port.lines == (LineInfo("3100", "", "internal"),)
    decision = snap.dialplan.route("staff", "3000")
    assert decision.outcome is Outcome.DN and decision.dn is not None
    assert decision.dn.devices == ("ivr",)
    assert snap.dialplan.route("staff", "3100").dn.devices == ("port1",)  # type: ignore[union-attr]
    # The loader's own view of the file says the same.
    plan = read_plan(path)
    assert plan.dialplan_spec().cti_route_points == spec.cti_route_points
    want = {d.name: (d.protocol, d.lines, d.css, d.max_calls) for d in plan.device_infos()}
    got = {n: (d.protocol, d.lines, d.css, d.max_calls) for n, d in snap.devices.items()}
    assert got == want

    again = load_plan(path, engine, REALM)
    assert not again.changed and again.version == report.version


def test_cti_devices_update_and_prune(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    before = plan_version(engine)
    changed = (
        PLAN.replace("timeout: 2.5", "timeout: 9")
        .replace('  - {name: queue, dn: "3001", partition: internal}\n', "")
        .replace('{name: port1, dn: "3100"', '{name: port1, dn: "3101"')
    )
    report = load_plan(write(tmp_path, changed, "changed.yaml"), engine, REALM)
    assert report.dialplan[1] == 2 and report.dialplan[3] == 1  # updated, deleted
    assert plan_version(engine) == before + 1
    snap = load_snapshot(engine)
    assert [(r.name, r.timeout) for r in snap.dialplan_spec.cti_route_points] == [("ivr", 9.0)]
    assert snap.dialplan_spec.cti_ports[0].dn == "3101"
    assert snap.device("queue") is None
    assert snap.dialplan.route("staff", "3001").outcome is Outcome.UNKNOWN


def test_a_refused_cti_plan_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    before = plan_version(engine)
    clash = PLAN.replace('dn: "3100"', 'dn: "1001"')
    with pytest.raises(PlanError, match=r"cti_ports\[0\] \(port1\)\.dn: '1001' in partition"):
        load_plan(write(tmp_path, clash, "clash.yaml"), engine, REALM)
    assert plan_version(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT dn FROM cti_ports")).scalars().all() == ["3100"]


def test_export_round_trip(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    data = export_plan(engine)
    assert data["cti_route_points"] == [
        {
            "name": "ivr",
            "dn": "3000",
            "partition": "internal",
            "css": "staff",
            "timeout": 2.5,
            "default": "1002",
        },
        {"name": "queue", "dn": "3001", "partition": "internal"},
    ]
    assert data["cti_ports"] == [
        {"name": "port1", "dn": "3100", "partition": "internal", "css": "staff"}
    ]
    version = plan_version(engine)
    plan = parse_plan(data, "export")
    report = apply_plan(engine, plan, REALM, keep_passwords=True)
    assert not report.changed and plan_version(engine) == version


def test_the_analyzer_names_cti_devices(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    snap = load_snapshot(engine)
    codes = Settings().features.codes()
    text_ = analyze(snap, "alice", "3000", codes).as_text()
    assert "CTI route point ivr" in text_
    assert "waits 2.5 s for an application, then goes to 1002" in text_
    assert "the caller gets busy" in analyze(snap, "alice", "3001", codes).as_text()
    port = analyze(snap, "alice", "3100", codes)
    assert "CTI port port1" in port.as_text()
    assert port.as_json()["cti"] == {"kind": "port", "name": "port1"}
    rp = analyze(snap, "alice", "3000", codes).as_json()["cti"]
    assert rp == {"kind": "route_point", "name": "ivr", "timeout": 2.5, "default": "1002"}
    assert analyze(snap, "alice", "1002", codes).as_json()["cti"] is None
    # A port dials with its CSS.
    assert analyze(snap, "port1", "1002", codes).as_json()["outcome"] == "dn"
