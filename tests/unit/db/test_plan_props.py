"""Properties of the plan loader (YAML text -> validated plan), and what the fuzzer found.

The invariant ``fuzz/fuzz_plan.py`` checks, as hypothesis properties: any text
gives a ``PlanSpec`` or raises ``PlanError`` naming the source and its
problems, never anything else; a valid plan survives YAML (dump, load,
validate) unchanged; one bad value anywhere in a valid plan is refused with a
location naming its entry. The regression tests at the end are the inputs
the fuzzer found that used to escape as ``ValueError``/``RecursionError`` or
to make the loader do unbounded work.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from offhook.core.directory import PlanSnapshot
from offhook.db.plan_check import MAX_PROBLEMS, PlanError, parse_plan
from offhook.db.plan_spec import PlanSpec
from offhook.db.plan_yaml import MAX_PLAN_DEPTH, MAX_PLAN_NODES, parse_plan_text

SOURCE = "plan.yaml"
AUDIO = str(Path(__file__).resolve())  # any readable file does for a music on hold source
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,20}", fullmatch=True)
dns = st.from_regex(r"\+?[0-9*#]{1,12}", fullmatch=True)
# Free text fields: anything YAML can carry, SQL metacharacters included. Not
# surrogates, nor NEL/LS/PS: YAML 1.1 reads those as line breaks, and PyYAML's
# dumper writes them raw with allow_unicode (a dumper quirk, not the loader's).
YAML_BREAKS = "\x85\u2028\u2029"
free_text = st.one_of(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters=YAML_BREAKS),
        max_size=40,
    ),
    st.sampled_from(["'; DROP TABLE devices; --", 'a"b\\c', "Ünïcødé ☎ 電話", "%s%n"]),
)
labels = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=YAML_BREAKS),
    max_size=40,
)  # no control characters


def _check(text: bytes | str) -> PlanSpec | None:
    try:
        return parse_plan_text(text, SOURCE)
    except PlanError as err:
        assert err.problems
        assert str(err).startswith(f"{SOURCE}: ")
        return None


@st.composite
def valid_plans(draw: st.DrawFn) -> dict[str, Any]:
    partitions = draw(st.lists(names, max_size=3, unique=True))
    part = st.sampled_from(["", *partitions])
    css_names = draw(st.lists(names, max_size=2, unique=True))
    moh_names = draw(st.lists(names, max_size=2, unique=True))
    moh = st.sampled_from(["", "default", *moh_names])
    groups = [
        {"name": g, "servers": draw(st.lists(names, min_size=1, max_size=3, unique=True))}
        for g in draw(st.lists(names, max_size=2, unique=True))
    ]
    lists = [
        {
            "name": name,
            "groups": draw(
                st.lists(st.sampled_from([g["name"] for g in groups]), min_size=1, unique=True)
            ),
        }
        for name in (draw(st.lists(names, max_size=2, unique=True)) if groups else [])
    ]
    devices = []
    used: set[tuple[str, str]] = set()
    pickup_names = draw(st.lists(names, max_size=2, unique=True))
    for name in draw(st.lists(names, max_size=4, unique=True)):
        lines = []
        for dn in draw(st.lists(dns, max_size=3, unique=True)):
            lines.append(
                {
                    "dn": dn,
                    "display": draw(free_text.filter(lambda t: len(t) <= 128)),
                    "partition": draw(part),
                    "moh_source": draw(moh),
                    **draw(line_coverage(dn, css_names, pickup_names)),
                }
            )
            used.add((dn, lines[-1]["partition"]))
        devices.append(
            {
                "name": name,
                "protocol": "sip",
                "password": draw(free_text.filter(lambda t: 1 <= len(t) <= 30)),
                "description": draw(free_text),
                "css": draw(st.sampled_from(["", *css_names])),
                "max_calls": draw(st.integers(0, 100_000)),
                "lines": lines,
                "moh_source": draw(moh),
                "media_resource_list": draw(st.sampled_from(["", *(r["name"] for r in lists)])),
                "dnd_option": draw(st.sampled_from(["ringer-off", "reject"])),
                "privacy": draw(st.booleans()),
            }
        )
    if draw(st.booleans()):
        mac = draw(st.from_regex(r"[0-9A-F]{12}", fullmatch=True))
        devices.append(
            {
                "name": f"SEP{mac}",
                "protocol": "sccp",
                "model": draw(st.sampled_from(["7940", "7960", "7970"])),
                "speed_dials": [{"number": draw(dns), "label": draw(labels)}],
            }
        )
    assume(len({d["name"] for d in devices}) == len(devices))
    meetme = []
    for number in draw(st.lists(dns, max_size=3)):
        entry = {"number": number, "partition": draw(part)}
        if (number, entry["partition"]) in used:
            continue
        used.add((number, entry["partition"]))
        if draw(st.booleans()):
            entry["pin"] = draw(st.from_regex(r"[0-9]{1,16}", fullmatch=True))
        if draw(st.booleans()):
            entry["max_parties"] = draw(st.integers(2, 1000))
        meetme.append(entry)
    member_dns = sorted({ln["dn"] for d in devices for ln in d.get("lines", [])})
    return {
        **draw(coverage(partitions, css_names, pickup_names, member_dns, used)),
        "moh_sources": [{"name": name, "file": AUDIO} for name in moh_names],
        "meetme": meetme,
        "media_resource_groups": groups,
        "media_resource_lists": lists,
        "partitions": partitions,
        "calling_search_spaces": [
            {"name": c, "partitions": draw(st.lists(st.sampled_from(partitions), unique=True))}
            if partitions
            else {"name": c}
            for c in css_names
        ],
        "devices": devices,
    }


@st.composite
def line_coverage(
    draw: st.DrawFn, dn: str, css_names: list[str], pickup_names: list[str]
) -> dict[str, Any]:
    """A line's coverage keys, each present or not (an intercom line has no forwards)."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["intercom"] = draw(st.booleans())
    for key in (
        "forward_all",
        "forward_busy",
        "forward_no_answer",
        "forward_unregistered",
        "forward_busy_external",
        "forward_no_answer_external",
        "forward_unregistered_external",
    ):
        if not out.get("intercom") and draw(st.booleans()):
            out[key] = {
                "destination": draw(dns.filter(lambda d: d != dn)),
                "css": draw(st.sampled_from(["", *css_names])),
            }
    if draw(st.booleans()):
        out["cfna_timer"] = draw(st.one_of(st.integers(1, 600), st.floats(1, 600)))
    if draw(st.booleans()):
        out["voicemail"] = draw(dns)
    out["pickup_group"] = draw(st.sampled_from(["", *pickup_names]))
    return out


