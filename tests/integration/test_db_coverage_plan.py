"""Call coverage's plan keys on SQLite and PostgreSQL: every key (external forwards,
intercom and privacy included) loaded and read back through the snapshot into the
core's types, idempotency, updates, pruning, and a refused plan that writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from offhook.core.dialplan.model import CallPark, HuntPilot, PickupGroup
from offhook.core.dialplan.router import Outcome
from offhook.core.directory import (
    Forward,
    HuntDistribution,
    HuntStep,
    LineGroup,
    LineInfo,
    PlanSnapshot,
)
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.plan import PlanError, load_plan, read_plan
from offhook.db.snapshot import load_snapshot, plan_version

REALM = "offhook.test"
COVERAGE_TABLES = (
    "line_groups",
    "line_group_members",
    "hunt_lists",
    "hunt_list_members",
    "hunt_pilots",
    "pickup_groups",
    "call_park",
)

PLAN = """
partitions: [internal, pstn]
calling_search_spaces:
  - {name: staff, partitions: [internal, pstn]}
  - {name: local, partitions: [internal]}
devices:
  - name: alice
    protocol: sip
    password: alice-Secret-1
    css: staff
    dnd_option: reject
    privacy: true
    lines:
      - dn: "1001"
        partition: internal
        display: Alice
        forward_all: {destination: "1003", css: local}
        forward_busy: {destination: "8000"}
        forward_no_answer: {destination: "8000", css: staff}
        forward_unregistered: {destination: "+15555550100", css: staff}
        forward_busy_external: {destination: "1003", css: local}
        forward_no_answer_external: {destination: "8000"}
        forward_unregistered_external: {destination: "+15555550199", css: staff}
        cfna_timer: 20
        voicemail: "8000"
        pickup_group: sales
      - {dn: "1010", partition: internal, pickup_group: sales}
  - name: SEP001122334455
    protocol: sccp
    model: "7960"
    lines:
      - {dn: "1010", partition: internal}
      - {dn: "1002", partition: internal, cfna_timer: 7.5, voicemail: "*97"}
      - {dn: "1091", partition: internal, intercom: true}
  - name: carol
    protocol: sip
    password: carol-Secret-3
    lines: [{dn: "1003", partition: internal}]
  - name: vm
    protocol: sip
    password: vm-Secret-4
    lines: [{dn: "8000", partition: internal}]
line_groups:
  - {name: support, distribution: circular, rna_timeout: 15, on_no_answer: next-group,
     on_busy: stop, on_unavailable: next-member, members: ["1002", "1003"]}
  - {name: overflow, distribution: broadcast, members: ["1001", "1010"]}
  - {name: spare}
hunt_lists:
  - {name: support, line_groups: [support, overflow]}
  - {name: spare, line_groups: [spare]}
hunt_pilots:
  - {pattern: "1500", partition: internal, hunt_list: support, final_forward: "8000",
     final_css: staff}
  - {pattern: "1501", hunt_list: spare}
pickup_groups:
  - {name: sales, number: "8100", partition: internal}
  - {name: back-office}
call_park:
  - {range: "7000-7009", partition: internal, reversion: 90}
  - {range: "7100"}
