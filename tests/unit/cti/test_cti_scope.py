"""cti.scope: a user's devices and their lines from a real database, and what they see.

``PlanLines`` reads the demo plan (alice: 1001 and the shared 1010; bob:
1002 and 1010) from an upgraded SQLite database, follows a plan change
(once ``plan_version`` moves and its check interval passed, on an injected
clock), and knows CTI route points and ports by their DN.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine

from offhook.cti.plan_lines import PlanLines
from offhook.cti.scope import Scope
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.plan import DEMO_PLAN, load_plan


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = create_engine_for(f"sqlite:///{tmp_path / 'scope.db'}")
    upgrade(e)
    load_plan(DEMO_PLAN, e, "offhook")
    yield e
    e.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_users_devices_and_their_lines(engine: Engine) -> None:
    lines = PlanLines(engine)
    scope = lines.scope(["alice", "nosuch"])
    assert scope.devices == {"alice", "nosuch"}
    assert scope.lines == {("1001", ""), ("1010", "")}
    assert lines.devices_with("1010", ["carol", "bob", "alice"]) == ("bob", "alice")
    assert lines.scope(["alice"], everything=True) == Scope(everything=True)
    assert scope.describe() == {
        "all": False,
        "devices": ["alice", "nosuch"],
        "lines": [{"dn": "1001", "partition": ""}, {"dn": "1010", "partition": ""}],
    }


def test_a_plan_change_is_seen_after_the_check_interval(engine: Engine, tmp_path: Path) -> None:
    clock = Clock()
    lines = PlanLines(engine, every=2.0, clock=clock)
    assert lines.lines_of(["carol"]) == {("1003", "")}
    plan: dict[str, Any] = {
        "devices": [
            {
                "name": "carol",
                "protocol": "sip",
                "password": "carol-Secret-3",
                "lines": [{"dn": "1033"}],
            }
        ],
        "cti_route_points": [{"name": "ivr", "dn": "3000"}],
        "cti_ports": [{"name": "port1", "dn": "3100"}],
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    load_plan(path, engine, "offhook")
    assert lines.lines_of(["carol"]) == {("1003", "")}  # not looked at yet
    clock.now = 2.5
    assert lines.lines_of(["carol"]) == {("1033", "")}
    assert lines.lines_of(["ivr", "port1"]) == {("3000", ""), ("3100", "")}


def test_what_a_scope_sees() -> None:
    scope = Scope(devices=frozenset({"alice"}), lines=frozenset({("1001", ""), ("1010", "p")}))
    assert scope.sees({"type": "call.offered", "device": "alice"})
    assert not scope.sees({"type": "call.offered", "device": "bob", "line": "1001"})
    assert scope.sees({"type": "line.state", "dn": "1001", "partition": ""})
    assert not scope.sees({"type": "line.state", "dn": "1001", "partition": "other"})
    assert scope.sees({"type": "mwi.changed", "dn": "1010", "partition": "p"})
    assert scope.sees({"type": "forward.changed", "dn": "1010", "partition": "p", "device": "bob"})
    assert not scope.sees({"type": "call.ended", "call_id": "c1", "calling": "1001"})
    assert not scope.sees({"type": "dnd.changed", "device": ["alice"]})
    assert scope.has_line("1010") and scope.has_line("1010", "p") and not scope.has_line("1010", "")
    assert Scope(everything=True).sees({"type": "anything"})
