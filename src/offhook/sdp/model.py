"""SDP session descriptions as frozen, slotted dataclasses (RFC 8866, formerly RFC 4566).

The model keeps what a call manager needs as typed fields (origin, session
name, connection, bandwidths, times, attributes, media sections) and every
other line (``i=``, ``u=``, ``e=``, ``p=``, ``z=``, ``k=`` and unknown type
letters) as raw ``(type, value)`` pairs in ``other_lines``, so that a parsed
description serialises back with nothing lost. Serialisation emits the lines
in the order of RFC 8866 §5; unknown type letters go last in their section.

Attributes are an ordered tuple of ``(name, value)`` pairs, ``value`` None
for a property attribute (``a=sendonly``). Convenience views (``rtpmap``,
``fmtp``, ``direction``, ``ptime``, the effective connection) are computed
from the attributes on demand and never raise: a malformed ``a=rtpmap`` is
simply absent from the ``rtpmap`` view (the raw attribute is still kept).

Collections are tuples so that descriptions are immutable and hashable; use
``dataclasses.replace`` (or the helpers in ``offer_answer``) to derive new ones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

Attribute = tuple[str, str | None]

# RFC 8866 §5: session-level line order, then media-level line order.
_SESSION_ORDER = "vosiuepcbtrzka"
_MEDIA_ORDER = "micbka"


class Direction(enum.StrEnum):
    """Media direction attributes (RFC 8866 §6.7, RFC 3264 §5.1)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def from_flags(cls, send: bool, recv: bool) -> Direction:
        if send and recv:
            return cls.SENDRECV
        if send:
            return cls.SENDONLY
        if recv:
            return cls.RECVONLY
        return cls.INACTIVE

    def inverted(self) -> Direction:
        """The direction seen from the other side (RFC 3264 §6.1)."""
        return Direction.from_flags(send=self.receives, recv=self.sends)


_DIRECTIONS = frozenset(d.value for d in Direction)


