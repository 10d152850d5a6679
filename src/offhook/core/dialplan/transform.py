"""Calling and called party transformations (Cisco CallManager semantics).

A :class:`~offhook.core.dialplan.model.Transform` is applied in a fixed order:

1. ``discard``: a digit discard instruction (DDI). Only the DDIs in
   :data:`DISCARD_INSTRUCTIONS` are supported; ``pre-at``, ``11d/10d@7d``,
   ``10-10-dialing`` and the other ``@`` (North American numbering plan)
   instructions are not, and :func:`validate_transform` refuses them so the
   plan loader can report where they were used.
2. ``replace``: the whole number is replaced.
3. ``mask``: a Cisco transformation mask (see :func:`apply_mask`).
4. ``prefix``: digits prepended.

``presentation`` (allowed / restricted) travels beside the calling number.

Pure functions, sans-IO. The matched pattern is only needed for the ``.``
based DDIs; any object with ``discard_split(digits) -> (before, after)``
(``offhook.core.dialplan.pattern.Pattern``) will do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from offhook.core.dialplan.model import Presentation, Transform

__all__ = [
    "DIALABLE",
    "DISCARD_INSTRUCTIONS",
    "MASK_CHARS",
    "SupportsDiscard",
    "apply_called",
    "apply_calling",
    "apply_mask",
    "discard",
    "merge_override",
    "validate_transform",
]

# Characters a number may carry after a transformation.
DIALABLE = frozenset("0123456789*#+")
# A mask may also hold X ("keep the number's digit here").
MASK_CHARS = DIALABLE | {"X"}


class SupportsDiscard(Protocol):
    """What a DDI needs from the matched pattern (``Pattern.discard_split``)."""

    def discard_split(self, digits: str) -> tuple[str, str]: ...


def _pre_dot(digits: str, pattern: SupportsDiscard | None) -> str:
    # Without a pattern (or with a pattern that has no '.') nothing precedes
    # the dot, so nothing is discarded.
    if pattern is None:
        return digits
    return pattern.discard_split(digits)[1]


def _trailing_hash(digits: str, pattern: SupportsDiscard | None) -> str:
    return digits[:-1] if digits.endswith("#") else digits


def _pre_dot_trailing_hash(digits: str, pattern: SupportsDiscard | None) -> str:
    return _trailing_hash(_pre_dot(digits, pattern), pattern)


def _no_digits(digits: str, pattern: SupportsDiscard | None) -> str:
    return digits


# Cisco digit discard instructions this implementation supports, by the name
# the plan uses. "none" is CallManager's "< None >" (discard nothing).
DISCARD_INSTRUCTIONS: dict[str, Callable[[str, SupportsDiscard | None], str]] = {
    "none": _no_digits,
    "pre-dot": _pre_dot,
    "pre-dot-trailing-#": _pre_dot_trailing_hash,
    "trailing-#": _trailing_hash,
}
# DDIs that discard relative to the pattern's '.' and so make no sense for a
# calling-party number (which was not what the pattern matched).
_NEEDS_PATTERN = frozenset({"pre-dot", "pre-dot-trailing-#"})


def validate_transform(t: Transform, *, calling: bool = False) -> None:
    """Raise ``ValueError`` naming the first problem with ``t``.

    ``calling=True`` validates a calling-party transform, where the
    ``.``-relative DDIs are refused.
    """
    if t.discard is not None:
        if t.discard not in DISCARD_INSTRUCTIONS:
            supported = ", ".join(sorted(DISCARD_INSTRUCTIONS))
            raise ValueError(
                f"unsupported digit discard instruction {t.discard!r} (supported: {supported})"
            )
        if calling and t.discard in _NEEDS_PATTERN:
            raise ValueError(
                f"digit discard instruction {t.discard!r} applies to the called number only"
            )
    if t.replace is not None:
        _check_chars("replace", t.replace, DIALABLE)
    if t.mask is not None:
        if not t.mask:
            raise ValueError("mask is empty (leave it unset instead)")
        _check_chars("mask", t.mask, MASK_CHARS)
    _check_chars("prefix", t.prefix, DIALABLE)
    if t.presentation is not None and not isinstance(t.presentation, Presentation):
        raise ValueError(f"presentation {t.presentation!r} is not one of allowed, restricted")


def _check_chars(what: str, value: str, allowed: frozenset[str]) -> None:
    bad = sorted({c for c in value if c not in allowed})
    if bad:
        raise ValueError(f"{what} {value!r} has characters not allowed: {''.join(bad)!r}")


def discard(instruction: str | None, digits: str, pattern: SupportsDiscard | None) -> str:
    """Apply one digit discard instruction (``ValueError`` if unsupported)."""
    if instruction is None:
        return digits
    try:
        ddi = DISCARD_INSTRUCTIONS[instruction]
    except KeyError:
        raise ValueError(f"unsupported digit discard instruction {instruction!r}") from None
    return ddi(digits, pattern)


def apply_mask(mask: str, number: str) -> str:
    """Apply a Cisco transformation mask to ``number``.

    Cisco CallManager aligns the last character of the mask with the last
    digit of the number; where the mask has ``X`` the number's digit is kept,
    any other mask character replaces the digit. A number longer than the mask
    loses its extra leading digits (the mask "suppresses leading digits"); a
    mask longer than the number makes the result longer ("if a mask applies
    more digits than the original number, a larger number will result"): its
    extra leading characters are inserted literally, except ``X``, which has
    no digit to keep and yields nothing. References: Cisco CallManager
    Fundamentals, "Transformation Masks" (flylib.com/books/en/2.110.1/
    transformation_masks.html) and Cisco Press, CUCM "Transformation Examples"
    (ciscopress.com/articles/article.aspx?p=1745737&seqNum=8).
    """
    out: list[str] = []
    offset = len(number) - len(mask)  # index into number of mask[0]
    for i, m in enumerate(mask):
        j = offset + i
        if m == "X":
            if j >= 0:
                out.append(number[j])
        else:
            out.append(m)
    return "".join(out)


def _apply(t: Transform, number: str, pattern: SupportsDiscard | None) -> str:
    number = discard(t.discard, number, pattern)
    if t.replace is not None:
        number = t.replace
    if t.mask is not None:
        number = apply_mask(t.mask, number)
    return t.prefix + number


def apply_called(t: Transform, digits: str, pattern: SupportsDiscard | None) -> str:
    """The called number after ``t``; ``pattern`` is the pattern that matched ``digits``."""
    return _apply(t, digits, pattern)


def apply_calling(
    t: Transform, number: str, pattern: SupportsDiscard | None = None
) -> tuple[str, Presentation | None]:
    """The calling number after ``t`` and the presentation ``t`` sets (None: unchanged)."""
    return _apply(t, number, pattern), t.presentation


def merge_override(base: Transform, override: Transform) -> Transform:
    """``base`` with every field that ``override`` sets taken from ``override``.

    Cisco CallManager route list details: a route group's transformation
    settings left at their default use the route pattern's; a setting that is
    configured takes precedence over the route pattern's.
    """
    if override.empty:
        return base
    return Transform(
        discard=override.discard if override.discard is not None else base.discard,
        replace=override.replace if override.replace is not None else base.replace,
        mask=override.mask if override.mask is not None else base.mask,
        prefix=override.prefix or base.prefix,
        presentation=override.presentation or base.presentation,
    )
