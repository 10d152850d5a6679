"""``db.plan_sections``: keys, JSON merge patch (RFC 7396), ETags, If-Match and plan
locations, with properties over generated values (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from offhook.db.plan_sections import (
    SECTIONS,
    etag_of,
    if_match_ok,
    label_located,
    located,
    merge_patch,
)
from offhook.db.plan_spec import PlanSpec

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=4), json_values, max_size=4)


def test_sections_are_the_plan_in_its_order() -> None:
    assert list(SECTIONS) == list(PlanSpec.model_fields)


def test_keys() -> None:
    assert SECTIONS["devices"].key({"name": "alice"}) == "alice"
    assert SECTIONS["partitions"].key("internal") == "internal"
    assert SECTIONS["partitions"].key({"name": "internal"}) == "internal"
    patterns = SECTIONS["route_patterns"]
    assert patterns.key({"pattern": "9.1XXX", "partition": "pstn"}) == "pstn/9.1XXX"
    assert patterns.key({"pattern": "9.1XXX", "partition": ""}) == "9.1XXX"
    assert SECTIONS["meetme"].key({"number": "5000"}) == "5000"
    assert SECTIONS["call_park"].key({"range": "7000-7009", "partition": "p"}) == "p/7000-7009"
    assert SECTIONS["devices"].key({"name": 5}) == ""
    assert SECTIONS["devices"].key(["not", "a", "mapping"]) == ""


@given(json_objects)
def test_an_empty_patch_changes_nothing(target: dict[str, Any]) -> None:
    assert merge_patch(target, {}) == target


@given(json_objects, json_objects)
def test_merge_patch_properties(target: dict[str, Any], patch: dict[str, Any]) -> None:
    merged = merge_patch(target, patch)
    # Idempotent (RFC 7396 §1), no key the patch nulls, every key it does not name kept.
    assert merge_patch(merged, patch) == merged
    for key, value in patch.items():
        if value is None:
            assert key not in merged
        elif not isinstance(value, dict):
            assert merged[key] == value
    for key, value in target.items():
        if key not in patch:
            assert merged[key] == value
    assert target == merge_patch(target, {})  # the target itself is not changed


@given(json_values, json_values)
def test_merge_patch_takes_any_value(target: Any, patch: Any) -> None:
    merge_patch(target, patch)


def test_merge_patch_rfc7396_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


@given(st.dictionaries(st.text(max_size=6), json_scalars, max_size=6))
def test_etag_ignores_key_order(view: dict[str, Any]) -> None:
    reordered = dict(reversed(list(view.items())))
    assert etag_of(view) == etag_of(reordered)
    assert etag_of(view).startswith('"') and len(etag_of(view)) == 66


def test_etag_differs_with_the_content() -> None:
    assert etag_of({"a": 1}) != etag_of({"a": 2})


@given(st.text(max_size=200))
def test_if_match_takes_any_text(value: str) -> None:
    etag = etag_of({"x": 1})
    assert if_match_ok(value, etag) in (True, False)
    assert if_match_ok(f"{value}, {etag}", etag)


def test_if_match() -> None:
    etag = etag_of({"x": 1})
    assert if_match_ok(None, etag)
    assert if_match_ok("*", etag)
    assert if_match_ok(etag, etag)
    assert if_match_ok(f"W/{etag}", etag)
    assert not if_match_ok('"other"', etag)
    assert not if_match_ok(etag.strip('"'), etag)


def test_locations() -> None:
    data = {
        "devices": [{"name": "alice"}, {"name": "bob"}],
        "route_patterns": [{"pattern": "9.X", "partition": "pstn"}],
    }
    assert located("devices[1] (bob).lines[0].dn", data) == (
        "devices[bob].lines[0].dn",
        "devices",
        1,
    )
    assert located("route_patterns[0] (9.X).route_list", data) == (
        "route_patterns[pstn/9.X].route_list",
        "route_patterns",
        0,
    )
    assert located(
        "route_groups[0] (g).members[1] (backup)", {"route_groups": [{"name": "g"}]}
    ) == ("route_groups[g].members[1]", "route_groups", 0)
    assert located("", data) == ("", "", None)
    assert label_located("devices[3] (x).lines[0] (y).dn") == "devices[x].lines[0].dn"


@given(st.text(max_size=80))
def test_locations_take_any_text(loc: str) -> None:
    where, section, index = located(loc, {"devices": [{"name": "a"}]})
    assert isinstance(where, str)
    assert section == "" or section in SECTIONS
    assert index is None or index >= 0
    assert isinstance(label_located(loc), str)
