"""with_devices: devices the database does not hold (auto-registered phones) added to a plan."""

from __future__ import annotations

from dataclasses import replace

import pytest

from offhook.core.dialplan.model import (
    CallingSearchSpace,
    DialPlanSpec,
    RoutePattern,
)
from offhook.core.dialplan.router import DialPlanError
from offhook.core.directory import (
    DeviceInfo,
    LineInfo,
    PlanSnapshot,
    directory_numbers,
    with_devices,
)

CAROL = DeviceInfo("carol", "sip", lines=(LineInfo("1003", "Carol", "internal"),), css="all")


def plan(*devices: DeviceInfo, **spec: object) -> PlanSnapshot:
    base = DialPlanSpec(
        partitions=("internal", "exec"),
        calling_search_spaces=(
            CallingSearchSpace("staff", ("internal",)),
            CallingSearchSpace("all", ("internal", "exec")),
        ),
    )
    devs = devices or (CAROL,)
    full = replace(base, directory_numbers=directory_numbers(devs), **spec)  # type: ignore[arg-type]
    return PlanSnapshot.build(devs, 7, full)


def auto(name: str, dn: str, partition: str = "internal", css: str = "staff") -> DeviceInfo:
    return DeviceInfo(
        name, "sccp", lines=(LineInfo(dn, f"Auto {dn}", partition),), css=css, model="7940"
    )


def test_nothing_added_is_the_same_snapshot() -> None:
    base = plan()
    assert with_devices(base, []) is base
    assert with_devices(base, [replace(CAROL, css="")]) is base  # the plan's name wins


def test_an_added_device_is_routable_in_its_partition_and_has_its_css() -> None:
    base = plan()
    snap = with_devices(base, [auto("SEP0000000000B2", "2000")])
    assert snap.version == 7
    dev = snap.device("SEP0000000000B2")
    assert dev is not None and dev.css == "staff" and dev.model == "7940"
    assert snap.dns["2000"].devices == ("SEP0000000000B2",)
    called = snap.dialplan.route("all", "2000")
    assert called.dn is not None and called.dn.devices == ("SEP0000000000B2",)
    assert called.dn.partition == "internal"
    # Its CSS reaches internal only.
    assert snap.dialplan.route(dev.css, "1003").dn is not None
    assert snap.dialplan.route(dev.css, "1005").dn is None
    # The plan itself is untouched.
    assert "2000" not in base.dns and base.device("SEP0000000000B2") is None


def test_a_dn_the_plan_carries_is_dropped_from_the_added_device() -> None:
    snap = with_devices(plan(), [auto("SEP0000000000B2", "1003")])
    assert snap.dns["1003"].devices == ("carol",)
    dev = snap.device("SEP0000000000B2")
    assert dev is not None and dev.lines == () and dev.css == "staff"


def test_a_partition_the_plan_lacks_is_not_routable() -> None:
    snap = with_devices(plan(), [auto("SEP0000000000B2", "2000", partition="nowhere")])
    assert snap.device("SEP0000000000B2") is not None
    assert snap.dialplan.route("all", "2000").dn is None


def test_null_partition() -> None:
    snap = with_devices(plan(), [auto("SEP0000000000B2", "2000", partition="", css="")])
    decision = snap.dialplan.route("", "2000")
    assert decision.dn is not None and decision.dn.partition == ""


def test_a_clash_with_a_pattern_is_refused() -> None:
    base = plan(route_patterns=(RoutePattern("2000", "internal", block=True),))
    with pytest.raises(DialPlanError):
        with_devices(base, [auto("SEP0000000000B2", "2000")])
