"""The real-time information query: device filters (hypothesis vs a brute force), rows, calls."""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.location import Binding
from offhook.core.directory import DeviceInfo, LineInfo
from offhook.core.media import Codec, MediaDescription, MediaStream
from offhook.ris.index import History, Rejection
from offhook.ris.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    AddressFilter,
    DeviceFilter,
    Status,
    device_row,
    glob_match,
    select_calls,
    select_devices,
    sip_firmware,
    split_source,
)
from unit.core.core_harness import Harness, media

T0 = 1_700_000_000.0

# -- glob ---------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.text("aAb*?", max_size=10), st.text("aAb*?", max_size=10))
def test_glob_agrees_with_fnmatch_ignoring_case(pattern: str, name: str) -> None:
    assert glob_match(pattern, name) == fnmatch.fnmatchcase(name.lower(), pattern.lower())


@settings(deadline=None)
@given(st.text(max_size=20))
def test_star_matches_everything_and_a_name_matches_itself(name: str) -> None:
    assert glob_match("*", name)
    if not set(name) & {"*", "?"}:
        assert glob_match(name, name) and glob_match(name.upper(), name.lower())


def test_glob_has_no_pathological_patterns() -> None:
    # A regular expression of many ``.*`` backtracks exponentially here.
    assert not glob_match("*a" * 60 + "b", "a" * 5000)
    assert glob_match("SEP*", "sep001122334455") and glob_match(
        "SEP00112233445?", "SEP001122334455"
    )
    assert not glob_match("SEP?", "SEP") and glob_match("[x]*", "[x]y")  # [ is no class


# -- addresses ----------------------------------------------------------------


def test_address_filters() -> None:
    assert AddressFilter.parse("10.0.0.5").matches("10.0.0.5")
    assert not AddressFilter.parse("10.0.0.5").matches("10.0.0.50")
    assert AddressFilter.parse("10.0.0.0/24").matches("10.0.0.77")
    assert not AddressFilter.parse("10.0.0.0/24").matches("10.0.1.1")
    assert AddressFilter.parse("10.0.0.1/8").matches("10.200.0.1")  # host bits ignored
    assert AddressFilter.parse("10.0.").matches("10.0.3.4")
    assert AddressFilter.parse("10.0.*").matches("10.0.3.4")
    assert not AddressFilter.parse("10.0.").matches("110.0.3.4")
    assert AddressFilter.parse("::1").matches("::1")
    assert AddressFilter.parse("[0:0::1]").matches("::1")  # any written form
    assert AddressFilter.parse("2001:db8::/32").matches("2001:db8::9")
    assert not AddressFilter.parse("2001:db8::/32").matches("10.0.0.1")
    assert AddressFilter.parse("FE80:").matches("fe80::1")
    assert not AddressFilter.parse("10.0.0.0/8").matches("")
    for bad in ("", "x.y", "10.0.0.0/33", "host.example", "1" * 200, "10.0.0.*.5"):
        with pytest.raises(ValueError):
            AddressFilter.parse(bad)


@settings(deadline=None)
@given(st.text(max_size=80))
def test_any_address_text_parses_or_is_refused(text: str) -> None:
    try:
        flt = AddressFilter.parse(text)
    except ValueError:
        return
    flt.matches("10.0.0.1")
    flt.matches("::1")


# -- the filter ---------------------------------------------------------------


def test_filter_defaults_and_refusals() -> None:
    flt = DeviceFilter.parse({})
    assert (flt.name, flt.protocol, flt.status, flt.address, flt.limit) == (
        "*",
        None,
        Status.ANY,
        None,
        DEFAULT_LIMIT,
    )
    flt = DeviceFilter.parse(
        {"name": "SEP*", "protocol": "SCCP", "status": "Rejected", "address": "10.", "limit": 5}
    )
    assert (flt.protocol, flt.status, flt.limit) == ("sccp", Status.REJECTED, 5)
    assert DeviceFilter.parse({"protocol": "any", "name": None, "limit": None}).protocol is None
    for bad in (
        {"protocol": "h323"},
        {"status": "busy"},
        {"limit": 0},
        {"limit": MAX_LIMIT + 1},
        {"limit": True},
        {"limit": "5"},
        {"name": 5},
        {"name": "*" * 129},
        {"address": "nowhere"},
        {"colour": "red"},
    ):
        with pytest.raises(ValueError):
            DeviceFilter.parse(bad)


