"""app.AutoDevices: auto-registered SCCP phones in the node's snapshot."""

from __future__ import annotations

import asyncio
import logging

import pytest

from offhook import app
from offhook.config import Settings, load_settings
from offhook.core.dialplan.model import CallingSearchSpace, DialPlanSpec, RoutePattern
from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot, directory_numbers
from offhook.sccp.device import DeviceProfile

PHONE = "SEP0000000000B2"


def settings(partition: str = "internal", css: str = "staff") -> Settings:
    return load_settings(
        None,
        env={
            "OFFHOOK_SCCP__AUTO_REGISTER": "2000-2009",
            "OFFHOOK_SCCP__AUTO_REGISTER_PARTITION": partition,
            "OFFHOOK_SCCP__AUTO_REGISTER_CSS": css,
        },
    )


def plan(version: int, *devices: DeviceInfo, **extra: object) -> PlanSnapshot:
    spec = DialPlanSpec(
        partitions=("internal",),
        calling_search_spaces=(CallingSearchSpace("staff", ("internal",)),),
        directory_numbers=directory_numbers(devices),
        **extra,  # type: ignore[arg-type]
    )
    return PlanSnapshot.build(devices, version, spec)


def node_with(s: Settings, snapshot: PlanSnapshot) -> app.Node:
    node = app.Node(s)
    node.plan = node.snapshot = snapshot
    return node


def test_assigned_phone_is_in_the_snapshot_and_a_reload_keeps_it() -> None:
    async def body() -> None:
        node = node_with(settings(), plan(1))
        auto = app.AutoDevices(node)
        auto.refresh()
        assert node.snapshot is node.plan  # nothing to add
        auto.changed(PHONE, DeviceProfile(PHONE, "7940", lines=(("2000", "Auto 2000"),)))
        dev = node.snapshot.device(PHONE)
        assert dev == DeviceInfo(
            PHONE,
            "sccp",
            lines=(LineInfo("2000", "Auto 2000", "internal"),),
            css="staff",
            model="7940",
        )
        decision = node.snapshot.dialplan.route("staff", "2000")
        assert decision.dn is not None and decision.dn.devices == (PHONE,)
        assert node.plan.device(PHONE) is None

        # The plan reloads, now giving 2000 to carol: the plan wins; the phone keeps its CSS.
        carol = DeviceInfo("carol", "sip", lines=(LineInfo("2000", "Carol", "internal"),))
        node.plan = plan(2, carol)
        auto.refresh()
        assert node.snapshot.version == 2
        assert node.snapshot.dns["2000"].devices == ("carol",)
        kept = node.snapshot.device(PHONE)
        assert kept is not None and kept.lines == () and kept.css == "staff"

        auto.changed(PHONE, None)  # lost its DN
        await asyncio.sleep(0.05)
        assert node.snapshot.device(PHONE) is None

    asyncio.run(body())


def test_rebuilds_are_coalesced_in_a_storm() -> None:
    async def body() -> None:
        node = node_with(settings(), plan(1))
        auto = app.AutoDevices(node)
        auto._next = asyncio.get_running_loop().time() + 0.1  # as if a rebuild just ran
        for i in range(5):
            dn = f"200{i}"
            name = f"SEP00000000000{i}"
            auto.changed(name, DeviceProfile(name, "7960", lines=((dn, f"Auto {dn}"),)))
        assert node.snapshot is node.plan  # not yet
        await asyncio.sleep(0.3)
        assert {f"200{i}" for i in range(5)} <= set(node.snapshot.dns)

    asyncio.run(body())


def test_missing_partition_and_css_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        node = node_with(settings(partition="nowhere", css="nobody"), plan(1))
        auto = app.AutoDevices(node)
        with caplog.at_level(logging.WARNING, logger="offhook"):
            auto.refresh()
            auto.refresh()  # logged once
        warned = [r.getMessage() for r in caplog.records]
        assert len(warned) == 2
        assert "auto_register_partition 'nowhere'" in warned[0]
        assert "auto_register_css 'nobody'" in warned[1]
        auto.changed(PHONE, DeviceProfile(PHONE, "7960", lines=(("2000", "Auto 2000"),)))
        assert node.snapshot.device(PHONE) is not None
        assert node.snapshot.dialplan.route("staff", "2000").dn is None

    asyncio.run(body())


def test_a_clash_with_a_pattern_keeps_the_phone_unrouted(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        base = plan(1, route_patterns=(RoutePattern("2000", "internal", block=True),))
        node = node_with(settings(), base)
        auto = app.AutoDevices(node)
        with caplog.at_level(logging.WARNING, logger="offhook"):
            auto.changed(PHONE, DeviceProfile(PHONE, "7960", lines=(("2000", "Auto 2000"),)))
        assert any("cannot be called" in r.getMessage() for r in caplog.records)
        dev = node.snapshot.device(PHONE)
        assert dev is not None and dev.css == "staff"

    asyncio.run(body())