@st.composite
def coverage(
    draw: st.DrawFn,
    partitions: list[str],
    css_names: list[str],
    pickup_names: list[str],
    member_dns: list[str],
    used: set[tuple[str, str]],
) -> dict[str, Any]:
    """Line groups, hunt lists and pilots, pickup groups and park ranges: valid, their
    numbers free in their partition."""
    part = st.sampled_from(["", *partitions])

    def free(numbers: list[str], partition: str) -> bool:
        if any((n, partition) in used for n in numbers):
            return False
        used.update((n, partition) for n in numbers)
        return True

    groups = [
        {
            "name": g,
            "distribution": draw(
                st.sampled_from(["top-down", "circular", "longest-idle", "broadcast"])
            ),
            "rna_timeout": draw(st.integers(1, 600)),
            "on_busy": draw(st.sampled_from(["next-member", "next-group", "stop"])),
            "members": draw(st.lists(st.sampled_from(member_dns), unique=True))
            if member_dns
            else [],
        }
        for g in draw(st.lists(names, max_size=2, unique=True))
    ]
    hunt_lists = [
        {"name": h, "line_groups": [g["name"] for g in groups]}
        for h in (draw(st.lists(names, max_size=2, unique=True)) if groups else [])
    ]
    pilots = []
    for number in draw(st.lists(dns, max_size=2)) if hunt_lists else []:
        pilot = {
            "pattern": number,
            "partition": draw(part),
            "hunt_list": draw(st.sampled_from([h["name"] for h in hunt_lists])),
            "final_forward": draw(st.sampled_from(["", *member_dns])),
            "final_css": draw(st.sampled_from(["", *css_names])),
        }
        if pilot["final_forward"] != pilot["pattern"] and free(
            [pilot["pattern"]], pilot["partition"]
        ):
            pilots.append(pilot)
    pickups = []
    for name in pickup_names:
        entry = {"name": name, "partition": draw(part)}
        number = draw(st.one_of(st.just(""), st.from_regex(r"[0-9]{1,8}", fullmatch=True)))
        entry["number"] = number if number and free([number], entry["partition"]) else ""
        pickups.append(entry)
    parks = []
    for _ in range(draw(st.integers(0, 2))):
        first = draw(st.integers(0, 9990))
        count = draw(st.integers(1, 10))
        width = draw(st.integers(4, 6))
        numbers = [str(n).zfill(width) for n in range(first, first + count)]
        entry = {
            "range": numbers[0] if count == 1 else f"{numbers[0]}-{numbers[-1]}",
            "partition": draw(part),
            "reversion": draw(st.integers(0, 3600)),
        }
        if free(numbers, entry["partition"]):
            parks.append(entry)
    return {
        "line_groups": groups,
        "hunt_lists": hunt_lists,
        "hunt_pilots": pilots,
        "pickup_groups": pickups,
        "call_park": parks,
    }