@settings(deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "protocol", "status", "address", "limit", "other"]),
        st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.lists(st.integers()),
    )
)
def test_any_arguments_parse_or_are_refused_with_value_error(args: dict[str, Any]) -> None:
    with contextlib.suppress(ValueError):
        DeviceFilter.parse(args)


# -- rows ---------------------------------------------------------------------


def sip_binding(name: str, host: str, ua: str = "", at: float = T0, **kw: Any) -> Binding:
    return Binding(
        name,
        "sip",
        f"sip:{name}@{host}",
        1e9,
        (host, 5060),
        user_agent=ua,
        registered_at=at,
        node="n1",
        **kw,
    )


def test_rows_of_registered_unregistered_and_refused_devices() -> None:
    alice = DeviceInfo("alice", "sip", (LineInfo("1001"), LineInfo("1011")))
    phone = DeviceInfo("SEP001122334455", "sccp", (LineInfo("2001"),), model="7960")
    live = sip_binding("alice", "10.0.0.5", "Cisco-CP7960G/8.0", at=T0 + 5)
    old = sip_binding("alice", "10.0.0.4", "old", at=T0)
    row = device_row("alice", alice, [old, live], None, "n1")
    assert (row.status, row.model, row.firmware, row.address, row.port) == (
        "registered",
        "Cisco-CP7960G/8.0",
        "8.0",
        "10.0.0.5",
        5060,
    )
    assert row.lines == ("1001", "1011") and row.registered_at == T0 + 5 and row.configured
    j = row.as_json()
    assert j["registered_at"] == "2023-11-14T22:13:25+00:00" and j["last_rejection"] is None

    row = device_row(phone.name, phone, [], None, "n1")
    assert (row.status, row.model, row.address, row.firmware) == (
        "unregistered",
        "Cisco 7960",
        "",
        "",
    )

    gone = Binding(
        phone.name,
        "sccp",
        "sccp:x",
        0,
        ("10.0.0.7", 51000),
        user_agent="Cisco 7941",
        firmware="SCCP41.9-0-3S",
    )
    history = History("sccp", last_registered=T0, last_unregistered=T0 + 9, last_binding=gone)
    row = device_row(phone.name, phone, [], history, "n1")
    assert (row.status, row.model, row.firmware, row.address) == (
        "unregistered",
        "Cisco 7941",
        "SCCP41.9-0-3S",
        "10.0.0.7",
    )
    assert row.as_json()["unregistered_at"] == "2023-11-14T22:13:29+00:00"

    refused = History(
        "sccp", last_rejection=Rejection(T0 + 1, "unknown-device", "[2001:db8::7]:40000")
    )
    refused.rejections = 3
    row = device_row("SEPFFFFFFFFFFFF", None, [], refused, "n1")
    assert (row.status, row.address, row.port, row.configured, row.rejections) == (
        "rejected",
        "2001:db8::7",
        40000,
        False,
        3,
    )
    assert row.as_json()["last_rejection"] == {
        "time": "2023-11-14T22:13:21+00:00",
        "reason": "unknown-device",
        "source": "[2001:db8::7]:40000",
    }


