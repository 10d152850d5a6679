"""What every section of the YAML plan's schema shares: the strict pydantic base
model, the name and number syntaxes, and the check that a number was quoted.

``offhook.db.plan_spec`` (devices and the dial plan) and
``offhook.db.plan_coverage`` (call coverage) build their models from these.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$"
"""A name (device, partition, CSS, group, ...): 1-64 of letters, digits and ``._@+-``."""
DN_RE = re.compile(r"^[0-9*#+]{1,32}$")
"""A directory number or dialable number: 1-32 of 0-9 * # +."""
NUMBER_RE = re.compile(r"\+?[0-9*#]{1,32}")
"""An exact number the dial plan reaches (meet-me, hunt pilot, pickup group): a
leading + is literal."""
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class Spec(BaseModel):
    """A plan section's model: unknown keys refused, no type coercion, frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def not_a_number(value: object, what: str) -> object:
    """Refuse a YAML number where digits must be a quoted string (0100 is 64 to YAML)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            f"got the number {value}: write the {what} as a quoted string "
            "(YAML reads unquoted digits as a number: 0100 becomes 64)"
        )
    return value


Name = Annotated[str, Field(pattern=NAME_RE)]
"""A name a section defines."""
Ref = Annotated[str, Field(max_length=64)]
"""A reference to a name (checked across sections by ``offhook.db.plan_check``)."""