@PROPS
@given(st.binary(max_size=600))
def test_any_bytes_parse_or_plan_error(data: bytes) -> None:
    _check(data)


@PROPS
@given(st.text(alphabet=string.printable + "[]{}&*!|>'\"%@`:-,#?ü☎", max_size=300))
def test_any_yaml_like_text_parses_or_plan_error(text: str) -> None:
    _check(text)
    _check("devices:\n  - " + text)


@PROPS
@given(valid_plans())
def test_valid_plan_survives_yaml(raw: dict[str, Any]) -> None:
    direct = parse_plan(raw, SOURCE)
    text = yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)
    assert parse_plan_text(text, SOURCE) == direct
    assert parse_plan_text(text.encode("utf-8"), SOURCE) == direct
    assert [d.name for d in direct.devices] == [d["name"] for d in raw["devices"]]
    assert [m.file for m in direct.moh_sources] == [AUDIO] * len(raw["moh_sources"])
    spec = direct.dialplan_spec()
    assert len(spec.meetme) == len(raw["meetme"])
    assert len(spec.hunt_pilots) == len(raw["hunt_pilots"])
    assert len(spec.call_park) == len(raw["call_park"])
    assert list(direct.line_group_models()) == [g["name"] for g in raw["line_groups"]]
    infos = direct.device_infos()
    assert [d.privacy for d in infos] == [d.get("privacy", False) for d in raw["devices"]]
    assert [ln.intercom for d in infos for ln in d.lines] == [
        ln.get("intercom", False) for d in raw["devices"] for ln in d.get("lines", [])
    ]
    # The analyzer takes every coverage number (no collision the checks missed).
    assert PlanSnapshot.build(direct.device_infos(), 0, spec) is not None


_BAD_VALUES: list[tuple[str, Any]] = [
    ("dn", "12a"),
    ("dn", 1001),
    ("name", "bad name with spaces"),
    ("max_calls", -1),
    ("protocol", "h323"),
    ("css", "no-such-css"),
    ("partition", "no-such-partition"),
    ("moh_source", "no-such-source"),
    ("media_resource_list", "no-such-list"),
    ("dnd_option", "loud"),
    ("privacy", "on"),
    ("intercom", 1),
    ("forward_busy_external", {"destination": "1x"}),
    ("pickup_group", "no-such-group"),
    ("unknown_key", 1),
]


