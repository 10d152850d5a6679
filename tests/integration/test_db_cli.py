"""The ``offhook`` command (typer CliRunner): db upgrade, load, cdr, serve bootstrap."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from offhook.cli import app
from offhook.config import Settings
from offhook.db.cdr import CdrRepository, CdrRow
from offhook.db.engine import create_engine_for, head_revision
from offhook.db.snapshot import load_snapshot, plan_version

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("OFFHOOK_") and "__" in key:
            monkeypatch.delenv(key)
    path = tmp_path / "offhook.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n[sip]\nrealm = "offhook.test"\n')
    return path


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_db_upgrade(config: Path) -> None:
    r = invoke("db", "upgrade", "--config", str(config))
    assert r.exit_code == 0, r.output
    assert f"upgraded from empty to {head_revision()}" in r.stdout
    r = invoke("db", "upgrade", "--config", str(config))
    assert r.exit_code == 0 and "up to date" in r.stdout


def test_load_and_cdr(config: Path, tmp_path: Path, db_url: str) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        yaml.safe_dump(
            {
                "devices": [
                    {
                        "name": "alice",
                        "protocol": "sip",
                        "password": "pw1",
                        "lines": [{"dn": "1001"}],
                    },
                    {
                        "name": "bob",
                        "protocol": "sip",
                        "password": "pw2",
                        "lines": [{"dn": "1002"}],
                    },
                ]
            }
        )
    )
    r = invoke("load", str(plan), "--config", str(config))
    assert r.exit_code == 0, r.output
    assert "2 created, 0 updated, 0 unchanged, 0 deleted (plan version 1)" in r.stdout
    r = invoke("load", str(plan), "--config", str(config))
    assert "0 created, 0 updated, 2 unchanged, 0 deleted (plan version 1)" in r.stdout

    r = invoke("cdr", "--config", str(config))
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "call_id,calling,called,start,answer,end,duration,cause,cause_text,"
        "original_called,last_redirecting,redirect_reason,calling_device,called_device,node,extra"
    ]
    t0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    engine = create_engine_for(db_url)
    try:
        CdrRepository(engine).add_many(
            [
                CdrRow("c1", "1001", "1002", "1002", "alice", "bob", t0, t0, t0, 0, 16, "ok", "n"),
                CdrRow(
                    "c2",
                    "1002",
                    "1001",
                    "1001",
                    "bob",
                    "alice",
                    t0 + timedelta(hours=1),
                    None,
                    t0 + timedelta(hours=1),
                    0,
                    19,
                    "no answer",
                    "n",
                    last_redirecting="1003",
                    redirect_reason="forward-busy",
                ),
            ]
        )
    finally:
        engine.dispose()
    r = invoke("cdr", "--config", str(config))
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["call_id"] for x in rows] == ["c1", "c2"]
    assert rows[0]["start"] == "2024-01-02T03:04:05+00:00"
    assert rows[1]["answer"] == "" and rows[1]["cause"] == "19"
    assert (rows[0]["last_redirecting"], rows[0]["redirect_reason"]) == ("", "")
    assert (rows[1]["last_redirecting"], rows[1]["redirect_reason"]) == ("1003", "forward-busy")
    r = invoke("cdr", "--config", str(config), "--since", "2024-01-02T03:30:00Z", "--json")
    data = json.loads(r.stdout)
    assert [x["call_id"] for x in data] == ["c2"] and data[0]["answer"] is None
    assert data[0]["redirect_reason"] == "forward-busy"
    r = invoke("cdr", "--config", str(config), "--until", "2024-01-02T03:30:00")
    assert [x["call_id"] for x in csv.DictReader(io.StringIO(r.stdout))] == ["c1"]
    r = runner.invoke(app, ["cdr", "--config", str(config), "--since", "yesterday"])
    assert r.exit_code == 2


def test_load_invalid(config: Path, tmp_path: Path, db_url: str) -> None:
    plan = tmp_path / "bad.yaml"
    plan.write_text("devices:\n  - name: alice\n    protocol: sip\n    lines: []\n")
    r = invoke("load", str(plan), "--config", str(config))
    assert r.exit_code == 1
    assert f"{plan}: devices[0] (alice): a sip device needs a password" in r.stderr
    assert r.stdout == ""
    engine = create_engine_for(db_url)
    try:
        assert plan_version(engine) == 0
    finally:
        engine.dispose()


def test_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "offhook.toml"
    path.write_text("[sip]\nport = 'x'\n")
    r = invoke("cdr", "--config", str(path))
    assert r.exit_code == 2 and "[sip] port" in r.stderr


def test_serve_bootstraps_demo(config: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Settings] = []
    fake = types.ModuleType("offhook.app")
    fake.serve = lambda settings, path: seen.append(settings)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "offhook.app", fake)
    r = invoke("serve", "--config", str(config))
    assert r.exit_code == 0, r.output
    assert len(seen) == 1 and seen[0].database.url == db_url
    engine = create_engine_for(db_url)
    try:
        snap = load_snapshot(engine)
        assert {"alice", "bob", "carol"} <= set(snap.devices)
        assert snap.devices["alice"].realm == "offhook.test"
        version = snap.version
        r = invoke("serve", "--config", str(config))  # second start: nothing reloaded
        assert plan_version(engine) == version
    finally:
        engine.dispose()


def test_serve_no_demo(config: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("offhook.app")
    fake.serve = lambda settings, path: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "offhook.app", fake)
    assert invoke("serve", "--no-demo", "--config", str(config)).exit_code == 0
    engine = create_engine_for(db_url)
    try:
        assert load_snapshot(engine).devices == {}
    finally:
        engine.dispose()


def test_status_delegates(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    fake = types.ModuleType("offhook.app")
    fake.print_status = lambda settings, as_json: calls.append(as_json)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "offhook.app", fake)
    assert invoke("status", "--json", "--config", str(config)).exit_code == 0
    assert calls == [True]


def test_demo_config() -> None:
    r = invoke("demo-config")
    assert r.exit_code == 0 and "[sip]" in r.stdout


def test_dna_names_hunt_pickup_and_park(config: Path, tmp_path: Path) -> None:
    """The dialed number analyzer says what a hunt pilot, pickup number or park number is."""
    plan = tmp_path / "coverage.yaml"
    plan.write_text(
        "devices:\n"
        "  - {name: alice, protocol: sip, password: a-Secret-1, lines: [{dn: '1001'}]}\n"
        "  - {name: bob, protocol: sip, password: b-Secret-2, lines: [{dn: '1002'}]}\n"
        "line_groups: [{name: desk, members: ['1001', '1002']}]\n"
        "hunt_lists: [{name: desk, line_groups: [desk]}]\n"
        "hunt_pilots: [{pattern: '1500', hunt_list: desk, final_forward: '1001'}]\n"
        "pickup_groups: [{name: sales, number: '8100'}]\n"
        "call_park: [{range: '7000-7009', reversion: 90}]\n"
    )
    assert invoke("load", str(plan), "--config", str(config)).exit_code == 0

    def dna(digits: str, *extra: str) -> str:
        r = invoke("dna", "--config", str(config), "--from", "alice", digits, *extra)
        assert r.exit_code == 0, r.output
        return str(r.stdout)

    assert dna("1500").splitlines()[-2:] == [
        "1. hunt pilot 1500 in partition <None> (searched: <None>)",
        "result: hunt pilot 1500 in partition <None>: hunt list desk (line groups: desk), "
        "then 1001",
    ]
    assert dna("8100").splitlines()[-1] == "result: pick up a call ringing in pickup group sales"
    assert dna("7003").splitlines()[-1] == (
        "result: call park number 7003 (range 7000-7009 in partition <None>; reverts after 90 s)"
    )
    out = json.loads(dna("1500", "--json"))
    assert out["outcome"] == "hunt" and out["pickup"] is None and out["park"] is None
    assert out["hunt"] == {
        "pattern": "1500",
        "partition": "",
        "hunt_list": "desk",
        "line_groups": ["desk"],
        "final_forward": "1001",
    }
    assert json.loads(dna("8100", "--json"))["pickup"] == {"name": "sales", "number": "8100"}
    assert json.loads(dna("7009", "--json"))["park"] == {
        "first": "7000",
        "last": "7009",
        "partition": "",
        "reversion": 90.0,
    }
    # Feature codes come before the dial plan: the analyzer says so.
    assert dna("*8").strip() == (
        "dialed *8 from alice: feature code pickup ([features] code_*; "
        "analysed before the dial plan)"
    )
    assert json.loads(dna("*211002", "--json")) == {
        "digits": "*211002",
        "feature_code": "forward_all",
        "number": "1002",
    }
