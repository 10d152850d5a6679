"""Calling/called party transformations: DDIs, replace, masks, prefix, presentation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.core.dialplan.model import Presentation, Transform
from offhook.core.dialplan.pattern import compile_pattern
from offhook.core.dialplan.transform import (
    DISCARD_INSTRUCTIONS,
    apply_called,
    apply_calling,
    apply_mask,
    discard,
    merge_override,
    validate_transform,
)


class DotAt:
    """A stand-in for a matched pattern whose '.' follows ``n`` digits."""

    def __init__(self, n: int) -> None:
        self.n = n

    def discard_split(self, digits: str) -> tuple[str, str]:
        return digits[: self.n], digits[self.n :]


# -- digit discard instructions ---------------------------------------------


def test_supported_ddis() -> None:
    assert set(DISCARD_INSTRUCTIONS) == {"none", "pre-dot", "pre-dot-trailing-#", "trailing-#"}


def test_pre_dot() -> None:
    assert discard("pre-dot", "914155551234", DotAt(1)) == "14155551234"
    assert discard("pre-dot", "0011441234#", DotAt(3)) == "1441234#"


def test_pre_dot_without_dot_discards_nothing() -> None:
    assert discard("pre-dot", "1234", DotAt(0)) == "1234"
    assert discard("pre-dot", "1234", None) == "1234"


def test_pre_dot_trailing_hash() -> None:
    assert discard("pre-dot-trailing-#", "9011441234#", DotAt(1)) == "011441234"
    assert discard("pre-dot-trailing-#", "9011441234", DotAt(1)) == "011441234"


def test_trailing_hash() -> None:
    assert discard("trailing-#", "9011441234#", DotAt(1)) == "9011441234"
    assert discard("trailing-#", "1234", None) == "1234"
    assert discard("trailing-#", "12#3", None) == "12#3"  # only a trailing #


def test_none_and_no_instruction() -> None:
    assert discard("none", "91234", DotAt(1)) == "91234"
    assert discard(None, "91234", DotAt(1)) == "91234"


@pytest.mark.parametrize("name", ["pre-at", "11d/10d@7d", "10-10-dialing", "PreDot", "bogus"])
def test_unsupported_ddi(name: str) -> None:
    with pytest.raises(ValueError, match="unsupported digit discard instruction"):
        validate_transform(Transform(discard=name))
    with pytest.raises(ValueError, match="unsupported"):
        apply_called(Transform(discard=name), "91234", DotAt(1))


# -- masks -------------------------------------------------------------------


def test_mask_equal_length() -> None:
    assert apply_mask("5551XXXX", "12345678") == "55515678"


def test_mask_number_longer_drops_leading_digits() -> None:
    assert apply_mask("XXXX", "14155551234") == "1234"
    assert apply_mask("5551XXXX", "14155551234") == "55511234"


def test_mask_number_shorter_keeps_literals_drops_x() -> None:
    # 4-digit extension into a 10-digit E.164-ish number (external phone number mask).
    assert apply_mask("41555XXXXX", "51234") == "4155551234"
    assert apply_mask("4085551XXX", "23") == "408555123"
    # X beyond the start of the number has no digit to keep: nothing.
    assert apply_mask("XXXX", "56") == "56"
    assert apply_mask("XXXX1234", "56") == "1234"


def test_mask_all_literal_replaces() -> None:
    assert apply_mask("4085553000", "35062") == "4085553000"


def test_mask_with_star_hash_plus() -> None:
    assert apply_mask("+1XXX", "234") == "+1234"
    assert apply_mask("*XX#", "123") == "*12#"  # "#" replaces the last digit


# -- whole transforms --------------------------------------------------------


def test_empty_transform_is_identity() -> None:
    assert apply_called(Transform(), "1234", None) == "1234"
    assert apply_calling(Transform(), "1001") == ("1001", None)


def test_replace() -> None:
    assert apply_called(Transform(replace="1000"), "0", None) == "1000"


def test_prefix() -> None:
    assert apply_called(Transform(prefix="+"), "14155551234", None) == "+14155551234"


def test_pre_dot_then_prefix() -> None:
    t = Transform(discard="pre-dot", prefix="+")
    assert apply_called(t, "914155551234", DotAt(1)) == "+14155551234"


def test_order_discard_replace_mask_prefix() -> None:
    # discard runs first, replace overrides it, the mask shapes the
    # replacement, the prefix comes last.
    t = Transform(discard="pre-dot", replace="5551234", mask="408XXXXXXX", prefix="1")
    assert apply_called(t, "95550000", DotAt(1)) == "14085551234"


def test_discard_then_mask_then_prefix() -> None:
    t = Transform(discard="pre-dot-trailing-#", mask="XXXX", prefix="0")
    assert apply_called(t, "8014155551234#", DotAt(2)) == "01234"


def test_calling_mask_and_presentation() -> None:
    t = Transform(mask="4085553XXX", presentation=Presentation.RESTRICTED)
    assert apply_calling(t, "35062") == ("4085553062", Presentation.RESTRICTED)


def test_calling_presentation_allowed() -> None:
    t = Transform(presentation=Presentation.ALLOWED)
    assert apply_calling(t, "1001") == ("1001", Presentation.ALLOWED)


def test_calling_prefix_and_trailing_hash() -> None:
    t = Transform(discard="trailing-#", prefix="+1")
    assert apply_calling(t, "4155551234#") == ("+14155551234", None)


# -- validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "message"),
    [
        (Transform(mask="55A1XXXX"), "mask '55A1XXXX' has characters not allowed: 'A'"),
        (Transform(mask=""), "mask is empty"),
        (Transform(prefix="9 "), "prefix '9 ' has characters not allowed"),
        (Transform(replace="10x0"), "replace '10x0' has characters not allowed: 'x'"),
        (Transform(replace="1X00"), "replace '1X00' has characters not allowed: 'X'"),
    ],
)
def test_validate_refuses(t: Transform, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_transform(t)
    assert message in str(info.value)


def test_validate_accepts() -> None:
    validate_transform(Transform())
    validate_transform(Transform(discard="pre-dot", prefix="+"))
    validate_transform(Transform(mask="+1408555XXXX", prefix="*#"))
    validate_transform(Transform(replace="", presentation=Presentation.RESTRICTED))
    validate_transform(Transform(discard="trailing-#", mask="XXXX"), calling=True)


@pytest.mark.parametrize("ddi", ["pre-dot", "pre-dot-trailing-#"])
def test_calling_transform_refuses_dot_ddis(ddi: str) -> None:
    validate_transform(Transform(discard=ddi))
    with pytest.raises(ValueError, match="called number only"):
        validate_transform(Transform(discard=ddi), calling=True)


# -- route list detail override ---------------------------------------------


def test_merge_override_empty_keeps_base() -> None:
    base = Transform(discard="pre-dot", prefix="+")
    assert merge_override(base, Transform()) is base


def test_merge_override_field_by_field() -> None:
    base = Transform(discard="pre-dot", prefix="+", presentation=Presentation.ALLOWED)
    member = Transform(prefix="011", mask="XXXXXXXXXX")
    merged = merge_override(base, member)
    assert merged == Transform(
        discard="pre-dot", mask="XXXXXXXXXX", prefix="011", presentation=Presentation.ALLOWED
    )


# -- with the real pattern language ------------------------------------------


def test_pre_dot_with_compiled_pattern() -> None:
    p = compile_pattern("9.1[2-9]XX[2-9]XXXXXX")
    t = Transform(discard="pre-dot", prefix="+")
    assert apply_called(t, "914155551234", p) == "+14155551234"
    p = compile_pattern("0.00!#")
    t = Transform(discard="pre-dot-trailing-#")
    assert apply_called(t, "000441234#", p) == "00441234"


# -- properties ------------------------------------------------------------------

numbers = st.text(alphabet="0123456789*#", max_size=20)
masks = st.text(alphabet="0123456789X*#+", min_size=1, max_size=20)


@given(numbers, masks)
def test_mask_length(number: str, mask: str) -> None:
    out = apply_mask(mask, number)
    literals = sum(1 for c in mask if c != "X")
    if len(number) >= len(mask):
        assert len(out) == len(mask)
    else:
        assert literals <= len(out) <= len(mask)
    # the last X of the mask keeps the number's corresponding digit
    if mask.endswith("X") and number:
        assert out[-1] == number[-1]


@given(numbers, st.integers(min_value=1, max_value=20))
def test_all_x_mask_keeps_last_digits(number: str, n: int) -> None:
    assert apply_mask("X" * n, number) == number[-n:]
