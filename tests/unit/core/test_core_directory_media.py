"""PlanSnapshot's media plane: music on hold sources and media servers per device."""

from __future__ import annotations

from offhook.core.dialplan.model import DialPlanSpec, MeetMe
from offhook.core.directory import (
    DEFAULT_MOH_SOURCE,
    EMBEDDED_MEDIA_SERVER,
    DeviceInfo,
    LineInfo,
    PlanSnapshot,
    directory_numbers,
    with_devices,
)

SOURCES = {"default": "/srv/moh/default.wav", "jazz": "/srv/moh/jazz.flac", "rock": "/r.wav"}
GROUPS = {
    "local": ("embedded", "ms2"),
    "remote": ("ms3", "ms2"),
    "spare": ("ms4",),
}
LISTS = {"standard": ("local", "remote"), "far": ("remote", "spare", "local")}

ALICE = DeviceInfo(
    "alice",
    "sip",
    lines=(LineInfo("1001", "Alice", moh_source="jazz"), LineInfo("1010", "Support")),
    moh_source="rock",
    media_resource_list="standard",
)
BOB = DeviceInfo("bob", "sip", lines=(LineInfo("1002"), LineInfo("1010")))
CAROL = DeviceInfo(
    "carol", "sip", lines=(LineInfo("1003", moh_source="jazz"),), media_resource_list="far"
)


def snapshot(*devices: DeviceInfo) -> PlanSnapshot:
    devs = devices or (ALICE, BOB, CAROL)
    return PlanSnapshot.build(
        devs,
        3,
        DialPlanSpec(directory_numbers=directory_numbers(devs), meetme=(MeetMe("5000"),)),
        moh_sources=SOURCES,
        media_resource_groups=GROUPS,
        media_resource_lists=LISTS,
    )


def test_moh_sources_mapping() -> None:
    snap = snapshot()
    assert dict(snap.moh_sources) == SOURCES
    assert snap.moh_sources["jazz"] == "/srv/moh/jazz.flac"


def test_line_source_wins() -> None:
    assert snapshot().moh_source_for("alice", "1001") == "jazz"
    assert snapshot().moh_source_for("carol", "1003") == "jazz"


def test_device_source_when_the_line_has_none() -> None:
    snap = snapshot()
    assert snap.moh_source_for("alice", "1010") == "rock"
    assert snap.moh_source_for("alice", "") == "rock"  # no line known
    assert snap.moh_source_for("alice", "1002") == "rock"  # not alice's line


def test_default_source() -> None:
    snap = snapshot()
    assert snap.moh_source_for("bob", "1002") == DEFAULT_MOH_SOURCE == "default"
    assert snap.moh_source_for("bob", "1010") == "default"
    assert snap.moh_source_for("nobody", "1001") == "default"  # the line is alice's, not his


def test_the_holders_line_decides_not_the_held_party() -> None:
    # The shared line 1010: alice's device says rock, bob's says nothing.
    snap = snapshot()
    assert snap.moh_source_for("alice", "1010") == "rock"
    assert snap.moh_source_for("bob", "1010") == "default"


def test_media_servers_in_list_and_group_order_without_duplicates() -> None:
    snap = snapshot()
    assert snap.media_servers_for("alice") == ("embedded", "ms2", "ms3")
    assert snap.media_servers_for("carol") == ("ms3", "ms2", "ms4", "embedded")


def test_media_servers_default_to_the_embedded_one() -> None:
    snap = snapshot()
    assert EMBEDDED_MEDIA_SERVER == "embedded"
    assert snap.media_servers_for("bob") == ("embedded",)
    assert snap.media_servers_for("nobody") == ("embedded",)
    unknown = DeviceInfo("dave", "sip", media_resource_list="gone")
    assert snapshot(unknown).media_servers_for("dave") == ("embedded",)


def test_snapshot_without_media_plan() -> None:
    snap = PlanSnapshot.build([ALICE, BOB])
    assert dict(snap.moh_sources) == {}
    # The names are kept; with no list defined the embedded server serves.
    assert snap.moh_source_for("alice", "1001") == "jazz"
    assert snap.media_servers_for("alice") == ("embedded",)
    assert PlanSnapshot().media_servers_for("x") == ("embedded",)
    assert PlanSnapshot().moh_source_for("x", "1") == "default"


def test_with_devices_keeps_the_media_plan() -> None:
    snap = snapshot()
    auto = DeviceInfo("SEP0000000000AA", "sccp", lines=(LineInfo("2000"),), model="7960")
    grown = with_devices(snap, [auto])
    assert grown is not snap
    assert dict(grown.moh_sources) == SOURCES
    assert dict(grown.media_resource_groups) == GROUPS
    assert dict(grown.media_resource_lists) == LISTS
    assert grown.media_servers_for("alice") == ("embedded", "ms2", "ms3")
    assert grown.moh_source_for("SEP0000000000AA", "2000") == "default"
    assert grown.dialplan_spec.meetme == (MeetMe("5000"),)


def test_build_copies_the_mappings() -> None:
    sources = dict(SOURCES)
    snap = PlanSnapshot.build([ALICE], moh_sources=sources)
    sources["jazz"] = "/elsewhere.wav"
    assert snap.moh_sources["jazz"] == "/srv/moh/jazz.flac"
