"""Plan import on SQLite and PostgreSQL: idempotency, updates, pruning, atomicity, snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from offhook.config import load_settings
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.models import Device, Line
from offhook.db.plan import PlanError, ensure_demo_plan, load_plan
from offhook.db.plan_apply import apply_plan, ha1
from offhook.db.plan_spec import DeviceSpec, PlanSpec
from offhook.db.snapshot import load_snapshot, plan_version

REALM = "offhook.test"


def device(name: str, dn: str, password: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "sip",
        "password": password or f"{name}-Secret-1",
        "lines": [{"dn": dn, "display": name.capitalize()}],
        **extra,
    }


PLAN = {
    "partitions": ["p1"],
    "calling_search_spaces": [{"name": "internal", "partitions": ["p1"]}],
    "devices": [
        device("alice", "1001"),
        device("bob", "1002"),
        {
            "name": "carol",
            "protocol": "sip",
            "password": "carol-pw",
            "css": "internal",
            "max_calls": 2,
            "lines": [
                {"dn": "1003", "display": "Carol"},
                {"dn": "1010", "display": "Support", "partition": "p1"},
            ],
        },
        {
            "name": "SEP001122334455",
            "protocol": "sccp",
            "model": "7960",
            "lines": [{"dn": "1010"}],
        },
    ],
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine_for(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def write(tmp_path: Path, data: Any, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def rows(engine: Engine) -> dict[str, tuple[Any, ...]]:
    with Session(engine) as s:
        out = {}
        for d in s.scalars(select(Device)).all():
            lines = tuple((ln.position, ln.dn, ln.display, ln.partition) for ln in d.lines)
            out[d.name] = (d.protocol, d.css, d.realm, d.ha1_md5, d.ha1_sha256, d.max_calls, lines)
        return out


def test_import_and_idempotency(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, PLAN)
    r1 = load_plan(path, engine, REALM)
    assert (r1.created, r1.updated, r1.unchanged, r1.deleted) == (4, 0, 0, 0)
    assert r1.version == 1 and plan_version(engine) == 1
    before = rows(engine)
    r2 = load_plan(path, engine, REALM)
    assert (r2.created, r2.updated, r2.unchanged, r2.deleted) == (0, 0, 4, 0)
    assert not r2.changed
    assert r2.version == 1 and plan_version(engine) == 1
    assert rows(engine) == before

    alice = before["alice"]
    assert alice[2] == REALM
    assert alice[3] == ha1("md5", "alice", REALM, "alice-Secret-1")
    assert alice[4] == ha1("sha256", "alice", REALM, "alice-Secret-1")
    assert before["SEP001122334455"][3:5] == ("", "")


def test_no_clear_password_stored(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    with engine.connect() as conn:
        for table in ("devices", "lines", "plan_meta"):
            dump = repr(conn.exec_driver_sql(f"SELECT * FROM {table}").all())
            assert "alice-Secret-1" not in dump


def test_changed_plan_updates(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    ids = _ids(engine)
    changed = yaml.safe_load(yaml.safe_dump(PLAN))
    changed["devices"][0]["password"] = "new-password"  # alice: new HA1
    changed["devices"][1]["lines"].append({"dn": "2002", "display": "Bob 2"})  # bob: +line
    changed["devices"][2]["lines"] = [{"dn": "1003", "display": "Carol W"}]  # carol: -line
    r = load_plan(write(tmp_path, changed, "p2.yaml"), engine, REALM)
    assert (r.created, r.updated, r.unchanged, r.deleted) == (0, 3, 1, 0)
    assert r.version == 2
    now = rows(engine)
    assert now["alice"][3] == ha1("md5", "alice", REALM, "new-password")
    assert [ln[1] for ln in now["bob"][6]] == ["1002", "2002"]
    assert now["carol"][6] == ((0, "1003", "Carol W", ""),)
    assert _ids(engine) == ids  # updated in place, not recreated
    # The same changed plan again: nothing to do.
    r = load_plan(write(tmp_path, changed, "p3.yaml"), engine, REALM)
    assert not r.changed and r.version == 2


def _ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {name: i for name, i in conn.execute(select(Device.name, Device.id))}


def test_realm_change_updates_ha1(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, PLAN)
    load_plan(path, engine, REALM)
    r = load_plan(path, engine, "other.realm")
    assert r.updated == 3 and r.unchanged == 1  # the sccp device has no secret


def test_prune_and_no_prune(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    small = {**PLAN, "devices": [device("alice", "1001")]}
    r = load_plan(write(tmp_path, small, "small.yaml"), engine, REALM, prune=False)
    assert (r.unchanged, r.deleted) == (1, 0) and not r.changed
    r = load_plan(write(tmp_path, small, "small.yaml"), engine, REALM)
    assert (r.unchanged, r.deleted) == (1, 3) and r.version == 2
    assert set(rows(engine)) == {"alice"}
    with engine.connect() as conn:
        assert conn.execute(select(Line.dn)).scalars().all() == ["1001"]
    r = load_plan(write(tmp_path, {"devices": []}, "empty.yaml"), engine, REALM)
    assert r.deleted == 1 and rows(engine) == {}


def test_invalid_plan_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    before = rows(engine)
    bad = yaml.safe_load(yaml.safe_dump(PLAN))
    bad["devices"][0]["password"] = "changed"
    bad["devices"].append(device("dave", "1004"))
    bad["devices"][1]["lines"][0]["dn"] = "12x"
    path = write(tmp_path, bad, "bad.yaml")
    with pytest.raises(PlanError) as info:
        load_plan(path, engine, REALM)
    assert str(info.value) == f"{path}: devices[1] (bob).lines[0].dn: " + (
        "'12x' is not a directory number (1-32 of 0-9 * # +)"
    )
    assert rows(engine) == before
    assert plan_version(engine) == 1


def test_failure_mid_import_rolls_back(engine: Engine, tmp_path: Path) -> None:
    """A database error half-way leaves the previous plan intact (one transaction)."""
    load_plan(write(tmp_path, PLAN), engine, REALM)
    before = rows(engine)
    changed = yaml.safe_load(yaml.safe_dump(PLAN))
    changed["devices"][0]["password"] = "changed"  # an update before the failure
    plan = PlanSpec.model_validate(changed)
    # Bypass validation: the same new device twice violates uq_devices_name.
    zed = DeviceSpec.model_validate({"name": "zed", "protocol": "sccp"})
    plan = plan.model_copy(update={"devices": [*plan.devices, zed, zed]})
    with pytest.raises(IntegrityError):
        apply_plan(engine, plan, REALM)
    assert rows(engine) == before
    assert plan_version(engine) == 1


def test_snapshot(engine: Engine, tmp_path: Path) -> None:
    empty = load_snapshot(engine)
    assert empty.version == 0 and empty.devices == {}
    load_plan(write(tmp_path, PLAN), engine, REALM)
    snap = load_snapshot(engine)
    assert snap.version == 1
    alice = snap.device("alice")
    assert alice is not None
    assert alice.protocol == "sip" and alice.realm == REALM
    assert alice.ha1_md5 == ha1("md5", "alice", REALM, "alice-Secret-1")
    assert alice.ha1_sha256 == ha1("sha256", "alice", REALM, "alice-Secret-1")
    assert alice.lines[0].dn == "1001" and alice.display == "Alice"
    carol = snap.device("carol")
    assert carol is not None
    assert carol.css == "internal" and carol.max_calls == 2
    assert [ln.dn for ln in carol.lines] == ["1003", "1010"]
    assert carol.lines[1].partition == "p1"
    shared = snap.lookup_dn("1010")
    assert shared is not None
    assert set(shared.devices) == {"carol", "SEP001122334455"}
    assert snap.device_for_user("1002") == snap.device("bob")
    assert snap.lookup_dn("9999") is None


def test_ensure_demo_plan(db_url: str, tmp_path: Path) -> None:
    settings = load_settings(None, env={"OFFHOOK_DATABASE__URL": db_url})
    assert ensure_demo_plan(settings) is True
    assert ensure_demo_plan(settings) is False  # already has a plan
    engine = create_engine_for(db_url)
    try:
        snap = load_snapshot(engine)
        assert {"alice", "bob", "carol"} <= set(snap.devices)
        assert snap.device("alice") is not None
        assert snap.devices["alice"].realm == settings.sip.realm
        # Emptied on purpose: the demo is not forced back.
        load_plan(write(tmp_path, {"devices": []}), engine, settings.sip.realm)
        assert ensure_demo_plan(settings) is False
        assert load_snapshot(engine).devices == {}
    finally:
        engine.dispose()
