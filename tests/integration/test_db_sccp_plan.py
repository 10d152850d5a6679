"""SCCP devices in the database (SQLite and PostgreSQL): migration 0003, model and
speed dials imported idempotently, updated in place, pruned, and in the snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine

from offhook.core.directory import SpeedDial
from offhook.db.engine import (
    alembic_config,
    create_engine_for,
    current_revision,
    head_revision,
    upgrade,
)
from offhook.db.models import Device, SpeedDialRow
from offhook.db.plan import PlanError, load_plan
from offhook.db.snapshot import load_snapshot, plan_version

REALM = "offhook.test"

PLAN: dict[str, Any] = {
    "partitions": ["internal"],
    "calling_search_spaces": [{"name": "staff", "partitions": ["internal"]}],
    "devices": [
        {
            "name": "alice",
            "protocol": "sip",
            "password": "alice-Secret-1",
            "lines": [{"dn": "1001", "partition": "internal", "display": "Alice"}],
        },
        {
            "name": "sep001122334455",  # upper-cased on import
            "protocol": "sccp",
            "model": "7960",
            "css": "staff",
            "lines": [{"dn": "1003", "partition": "internal", "display": "Carol"}],
            "speed_dials": [
                {"number": "1001", "label": "Alice"},
                {"number": "9+14155550100", "label": "Carrier"},
            ],
        },
        {
            "name": "SEP00AABBCCDDEE",
            "protocol": "sccp",
            "model": "7912",
            "lines": [{"dn": "1004", "partition": "internal"}],
        },
    ],
}
SEP = "SEP001122334455"


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


def changed_plan() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(yaml.safe_dump(PLAN))
    return data


def dials(engine: Engine) -> list[tuple[int, str, int, str, str]]:
    """(row id, device, position, number, label) of every speed dial."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                SpeedDialRow.id,
                Device.name,
                SpeedDialRow.position,
                SpeedDialRow.number,
                SpeedDialRow.label,
            )
            .join(Device, Device.id == SpeedDialRow.device_id)
            .order_by(Device.name, SpeedDialRow.position)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def models(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {name: model for name, model in conn.execute(select(Device.name, Device.model))}


def test_migration_0003(db_url: str) -> None:
    """0002 -> 0003 keeps existing devices (model ""); down and up again."""
    engine = create_engine_for(db_url)
    try:
        upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO devices (name, protocol) VALUES ('old', 'sip')"))
        upgrade(engine, "0003")
        assert current_revision(engine) == "0003"
        assert "speed_dials" in inspect(engine).get_table_names()
        assert models(engine) == {"old": ""}
        uniques = {u["name"] for u in inspect(engine).get_unique_constraints("speed_dials")}
        assert "uq_speed_dials_device_position" in uniques
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0002")
        assert current_revision(engine) == "0002"
        assert "speed_dials" not in inspect(engine).get_table_names()
        assert "model" not in {c["name"] for c in inspect(engine).get_columns("devices")}
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_speed_dials_cascade(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO devices (name, protocol) VALUES ('x', 'sccp')"))
        dev_id = conn.execute(text("SELECT id FROM devices WHERE name = 'x'")).scalar_one()
        conn.execute(
            text("INSERT INTO speed_dials (device_id, position, number) VALUES (:d, 0, '1')"),
            {"d": dev_id},
        )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM devices WHERE id = :d"), {"d": dev_id})
        assert conn.execute(text("SELECT count(*) FROM speed_dials")).scalar_one() == 0


def test_import_idempotent(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, PLAN)
    r1 = load_plan(path, engine, REALM)
    assert (r1.created, r1.version) == (3, 1)
    assert models(engine) == {"alice": "", SEP: "7960", "SEP00AABBCCDDEE": "7912"}
    before = dials(engine)
    assert [d[1:] for d in before] == [
        (SEP, 0, "1001", "Alice"),
        (SEP, 1, "9+14155550100", "Carrier"),
    ]
    r2 = load_plan(path, engine, REALM)
    assert (r2.created, r2.updated, r2.unchanged, r2.deleted) == (0, 0, 3, 0)
    assert not r2.changed and plan_version(engine) == 1
    assert dials(engine) == before  # same rows, same ids
    with engine.connect() as conn:
        ha1s = conn.execute(select(Device.ha1_md5).where(Device.name == SEP)).scalar_one()
    assert ha1s == ""


def test_changes_update_in_place(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    before = dials(engine)
    data = changed_plan()
    data["devices"][1]["model"] = "7961"
    data["devices"][1]["speed_dials"] = [
        {"number": "1001", "label": "Alice S"},  # relabelled
        {"number": "9+14155550100", "label": "Carrier"},
        {"number": "1004", "label": "Lobby"},  # added
    ]
    r = load_plan(write(tmp_path, data, "p2.yaml"), engine, REALM)
    assert (r.created, r.updated, r.unchanged, r.deleted) == (0, 1, 2, 0)
    assert r.version == 2
    assert models(engine)[SEP] == "7961"
    now = dials(engine)
    assert [d[1:] for d in now] == [
        (SEP, 0, "1001", "Alice S"),
        (SEP, 1, "9+14155550100", "Carrier"),
        (SEP, 2, "1004", "Lobby"),
    ]
    assert [d[0] for d in now[:2]] == [d[0] for d in before]  # updated, not recreated
    assert not load_plan(write(tmp_path, data, "p3.yaml"), engine, REALM).changed

    # Fewer speed dials: trimmed; a speed dial moved to another position.
    data["devices"][1]["speed_dials"] = [{"number": "1004", "label": "Lobby"}]
    r = load_plan(write(tmp_path, data, "p4.yaml"), engine, REALM)
    assert r.updated == 1 and r.version == 3
    assert [d[1:] for d in dials(engine)] == [(SEP, 0, "1004", "Lobby")]
    # Only a model change is a change too.
    data["devices"][2]["model"] = "7940"
    r = load_plan(write(tmp_path, data, "p5.yaml"), engine, REALM)
    assert (r.updated, r.version) == (1, 4)


def test_prune_removes_speed_dials(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    data = changed_plan()
    del data["devices"][1]
    r = load_plan(write(tmp_path, data, "p2.yaml"), engine, REALM)
    assert r.deleted == 1
    assert dials(engine) == []


def test_bad_sccp_device_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    before = (dials(engine), models(engine))
    data = changed_plan()
    data["devices"][1]["model"] = "7999"
    data["devices"][2]["name"] = "SEP00AABBCC"
    path = write(tmp_path, data, "bad.yaml")
    with pytest.raises(PlanError) as info:
        load_plan(path, engine, REALM)
    text_ = str(info.value).splitlines()
    assert text_[0].startswith(f"{path}: devices[1] (SEP001122334455).model: '7999' is not")
    assert text_[1].startswith(f"{path}: devices[2] (SEP00AABBCC).name: an sccp device is named")
    assert (dials(engine), models(engine)) == before
    assert plan_version(engine) == 1


def test_snapshot_carries_model_and_speed_dials(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    snap = load_snapshot(engine)
    phone = snap.device(SEP)
    assert phone is not None
    assert phone.protocol == "sccp" and phone.model == "7960" and phone.css == "staff"
    assert phone.speed_dials == (SpeedDial("1001", "Alice"), SpeedDial("9+14155550100", "Carrier"))
    assert [ln.dn for ln in phone.lines] == ["1003"]
    other = snap.device("SEP00AABBCCDDEE")
    assert other is not None and other.model == "7912" and other.speed_dials == ()
    alice = snap.device("alice")
    assert alice is not None and alice.model == "" and alice.speed_dials == ()