@PROPS
@given(valid_plans(), st.data())
def test_one_bad_value_is_refused_at_its_entry(raw: dict[str, Any], data: st.DataObject) -> None:
    sip = [d for d in raw["devices"] if d["protocol"] == "sip" and d["lines"]]
    assume(sip)
    i = data.draw(st.integers(0, len(sip) - 1))
    key, value = data.draw(st.sampled_from(_BAD_VALUES))
    dev = sip[i]
    if key in ("dn", "partition", "pickup_group", "intercom", "forward_busy_external"):
        dev["lines"][0][key] = value
    else:
        dev[key] = value
    with pytest.raises(PlanError) as info:
        parse_plan_text(yaml.safe_dump(raw, allow_unicode=True), SOURCE)
    index = raw["devices"].index(dev)
    assert any(loc.startswith(f"devices[{index}]") for loc, _ in info.value.problems), (
        info.value.problems
    )


# -- what the fuzzer found (fuzz/README.md) ---------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "devices: []\nwhen: 2020-02-30\n",  # a date that does not exist: ValueError
        "devices: [2001-12-14t21:59:43.10-99:99]\n",  # an offset of days
        "devices: [{name: a, max_calls: 1" + "0" * 5000 + "}]\n",  # > 4300 digits
        "devices: " + "[" * 5000 + "]" * 5000,  # RecursionError in the composer
        "devices: " + "{a: " * 3000 + "1" + "}" * 3000,
        "devices: \xff",
    ],
    ids=["no-such-date", "offset-of-days", "huge-int", "deep-seq", "deep-map", "bad-utf8"],
)
def test_constructor_and_depth_errors_are_plan_errors(text: str) -> None:
    data = text.encode("latin-1") if "\xff" in text else text.encode()
    with pytest.raises(PlanError) as info:
        parse_plan_text(data, SOURCE)
    assert "invalid YAML" in str(info.value)


def test_nesting_up_to_the_limit_is_fine() -> None:
    deep = "[" * (MAX_PLAN_DEPTH - 2) + "]" * (MAX_PLAN_DEPTH - 2)
    with pytest.raises(PlanError) as info:
        parse_plan_text(f"devices: []\npartitions: {deep}\n", SOURCE)
    assert "invalid YAML" not in str(info.value)  # refused by the schema, not the loader


def test_alias_bomb_is_refused_before_validation() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    lines.append("devices: *a7")
    with pytest.raises(PlanError) as info:
        parse_plan_text("\n".join(lines), SOURCE)
    assert f"more than {MAX_PLAN_NODES} YAML nodes" in str(info.value)


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(PlanError) as info:
        parse_plan_text("devices: &a [*a]\n", SOURCE)
    assert "contains it" in str(info.value)


def test_shared_anchor_within_limits_is_fine() -> None:
    text = (
        "base: &line {dn: '1001'}\n"
        "devices:\n"
        "  - {name: a, protocol: sip, password: p, lines: [*line]}\n"
        "  - {name: b, protocol: sip, password: p, lines: [*line]}\n"
    )
    with pytest.raises(PlanError) as info:  # "base" is not a plan key
        parse_plan_text(text, SOURCE)
    assert info.value.problems == [("base", "unknown key")]
    plan = parse_plan_text(text.split("\n", 1)[1].replace("*line", "{dn: '1001'}"), SOURCE)
    assert [d.lines[0].dn for d in plan.devices] == ["1001", "1001"]


def test_problems_are_capped() -> None:
    text = "devices:\n" + "".join(f"  - {i}\n" for i in range(MAX_PROBLEMS * 3))
    with pytest.raises(PlanError) as info:
        parse_plan_text(text, SOURCE)
    assert len(info.value.problems) == MAX_PROBLEMS + 1
    assert info.value.problems[-1] == ("", f"and {MAX_PROBLEMS * 2} more problems")
