"""Exporting the plan (offhook.db.plan_export) and applying it back with keep_passwords.

The export of a loaded plan is that plan (same ``PlanSpec``) without its
passwords, in every section; it passes ``parse_plan`` and, applied back with
``keep_passwords=True``, changes nothing: not the devices' HA1s, not the
trunks' passwords, not ``plan_version``. Without ``keep_passwords`` a sip
device without a password is refused, as is a new one even with it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from sqlalchemy import select
from sqlalchemy.engine import Engine
from test_plan_props import valid_plans

from offhook.db.engine import create_engine_for, upgrade
from offhook.db.models import Base, Device, TrunkRow
from offhook.db.plan import DEMO_PLAN, load_plan, read_plan
from offhook.db.plan_apply import apply_plan, ha1
from offhook.db.plan_check import PlanError, parse_plan
from offhook.db.plan_export import dump_plan_yaml, export_plan
from offhook.db.plan_spec import PlanSpec
from offhook.db.plan_yaml import parse_plan_text
from offhook.db.snapshot import plan_version

REALM = "offhook.test"
FULL_PLAN = Path(__file__).resolve().parent / "full_plan.yaml"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


def rich_plan(tmp_path: Path) -> dict[str, Any]:
    """Every section of the plan, most keys away from their default."""
    (tmp_path / "hold.wav").write_bytes(b"RIFF....WAVEfmt ")
    (tmp_path / "jazz.wav").write_bytes(b"RIFF....WAVEfmt ")
    data: dict[str, Any] = yaml.safe_load(FULL_PLAN.read_text())
    alice, bob, _reception, sccp = data["devices"]
    alice.update(
        description="Front desk",
        max_calls=2,
        model="CP-8841",
        moh_source="jazz",
        media_resource_list="standard",
        dnd_option="reject",
        privacy=True,
    )
    alice["lines"][0].update(
        moh_source="default",
        forward_all={"destination": "1002", "css": "staff"},
        forward_busy={"destination": "8000"},
        forward_no_answer={"destination": "8000", "css": "lobby"},
        forward_unregistered={"destination": "+15555550100"},
        forward_busy_external={"destination": "1000", "css": "staff"},
        forward_no_answer_external={"destination": "8000"},
        forward_unregistered_external={"destination": "1000"},
        cfna_timer=12.5,
        voicemail="8000",
        pickup_group="sales",
    )
    alice["lines"].append({"dn": "1091", "partition": "internal", "intercom": True})
    bob["lines"][0]["cfna_timer"] = 30
    sccp.update(
        css="staff",
        description="Lobby phone",
        speed_dials=[{"number": "1001", "label": "Alice"}, {"number": "+15555550100"}],
    )
    data["trunks"].append(
        {
            "name": "v6",
            "protocol": "sip",
            "host": "[2001:DB8::0001]",
            "transport": "tcp",
            "options_ping": 12.5,
            "inbound_addresses": ["2001:db8::/32"],
        }
    )
    data["route_patterns"][0]["calling_transform"]["presentation"] = "restricted"
    data["route_patterns"][0]["urgent"] = True
    data["route_patterns"][1]["block_cause"] = 1
    data["translation_patterns"].append(
        {
            "pattern": "8XXX",
            "partition": "pstn",
            "css": "staff",
            "urgent": True,
            "calling_transform": {"prefix": "55", "presentation": "allowed"},
        }
    )
    data["route_groups"].append({"name": "circle", "distribution": "circular", "members": ["v6"]})
    data["moh_sources"] = [
        {"name": "default", "file": "hold.wav"},
        {"name": "jazz", "file": str(tmp_path / "jazz.wav")},
    ]
    data["meetme"] = [
        {"number": "5000", "partition": "internal", "pin": "1234", "max_parties": 10},
        {"number": "5001"},
    ]
    data["media_resource_groups"] = [
        {"name": "local", "servers": ["embedded"]},
        {"name": "remote", "servers": ["ms1", "embedded"]},
    ]
    data["media_resource_lists"] = [{"name": "standard", "groups": ["local", "remote"]}]
    data["line_groups"] = [
        {
            "name": "support",
            "distribution": "longest-idle",
            "rna_timeout": 12.5,
            "on_no_answer": "next-group",
            "on_busy": "stop",
            "on_unavailable": "stop",
            "members": ["1002", "1000"],
        },
        {"name": "overflow", "members": ["1001"]},
    ]
    data["hunt_lists"] = [{"name": "support", "line_groups": ["support", "overflow"]}]
    data["hunt_pilots"] = [
        {
            "pattern": "1500",
            "partition": "internal",
            "hunt_list": "support",
            "final_forward": "1000",
            "final_css": "staff",
        }
    ]
    data["pickup_groups"] = [
        {"name": "sales", "number": "8100", "partition": "internal"},
        {"name": "back-office"},
    ]
    data["call_park"] = [
        {"range": "7000-7009", "partition": "internal", "reversion": 90},
        {"range": "7100", "reversion": 0},
    ]
    data["cti_route_points"] = [
        {"name": "ivr", "dn": "3000", "partition": "internal", "css": "staff",
         "timeout": 2.5, "default": "1002"},
        {"name": "queue", "dn": "3001", "timeout": 8},
    ]  # fmt: skip
    data["cti_ports"] = [
        {"name": "port1", "dn": "3100", "partition": "internal", "css": "lobby"},
        {"name": "port2", "dn": "3101"},
    ]
    return data


def without_passwords(plan: PlanSpec) -> PlanSpec:
    """``plan`` as an export gives it back: no device or trunk password."""
    return plan.model_copy(
        update={
            "devices": [d.model_copy(update={"password": None}) for d in plan.devices],
            "trunks": [t.model_copy(update={"password": ""}) for t in plan.trunks],
        }
    )


def secrets(engine: Engine) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str]]]:
    with engine.connect() as conn:
        devices = conn.execute(
            select(Device.name, Device.realm, Device.ha1_md5, Device.ha1_sha256).order_by(
                Device.name
            )
        ).all()
        trunks = conn.execute(select(TrunkRow.name, TrunkRow.password).order_by(TrunkRow.name))
        return [tuple(r) for r in devices], [tuple(r) for r in trunks]  # type: ignore[misc]


def round_trip(engine: Engine, original: PlanSpec) -> dict[str, Any]:
    """Apply ``original``, export, and check what the module doc promises."""
    apply_plan(engine, original, REALM)
    version, stored = plan_version(engine), secrets(engine)
    data = export_plan(engine)
    exported = parse_plan(data, "export")
    assert exported == without_passwords(original)
    report = apply_plan(engine, exported, REALM, keep_passwords=True)
    assert not report.changed, report
    assert plan_version(engine) == version and secrets(engine) == stored
    # The same through YAML text.
    text = dump_plan_yaml(data)
    assert parse_plan_text(text, "export.yaml") == exported
    return data


def test_demo_plan_round_trip(engine: Engine) -> None:
    data = round_trip(engine, read_plan(DEMO_PLAN))
    assert list(data) == [
        "devices",
        "meetme",
        "line_groups",
        "hunt_lists",
        "hunt_pilots",
        "pickup_groups",
        "call_park",
    ]
    assert data["devices"][0] == {
        "name": "alice",
        "protocol": "sip",
        "description": "Demo phone",
        "lines": [
            {"dn": "1001", "display": "Alice Smith", "pickup_group": "office"},
            {"dn": "1010", "display": "Support (shared)"},
        ],
    }
    assert data["call_park"] == [{"range": "7000-7009"}]  # reversion 60 is the default
    text = dump_plan_yaml(data)
    assert "Secret" not in text and "password" not in text.split("\n", 2)[2]
    assert "dn: '1001'" in text  # quoted: YAML would read a bare 1001 as a number


def test_rich_plan_round_trip(engine: Engine, tmp_path: Path) -> None:
    original = parse_plan(rich_plan(tmp_path), "rich.yaml", tmp_path, require_passwords=True)
    data = round_trip(engine, original)
    assert list(data) == list(PlanSpec.model_fields)  # every section, in PlanSpec order
    alice = data["devices"][0]
    assert list(alice) == [
        "name",
        "protocol",
        "description",
        "css",
        "max_calls",
        "lines",
        "model",
        "moh_source",
        "media_resource_list",
        "dnd_option",
        "privacy",
    ]
    assert alice["lines"][0]["forward_no_answer"] == {"destination": "8000", "css": "lobby"}
    assert alice["lines"][0]["cfna_timer"] == 12.5
    assert data["devices"][1]["lines"][0]["cfna_timer"] == 30
    assert alice["lines"][2] == {"dn": "1091", "partition": "internal", "intercom": True}
    carrier, _backup, v6 = data["trunks"]
    assert "password" not in carrier and carrier["register"] is True
    assert v6["host"] == "2001:db8::1" and v6["options_ping"] == 12.5
    assert data["route_groups"][0]["members"][0] == "carrier"
    assert data["moh_sources"][0] == {"name": "default", "file": str(tmp_path / "hold.wav")}
    assert data["call_park"] == [
        {"range": "7000-7009", "partition": "internal", "reversion": 90},
        {"range": "7100", "reversion": 0},
    ]
    text = dump_plan_yaml(data)
    for secret in ("a-Secret-1", "b-Secret-2", "r-Secret-3", "carrier-Secret"):
        assert secret not in text


def test_empty_database_exports_an_empty_plan(engine: Engine) -> None:
    assert export_plan(engine) == {"devices": []}
    assert parse_plan(export_plan(engine), "export") == PlanSpec()


def test_without_keep_passwords_a_sip_device_needs_one(engine: Engine) -> None:
    apply_plan(engine, read_plan(DEMO_PLAN), REALM)
    version, stored = plan_version(engine), secrets(engine)
    exported = parse_plan(export_plan(engine), "export")
    with pytest.raises(PlanError) as info:
        apply_plan(engine, exported, REALM)
    assert info.value.problems[0] == (
        "devices[0] (alice)",
        "a sip device needs a password (its digest secret)",
    )
    assert plan_version(engine) == version and secrets(engine) == stored


def test_a_new_sip_device_needs_a_password_even_when_kept(engine: Engine) -> None:
    apply_plan(engine, read_plan(DEMO_PLAN), REALM)
    version = plan_version(engine)
    data = export_plan(engine)
    data["devices"].append({"name": "dave", "protocol": "sip", "lines": [{"dn": "1004"}]})
    with pytest.raises(PlanError, match="a new sip device needs a password"):
        apply_plan(engine, parse_plan(data, "export"), REALM, keep_passwords=True)
    assert plan_version(engine) == version
    assert [d["name"] for d in export_plan(engine)["devices"]] == ["alice", "bob", "carol"]
    data["devices"][-1]["password"] = "dave-Secret-4"
    report = apply_plan(engine, parse_plan(data, "export"), REALM, keep_passwords=True)
    assert report.created == 1 and report.unchanged == 3


def test_sccp_device_becoming_sip_needs_a_password(engine: Engine) -> None:
    apply_plan(engine, read_plan(FULL_PLAN), REALM)
    data = export_plan(engine)
    sccp = data["devices"][3]
    assert sccp["protocol"] == "sccp"
    data["devices"][3] = {"name": "SEP001122334455", "protocol": "sip", "lines": sccp["lines"]}
    with pytest.raises(PlanError, match="needs a password"):
        apply_plan(engine, parse_plan(data, "export"), REALM, keep_passwords=True)


def test_keep_passwords_still_takes_a_given_password(engine: Engine) -> None:
    apply_plan(engine, read_plan(FULL_PLAN), REALM)
    (before_devices, before_trunks) = secrets(engine)
    data = copy.deepcopy(export_plan(engine))
    data["devices"][0]["password"] = "new-Secret-9"  # alice
    data["trunks"][1]["password"] = "backup-Secret"  # backup had none
    report = apply_plan(engine, parse_plan(data, "export"), REALM, keep_passwords=True)
    assert report.updated == 1 and report.dialplan[1] == 1
    devices, trunks = secrets(engine)
    changed = [d for d in devices if d not in before_devices]
    assert changed == [
        (
            "alice",
            REALM,
            ha1("md5", "alice", REALM, "new-Secret-9"),
            ha1("sha256", "alice", REALM, "new-Secret-9"),
        )
    ]
    assert len(devices) == len(before_devices)
    assert dict(trunks) == {**dict(before_trunks), "backup": "backup-Secret"}
    assert dict(trunks)["carrier"] == "carrier-Secret"


def test_keep_passwords_keeps_the_old_realm(engine: Engine) -> None:
    """A kept secret is the stored HA1 and its realm: a realm change needs the password."""
    apply_plan(engine, read_plan(DEMO_PLAN), REALM)
    stored = secrets(engine)
    exported = parse_plan(export_plan(engine), "export")
    assert not apply_plan(engine, exported, "other.realm", keep_passwords=True).changed
    assert secrets(engine) == stored


def test_load_an_export_file(engine: Engine, tmp_path: Path) -> None:
    load_plan(DEMO_PLAN, engine, REALM)
    path = tmp_path / "export.yaml"
    path.write_text(dump_plan_yaml(export_plan(engine)))
    with pytest.raises(PlanError, match="needs a password"):
        load_plan(path, engine, REALM)  # a plan file needs its passwords ...
    assert not load_plan(path, engine, REALM, keep_passwords=True).changed  # ... unless kept


def test_keys_at_their_default_are_left_out(engine: Engine) -> None:
    data = {
        "devices": [
            {
                "name": "alice",
                "protocol": "sip",
                "password": "a-Secret-1",
                "max_calls": 4,
                "dnd_option": "ringer-off",
                "lines": [{"dn": "1001", "partition": "", "intercom": False}],
            }
        ],
        "trunks": [{"name": "t", "protocol": "sip", "host": "192.0.2.1", "port": 5060}],
        "line_groups": [{"name": "g", "rna_timeout": 10, "members": []}],
    }
    apply_plan(engine, parse_plan(data, "p"), REALM)
    assert export_plan(engine) == {
        "devices": [{"name": "alice", "protocol": "sip", "lines": [{"dn": "1001"}]}],
        "trunks": [{"name": "t", "protocol": "sip", "host": "192.0.2.1"}],
        "line_groups": [{"name": "g", "members": []}],
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_plans())
def test_any_valid_plan_round_trips(raw: dict[str, Any]) -> None:
    engine = create_engine_for("sqlite://")
    try:
        Base.metadata.create_all(engine)
        round_trip(engine, parse_plan(raw, "plan.yaml"))
    finally:
        engine.dispose()
