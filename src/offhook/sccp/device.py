"""Sans-IO SCCP device session: registration, status requests, keepalive, unregister.

One ``DeviceSession`` per phone connection. The adapter feeds it decoded
station messages with ``receive(msg, now)``, sends what
``messages_to_send()`` returns (encoded with the phone's header version,
``version``), hands ``events()`` (neutral facts) to the endpoint and re-arms
one timer from ``next_timer()``. The device data comes from a ``lookup``
callable so that sccp/ never imports core.

The transitions are data: ``TRANSITIONS`` maps (state, message type) to a
handler name. A message with no entry is ignored when registered (call
handling is another module's), closes the session before registration.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from offhook.sccp import templates
from offhook.sccp.messages import (
    Alarm,
    ButtonTemplate,
    ButtonTemplateReq,
    CapabilitiesReq,
    CapabilitiesRes,
    Capability,
    ConfigStat,
    ConfigStatReq,
    DefineTimeDate,
    ForwardStat,
    ForwardStatReq,
    IpPort,
    KeepAlive,
    KeepAliveAck,
    LineStat,
    LineStatReq,
    Message,
    Register,
    RegisterAck,
    RegisterAvailableLines,
    RegisterReject,
    SoftKeySetReq,
    SoftKeySetRes,
    SoftKeyTemplateReq,
    SoftKeyTemplateRes,
    SpeedDialStat,
    SpeedDialStatReq,
    TimeDateReq,
    Unregister,
    UnregisterAck,
)

KEEPALIVE_GRACE = 5.0
"""Seconds past two keepalive intervals before a quiet phone is unregistered."""
DATE_TEMPLATE = "M/D/YA"
"""Date format CallManager sends in RegisterAck (month/day/year, 12-hour clock)."""


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What the call manager knows of one phone (filled by the adapter from core/db)."""

    name: str
    model: str
    lines: tuple[tuple[str, str], ...] = ()
    """(directory number, display name) per line, line 1 first."""
    speed_dials: tuple[tuple[str, str], ...] = ()
    """(number, label) per speed dial."""
    keepalive: int | None = None
    """Keepalive seconds for this phone; None: the session's default."""


@dataclass(frozen=True, slots=True)
class Registered:
    """The phone registered: its name and lines."""

    name: str
    lines: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Unregistered:
    """A registered phone is gone (``unregister``, ``keepalive timeout``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over; the adapter closes the connection."""

    reason: str


SessionEvent = Registered | Unregistered | Closed

Forwards = tuple[str, str, str]
"""A line's forward all, forward busy and forward no answer destinations ("" none)."""
NOT_FORWARDED: Forwards = ("", "", "")


def forward_stat(line: int, forwards: Forwards, version: int = 0) -> ForwardStat:
    """ForwardStat of line ``line`` (1-based) forwarding as ``forwards`` says."""
    cfa, cfb, cfna = (number[:24] for number in forwards)
    return ForwardStat(
        int(bool(cfa or cfb or cfna)),
        line,
        int(bool(cfa)),
        cfa,
        int(bool(cfb)),
        cfb,
        int(bool(cfna)),
        cfna,
        version=version,
    )


class State(Enum):
    """Session states."""

    CONNECTED = "connected"
    REGISTERED = "registered"
    REJECTED = "rejected"
    CLOSED = "closed"


