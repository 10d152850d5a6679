"""[features] settings: call features' timers, limits and feature codes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from offhook.config_base import Section


class FeaturesSettings(Section):
    """[features] ``hold_reversion``: seconds after which a phone holding a call is
    reminded of it (tone and prompt, SCCP), then every such interval; 0: off.
    ``adhoc_max_parties``: parties of an ad hoc conference (Confrn); ``adhoc_drop``:
    "never" (on while two parties are left) or "controller-leaves" (ends when
    the phone that set it up hangs up). Trunk callers hear, as early media (183),
    why a call failed (``inband_progress``) and ringback (``inband_ringback``).

    ``cfna_timer``: seconds a line rings before forward no answer (a line's
    ``cfna_timer`` overrides it); ``max_forward_hops``: forwards one call may
    take before it stops where it is. ``code_*``: the feature codes phones dial
    (an empty code switches that code off); they must start with ``*`` or ``#``.
    """

    hold_reversion: float = Field(default=0.0, ge=0.0, le=3600.0)
    adhoc_max_parties: int = Field(default=8, ge=3, le=64)
    adhoc_drop: Literal["never", "controller-leaves"] = "never"
    inband_progress: bool = False
    inband_ringback: bool = False
    # Call coverage (forwarding, hunting, park; see core.features).
    cfna_timer: float = Field(default=12.0, gt=0.0, le=600.0)
    max_forward_hops: int = Field(default=12, ge=1, le=64)
    # Feature codes, analysed before the dial plan (never routed to a trunk).
    code_forward_all: str = "*21"  # *21<destination>: forward all on
    code_forward_all_off: str = "#21"
    code_dnd_on: str = "*78"
    code_dnd_off: str = "*79"
    code_pickup: str = "*8"  # the caller's own pickup group
    code_directed_pickup: str = "**"  # **<dn>: pick up the call ringing that DN
    code_voicemail: str = "*97"  # the caller's line's voicemail pilot
    code_park: str = "*68"  # a transfer to it parks the call on the first free number
    code_hunt_toggle: str = "*36"  # log the phone out of (or back into) its hunt groups
    code_barge: str = "*33"  # join the call on another appearance of the caller's shared line

    @field_validator(
        "code_forward_all",
        "code_forward_all_off",
        "code_dnd_on",
        "code_dnd_off",
        "code_pickup",
        "code_directed_pickup",
        "code_voicemail",
        "code_park",
        "code_hunt_toggle",
        "code_barge",
    )
    @classmethod
    def _code(cls, value: str) -> str:
        if value and not (value[0] in "*#" and all(c in "0123456789*#" for c in value)):
            raise ValueError(f"feature code {value!r} must start with * or # and hold only 0-9*#")
        if len(value) > 8:
            raise ValueError(f"feature code {value!r} is longer than 8 characters")
        return value

    def codes(self) -> dict[str, str]:
        """Feature name -> code, for the codes that are set ("" disables one)."""
        return {
            name.removeprefix("code_"): value
            for name, value in self.model_dump().items()
            if name.startswith("code_") and value
        }