"""

SUPPORT = LineGroup(
    "support",
    ("1002", "1003"),
    HuntDistribution.CIRCULAR,
    15.0,
    HuntStep.NEXT_GROUP,
    HuntStep.STOP,
    HuntStep.NEXT_MEMBER,
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


def write(tmp_path: Path, body: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def check_full(snap: PlanSnapshot) -> None:
    """Every coverage key of ``PLAN``, as the snapshot holds it."""
    alice = snap.devices["alice"]
    assert alice.dnd_option == "reject" and alice.privacy is True
    assert snap.devices["carol"].dnd_option == "ringer-off"
    assert snap.devices["carol"].privacy is False
    assert alice.lines[0] == LineInfo(
        "1001",
        "Alice",
        "internal",
        "",
        forward_all=Forward("1003", "local"),
        forward_busy=Forward("8000"),
        forward_no_answer=Forward("8000", "staff"),
        forward_unregistered=Forward("+15555550100", "staff"),
        forward_busy_external=Forward("1003", "local"),
        forward_no_answer_external=Forward("8000"),
        forward_unregistered_external=Forward("+15555550199", "staff"),
        cfna_timer=20.0,
        voicemail="8000",
        pickup_group="sales",
    )
    assert alice.lines[1] == LineInfo("1010", "", "internal", pickup_group="sales")
    phone = snap.devices["SEP001122334455"]
    assert phone.lines[1] == LineInfo("1002", "", "internal", cfna_timer=7.5, voicemail="*97")
    assert phone.lines[2] == LineInfo("1091", "", "internal", intercom=True)
    assert phone.privacy is False
    assert snap.devices["carol"].lines[0] == LineInfo("1003", "", "internal")
    # A shared line's coverage: the appearance that has some.
    shared = snap.line("1010", "internal")
    assert shared is not None and shared.pickup_group == "sales"

    assert dict(snap.line_groups) == {
        "support": SUPPORT,
        "overflow": LineGroup("overflow", ("1001", "1010"), HuntDistribution.BROADCAST),
        "spare": LineGroup("spare"),
    }
    assert dict(snap.hunt_lists) == {"support": ("support", "overflow"), "spare": ("spare",)}
    spec = snap.dialplan_spec
    assert spec.hunt_pilots == (
        HuntPilot("1500", "internal", "support", "8000", "staff"),
        HuntPilot("1501", "", "spare"),
    )
    assert spec.pickup_groups == (
        PickupGroup("sales", "8100", "internal"),
        PickupGroup("back-office"),
    )
    assert spec.call_park == (
        CallPark("7000", "7009", "internal", 90.0),
        CallPark("7100", "7100", "", 60.0),
    )
    assert snap.dialplan.route("staff", "1500").hunt == spec.hunt_pilots[0]
    assert snap.dialplan.route("staff", "1501").outcome is Outcome.HUNT
    assert snap.dialplan.route("staff", "8100").pickup == spec.pickup_groups[0]
    assert snap.dialplan.route("staff", "7009").park == spec.call_park[0]
    assert snap.dialplan.route("staff", "7100").outcome is Outcome.PARK
    assert snap.dialplan.route("local", "7100").outcome is Outcome.PARK  # null partition


def test_every_key_reads_back(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, PLAN)
    report = load_plan(path, engine, REALM)
    assert report.created == 4
    snap = load_snapshot(engine)
    check_full(snap)
    # The database gives back what the plan file itself says.
    plan = read_plan(path)
    want = {d.name: (d.lines, d.dnd_option, d.privacy) for d in plan.device_infos()}
    assert {n: (d.lines, d.dnd_option, d.privacy) for n, d in snap.devices.items()} == want
    assert dict(snap.line_groups) == plan.line_group_models()
    assert dict(snap.hunt_lists) == plan.hunt_list_models()
    spec = plan.dialplan_spec()
    assert snap.dialplan_spec.hunt_pilots == spec.hunt_pilots
    assert snap.dialplan_spec.pickup_groups == spec.pickup_groups
    assert snap.dialplan_spec.call_park == spec.call_park

    again = load_plan(path, engine, REALM)
    assert not again.changed and again.unchanged == 4 and again.version == report.version


def test_updates_and_pruning(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    version = plan_version(engine)
    changed = (
        PLAN.replace("dnd_option: reject", "dnd_option: ringer-off")
        .replace("privacy: true", "")
        .replace('forward_all: {destination: "1003", css: local}', "")
        .replace('forward_busy_external: {destination: "1003", css: local}', "")
        .replace(
            'forward_no_answer_external: {destination: "8000"}',
            ('forward_no_answer_external: {destination: "8000", css: local}'),
        )
        .replace("intercom: true", "intercom: false")
        .replace("rna_timeout: 15", "rna_timeout: 25")
        .replace('members: ["1002", "1003"]', 'members: ["1003", "1002"]')
        .replace("reversion: 90", "reversion: 0")
        .replace('number: "8100"', 'number: "8101"')
        .replace('final_forward: "8000"', 'final_forward: ""')
    )
    report = load_plan(write(tmp_path, changed, "changed.yaml"), engine, REALM)
    assert (report.created, report.updated, report.unchanged, report.deleted) == (0, 2, 2, 0)
    # support (group), 1500 (pilot), sales (pickup group), 7000-7009 (park) changed.
    assert report.dialplan[1] == 4 and report.version == version + 1
    snap = load_snapshot(engine)
    alice = snap.devices["alice"]
    assert alice.dnd_option == "ringer-off" and alice.lines[0].forward_all is None
    assert alice.privacy is False
    assert alice.lines[0].forward_busy == Forward("8000")
    assert alice.lines[0].forward_busy_external is None
    assert alice.lines[0].forward_no_answer_external == Forward("8000", "local")
    assert alice.lines[0].forward_unregistered_external == Forward("+15555550199", "staff")
    assert snap.devices["SEP001122334455"].lines[2].intercom is False
    assert snap.line_groups["support"].members == ("1003", "1002")
    assert snap.line_groups["support"].rna_timeout == 25.0
    assert snap.dialplan_spec.call_park[0].reversion == 0.0
    assert snap.dialplan.route("staff", "8101").outcome is Outcome.PICKUP
    assert snap.dialplan.route("staff", "8100").outcome is not Outcome.PICKUP
    assert snap.dialplan_spec.hunt_pilots[0].final_forward == ""

    # A plan without coverage sections: they go (the devices stay).
    bare = PLAN.split("line_groups:")[0].replace("pickup_group: sales", "")
    report = load_plan(write(tmp_path, bare, "bare.yaml"), engine, REALM)
    assert report.dialplan[3] == 3 + 2 + 2 + 2 + 2  # groups, lists, pilots, pickups, parks
    with engine.connect() as conn:
        for table in COVERAGE_TABLES:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
    snap = load_snapshot(engine)
    assert dict(snap.line_groups) == {} and snap.dialplan_spec.call_park == ()
    assert snap.devices["alice"].lines[0].voicemail == "8000"


def test_no_prune_keeps_coverage(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    bare = PLAN.split("line_groups:")[0].replace("pickup_group: sales", "")
    report = load_plan(write(tmp_path, bare, "bare.yaml"), engine, REALM, prune=False)
    assert report.dialplan[3] == 0
    assert set(load_snapshot(engine).line_groups) == {"support", "overflow", "spare"}


def test_refused_plan_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    load_plan(write(tmp_path, PLAN), engine, REALM)
    version = plan_version(engine)
    bad = PLAN.replace('range: "7100"', 'range: "1003", partition: internal')
    path = write(tmp_path, bad, "bad.yaml")
    with pytest.raises(PlanError) as info:
        load_plan(path, engine, REALM)
    assert str(info.value) == (
        f"{path}: call_park[1] (1003).range: park number '1003' in partition 'internal' "
        "is already used by devices[2] (carol).lines[0]"
    )
    assert plan_version(engine) == version
    check_full(load_snapshot(engine))