class RtpMap(NamedTuple):
    """One ``a=rtpmap`` (RFC 8866 §6.6): encoding name, clock rate, channels."""

    encoding: str
    clock_rate: int
    channels: int = 1


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (§5.2)."""

    username: str
    sess_id: int
    sess_version: int
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def line(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (§5.7).

    ``address`` is kept as written, including a multicast ``/ttl/count``
    suffix; ``host`` is the address alone.
    """

    nettype: str
    addrtype: str
    address: str

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def is_unspecified(self) -> bool:
        """``0.0.0.0`` (RFC 2543 hold, RFC 3264 §8.4) or ``::``."""
        return self.host in ("0.0.0.0", "::")

    def line(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"

    @classmethod
    def for_address(cls, address: str) -> Connection:
        return cls("IN", "IP6" if ":" in address else "IP4", address)


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` (§5.8), bandwidth in kbit/s for CT and AS."""

    bwtype: str
    bandwidth: int

    def line(self) -> str:
        return f"{self.bwtype}:{self.bandwidth}"


@dataclass(frozen=True, slots=True)
class Timing:
    """``t=<start> <stop>`` (§5.9) with its ``r=`` repeat lines kept raw (§5.10)."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


def _attr_values(attributes: tuple[Attribute, ...], name: str) -> list[str]:
    return [v for n, v in attributes if n == name and v is not None]


def _direction_of(attributes: tuple[Attribute, ...]) -> Direction | None:
    found: Direction | None = None
    for name, value in attributes:
        if value is None and name in _DIRECTIONS:
            found = Direction(name)  # the last one wins
    return found


def _format_attributes(attributes: tuple[Attribute, ...]) -> list[str]:
    return [f"a={n}" if v is None else f"a={n}:{v}" for n, v in attributes]


def canonical_order(lines: list[tuple[str, str]], media: bool) -> list[tuple[str, str]]:
    """Stable-sort ``(type, value)`` lines into RFC 8866 §5 order (unknown letters last)."""
    return _ordered(lines, _MEDIA_ORDER if media else _SESSION_ORDER)


def _rank(order: str) -> dict[str, int]:
    rank = {t: i for i, t in enumerate(order)}
    rank["r"] = rank.get("t", len(order))  # r= lines stay right after their t= line
    return rank


_RANKS = {order: _rank(order) for order in (_SESSION_ORDER, _MEDIA_ORDER)}


def _ordered(lines: list[tuple[str, str]], order: str) -> list[tuple[str, str]]:
    if len(lines) < 2:
        return list(lines)  # nothing to sort (most media sections have no such line)
    rank = _RANKS.get(order) or _rank(order)
    last = len(order)
    return sorted(lines, key=lambda tv: rank.get(tv[0], last))


@dataclass(frozen=True, slots=True)
class MediaSection:
    """One ``m=`` line and the lines that follow it (§5.14)."""

    kind: str
    port: int
    port_count: int | None = None
    proto: str = "RTP/AVP"
    formats: tuple[str, ...] = ()
    connection: Connection | None = None
    attributes: tuple[Attribute, ...] = ()
    bandwidths: tuple[Bandwidth, ...] = ()
    other_lines: tuple[tuple[str, str], ...] = ()

    # -- attribute views -------------------------------------------------
    def attribute(self, name: str) -> str | None:
        """Value of the first ``a=name:value`` (None if absent or a flag)."""
        for n, v in self.attributes:
            if n == name:
                return v
        return None

    def attribute_values(self, name: str) -> list[str]:
        return _attr_values(self.attributes, name)

    def has_attribute(self, name: str) -> bool:
        return any(n == name for n, _ in self.attributes)

    @property
    def rtpmap(self) -> dict[str, RtpMap]:
        """Payload type -> (encoding, clock rate, channels); malformed lines skipped."""
        out: dict[str, RtpMap] = {}
        for value in self.attribute_values("rtpmap"):
            parsed = parse_rtpmap(value)
            if parsed is not None:
                out.setdefault(parsed[0], parsed[1])
        return out

    @property
    def fmtp(self) -> dict[str, str]:
        """Format -> its ``a=fmtp`` parameter string (§6.15)."""
        out: dict[str, str] = {}
        for value in self.attribute_values("fmtp"):
            fmt, _, params = value.partition(" ")
            if fmt:
                out.setdefault(fmt, params.strip())
        return out

    @property
    def direction(self) -> Direction | None:
        """The media-level direction attribute, None when absent."""
        return _direction_of(self.attributes)

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in milliseconds (§6.4), None when absent or malformed."""
        value = self.attribute("ptime")
        if value is None:
            return None
        whole = value.strip().split(".", 1)[0]
        if whole.isascii() and whole.isdigit() and len(whole) <= 6:
            return int(whole)
        return None

    @property
    def is_rejected(self) -> bool:
        """Port zero: a rejected or disabled stream (RFC 3264 §6, §8.2)."""
        return self.port == 0

    def lines(self) -> list[str]:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        m = " ".join([self.kind, port, self.proto, *self.formats])
        body: list[tuple[str, str]] = list(self.other_lines)
        if self.connection is not None:
            body.append(("c", self.connection.line()))
        body.extend(("b", b.line()) for b in self.bandwidths)
        body.extend(("a", line[2:]) for line in _format_attributes(self.attributes))
        return [f"m={m}", *(f"{t}={v}" for t, v in _ordered(body, _MEDIA_ORDER))]


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body (§5)."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    times: tuple[Timing, ...] = (Timing(),)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaSection, ...] = ()
    other_lines: tuple[tuple[str, str], ...] = ()
    version: int = 0

    def attribute(self, name: str) -> str | None:
        for n, v in self.attributes:
            if n == name:
                return v
        return None

    def attribute_values(self, name: str) -> list[str]:
        return _attr_values(self.attributes, name)

    @property
    def direction(self) -> Direction | None:
        """The session-level direction attribute, None when absent."""
        return _direction_of(self.attributes)

    def media_direction(self, media: MediaSection) -> Direction:
        """Effective direction: media level, else session level, else sendrecv (§6.7)."""
        return media.direction or self.direction or Direction.SENDRECV

    def media_connection(self, media: MediaSection) -> Connection | None:
        """Effective connection: the media ``c=``, else the session ``c=`` (§5.7)."""
        return media.connection or self.connection

    def media_address(self, media: MediaSection) -> str | None:
        conn = self.media_connection(media)
        return None if conn is None else conn.host

    def lines(self) -> list[str]:
        body: list[tuple[str, str]] = [
            ("v", str(self.version)),
            ("o", self.origin.line()),
            ("s", self.session_name),
            *self.other_lines,
        ]
        if self.connection is not None:
            body.append(("c", self.connection.line()))
        body.extend(("b", b.line()) for b in self.bandwidths)
        for t in self.times:
            body.append(("t", f"{t.start} {t.stop}"))
            body.extend(("r", r) for r in t.repeats)
        body.extend(("a", line[2:]) for line in _format_attributes(self.attributes))
        out = [f"{t}={v}" for t, v in _ordered(body, _SESSION_ORDER)]
        for m in self.media:
            out.extend(m.lines())
        return out

    def serialize(self) -> bytes:
        """The body with CRLF line endings (§5), UTF-8 (undecodable input bytes restored)."""
        return ("\r\n".join(self.lines()) + "\r\n").encode("utf-8", "surrogateescape")

    def __bytes__(self) -> bytes:
        return self.serialize()


def parse_rtpmap(value: str) -> tuple[str, RtpMap] | None:
    """``<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`` (§6.6)."""
    pt, _, rest = value.strip().partition(" ")
    parts = rest.strip().split("/")
    if not pt or len(parts) < 2 or not parts[0]:
        return None
    rate, channels = parts[1].strip(), parts[2].strip() if len(parts) > 2 else "1"
    if not (rate.isascii() and rate.isdigit() and len(rate) <= 9):
        return None
    if not (channels.isascii() and channels.isdigit() and len(channels) <= 3):
        return None
    return pt, RtpMap(parts[0].strip(), int(rate), int(channels))
