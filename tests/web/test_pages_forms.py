"""The plan forms' builder and parser (``web.pages_forms``), property-based.

- any posted form, for every section's model, parses to a mapping of the
  model's own keys and a list of located problems; nothing raises;
- a valid object shown in its form and posted back unchanged is the same
  object (every section, from a rich plan; and generated devices);
- the editor's problem locations land on the form's field names.
"""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.db.plan_sections import SECTIONS, plan_model, view_of
from offhook.db.plan_spec import DeviceSpec
from offhook.web.pages_forms import field_errors, form_fields, parse_form, posted, split_list

RICH_PLAN: dict[str, list[Any]] = {
    "devices": [
        {
            "name": "alice",
            "protocol": "sip",
            "password": "alice-Secret-1",
            "description": "Front desk",
            "css": "staff",
            "max_calls": 2,
            "dnd_option": "reject",
            "privacy": True,
            "lines": [
                {
                    "dn": "1001",
                    "display": "Alice Smith",
                    "partition": "internal",
                    "forward_busy": {"destination": "8000", "css": "staff"},
                    "forward_no_answer": {"destination": "8000"},
                    "cfna_timer": 15,
                    "voicemail": "8000",
                    "pickup_group": "office",
                },
                {"dn": "1091", "intercom": True},
            ],
        },
        {
            "name": "SEP001122334455",
            "protocol": "sccp",
            "model": "7960",
            "lines": [{"dn": "1011"}],
            "speed_dials": [{"number": "1001", "label": "Alice"}, {"number": "9"}],
        },
    ],
    "partitions": ["internal"],
    "calling_search_spaces": [{"name": "staff", "partitions": ["internal", "pstn"]}],
    "trunks": [
        {
            "name": "carrier",
            "protocol": "sip",
            "host": "192.0.2.10",
            "port": 5080,
            "transport": "tcp",
            "css": "inbound",
            "username": "acct",
            "register": True,
            "options_ping": 20,
            "inbound_addresses": ["192.0.2.0/24", "2001:db8::/32"],
        }
    ],
    "route_groups": [
        {
            "name": "carriers",
            "distribution": "circular",
            "members": [{"trunk": "carrier", "called_transform": {"prefix": "0"}}],
        }
    ],
    "route_lists": [{"name": "out", "groups": ["carriers"]}],
    "route_patterns": [
        {
            "pattern": "9.1[2-9]XX[2-9]XXXXXX",
            "partition": "pstn",
            "route_list": "out",
            "urgent": True,
            "called_transform": {"discard": "pre-dot", "prefix": "+"},
        },
        {"pattern": "9.1900XXXXXXX", "partition": "pstn", "block": True, "block_cause": 17},
    ],
    "translation_patterns": [
        {
            "pattern": "0",
            "partition": "internal",
            "css": "staff",
            "called_transform": {"replace": "1000"},
        }
    ],
    "moh_sources": [{"name": "jazz", "file": "/srv/moh/jazz.wav"}],
    "meetme": [{"number": "5000", "partition": "internal", "pin": "1234", "max_parties": 8}],
    "media_resource_groups": [{"name": "local", "servers": ["embedded"]}],
    "media_resource_lists": [{"name": "standard", "groups": ["local"]}],
    "line_groups": [
        {
            "name": "support",
            "distribution": "broadcast",
            "rna_timeout": 12.5,
            "on_busy": "stop",
            "members": ["1001", "1011"],
        }
    ],
    "hunt_lists": [{"name": "support", "line_groups": ["support"]}],
    "hunt_pilots": [
        {
            "pattern": "1500",
            "partition": "internal",
            "hunt_list": "support",
            "final_forward": "8000",
        }
    ],
    "pickup_groups": [{"name": "office", "number": "8100", "partition": "internal"}],
    "call_park": [{"range": "7000-7009", "partition": "internal", "reversion": 0}],
    "cti_route_points": [
        {
            "name": "ivr",
            "dn": "3000",
            "partition": "internal",
            "css": "staff",
            "timeout": 2.5,
            "default": "1001",
        },
        {"name": "queue", "dn": "3001"},
    ],
    "cti_ports": [{"name": "port1", "dn": "3100", "partition": "internal", "css": "staff"}],
}

