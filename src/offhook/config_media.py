"""[media] settings: the media server and the node's IPv4 <-> IPv6 bridge."""

from __future__ import annotations

from pydantic import Field, field_validator

from offhook.common.addr import canonical, family, is_wildcard
from offhook.common.control_address import parse_control_address
from offhook.config_base import ALLOW_ALL, LOOPBACK, Section, check_networks
from offhook.net.listen import bind_plan


class MediaSettings(Section):
    """[media] the media server (``offhook media``) and the node's IPv4 <-> IPv6 bridge.

    The media server (docs/media-control.md) anchors the streams a feature
    needs (music on hold, tones, announcements, conference bridges). With
    ``embedded`` (default) ``offhook serve`` runs one as a child process on
    a private Unix socket (``control`` empty) and restarts it when it dies;
    ``offhook media`` runs one standalone, on ``control`` (``"127.0.0.1:2429"``
    or ``"unix:/run/offhook/media.sock"``), which then must be set.

    - ``listen``: RTP bind addresses (one or a list, IPv4, IPv6, dual-stack
      ``"::"``); ``advertise``: the address to give phones when ``listen``
      is a wildcard, at most one per family (empty: the node fills in its
      own address of the phone's family).
    - ``rtp_ports``: RTP/RTCP port pairs, shared by the media server and the
      bridge (each skips the ports the other holds); ``max_streams``:
      endpoints of the media server, and streams of the bridge, at once.
    - ``allow``: networks a far end may be in (everyone by default: phones
      are everywhere; each endpoint accepts packets only from its far end
      anyway). ``control_allow``: who may connect to a TCP ``control``
      address (loopback by default; a Unix socket is guarded by its file
      permissions, 0600).
    - ``rtp_timeout``: seconds without RTP from a connected far end before
      the node is told (``rtp-timeout`` event); 0: never.
    - ``bridge``: the node relays media between devices of different
      address families (``media.bridge``); false: such calls have no media.
    - ``servers``: other media servers the node drives, by the name the
      plan's media resource groups give them (``{ms2 = "10.0.0.5:2429"}``);
      ``embedded`` (or, without it, ``control``) is the server named
      ``embedded``.
    """

    bridge: bool = True
    embedded: bool = True
    servers: dict[str, str] = Field(default_factory=dict)
    listen: list[str] = Field(default_factory=lambda: ["0.0.0.0"])
    advertise: list[str] = Field(default_factory=list)
    rtp_ports: str = "16384-32767"
    max_streams: int = Field(default=1000, ge=1, le=100_000)
    allow: list[str] = Field(default_factory=lambda: list(ALLOW_ALL))
    control: str = ""
    control_allow: list[str] = Field(default_factory=lambda: list(LOOPBACK))
    rtp_timeout: float = Field(default=60.0, ge=0, le=86400)

    @field_validator("rtp_ports")
    @classmethod
    def _ports(cls, value: str) -> str:
        low, sep, high = value.strip().partition("-")
        if not sep or not low.strip().isdigit() or not high.strip().isdigit():
            raise ValueError("must be a port range such as 16384-32767")
        first, last = int(low) + int(low) % 2, int(high)
        if not 1024 <= first < last <= 65535 or last - first < 3:
            raise ValueError("needs at least two port pairs within 1024-65535")
        return value.strip()

    @field_validator("servers")
    @classmethod
    def _servers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, address in value.items():
            if name == "embedded" or not name.strip():
                raise ValueError(f"media server name {name!r} is reserved or empty")
            try:
                parse_control_address(address)
            except ValueError as exc:
                raise ValueError(f"media server {name}: {exc}") from None
        return value

    @field_validator("allow", "control_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return check_networks(value)

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return value
        return [spec.host for spec in bind_plan(value)]

    @field_validator("advertise", mode="before")
    @classmethod
    def _advertise(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value] if value.strip() else []
        if not isinstance(value, list):
            return value
        out: list[str] = []
        for item in value:
            version = family(item) if isinstance(item, str) else None
            if version is None or is_wildcard(item):
                raise ValueError(f"advertise entry {item!r} is not a specific IP address")
            if any(family(other) == version for other in out):
                raise ValueError("advertise takes at most one address per family")
            out.append(canonical(item))
        return out

    @field_validator("control")
    @classmethod
    def _control(cls, value: str) -> str:
        return str(parse_control_address(value)) if value.strip() else ""

    @property
    def port_range(self) -> tuple[int, int]:
        """(first even port, last port)."""
        low, _, high = self.rtp_ports.partition("-")
        return int(low) + int(low) % 2, int(high)
