"""``offhook dna``: the dialed number analyzer over a plan loaded into SQLite."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from offhook.cli import app
from offhook.db.plan import load_plan

FULL = Path(__file__).resolve().parent / "db" / "full_plan.yaml"
runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("OFFHOOK_") and "__" in key:
            monkeypatch.delenv(key)
    url = f"sqlite:///{tmp_path / 'offhook.db'}"
    path = tmp_path / "offhook.toml"
    path.write_text(f'[database]\nurl = "{url}"\n[sip]\nrealm = "offhook.test"\n')
    load_plan(FULL, url, "offhook.test")
    return path


def dna(config: Path, device: str, digits: str, *extra: str) -> Any:
    return runner.invoke(app, ["dna", "--config", str(config), "--from", device, digits, *extra])


def dna_json(config: Path, device: str, digits: str) -> dict[str, Any]:
    r = dna(config, device, digits, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert isinstance(out, dict)
    return out


def test_dn(config: Path) -> None:
    r = dna(config, "alice", "1010")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "dialed 1010 from alice (calling 1001; calling search space staff: internal, pstn, <None>)",
        "1. directory number 1010 in partition internal (searched: internal, pstn, <None>)",
        "result: directory number 1010 in partition internal on alice, bob "
        "(called 1010, calling 1001)",
    ]
    out = dna_json(config, "alice", "1010")
    assert out["outcome"] == "dn" and out["cause"] == 0
    assert out["dn"] == {"dn": "1010", "partition": "internal", "devices": ["alice", "bob"]}
    assert out["partitions"] == ["internal", "pstn", ""]


def test_route_pre_dot_and_prefix(config: Path) -> None:
    r = dna(config, "alice", "914155550100")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[1] == (
        "1. route pattern 9.1[2-9]XX[2-9]XXXXXX in partition pstn "
        "(searched: internal, pstn, <None>)"
    )
    assert "   called 914155550100 -> +14155550100 (discard pre-dot, prefix +)" in lines
    assert "   calling 1001 -> 55511001 (mask 5551XXXX)" in lines
    assert "result: route list pstn-out (called +14155550100, calling 55511001)" in lines
    assert lines[-2:] == [
        "   1. trunk carrier (route group carriers; sip udp 127.0.0.1:5080): "
        "called +14155550100, calling 55511001",
        "   2. trunk backup (route group carriers; sip tcp 127.0.0.2:5090): "
        "called 0014155550100, calling 55511001",
    ]
    assert "carrier-Secret" not in r.stdout
    out = dna_json(config, "alice", "914155550100")
    assert out["outcome"] == "route" and out["route_list"] == "pstn-out"
    assert out["called"] == "+14155550100" and out["calling"] == "55511001"
    assert out["route_pattern"]["pattern"] == "9.1[2-9]XX[2-9]XXXXXX"
    assert out["steps"][0]["called_transform"] == {"discard": "pre-dot", "prefix": "+"}
    assert [(t["trunk"], t["group"], t["called"]) for t in out["trunks"]] == [
        ("carrier", "carriers", "+14155550100"),
        ("backup", "carriers", "0014155550100"),
    ]
    assert "carrier-Secret" not in json.dumps(out)


def test_blocked(config: Path) -> None:
    r = dna(config, "alice", "919005551234")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == (
        "result: blocked by 9.1900XXXXXXX in partition pstn (Q.850 cause 21: Call rejected)"
    )
    out = dna_json(config, "alice", "919005551234")
    assert (out["outcome"], out["cause"], out["trunks"]) == ("blocked", 21, [])
    assert out["steps"][0]["blocked"] is True


def test_incomplete(config: Path) -> None:
    r = dna(config, "alice", "9141")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1].startswith("result: incomplete: more digits could match")
    assert "Q.850 cause 28" in r.stdout and "SIP 484" in r.stdout
    out = dna_json(config, "alice", "9141")
    assert (out["outcome"], out["cause"], out["steps"]) == ("incomplete", 28, [])


def test_unknown_and_css_visibility(config: Path) -> None:
    r = dna(config, "alice", "5555")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == (
        "result: unknown: nothing in internal, pstn, <None> matches 5555 "
        "(Q.850 cause 1: Unallocated (unassigned) number)"
    )
    # bob's CSS (lobby) does not reach pstn: the number does not exist for him.
    out = dna_json(config, "bob", "914155550100")
    assert (out["outcome"], out["cause"]) == ("unknown", 1)
    assert out["partitions"] == ["internal", ""]


def test_translation(config: Path) -> None:
    r = dna(config, "alice", "0")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[1:] == [
        "1. translation pattern 0 in partition internal (searched: internal, pstn, <None>)",
        "   called 0 -> 1000 (replace 1000)",
        "   analysed again with calling search space staff",
        "2. directory number 1000 in partition internal (searched: internal, pstn, <None>)",
        "result: directory number 1000 in partition internal on reception "
        "(called 1000, calling 1001)",
    ]
    out = dna_json(config, "alice", "0")
    assert [(s["kind"], s["called_in"], s["called_out"]) for s in out["steps"]] == [
        ("translation", "0", "1000"),
        ("dn", "1000", "1000"),
    ]
    assert out["dn"]["devices"] == ["reception"]


def test_device_without_css(config: Path) -> None:
    out = dna_json(config, "SEP001122334455", "1001")
    assert out["css"] == "" and out["partitions"] == [""]
    assert out["outcome"] == "unknown"  # 1001 is in internal, which no CSS gives it


def test_unknown_device(config: Path) -> None:
    r = dna(config, "zed", "1001")
    assert r.exit_code == 1
    assert "unknown device 'zed'" in r.output


def test_meetme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("OFFHOOK_") and "__" in key:
            monkeypatch.delenv(key)
    url = f"sqlite:///{tmp_path / 'offhook.db'}"
    path = tmp_path / "offhook.toml"
    path.write_text(f'[database]\nurl = "{url}"\n')
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "meetme: [{number: '5000', pin: '42', max_parties: 6}]\n"
        "devices: [{name: alice, protocol: sip, password: a-Secret-1, lines: [{dn: '1001'}]}]\n"
    )
    load_plan(plan, url, "offhook")
    r = dna(path, "alice", "5000")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == (
        "result: meet-me conference 5000 in partition <None> (up to 6 parties, PIN required)"
    )
    out = dna_json(path, "alice", "5000")
    assert out["outcome"] == "meetme"
    assert out["meetme"] == {
        "number": "5000",
        "partition": "",
        "max_parties": 6,
        "pin_required": True,
    }
