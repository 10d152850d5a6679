"""Plan validation (no database): the message names the file, the entry and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from offhook.db.plan import DEMO_PLAN
from offhook.db.plan_apply import ha1
from offhook.db.plan_check import PlanError, parse_plan
from offhook.db.plan_yaml import read_plan


def good(**extra: Any) -> dict[str, Any]:
    dev = {
        "name": "alice",
        "protocol": "sip",
        "password": "alice-Secret-1",
        "lines": [{"dn": "1001", "display": "Alice Smith"}],
    }
    dev.update(extra)
    return dev


def problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(PlanError) as info:
        parse_plan(data, "plan.yaml", require_passwords=True)
    assert str(info.value).startswith("plan.yaml: ")
    return info.value.problems


def test_valid_plan() -> None:
    plan = parse_plan({"devices": [good(), good(name="bob", lines=[{"dn": "1001"}])]}, "p")
    assert [d.name for d in plan.devices] == ["alice", "bob"]
    assert plan.devices[1].lines[0].dn == "1001"  # shared line allowed


def test_sccp_needs_no_password() -> None:
    dev = {"name": "SEP001122334455", "protocol": "sccp", "model": "7960"}
    plan = parse_plan({"devices": [dev]}, "p")
    assert plan.devices[0].password is None


def test_demo_plan_is_valid() -> None:
    plan = read_plan(DEMO_PLAN)
    names = {d.name: d for d in plan.devices}
    assert {"alice", "bob", "carol"} <= set(names)
    assert names["alice"].lines[0].dn == "1001"
    assert names["bob"].lines[0].dn == "1002"
    assert names["carol"].lines[0].dn == "1003"
    dns = [ln.dn for d in plan.devices for ln in d.lines]
    assert any(dns.count(dn) > 1 for dn in dns)  # a shared-line example


@pytest.mark.parametrize(
    ("device", "where", "what"),
    [
        ({"lines": [{"dn": "10a1"}]}, "devices[1] (bob).lines[0].dn", "not a directory number"),
        ({"lines": [{"dn": 1002}]}, "devices[1] (bob).lines[0].dn", "quoted string"),
        ({"lines": [{"dn": ""}]}, "devices[1] (bob).lines[0].dn", "not a directory number"),
        ({"protocol": "h323"}, "devices[1] (bob).protocol", "'sip' or 'sccp'"),
        ({"colour": "red"}, "devices[1] (bob).colour", "unknown key"),
        ({"password": None}, "devices[1] (bob)", "needs a password"),
        ({"password": 1234}, "devices[1] (bob).password", "valid string"),
        ({"name": "bad name"}, "devices[1] (bad name).name", "pattern"),
        ({"max_calls": -1}, "devices[1] (bob).max_calls", "greater than"),
        ({"lines": [{"dn": "1"}, {"dn": "1"}]}, "devices[1] (bob)", "appears twice"),
        ({"lines": [{"dn": "1", "dsplay": "x"}]}, "devices[1] (bob).lines[0].dsplay", "unknown"),
    ],
)
def test_invalid_entries(device: dict[str, Any], where: str, what: str) -> None:
    bob = good(name="bob", password="b", lines=[{"dn": "1002"}])
    bob.update(device)
    found = problems({"devices": [good(), bob]})
    assert any(loc == where and what in msg for loc, msg in found), found


def test_sip_needs_password() -> None:
    dev = good(name="bob")
    del dev["password"]
    found = problems({"devices": [good(), dev]})
    assert found == [("devices[1] (bob)", "a sip device needs a password (its digest secret)")]


def test_sip_password_optional_for_an_exported_plan() -> None:
    """Without require_passwords (an exported or API-edited plan) the device keeps
    its stored secret when applied with keep_passwords (test_plan_export)."""
    dev = good(name="bob")
    del dev["password"]
    plan = parse_plan({"devices": [good(), dev]}, "export")
    assert plan.devices[1].password is None


def test_missing_name() -> None:
    dev = good()
    del dev["name"]
    assert ("devices[0].name", "required key missing") in problems({"devices": [dev]})


def test_duplicate_device_names() -> None:
    found = problems({"devices": [good(), good(name="bob"), good()]})
    assert found == [("devices[2] (alice).name", "duplicate device name (first at devices[0])")]


@pytest.mark.parametrize("data", [None, [], "devices", {"device": []}, {"devices": {}}])
def test_bad_top_level(data: Any) -> None:
    assert problems(data)


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("devices:\n  - name: [alice\n")
    with pytest.raises(PlanError) as info:
        read_plan(path)
    assert str(path) in str(info.value)
    assert "invalid YAML" in str(info.value)
    assert "line " in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read"):
        read_plan(tmp_path / "none.yaml")


def test_ha1_vectors() -> None:
    # RFC 2617 §3.5 example: Mufasa / testrealm@host.com / Circle Of Life
    assert ha1("md5", "Mufasa", "testrealm@host.com", "Circle Of Life") == (
        "939e7578ed9e3c518a452acee763bce9"
    )
    # RFC 7616 §3.9.1 (http-auth@example.org, SHA-256 HA1)
    assert ha1("sha256", "Mufasa", "http-auth@example.org", "Circle of Life") == (
        "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
    )