def test_a_device_refused_from_a_blocked_address_shows_blocked() -> None:
    alice = DeviceInfo("alice", "sip", (LineInfo("1001"),))
    bob = DeviceInfo("bob", "sip", (LineInfo("1002"),))
    carol = DeviceInfo("carol", "sip", (LineInfo("1003"),))
    refused = History("sip", last_rejection=Rejection(T0, "auth-failed", "192.0.2.9:5060"))
    live = sip_binding("alice", "192.0.2.9", "phone", at=T0)  # registered: never "blocked"
    devices = {d.name: d for d in (alice, bob, carol)}
    asked: list[str] = []

    def blocked(address: str) -> bool:
        asked.append(address)
        return address == "192.0.2.9"

    flt = DeviceFilter.parse({})
    selection = select_devices(devices, [live], [("bob", refused)], flt, "n1", blocked)
    rows = {r.name: r for r in selection.rows}
    assert (rows["bob"].status, rows["bob"].blocked) == ("rejected", True)
    assert rows["bob"].as_json()["blocked"] is True
    assert not rows["alice"].blocked and not rows["carol"].blocked
    assert asked == ["192.0.2.9"]  # only the unregistered with an address are asked
    assert not select_devices(devices, [live], [("bob", refused)], flt).rows[1].blocked


def test_sip_firmware_and_sources() -> None:
    assert sip_firmware("Cisco-CP7960G/8.0 (x)") == "8.0"
    assert sip_firmware("baresip v2.0.1 (x86_64/Linux)") == ""
    assert sip_firmware("") == ""
    assert split_source("10.0.0.1:5060") == ("10.0.0.1", 5060)
    assert split_source("[::1]:5060") == ("::1", 5060)
    assert split_source("junk") == ("", 0)


# -- select_devices against a brute force ----------------------------------------

NAMES = ["alice", "bob", "SEP001122334455", "SEPAABBCCDDEEFF", "cti-port1", "mallory"]
HOSTS = ["10.0.0.5", "10.0.1.9", "192.168.1.2", "::1", "2001:db8::9"]


@st.composite
def worlds(
    draw: st.DrawFn,
) -> tuple[dict[str, DeviceInfo], list[Binding], list[tuple[str, History]]]:
    devices: dict[str, DeviceInfo] = {}
    for name in draw(st.lists(st.sampled_from(NAMES[:5]), unique=True)):
        protocol = "sccp" if name.startswith("SEP") else "cti" if "cti" in name else "sip"
        devices[name] = DeviceInfo(name, protocol, (LineInfo(str(len(devices) + 1000)),))
    bindings = [
        sip_binding(name, draw(st.sampled_from(HOSTS)), "ua/1.0")
        for name in draw(st.lists(st.sampled_from(list(devices) or ["x"]), unique=True))
        if name in devices
    ]
    histories = []
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        h = History(draw(st.sampled_from(["sip", "sccp"])))
        if draw(st.booleans()):
            h.last_rejection = Rejection(T0, "r", f"{draw(st.sampled_from(HOSTS[:3]))}:9")
            h.rejections = 1
        if draw(st.booleans()):
            h.last_unregistered = T0 + draw(st.sampled_from([-1.0, 1.0]))
        histories.append((name, h))
    return devices, bindings, histories


filters = st.builds(
    dict,
    name=st.sampled_from(["*", "SEP*", "*o*", "a?ice", "BOB", "nobody"]),
    protocol=st.sampled_from([None, "sip", "sccp", "cti"]),
    status=st.sampled_from(["any", "registered", "unregistered", "rejected"]),
    address=st.sampled_from([None, "10.0.", "10.0.0.0/16", "::1", "2001:db8::/32"]),
    limit=st.integers(1, 8),
)