TRANSITIONS: Mapping[tuple[State, type[Message]], str] = MappingProxyType(
    {
        (State.CONNECTED, Register): "_on_register",
        # 79xx firmware may report an Alarm (e.g. why it last reset) before Register.
        (State.CONNECTED, Alarm): "_on_ignore",
        (State.REGISTERED, Alarm): "_on_ignore",
        (State.REGISTERED, IpPort): "_on_ignore",
        (State.REGISTERED, RegisterAvailableLines): "_on_ignore",
        (State.REGISTERED, CapabilitiesRes): "_on_capabilities",
        (State.REGISTERED, ButtonTemplateReq): "_on_button_template_req",
        (State.REGISTERED, SoftKeyTemplateReq): "_on_soft_key_template_req",
        (State.REGISTERED, SoftKeySetReq): "_on_soft_key_set_req",
        (State.REGISTERED, ConfigStatReq): "_on_config_stat_req",
        (State.REGISTERED, LineStatReq): "_on_line_stat_req",
        (State.REGISTERED, SpeedDialStatReq): "_on_speed_dial_stat_req",
        (State.REGISTERED, ForwardStatReq): "_on_forward_stat_req",
        (State.REGISTERED, TimeDateReq): "_on_time_date_req",
        (State.REGISTERED, KeepAlive): "_on_keepalive",
        (State.REGISTERED, Unregister): "_on_unregister",
    }
)
"""(state, message type) -> handler; the full table of registration behaviour."""


