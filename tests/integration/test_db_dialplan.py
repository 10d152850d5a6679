"""Dial plan import on SQLite and PostgreSQL: tables, idempotency, updates,
pruning, refusals that import nothing, and the snapshot's DialPlanSpec."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DirectoryNumber,
    Distribution,
    Presentation,
    RouteList,
    Transform,
)
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.models import RoutePatternRow, TrunkRow
from offhook.db.plan import PlanError, load_plan
from offhook.db.snapshot import load_snapshot, plan_version

REALM = "offhook.test"
FULL = Path(__file__).resolve().parents[1] / "unit" / "db" / "full_plan.yaml"
TABLES = (
    "partitions",
    "calling_search_spaces",
    "css_members",
    "trunks",
    "route_groups",
    "route_group_members",
    "route_lists",
    "route_list_members",
    "route_patterns",
    "translation_patterns",
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine_for(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def full() -> dict[str, Any]:
    data = yaml.safe_load(FULL.read_text())
    assert isinstance(data, dict)
    return data


def write(tmp_path: Path, data: Any, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            t: sorted(tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {t}").all())
            for t in (*TABLES, "devices", "lines")
        }


def test_import_full_plan_and_idempotency(engine: Engine, tmp_path: Path) -> None:
    r1 = load_plan(FULL, engine, REALM)
    assert (r1.created, r1.dialplan) == (4, (12, 0, 0, 0))
    assert r1.version == 1 and plan_version(engine) == 1
    assert "dial plan entries: 12 created" in str(r1)
    before = dump(engine)
    assert len(before["partitions"]) == 2 and len(before["css_members"]) == 4
    assert len(before["route_group_members"]) == 2 and len(before["route_patterns"]) == 2
    r2 = load_plan(FULL, engine, REALM)
    assert not r2.changed and r2.dialplan == (0, 0, 12, 0)
    assert r2.version == 1 and plan_version(engine) == 1
    assert dump(engine) == before


def test_trunk_password_stored_as_given(engine: Engine) -> None:
    load_plan(FULL, engine, REALM)
    with engine.connect() as conn:
        row = conn.execute(select(TrunkRow).where(TrunkRow.name == "carrier")).one()
    assert row.password == "carrier-Secret" and row.register is True
    assert row.inbound_addresses == ["127.0.0.1/32"] and row.options_ping == 30.0


def test_changed_pattern_updates(engine: Engine, tmp_path: Path) -> None:
    load_plan(FULL, engine, REALM)
    with engine.connect() as conn:
        ids = dict(conn.execute(select(RoutePatternRow.pattern, RoutePatternRow.id)).all())
    data = full()
    data["route_patterns"][0]["called_transform"] = {"discard": "pre-dot"}
    data["route_patterns"][1]["block_cause"] = 1
    r = load_plan(write(tmp_path, data), engine, REALM)
    assert r.dialplan == (0, 2, 10, 0) and r.version == 2
    with engine.connect() as conn:
        rows = {p.pattern: p for p in conn.execute(select(RoutePatternRow)).all()}
    assert rows["9.1[2-9]XX[2-9]XXXXXX"].called_transform == {"discard": "pre-dot"}
    assert rows["9.1900XXXXXXX"].block_cause == 1
    assert {p: row.id for p, row in rows.items()} == ids  # updated in place
    snap = load_snapshot(engine)
    assert snap.version == 2
    assert snap.dialplan.route("staff", "914155550100").called == "14155550100"


def test_reordered_members_and_pattern_key_change(engine: Engine, tmp_path: Path) -> None:
    load_plan(FULL, engine, REALM)
    data = full()
    data["route_groups"][0]["members"].reverse()
    data["route_groups"][0]["distribution"] = "circular"
    data["calling_search_spaces"][0]["partitions"] = ["pstn", "internal"]
    data["route_patterns"][1]["pattern"] = "9.1976XXXXXXX"  # a new key: one created, one deleted
    r = load_plan(write(tmp_path, data), engine, REALM)
    assert r.dialplan == (1, 2, 9, 1) and r.version == 2
    spec = load_snapshot(engine).dialplan_spec
    group = spec.route_groups[0]
    assert [m.trunk for m in group.members] == ["backup", "carrier"]
    assert group.distribution is Distribution.CIRCULAR
    css = {c.name: c for c in spec.calling_search_spaces}
    assert css["staff"] == CallingSearchSpace("staff", ("pstn", "internal"))
    assert {p.pattern for p in spec.route_patterns} == {"9.1[2-9]XX[2-9]XXXXXX", "9.1976XXXXXXX"}
    assert not load_plan(write(tmp_path, data), engine, REALM).changed


def test_prune_and_no_prune(engine: Engine, tmp_path: Path) -> None:
    load_plan(FULL, engine, REALM)
    devices_only = {"devices": full()["devices"][3:]}  # the sccp phone, no partition
    r = load_plan(write(tmp_path, devices_only), engine, REALM, prune=False)
    assert not r.changed and r.dialplan == (0, 0, 0, 0)
    assert len(load_snapshot(engine).dialplan_spec.route_patterns) == 2
    r = load_plan(write(tmp_path, devices_only), engine, REALM)
    assert r.dialplan == (0, 0, 0, 12) and r.deleted == 3 and r.version == 2
    assert all(not rows for t, rows in dump(engine).items() if t in TABLES)


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (
            ("route_patterns", 0, "route_list"),
            "nolist",
            "route_patterns[0] (9.1[2-9]XX[2-9]XXXXXX).route_list",
        ),
        (
            ("route_patterns", 1, "pattern"),
            "9.1900[XXXXXXX",
            "route_patterns[1] (9.1900[XXXXXXX).pattern",
        ),
        (
            ("route_groups", 0, "members", 0),
            "ghost",
            "route_groups[0] (carriers).members[0] (ghost)",
        ),
        (("devices", 0, "css"), "vip", "devices[0] (alice).css"),
    ],
)
def test_refused_plan_imports_nothing(
    engine: Engine, tmp_path: Path, path: tuple[Any, ...], value: Any, where: str
) -> None:
    data = copy.deepcopy(full())
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    bad = write(tmp_path, data, "bad.yaml")
    # On an empty database: nothing at all.
    with pytest.raises(PlanError) as info:
        load_plan(bad, engine, REALM)
    assert str(info.value).startswith(f"{bad}: {where}: ")
    assert all(not rows for rows in dump(engine).values())
    assert plan_version(engine) == 0
    # Over an existing plan: left as it was.
    load_plan(FULL, engine, REALM)
    before = dump(engine)
    with pytest.raises(PlanError):
        load_plan(bad, engine, REALM)
    assert dump(engine) == before and plan_version(engine) == 1


def test_snapshot_dialplan_spec(engine: Engine) -> None:
    assert load_snapshot(engine).dialplan_spec.partitions == ()
    load_plan(FULL, engine, REALM)
    snap = load_snapshot(engine)
    spec = snap.dialplan_spec
    assert spec.partitions == ("internal", "pstn")
    assert {c.name: c.partitions for c in spec.calling_search_spaces} == {
        "staff": ("internal", "pstn"),
        "lobby": ("internal",),
        "inbound": ("internal",),
    }
    dns = {(d.dn, d.partition): d for d in spec.directory_numbers}
    assert dns[("1010", "internal")] == DirectoryNumber(
        "1010", "internal", ("alice", "bob"), "Support"
    )
    assert dns[("1000", "internal")].devices == ("reception",)
    assert dns[("1099", "")].devices == ("SEP001122334455",)
    trunks = {t.name: t for t in spec.trunks}
    assert trunks["backup"].transport == "tcp" and trunks["backup"].max_calls == 10
    assert trunks["carrier"].username == "acct" and trunks["carrier"].css == "inbound"
    group = spec.route_groups[0]
    assert group.members[1].called_transform == Transform(discard="pre-dot", prefix="00")
    assert spec.route_lists == (RouteList("pstn-out", ("carriers",)),)
    rp = {r.pattern: r for r in spec.route_patterns}
    assert rp["9.1[2-9]XX[2-9]XXXXXX"].route_list == "pstn-out"
    assert rp["9.1[2-9]XX[2-9]XXXXXX"].calling_transform == Transform(mask="5551XXXX")
    assert rp["9.1900XXXXXXX"].block and rp["9.1900XXXXXXX"].block_cause == 21
    tp = spec.translation_patterns[0]
    assert (tp.pattern, tp.partition, tp.css) == ("0", "internal", "staff")
    # The analyzer is built with the snapshot.
    assert snap.dialplan.route("staff", "0").dn == dns[("1000", "internal")]
    assert snap.dialplan.route("lobby", "914155550100").outcome == "unknown"


def test_presentation_round_trip(engine: Engine, tmp_path: Path) -> None:
    data = full()
    data["route_patterns"][0]["calling_transform"] = {"presentation": "restricted", "prefix": "0"}
    load_plan(write(tmp_path, data), engine, REALM)
    spec = load_snapshot(engine).dialplan_spec
    rp = next(r for r in spec.route_patterns if r.route_list)
    assert rp.calling_transform == Transform(prefix="0", presentation=Presentation.RESTRICTED)


def test_member_rows_cascade(engine: Engine) -> None:
    load_plan(FULL, engine, REALM)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM route_groups"))
        conn.execute(text("DELETE FROM calling_search_spaces"))
        assert conn.execute(text("SELECT count(*) FROM route_group_members")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM css_members")).scalar_one() == 0
