"""The media plane's plan keys (no database): music on hold sources, meet-me numbers,
media resource groups and lists; what they validate and the messages they give."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from offhook.core.dialplan.model import MeetMe
from offhook.core.dialplan.router import Outcome
from offhook.core.directory import PlanSnapshot
from offhook.db.plan import DEMO_PLAN
from offhook.db.plan_check import PlanError, parse_plan
from offhook.db.plan_yaml import parse_plan_text, read_plan


def device(name: str = "alice", dn: str = "1001", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "sip",
        "password": f"{name}-Secret-1",
        "lines": [{"dn": dn}],
        **extra,
    }


@pytest.fixture
def music(tmp_path: Path) -> Path:
    """A plan directory with two audio files (their content is not decoded here)."""
    (tmp_path / "moh").mkdir()
    (tmp_path / "moh" / "default.wav").write_bytes(b"RIFF\0\0\0\0WAVEfmt ")
    (tmp_path / "jazz.flac").write_bytes(b"fLaC")
    return tmp_path


def full(music: Path) -> dict[str, Any]:
    return {
        "partitions": ["internal", "exec"],
        "calling_search_spaces": [{"name": "staff", "partitions": ["internal"]}],
        "moh_sources": [
            {"name": "default", "file": "moh/default.wav"},
            {"name": "jazz", "file": str(music / "jazz.flac")},
        ],
        "meetme": [
            {"number": "5000", "partition": "internal", "pin": "0042", "max_parties": 8},
            {"number": "5001"},
        ],
        "media_resource_groups": [
            {"name": "local", "servers": ["embedded", "ms2"]},
            {"name": "remote", "servers": ["ms3", "ms2"]},
        ],
        "media_resource_lists": [{"name": "standard", "groups": ["local", "remote"]}],
        "devices": [
            device(
                css="staff",
                moh_source="jazz",
                media_resource_list="standard",
                lines=[{"dn": "1001", "partition": "internal", "moh_source": "default"}],
            ),
            device("bob", "1002"),
        ],
    }


def problems(data: Any, base: Path | None = None) -> list[tuple[str, str]]:
    with pytest.raises(PlanError) as info:
        parse_plan(data, "plan.yaml", base)
    assert str(info.value).startswith("plan.yaml: ")
    return info.value.problems


def test_full_media_plan(music: Path) -> None:
    plan = parse_plan(full(music), "plan.yaml", music)
    assert [(m.name, m.file) for m in plan.moh_sources] == [
        ("default", str(music / "moh" / "default.wav")),
        ("jazz", str(music / "jazz.flac")),
    ]
    assert plan.meetme[0].pin == "0042" and plan.meetme[1].pin is None
    assert plan.meetme[1].max_parties == 32 and plan.meetme[1].partition == ""
    assert plan.devices[0].moh_source == "jazz"
    assert plan.devices[0].lines[0].moh_source == "default"
    assert plan.devices[0].media_resource_list == "standard"
    assert plan.dialplan_spec().meetme == (
        MeetMe("5000", "internal", "0042", 8),
        MeetMe("5001", "", "", 32),
    )


def test_old_plans_need_none_of_it() -> None:
    plan = parse_plan({"devices": [device()]}, "plan.yaml")
    assert plan.moh_sources == [] and plan.meetme == []
    assert plan.media_resource_groups == [] and plan.media_resource_lists == []
    assert plan.devices[0].moh_source == "" and plan.devices[0].media_resource_list == ""
    assert plan.devices[0].lines[0].moh_source == ""


def test_relative_files_are_taken_from_the_plan_file(music: Path) -> None:
    path = music / "plan.yaml"
    path.write_text(yaml.safe_dump(full(music)))
    plan = read_plan(path)
    assert plan.moh_sources[0].file == str(music / "moh" / "default.wav")
    assert os.path.isabs(plan.moh_sources[0].file)


def test_relative_file_from_another_directory(music: Path) -> None:
    data = {"moh_sources": [{"name": "hold", "file": "../jazz.flac"}]}
    path = music / "plans" / "plan.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))
    plan = read_plan(path)
    assert plan.moh_sources[0].file == str(music / "jazz.flac")  # normalised, no ".."


def test_relative_file_without_base_is_from_the_current_directory(
    music: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(music)
    plan = parse_plan_text("moh_sources: [{name: x, file: jazz.flac}]", "plan.yaml")
    assert plan.moh_sources[0].file == str(music / "jazz.flac")


def test_missing_file_is_an_error_naming_it(music: Path) -> None:
    data = full(music)
    data["moh_sources"].append({"name": "gone", "file": "nowhere/gone.wav"})
    ((where, what),) = problems(data, music)
    assert where == "moh_sources[2] (gone).file"
    assert what == f"cannot read {music / 'nowhere' / 'gone.wav'} (No such file or directory)"


def test_not_a_file_empty_file(music: Path) -> None:
    (music / "empty.wav").write_bytes(b"")
    data = {
        "moh_sources": [
            {"name": "dir", "file": "moh"},
            {"name": "empty", "file": "empty.wav"},
        ]
    }
    assert problems(data, music) == [
        ("moh_sources[0] (dir).file", f"{music / 'moh'} is not a regular file"),
        ("moh_sources[1] (empty).file", f"{music / 'empty.wav'} is empty"),
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(music: Path) -> None:
    secret = music / "secret.wav"
    secret.write_bytes(b"RIFF")
    secret.chmod(0)
    ((where, what),) = problems({"moh_sources": [{"name": "s", "file": "secret.wav"}]}, music)
    assert where == "moh_sources[0] (s).file" and "Permission denied" in what


def test_file_problems_come_with_reference_problems(music: Path) -> None:
    data = full(music)
    data["moh_sources"][1]["file"] = "missing.flac"
    data["devices"][1]["moh_source"] = "rock"
    got = problems(data, music)
    assert [w for w, _ in got] == ["devices[1] (bob).moh_source", "moh_sources[1] (jazz).file"]


@pytest.mark.parametrize(
    ("change", "where", "what"),
    [
        (
            lambda d: d["devices"][1].update(moh_source="rock"),
            "devices[1] (bob).moh_source",
            "music on hold source 'rock' does not exist (defined: default, jazz)",
        ),
        (
            lambda d: d["devices"][0]["lines"][0].update(moh_source="rock"),
            "devices[0] (alice).lines[0].moh_source",
            "music on hold source 'rock' does not exist",
        ),
        (
            lambda d: d["devices"][1].update(media_resource_list="gold"),
            "devices[1] (bob).media_resource_list",
            "media resource list 'gold' does not exist (defined: standard)",
        ),
        (
            lambda d: d["media_resource_lists"][0]["groups"].append("far"),
            "media_resource_lists[0] (standard).groups[2]",
            "media resource group 'far' does not exist (defined: local, remote)",
        ),
        (
            lambda d: d["media_resource_lists"][0]["groups"].append("local"),
            "media_resource_lists[0] (standard).groups[2]",
            "media resource group 'local' is listed twice in this list",
        ),
        (
            lambda d: d["media_resource_groups"][0]["servers"].append("embedded"),
            "media_resource_groups[0] (local).servers[2]",
            "media server 'embedded' is listed twice in this group",
        ),
        (
            lambda d: d["media_resource_groups"].append({"name": "local", "servers": ["x"]}),
            "media_resource_groups[2] (local).name",
            "duplicate media resource group name (first at media_resource_groups[0])",
        ),
        (
            lambda d: d["media_resource_lists"].append({"name": "standard", "groups": ["local"]}),
            "media_resource_lists[1] (standard).name",
            "duplicate media resource list name (first at media_resource_lists[0])",
        ),
        (
            lambda d: d["moh_sources"].append({"name": "jazz", "file": "moh/default.wav"}),
            "moh_sources[2] (jazz).name",
            "duplicate music on hold source name (first at moh_sources[1])",
        ),
        (
            lambda d: d["meetme"].append({"number": "1001", "partition": "internal"}),
            "meetme[2] (1001).number",
            "'1001' in partition 'internal' is already used by devices[0] (alice).lines[0]",
        ),
        (
            lambda d: d["meetme"].append({"number": "5000", "partition": "internal"}),
            "meetme[2] (5000).number",
            "'5000' in partition 'internal' is already used by meetme[0] (5000)",
        ),
        (
            lambda d: d["meetme"].append({"number": "5002", "partition": "pstn"}),
            "meetme[2] (5002).partition",
            "partition 'pstn' does not exist (defined: exec, internal)",
        ),
        (
            lambda d: d.update(
                route_patterns=[{"pattern": "5000", "partition": "internal", "block": True}]
            ),
            "route_patterns[0] (5000).pattern",
            "'5000' in partition 'internal' is already used by meetme[0] (5000)",
        ),
    ],
)
def test_reference_problems(music: Path, change: Any, where: str, what: str) -> None:
    data = full(music)
    change(data)
    got = problems(data, music)
    assert len(got) == 1, got
    assert got[0][0] == where
    assert what in got[0][1]


def test_default_needs_no_declaration() -> None:
    plan = parse_plan(
        {"devices": [device(moh_source="default", lines=[{"dn": "1", "moh_source": "default"}])]},
        "plan.yaml",
    )
    assert plan.devices[0].moh_source == "default"


def test_meetme_number_in_another_partition_than_the_dn(music: Path) -> None:
    data = full(music)
    data["meetme"].append({"number": "1001", "partition": "exec"})
    plan = parse_plan(data, "plan.yaml", music)
    assert plan.meetme[2].number == "1001"


@pytest.mark.parametrize(
    ("entry", "where", "what"),
    [
        ({"number": 5000}, "meetme[0].number", "write the number or PIN as a quoted string"),
        ({"number": "50a0"}, "meetme[0] (50a0).number", "is not a meet-me number"),
        ({"number": "5X"}, "meetme[0] (5X).number", "is not a meet-me number"),
        ({"number": "1+1"}, "meetme[0] (1+1).number", "is not a meet-me number"),
        ({"number": "5" * 33}, f"meetme[0] ({'5' * 33}).number", "at most 32 characters"),
        ({"number": "5000", "pin": 1234}, "meetme[0] (5000).pin", "quoted string"),
        ({"number": "5000", "pin": "12a4"}, "meetme[0] (5000).pin", "a PIN is 1-16 digits"),
        ({"number": "5000", "pin": ""}, "meetme[0] (5000).pin", "a PIN is 1-16 digits"),
        ({"number": "5000", "pin": "1" * 17}, "meetme[0] (5000).pin", "a PIN is 1-16 digits"),
        ({"number": "5000", "max_parties": 1}, "meetme[0] (5000).max_parties", "2"),
        ({"number": "5000", "max_parties": 1001}, "meetme[0] (5000).max_parties", "1000"),
        ({"number": "5000", "max_parties": "8"}, "meetme[0] (5000).max_parties", "integer"),
        ({"number": "5000", "max_parties": True}, "meetme[0] (5000).max_parties", "integer"),
        ({"number": "5000", "room": "a"}, "meetme[0] (5000).room", "unknown key"),
        ({"pin": "1"}, "meetme[0].number", "required key missing"),
    ],
)
def test_bad_meetme(entry: dict[str, Any], where: str, what: str) -> None:
    got = problems({"meetme": [entry]})
    assert any(w == where and what in m for w, m in got), got


@pytest.mark.parametrize(
    ("data", "where", "what"),
    [
        ({"moh_sources": [{"name": "x"}]}, "moh_sources[0] (x).file", "required key missing"),
        ({"moh_sources": [{"name": "x", "file": ""}]}, "moh_sources[0] (x).file", "at least 1"),
        (
            {"moh_sources": [{"name": "x", "file": "a\x00b"}]},
            "moh_sources[0] (x).file",
            "control character",
        ),
        (
            {"moh_sources": [{"name": "x", "file": "a" * 4097}]},
            "moh_sources[0] (x).file",
            "at most 4096",
        ),
        (
            {"moh_sources": [{"name": "bad name", "file": "a"}]},
            "moh_sources[0] (bad name).name",
            "pattern",
        ),
        ({"media_resource_groups": [{"name": "g"}]}, "media_resource_groups[0] (g).servers", ""),
        (
            {"media_resource_groups": [{"name": "g", "servers": []}]},
            "media_resource_groups[0] (g).servers",
            "at least 1",
        ),
        (
            {"media_resource_groups": [{"name": "g", "servers": ["a b"]}]},
            "media_resource_groups[0] (g).servers[0] (a b)",
            "pattern",
        ),
        (
            {"media_resource_lists": [{"name": "l", "groups": []}]},
            "media_resource_lists[0] (l).groups",
            "at least 1",
        ),
        (
            {"devices": [device(media_resource_list=["a"])]},
            "devices[0] (alice).media_resource_list",
            "string",
        ),
    ],
)
def test_bad_media_entries(data: dict[str, Any], where: str, what: str) -> None:
    got = problems(data)
    assert any(w == where and what in m for w, m in got), got


def test_too_long_absolute_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 200)
    data = {"moh_sources": [{"name": "x", "file": "/".join(["e" * 200] * 20)}]}
    ((where, what),) = problems(data, deep)
    assert where == "moh_sources[0] (x).file" and "longer than 4096" in what


def test_plan_to_snapshot(music: Path) -> None:
    """What the loader gives the snapshot (the database path is the integration tests')."""
    plan = parse_plan(full(music), "plan.yaml", music)
    snap = PlanSnapshot.build(
        plan.device_infos(),
        1,
        plan.dialplan_spec(),
        moh_sources={m.name: m.file for m in plan.moh_sources},
        media_resource_groups={g.name: tuple(g.servers) for g in plan.media_resource_groups},
        media_resource_lists={r.name: tuple(r.groups) for r in plan.media_resource_lists},
    )
    assert snap.moh_source_for("alice", "1001") == "default"  # the line's, over the device's
    assert snap.moh_source_for("alice", "9999") == "jazz"
    assert snap.moh_source_for("bob", "1002") == "default"
    assert snap.media_servers_for("alice") == ("embedded", "ms2", "ms3")
    assert snap.media_servers_for("bob") == ("embedded",)
    d = snap.dialplan.route("staff", "5000")
    assert d.outcome is Outcome.MEETME and d.meetme == MeetMe("5000", "internal", "0042", 8)
    assert snap.dialplan.route("", "5000").outcome is Outcome.UNKNOWN  # internal not in reach
    assert snap.dialplan.route("", "5001").meetme == MeetMe("5001")


def test_demo_plan_has_a_meetme_number() -> None:
    plan = read_plan(DEMO_PLAN)
    ((room,),) = [plan.dialplan_spec().meetme]
    assert room == MeetMe("5000", "", "", 8)
    assert plan.moh_sources == []  # the built-in tones
