"""What every settings section shares: the strict base model, network checks, defaults."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict


class ConfigError(Exception):
    """Settings that cannot be used; the message says where and why."""


class Section(BaseModel):
    # No inf/nan (TOML has them): no timer, rate or limit may be infinite.
    model_config = ConfigDict(
        extra="forbid", validate_default=True, frozen=True, allow_inf_nan=False
    )


def check_networks(value: list[str]) -> list[str]:
    out = []
    for item in value:
        try:
            out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP network ({exc})") from None
    return out


ALLOW_ALL = ("0.0.0.0/0", "::/0")
LOOPBACK = ("127.0.0.1/32", "::1/128")
