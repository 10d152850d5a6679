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
    for name in draw(st.lists(names, max_size=4, unique=True)):
        lines = []
        for dn in draw(st.lists(dns, max_size=3, unique=True)):
            lines.append(
                {
                    "dn": dn,
                    "display": draw(free_text.filter(lambda t: len(t) <= 128)),
                    "partition": draw(part),
                    "moh_source": draw(moh),
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
    return {
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
    assert len(direct.dialplan_spec().meetme) == len(raw["meetme"])


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
    if key in ("dn", "partition"):
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
