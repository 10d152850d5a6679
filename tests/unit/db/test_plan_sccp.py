"""SCCP devices in a plan (no database): SEP names, models, speed dials, precise messages."""

from __future__ import annotations

from typing import Any

import pytest

from offhook.db.plan_check import PlanError, parse_plan
from offhook.db.plan_spec import SCCP_MODELS
from offhook.sccp.templates import MODEL_BUTTONS


def phone(**extra: Any) -> dict[str, Any]:
    dev: dict[str, Any] = {
        "name": "SEP001122334455",
        "protocol": "sccp",
        "model": "7960",
        "css": "staff",
        "lines": [{"dn": "1003", "partition": "internal", "display": "Carol"}],
        "speed_dials": [{"number": "1001", "label": "Alice"}],
    }
    dev.update(extra)
    return dev


def plan(*devices: dict[str, Any]) -> dict[str, Any]:
    return {
        "partitions": ["internal"],
        "calling_search_spaces": [{"name": "staff", "partitions": ["internal"]}],
        "devices": list(devices),
    }


def problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(PlanError) as info:
        parse_plan(data, "plan.yaml")
    assert str(info.value).startswith("plan.yaml: ")
    return info.value.problems


def test_models_are_the_button_templates() -> None:
    """db may not import a protocol package: its copy of the model list must stay equal."""
    assert set(MODEL_BUTTONS) == SCCP_MODELS
    assert {"7912", "7940", "7941", "7960", "7961", "7970", "7971"} <= SCCP_MODELS


def test_issue_example() -> None:
    spec = parse_plan(plan(phone()), "p")
    dev = spec.devices[0]
    assert (dev.name, dev.protocol) == ("SEP001122334455", "sccp")
    assert (dev.model, dev.css) == ("7960", "staff")
    assert [(sd.number, sd.label) for sd in dev.speed_dials] == [("1001", "Alice")]
    assert dev.password is None


def test_name_is_upper_cased() -> None:
    spec = parse_plan(plan(phone(name="sep00aabbccddee")), "p")
    assert spec.devices[0].name == "SEP00AABBCCDDEE"


def test_same_phone_twice_in_two_spellings() -> None:
    found = problems(plan(phone(), phone(name="sep001122334455")))
    assert found == [
        ("devices[1] (SEP001122334455).name", "duplicate device name (first at devices[0])")
    ]


@pytest.mark.parametrize(
    "name", ["SEP0011223344", "SEP00112233445566", "SEP00112233445G", "phone1", "001122334455"]
)
def test_bad_sep_name(name: str) -> None:
    found = problems(plan(phone(name=name)))
    assert len(found) == 1, found
    loc, msg = found[0]
    assert loc == f"devices[0] ({name}).name"
    assert "SEP" in msg and "12 hex digits" in msg


def test_model_required() -> None:
    dev = phone()
    del dev["model"]
    found = problems(plan(dev))
    assert found == [
        (
            "devices[0] (SEP001122334455).model",
            "an sccp device needs a model (one of 7912, 7940, 7941, 7960, 7961, 7970, 7971)",
        )
    ]


def test_unknown_model() -> None:
    found = problems(plan(phone(model="7999")))
    assert found == [
        (
            "devices[0] (SEP001122334455).model",
            "'7999' is not a known SCCP phone model (7912, 7940, 7941, 7960, 7961, 7970, 7971)",
        )
    ]


def test_model_as_a_yaml_number() -> None:
    found = problems(plan(phone(model=7960)))
    assert len(found) == 1 and found[0][0] == "devices[0] (SEP001122334455).model"
    assert "quoted string" in found[0][1]


def test_no_password() -> None:
    found = problems(plan(phone(password="secret")))
    assert found == [
        (
            "devices[0] (SEP001122334455).password",
            "an sccp device has no password (SCCP phones do not authenticate)",
        )
    ]


def test_every_sccp_problem_at_once() -> None:
    found = problems(plan(phone(name="SEPXYZ", model="", password="x")))
    assert [loc for loc, _ in found] == [
        "devices[0] (SEPXYZ).name",
        "devices[0] (SEPXYZ).model",
        "devices[0] (SEPXYZ).password",
    ]


def test_speed_dials_only_on_sccp() -> None:
    sip = {"name": "alice", "protocol": "sip", "password": "a-Secret-1", "model": "any"}
    assert parse_plan(plan(sip), "p").devices[0].model == "any"  # free text on sip
    found = problems(plan({**sip, "speed_dials": [{"number": "1002"}]}))
    assert found == [("devices[0] (alice).speed_dials", "speed dials are for sccp devices only")]


@pytest.mark.parametrize(
    ("dial", "where", "what"),
    [
        ({"number": ""}, ".number", "not a dialable number"),
        ({"number": "12 34"}, ".number", "not a dialable number"),
        ({"number": 1001}, ".number", "quoted string"),
        ({"label": "x"}, ".number", "required key missing"),
        ({"number": "1", "label": "x" * 41}, ".label", "at most 40 characters"),
        ({"number": "1", "label": "a\nb"}, ".label", "control character"),
        ({"number": "1", "lable": "x"}, ".lable", "unknown key"),
    ],
)
def test_bad_speed_dial(dial: dict[str, Any], where: str, what: str) -> None:
    good = {"number": "1001", "label": "Alice"}
    found = problems(plan(phone(speed_dials=[good, dial])))
    assert any(
        loc == f"devices[0] (SEP001122334455).speed_dials[1]{where}" and what in msg
        for loc, msg in found
    ), found


def test_speed_dial_label_of_40_and_external_number() -> None:
    dials = [{"number": "9+14155550100", "label": "y" * 40}, {"number": "*67#"}]
    spec = parse_plan(plan(phone(speed_dials=dials)), "p")
    assert [sd.label for sd in spec.devices[0].speed_dials] == ["y" * 40, ""]