class DeviceSession:
    """One phone connection's registration state machine (sans-IO)."""

    def __init__(
        self,
        lookup: Callable[[str], DeviceProfile | None],
        now: float,
        keepalive: int = 30,
        *,
        wall_offset: float = 0.0,
        server_name: str = "offhook",
        forwards: Callable[[str, int], Forwards] | None = None,
    ) -> None:
        """``wall_offset`` is wall-clock seconds minus ``now`` (for DefineTimeDate);
        ``forwards`` says how line n of a device forwards now (ForwardStatReq)."""
        self._lookup = lookup
        self._forwards = forwards
        self._keepalive = keepalive
        self._wall_offset = wall_offset
        self._server_name = server_name
        self.state = State.CONNECTED
        self.version = 0
        """Header version of the phone's Register; replies carry it."""
        self.profile: DeviceProfile | None = None
        self.capabilities: tuple[Capability, ...] = ()
        self._out: list[Message] = []
        self._events: list[SessionEvent] = []
        self._deadline: float | None = now + self._quiet_limit()

    # -- adapter interface -------------------------------------------------

    def receive(self, msg: Message, now: float) -> None:
        """Handle one decoded message from the phone."""
        if self.state in (State.REJECTED, State.CLOSED):
            return
        self._deadline = now + self._quiet_limit()
        handler = TRANSITIONS.get((self.state, type(msg)))
        if handler is not None:
            getattr(self, handler)(msg, now)
        elif self.state is State.CONNECTED:
            self._close("not registered")

    def messages_to_send(self) -> list[Message]:
        """Server messages to send, in order (encode with ``version``)."""
        out, self._out = self._out, []
        return out

    def events(self) -> list[SessionEvent]:
        """Session events since the last call."""
        out, self._events = self._events, []
        return out

    def next_timer(self) -> float | None:
        """When ``handle_timer`` should next run, or None."""
        return self._deadline

    def handle_timer(self, now: float) -> None:
        """A phone silent past two keepalives plus grace is unregistered and closed."""
        if self._deadline is None or now < self._deadline:
            return
        if self.state is State.REGISTERED:
            self._events.append(Unregistered("keepalive timeout"))
            self._close("keepalive timeout")
        elif self.state is State.CONNECTED:
            self._close("register timeout")

    # -- helpers -----------------------------------------------------------

    def _interval(self) -> int:
        if self.profile is not None and self.profile.keepalive is not None:
            return self.profile.keepalive
        return self._keepalive

    def _quiet_limit(self) -> float:
        return 2 * self._interval() + KEEPALIVE_GRACE

    def _send(self, msg: Message) -> None:
        self._out.append(msg)

    def _close(self, reason: str) -> None:
        if self.state is not State.REJECTED:
            self.state = State.CLOSED
        self._deadline = None
        self._events.append(Closed(reason))

    def _require_profile(self) -> DeviceProfile:
        assert self.profile is not None  # only REGISTERED handlers call this
        return self.profile

    # -- handlers (named in TRANSITIONS) ----------------------------------

    def _on_register(self, msg: Register, now: float) -> None:
        self.version = msg.version
        profile = self._lookup(msg.device_name)
        if profile is None:
            self.state = State.REJECTED
            self._send(RegisterReject(f"No authority: {msg.device_name}", version=self.version))
            self._close("unknown device")
            return
        self.profile = profile
        self.state = State.REGISTERED
        self._deadline = now + self._quiet_limit()
        interval = self._interval()
        self._send(RegisterAck(interval, DATE_TEMPLATE, interval, version=self.version))
        self._send(CapabilitiesReq(version=self.version))
        self._events.append(Registered(profile.name, profile.lines))

    def _on_ignore(self, msg: Message, now: float) -> None:
        return

    def _on_capabilities(self, msg: CapabilitiesRes, now: float) -> None:
        self.capabilities = msg.capabilities

    def _on_button_template_req(self, msg: ButtonTemplateReq, now: float) -> None:
        p = self._require_profile()
        buttons = templates.button_template(p.model, len(p.lines), len(p.speed_dials))
        self._send(ButtonTemplate(0, len(buttons), buttons, version=self.version))

    def _on_soft_key_template_req(self, msg: SoftKeyTemplateReq, now: float) -> None:
        keys = templates.SOFT_KEY_TEMPLATE
        self._send(SoftKeyTemplateRes(0, len(keys), keys, version=self.version))

    def _on_soft_key_set_req(self, msg: SoftKeySetReq, now: float) -> None:
        sets = templates.SOFT_KEY_SETS
        self._send(SoftKeySetRes(0, len(sets), sets, version=self.version))

    def _on_config_stat_req(self, msg: ConfigStatReq, now: float) -> None:
        p = self._require_profile()
        self._send(
            ConfigStat(
                p.name,
                0,
                1,
                "",
                self._server_name,
                len(p.lines),
                len(p.speed_dials),
                version=self.version,
            )
        )

    def _on_line_stat_req(self, msg: LineStatReq, now: float) -> None:
        # A line the phone has no DN for gets an empty LineStat, as CallManager answers.
        p = self._require_profile()
        n = msg.line_number
        dn, display = p.lines[n - 1] if 1 <= n <= len(p.lines) else ("", "")
        self._send(LineStat(n, dn, display, display, version=self.version))

    def _on_speed_dial_stat_req(self, msg: SpeedDialStatReq, now: float) -> None:
        p = self._require_profile()
        n = msg.speed_dial_number
        number, label = p.speed_dials[n - 1] if 1 <= n <= len(p.speed_dials) else ("", "")
        self._send(SpeedDialStat(n, number, label, version=self.version))

    def _on_forward_stat_req(self, msg: ForwardStatReq, now: float) -> None:
        p = self._require_profile()
        n = msg.line_number
        forwards = NOT_FORWARDED
        if self._forwards is not None and 1 <= n <= len(p.lines):
            forwards = self._forwards(p.name, n)
        self._send(forward_stat(n, forwards, self.version))

    def _on_time_date_req(self, msg: TimeDateReq, now: float) -> None:
        wall = now + self._wall_offset
        t = datetime.datetime.fromtimestamp(wall, tz=datetime.UTC)
        self._send(
            DefineTimeDate(
                t.year,
                t.month,
                (t.weekday() + 1) % 7,  # SCCP: 0 = Sunday (Windows SYSTEMTIME)
                t.day,
                t.hour,
                t.minute,
                t.second,
                t.microsecond // 1000,
                int(wall),
                version=self.version,
            )
        )

    def _on_keepalive(self, msg: KeepAlive, now: float) -> None:
        self._send(KeepAliveAck(version=self.version))

    def _on_unregister(self, msg: Unregister, now: float) -> None:
        self._send(UnregisterAck(0, version=self.version))
        self._events.append(Unregistered("unregister"))
        self._close("unregister")
