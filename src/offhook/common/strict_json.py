"""JSON text decoded to values that encode back: no NaN, no Infinity, no overflowing float.

Python's ``json`` reads ``NaN`` and ``Infinity`` and turns ``1e999`` into ``inf``;
none of them is JSON, and an encoder with ``allow_nan=False`` refuses to write
them back. Every line protocol of ours decodes with ``loads`` so that what it
accepted can be echoed, logged or relayed without raising.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of range for a number")
    return value


_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_finite)
"""Built once: ``json.loads`` with hooks builds a decoder (and its scanner) a call."""


def loads(text: str | bytes) -> Any:
    """``json.loads`` that raises ValueError for a number that is not finite."""
    if not isinstance(text, str):
        return json.loads(text, parse_constant=_constant, parse_float=_finite)
    if text.startswith("\ufeff"):  # as json.loads says it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)
