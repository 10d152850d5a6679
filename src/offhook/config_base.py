"""What every settings section shares: the strict base model, network checks, defaults,
and the defence keys of every listener section (:class:`ListenerSettings`)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from offhook.net.listen import bind_plan, served_families


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


class ListenerSettings(Section):
    """The defence keys every listener section has (DESIGN.md, "Defences every listener has").

    - ``allow``: source networks; anything else is refused before a byte is
      parsed, gets no answer and leaves no per-source state.
    - ``max_message``: bytes; a length field or header block above it closes
      the connection (or drops/answers the datagram) before anything is
      allocated for it.
    - ``idle_timeout``: seconds without a complete message before a
      connection is closed (half-closed connections are closed at once).
    - ``handshake_timeout``: seconds a new connection has to deliver its
      first complete message (the request head for HTTP).
    - ``max_connections`` / ``max_connections_per_source``: open connections
      in total and from one source address (TCP only).
    - ``rate_per_source`` / ``rate_burst``: a token bucket per source
      address: messages (datagrams, HTTP requests and new connections) a
      second, and at once. A stream over its rate is paused (TCP
      back-pressure); a datagram or connection over it is dropped. Buckets
      are kept in a bounded LRU, so many sources cannot grow memory.

    Every refusal is counted under the listener's name in ``offhook status``.
    The defaults here are SIP's; each section overrides what its protocol
    needs.
    """

    allow: list[str] = Field(default_factory=lambda: list(ALLOW_ALL))
    max_message: int = Field(default=65535, ge=256, le=1 << 20)
    idle_timeout: float = Field(default=60.0, gt=0, le=86400)
    handshake_timeout: float = Field(default=10.0, gt=0, le=3600)
    max_connections: int = Field(default=4096, ge=1, le=1_000_000)
    max_connections_per_source: int = Field(default=64, ge=1, le=1_000_000)
    rate_per_source: float = Field(default=200.0, gt=0)
    rate_burst: float = Field(default=400.0, ge=1)

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        return check_networks(value)

    @field_validator("listen", mode="before", check_fields=False)
    @classmethod
    def _listen(cls, value: object) -> object:
        # One address or a list of them (net.listen.bind_plan: IPv4, IPv6,
        # dual-stack "::"); written back canonical (RFC 5952).
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return value
        return [spec.host for spec in bind_plan(value)]

    @property
    def families(self) -> frozenset[int]:
        """The IP versions (4, 6) this listener serves."""
        listen = getattr(self, "listen", None)
        return served_families(listen) if listen else frozenset()

    @model_validator(mode="after")
    def _listener_limits(self) -> ListenerSettings:
        if self.max_connections_per_source > self.max_connections:
            raise ValueError(
                f"max_connections_per_source ({self.max_connections_per_source}) "
                f"must be <= max_connections ({self.max_connections})"
            )
        return self