@settings(max_examples=300, deadline=None)
@given(worlds(), filters)
def test_selection_is_exactly_the_rows_that_match(
    world: tuple[dict[str, DeviceInfo], list[Binding], list[tuple[str, History]]],
    args: dict[str, Any],
) -> None:
    devices, bindings, histories = world
    flt = DeviceFilter.parse(args)
    selection = select_devices(devices, bindings, histories, flt, "n1")

    history = dict(histories)
    every = [
        device_row(
            name,
            devices.get(name),
            [b for b in bindings if b.device == name],
            history.get(name),
            "n1",
        )
        for name in set(devices) | {b.device for b in bindings} | set(history)
    ]
    expected = sorted(
        (
            r
            for r in every
            if (flt.protocol is None or r.protocol == flt.protocol)
            and (args["status"] == "any" or r.status == args["status"])
            and fnmatch.fnmatchcase(r.name.lower(), args["name"].lower())
            and (
                args["address"] is None
                or (
                    bool(r.address)
                    and (
                        r.address.startswith(args["address"])
                        if args["address"].endswith(".")
                        else ipaddress.ip_address(r.address)
                        in ipaddress.ip_network(args["address"])
                        if "/" in args["address"]
                        else r.address == args["address"]
                    )
                )
            )
        ),
        key=lambda r: r.name.casefold(),
    )
    assert selection.total == len(expected)
    assert list(selection.rows) == expected[: args["limit"]]
    assert selection.as_json("n1")["truncated"] == (len(expected) > args["limit"])
    for row in selection.rows:
        assert row.status in {"registered", "unregistered", "rejected"}
        assert row.status != "registered" or any(b.device == row.name for b in bindings)


# -- calls --------------------------------------------------------------------


def test_calls_show_the_legs_up_and_their_media() -> None:
    h = Harness()
    h.device("alice", "1001")
    h.device("bob", "1002")
    h.device("carol", "1003")
    bob_contact = h.register("bob")
    h.register("bob", "sip:bob@10.0.0.10")  # a second phone of bob's: the call forks
    a_leg, _ = h.call("alice", "1002")
    b_leg, _ = h.out(bob_contact)
    answer = MediaDescription(
        (
            MediaStream("audio", "10.0.0.9", 5004, (Codec("PCMA", 8000, 8),)),
            MediaStream("video", "10.0.0.9", 0, ()),  # rejected: not shown
        )
    )
    h.engine.on_alerting(b_leg)
    h.engine.on_connect(b_leg, answer)

    (row,) = select_calls(h.engine.active_calls())
    j = row.as_json()
    assert (j["calling"], j["called"], j["state"]) == ("alice", "1002", "connected")
    assert j["answer"] is not None and j["start"] is not None
    legs = {leg["device"]: leg for leg in j["legs"]}
    assert set(legs) == {"alice", "bob"}  # the other fork was released: not shown
    assert legs["alice"] == {
        "leg_id": a_leg.id,
        "device": "alice",
        "line": "1001",
        "state": "connected",
        "direction": "inbound",
        "media": [
            {
                "kind": "audio",
                "address": "10.0.0.1",
                "port": 4000,
                "codec": "PCMU",
                "direction": "sendrecv",
            }
        ],
    }
    assert legs["bob"]["direction"] == "outbound" and legs["bob"]["line"] == "1002"
    assert legs["bob"]["media"] == [
        {
            "kind": "audio",
            "address": "10.0.0.9",
            "port": 5004,
            "codec": "PCMA",
            "direction": "sendrecv",
        }
    ]
    assert select_calls(h.engine.active_calls(), "BO*") == [row]
    assert select_calls(h.engine.active_calls(), "carol") == []

    h.engine.on_release(a_leg)
    assert select_calls(h.engine.active_calls()) == []


def test_a_ringing_call_and_one_without_media() -> None:
    h = Harness()
    h.device("alice", "1001")
    h.device("bob", "1002")
    contact = h.register("bob")
    h.call("alice", "1002", offer=False)  # a delayed offer: no media yet
    b_leg, _ = h.out(contact)
    h.engine.on_alerting(b_leg, media("10.0.0.2", 6000))
    (row,) = select_calls(h.engine.active_calls())
    legs = {leg.device: leg for leg in row.legs}
    assert legs["alice"].media == ()
    assert legs["bob"].state == "alerting" and legs["bob"].media[0].port == 6000
