"""The media plane's plan keys on SQLite and PostgreSQL: load, read back through the
snapshot unchanged, idempotency, updates, pruning, and refusals that write nothing."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import Engine

from offhook.core.dialplan.model import MeetMe
from offhook.core.dialplan.router import Outcome
from offhook.core.directory import LineInfo
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.plan import PlanError, load_plan, read_plan
from offhook.db.snapshot import load_snapshot, plan_version

REALM = "offhook.test"
MEDIA_TABLES = (
    "moh_sources",
    "meetme_numbers",
    "media_resource_groups",
    "media_resource_group_members",
    "media_resource_lists",
    "media_resource_list_members",
)

PLAN: dict[str, Any] = {
    "partitions": ["internal", "exec"],
    "calling_search_spaces": [
        {"name": "staff", "partitions": ["internal"]},
        {"name": "boss", "partitions": ["exec", "internal"]},
    ],
    "moh_sources": [
        {"name": "default", "file": "moh/default.wav"},
        {"name": "jazz", "file": "jazz.flac"},
    ],
    "meetme": [
        {"number": "5000", "partition": "internal", "pin": "0042", "max_parties": 8},
        {"number": "5000", "partition": "exec"},
        {"number": "+15555550100"},
    ],
    "media_resource_groups": [
        {"name": "local", "servers": ["embedded", "ms2"]},
        {"name": "remote", "servers": ["ms3", "ms2"]},
    ],
    "media_resource_lists": [
        {"name": "standard", "groups": ["local", "remote"]},
        {"name": "far", "groups": ["remote"]},
    ],
    "devices": [
        {
            "name": "alice",
            "protocol": "sip",
            "password": "alice-Secret-1",
            "css": "staff",
            "moh_source": "jazz",
            "media_resource_list": "standard",
            "lines": [
                {"dn": "1001", "partition": "internal", "display": "Alice"},
                {"dn": "1010", "partition": "internal", "moh_source": "default"},
            ],
        },
        {
            "name": "SEP001122334455",
            "protocol": "sccp",
            "model": "7960",
            "css": "boss",
            "media_resource_list": "far",
            "lines": [{"dn": "1010", "partition": "internal", "moh_source": "jazz"}],
        },
        {
            "name": "bob",
            "protocol": "sip",
            "password": "bob-Secret-2",
            "lines": [{"dn": "1002"}],
        },
    ],
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine_for(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def plan_dir(tmp_path: Path) -> Path:
    (tmp_path / "moh").mkdir()
    (tmp_path / "moh" / "default.wav").write_bytes(b"RIFF\0\0\0\0WAVEfmt ")
    (tmp_path / "jazz.flac").write_bytes(b"fLaC")
    return tmp_path


def write(directory: Path, data: Any, name: str = "plan.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in MEDIA_TABLES
        }


def test_load_and_read_back(engine: Engine, plan_dir: Path) -> None:
    path = write(plan_dir, PLAN)
    report = load_plan(path, engine, REALM)
    assert report.version == 1
    snap = load_snapshot(engine)

    assert dict(snap.moh_sources) == {
        "default": str(plan_dir / "moh" / "default.wav"),
        "jazz": str(plan_dir / "jazz.flac"),
    }
    assert dict(snap.media_resource_groups) == {
        "local": ("embedded", "ms2"),
        "remote": ("ms3", "ms2"),
    }
    assert dict(snap.media_resource_lists) == {
        "standard": ("local", "remote"),
        "far": ("remote",),
    }
    alice = snap.devices["alice"]
    assert (alice.moh_source, alice.media_resource_list) == ("jazz", "standard")
    assert alice.lines == (
        LineInfo("1001", "Alice", "internal", ""),
        LineInfo("1010", "", "internal", "default"),
    )
    phone = snap.devices["SEP001122334455"]
    assert phone.lines[0].moh_source == "jazz" and phone.media_resource_list == "far"
    assert snap.devices["bob"].moh_source == "" and snap.devices["bob"].lines[0].moh_source == ""

    assert snap.moh_source_for("alice", "1001") == "jazz"
    assert snap.moh_source_for("alice", "1010") == "default"
    assert snap.moh_source_for("SEP001122334455", "1010") == "jazz"
    assert snap.moh_source_for("bob", "1002") == "default"
    assert snap.media_servers_for("alice") == ("embedded", "ms2", "ms3")
    assert snap.media_servers_for("SEP001122334455") == ("ms3", "ms2")
    assert snap.media_servers_for("bob") == ("embedded",)

    assert set(snap.dialplan_spec.meetme) == {
        MeetMe("5000", "internal", "0042", 8),
        MeetMe("5000", "exec", "", 32),
        MeetMe("+15555550100", "", "", 32),
    }
    d = snap.dialplan.route("staff", "5000")
    assert d.outcome is Outcome.MEETME and d.meetme == MeetMe("5000", "internal", "0042", 8)
    assert snap.dialplan.route("boss", "5000").meetme == MeetMe("5000", "exec")
    assert snap.dialplan.route("", "+15555550100").outcome is Outcome.MEETME
    assert snap.dialplan.route("", "5000").outcome is Outcome.UNKNOWN

    # The snapshot says what the plan file says (the loader's own view of it).
    plan = read_plan(path)
    assert [(m.name, m.file) for m in plan.moh_sources] == sorted(snap.moh_sources.items())
    assert sorted(plan.dialplan_spec().meetme, key=repr) == sorted(
        snap.dialplan_spec.meetme, key=repr
    )
    for dev in plan.device_infos():
        got = snap.devices[dev.name]
        assert (got.lines, got.moh_source, got.media_resource_list) == (
            dev.lines,
            dev.moh_source,
            dev.media_resource_list,
        )


def test_idempotent(engine: Engine, plan_dir: Path) -> None:
    path = write(plan_dir, PLAN)
    load_plan(path, engine, REALM)
    before = counts(engine)
    assert before == {
        "moh_sources": 2,
        "meetme_numbers": 3,
        "media_resource_groups": 2,
        "media_resource_group_members": 4,
        "media_resource_lists": 2,
        "media_resource_list_members": 3,
    }
    again = load_plan(path, engine, REALM)
    assert not again.changed and again.version == 1 and plan_version(engine) == 1
    assert counts(engine) == before


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["meetme"][0].update(pin="9999"),
        lambda d: d["meetme"][1].update(max_parties=3),
        lambda d: d["moh_sources"][1].update(file="moh/default.wav"),
        lambda d: d["media_resource_groups"][1]["servers"].reverse(),
        lambda d: d["media_resource_lists"][0]["groups"].reverse(),
        lambda d: d["devices"][0].update(moh_source="default"),
        lambda d: d["devices"][0].update(media_resource_list="far"),
        lambda d: d["devices"][0]["lines"][1].update(moh_source="jazz"),
        lambda d: d["devices"][2]["lines"][0].update(moh_source="jazz"),
    ],
)
def test_a_change_updates(engine: Engine, plan_dir: Path, change: Any) -> None:
    load_plan(write(plan_dir, PLAN), engine, REALM)
    before = load_snapshot(engine)
    data = copy.deepcopy(PLAN)
    change(data)
    report = load_plan(write(plan_dir, data), engine, REALM)
    assert report.changed and report.version == 2
    after = load_snapshot(engine)
    assert after != before
    plan = read_plan(plan_dir / "plan.yaml")
    assert [(m.name, m.file) for m in plan.moh_sources] == sorted(after.moh_sources.items())
    assert dict(after.media_resource_groups) == {
        g.name: tuple(g.servers) for g in plan.media_resource_groups
    }
    assert dict(after.media_resource_lists) == {
        r.name: tuple(r.groups) for r in plan.media_resource_lists
    }
    assert set(after.dialplan_spec.meetme) == set(plan.dialplan_spec().meetme)
    for dev in plan.device_infos():
        got = after.devices[dev.name]
        assert (got.lines, got.moh_source, got.media_resource_list) == (
            dev.lines,
            dev.moh_source,
            dev.media_resource_list,
        )
    assert not load_plan(plan_dir / "plan.yaml", engine, REALM).changed


def test_prune_and_no_prune(engine: Engine, plan_dir: Path) -> None:
    load_plan(write(plan_dir, PLAN), engine, REALM)
    devices_only = {"devices": [{"name": "bob", "protocol": "sip", "password": "b", "lines": []}]}
    path = write(plan_dir, devices_only, "small.yaml")
    load_plan(path, engine, REALM, prune=False)
    assert counts(engine)["meetme_numbers"] == 3
    assert load_snapshot(engine).dialplan.route("", "+15555550100").outcome is Outcome.MEETME
    load_plan(path, engine, REALM)
    assert set(counts(engine).values()) == {0}
    snap = load_snapshot(engine)
    assert dict(snap.moh_sources) == {} and snap.dialplan_spec.meetme == ()


def test_missing_file_writes_nothing(engine: Engine, plan_dir: Path) -> None:
    load_plan(write(plan_dir, PLAN), engine, REALM)
    before = counts(engine)
    (plan_dir / "jazz.flac").unlink()
    data = copy.deepcopy(PLAN)
    data["meetme"].append({"number": "5999"})
    with pytest.raises(PlanError) as info:
        load_plan(write(plan_dir, data), engine, REALM)
    assert info.value.problems == [
        (
            "moh_sources[1] (jazz).file",
            f"cannot read {plan_dir / 'jazz.flac'} (No such file or directory)",
        )
    ]
    assert str(info.value).startswith(f"{plan_dir / 'plan.yaml'}: moh_sources[1] (jazz).file:")
    assert counts(engine) == before and plan_version(engine) == 1
