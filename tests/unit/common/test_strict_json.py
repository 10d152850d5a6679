"""strict_json: what it accepts encodes back; non-finite numbers are refused."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common import strict_json


@pytest.mark.parametrize(
    "text", ["NaN", "-Infinity", "Infinity", "1e999", "[-1e400]", '{"a": 2e308}']
)
def test_numbers_that_are_not_finite_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="number"):
        strict_json.loads(text)


def test_finite_floats_keep_their_value() -> None:
    assert strict_json.loads("[1.5, -0.0, 1.7976931348623157e308, 5e-324]") == [
        1.5,
        -0.0,
        1.7976931348623157e308,
        5e-324,
    ]


@given(st.text(alphabet='0123456789.eE+-[]{}:," aNIfinty', max_size=60))
def test_whatever_it_accepts_encodes_back_without_nan(text: str) -> None:
    try:
        value = strict_json.loads(text)
    except (ValueError, RecursionError):
        return
    assert json.loads(json.dumps(value, allow_nan=False)) == value


@given(st.floats(allow_nan=False))
def test_any_encoded_float_reads_back(number: float) -> None:
    text = json.dumps(number)
    if math.isfinite(number):
        assert strict_json.loads(text) == number
    else:
        with pytest.raises(ValueError):
            strict_json.loads(text)


def _verdict(load: object, text: str | bytes) -> object:
    try:
        return ("ok", json.dumps(load(text), sort_keys=True))  # type: ignore[operator]
    except (ValueError, RecursionError) as exc:
        return ("refused", type(exc).__name__)


def _reference(text: str | bytes) -> object:
    """What strict_json.loads is: ``json.loads`` with the hooks, a decoder a call."""
    return json.loads(
        text,
        parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)),
        parse_float=lambda t: (
            float(t) if math.isfinite(float(t)) else (_ for _ in ()).throw(ValueError(t))
        ),
    )


@given(
    st.one_of(
        st.text(alphabet='0123456789.eE+-[]{}:," aNIfintyu\\\ufeff\u00e9', max_size=60),
        st.binary(max_size=40),
        st.recursive(
            st.one_of(st.integers(), st.text(max_size=5), st.floats(allow_nan=False)),
            lambda inner: st.lists(inner, max_size=3),
            max_leaves=8,
        ).map(json.dumps),
    )
)
def test_the_decoder_built_once_decides_as_json_loads(text: str | bytes) -> None:
    assert _verdict(strict_json.loads, text) == _verdict(_reference, text)