FORM_NAMES = st.sampled_from(
    [
        "name",
        "protocol",
        "password",
        "max_calls",
        "privacy",
        "lines[0].dn",
        "lines[0].forward_all.destination",
        "lines[0].cfna_timer",
        "lines[999].dn",
        "lines[1000].dn",
        "lines[-1].dn",
        "lines[x].dn",
        "lines[0]",
        "speed_dials[3].number",
        "members[0].trunk",
        "members[0].called_transform.prefix",
        "partitions",
        "register",
        "port",
        "rna_timeout",
        "csrf_token",
    ]
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


def round_trip(section: str, entry: Any) -> None:
    sec = SECTIONS[section]
    view = view_of(sec, plan_model(sec, entry))
    form = posted(form_fields(sec.spec, view))
    parsed, problems = parse_form(sec.spec, form)
    assert problems == []
    secret = {
        k: v for k, v in (entry.items() if isinstance(entry, dict) else []) if k in sec.secrets
    }
    again = view_of(sec, sec.spec.model_validate({**parsed, **secret}))
    assert again == view, (section, parsed)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_section_round_trips_through_its_form(section: str) -> None:
    entries = RICH_PLAN[section]
    assert entries
    for entry in entries:
        round_trip(section, entry)


@pytest.mark.parametrize("section", sorted(SECTIONS))
@settings(max_examples=60, deadline=None)
@given(form=st.dictionaries(st.one_of(FORM_NAMES, TEXT), TEXT, max_size=12))
def test_any_posted_form_parses_without_raising(section: str, form: dict[str, str]) -> None:
    model = SECTIONS[section].spec
    parsed, problems = parse_form(model, form)
    keys = {info.alias or name for name, info in model.model_fields.items()}
    assert set(parsed) <= keys
    for p in problems:
        assert set(p) == {"loc", "msg"} and p["loc"] and p["msg"]


DN = st.text(alphabet="0123456789*#+", min_size=1, max_size=32)
NAME = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._@+-]{0,20}\Z")
DISPLAY = st.text(alphabet=string.ascii_letters + string.digits + " '<>&\"éü-", max_size=40).map(
    str.strip
)


@st.composite
def sip_devices(draw: st.DrawFn) -> dict[str, Any]:
    dns = draw(st.lists(DN, min_size=0, max_size=4, unique=True))
    lines = []
    for dn in dns:
        line: dict[str, Any] = {"dn": dn, "display": draw(DISPLAY)}
        if draw(st.booleans()):
            line["forward_busy"] = {"destination": draw(DN)}
        if draw(st.booleans()):
            line["cfna_timer"] = draw(st.integers(1, 600))
        lines.append(line)
    return {
        "name": draw(NAME),
        "protocol": "sip",
        "password": "pw-Secret-1",
        "description": draw(DISPLAY),
        "max_calls": draw(st.integers(0, 100)),
        "privacy": draw(st.booleans()),
        "dnd_option": draw(st.sampled_from(["ringer-off", "reject"])),
        "lines": lines,
    }


@settings(max_examples=150, deadline=None)
@given(device=sip_devices())
def test_generated_devices_round_trip(device: dict[str, Any]) -> None:
    round_trip("devices", device)


def test_an_empty_new_row_is_dropped_and_rows_are_renumbered() -> None:
    form = {
        "name": "x",
        "protocol": "sip",
        "lines[0].dn": "",
        "lines[3].dn": "1002",
        "lines[3].cfna_timer": "soon",
        "lines[7].display": "",
    }
    parsed, problems = parse_form(DeviceSpec, form)
    assert parsed["lines"] == [{"dn": "1002"}]
    assert problems == [{"loc": "lines[0].cfna_timer", "msg": "'soon' is not a number"}]


def test_editor_locations_name_the_form_fields() -> None:
    by_field, summary = field_errors(
        [
            {"loc": "devices[alice].lines[0].dn", "msg": "bad dn"},
            {"loc": "devices[alice]", "msg": "whole object"},
            {"loc": "calling_search_spaces[staff].partitions[1]", "msg": "unknown partition"},
        ],
        "devices",
    )
    assert by_field["lines[0].dn"] == "bad dn"
    assert "" not in by_field and len(summary) == 3
    css, _ = field_errors(
        [{"loc": "calling_search_spaces[staff].partitions[1]", "msg": "unknown"}],
        "calling_search_spaces",
    )
    assert css["partitions"] == "unknown"


def test_split_list_keeps_order_and_drops_blanks() -> None:
    assert split_list("b, a,,\n c ,") == ["b", "a", "c"]
