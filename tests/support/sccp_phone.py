"""A test-only Cisco 79xx phone simulator speaking SCCP over TCP (asyncio).

``SccpPhone`` connects to a call manager and registers the way a 7960 does
(the sequence of ../shared/vectors/sccp/cm2_register.pcapng): Register and
IpPort back to back; CapabilitiesRes whenever asked; then ButtonTemplateReq,
SoftKeyTemplateReq, SoftKeySetReq and ConfigStatReq together; LineStatReq
for each line and SpeedDialStatReq for each speed dial of its button
template, ForwardStatReq per line; TimeDateReq; RegisterAvailableLines. It
sends keepalives at the interval RegisterAck gives, and unregisters.

Every message received is kept, decoded (``received``) and as the raw frame
(``received_raw``, to feed tshark); every message sent too (``sent``). The
framing of what arrives is the simulator's own (it reads the length field
and the frame itself, then decodes with ``offhook.sccp.decode_frame``); what
it sends is encoded with ``offhook.sccp.encode`` and, for the messages
``scapy.contrib.skinny`` knows, checked against scapy's reading of the same
bytes (``scapy_mismatches``), so that the phone is not a protocol talking
only to itself.

Call side: ``off_hook``, ``dial`` (KeypadButton digit by digit), ``enbloc``,
``softkey`` (by event or by the label the softkey template gives it),
``stimulus`` (a feature button), ``on_hook``, ``wait_for(type or predicate)``.

What the phone shows is kept as a phone keeps it: ``lamps`` (the last
SetLamp mode per (stimulus, instance)), ``forwards`` (the last ForwardStat
per line), ``displayed`` (every text of DisplayNotify, DisplayPriNotify and
DisplayPromptStatus, in order), ``status_line`` (the idle prompt, line 0
call reference 0; "" when cleared), ``soft_keys`` (label -> event, from
the softkey template), ``key_sets`` (the softkey sets), ``key_set`` (the
last SelectSoftKeys set per (line, call reference)), ``ringer`` (the last
SetRinger), ``call_states`` (the last CallState per call reference),
``speaker`` and ``microphone`` (SetSpeakerMode, SetMicroMode: on or off);
``wait_lamp`` and ``wait_display`` wait for one of them. A muted
microphone (SetMicroMode off) sends silence instead of the phone's sine
until it is turned on again. Media like a phone:
an OpenReceiveChannel opens a real UDP port (``support.rtp.RtpEndpoint``) and
is answered with OpenReceiveChannelAck carrying it; StartMediaTransmission
starts a G.711 stream of ``rtp_packets`` 20 ms packets of a ``tone_hz`` sine
to the address given; StopMediaTransmission stops that stream (the one of
its pass-through party id); CloseReceiveChannel closes the port. With
``keep_payloads`` > 0 the phone keeps the last that many (payload type,
payload) pairs its receive ports got (``kept``, bounded, across channels),
so that a test can decode what the phone's user heard.

``source`` binds the phone's side of the connection to a local address (a
node with several workers gives each source address to one of them).

IPv6: ``host`` may be an IPv6 address (``"::1"``): the phone then signals
over IPv6. The SCCP messages it sends carry IPv4 addresses only (Register's
address, OpenReceiveChannelAck's media address: 4 bytes in these header
versions), so its RTP port is IPv4, on ``media_host`` (by default the
signalling address when that is IPv4, else ``127.0.0.1``), as a dual-stack
phone signalling over IPv6 with IPv4 media would.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from offhook.sccp import Message, decode_frame, encode
from offhook.sccp.messages import (
    ButtonTemplate,
    ButtonTemplateReq,
    CallState,
    CapabilitiesReq,
    CapabilitiesRes,
    Capability,
    ClearPromptStatus,
    CloseReceiveChannel,
    ConfigStat,
    ConfigStatReq,
    DefineTimeDate,
    DisplayNotify,
    DisplayPriNotify,
    DisplayPromptStatus,
    EnblocCall,
    ForwardStat,
    ForwardStatReq,
    IpPort,
    KeepAlive,
    KeepAliveAck,
    KeypadButton,
    LineStat,
    LineStatReq,
    OffHook,
    OnHook,
    OpenReceiveChannel,
    OpenReceiveChannelAck,
    Register,
    RegisterAck,
    RegisterAvailableLines,
    RegisterReject,
    SelectSoftKeys,
    SetLamp,
    SetMicroMode,
    SetRinger,
    SetSpeakerMode,
    SoftKeyEvent,
    SoftKeySetReq,
    SoftKeySetRes,
    SoftKeyTemplateReq,
    SoftKeyTemplateRes,
    SpeedDialStat,
    SpeedDialStatReq,
    StartMediaTransmission,
    Stimulus,
    StopMediaTransmission,
    TimeDateReq,
    Unregister,
    UnregisterAck,
)
from support.rtp import PCMA, PCMU, RtpEndpoint

M = TypeVar("M", bound=Message)
Matcher = type[Message] | Callable[[Message], bool]

MAX_FRAME = 65536
DEVICE_TYPES = {"7960": 7, "7940": 8, "7941": 115, "7961": 30018, "7970": 30006, "7912": 30007}
# What a 7960 offers (CapabilitiesRes): G.711 mu-law, A-law, G.729, G.729 Annex A.
CAPABILITIES = (Capability(4, 40), Capability(2, 40), Capability(11, 60), Capability(12, 60))
KEYPAD = {**{str(d): d for d in range(10)}, "*": 14, "#": 15}
"""KeypadButton codes: digits as themselves, * 14, # 15 (packet-skinny.c ``KeyPadButton``)."""
_CODEC_PT = {4: PCMU, 2: PCMA}


class PhoneRejected(Exception):
    """The call manager answered Register with RegisterReject."""


class SccpPhone:
    """One simulated phone: ``await SccpPhone(name, port).register()``."""

    def __init__(
        self,
        name: str,
        port: int,
        host: str = "127.0.0.1",
        *,
        model: str = "7960",
        version: int = 0,
        auto_keepalive: bool = True,
        rtp_packets: int = 50,
        media_host: str | None = None,
        tone_hz: float = 1000.0,
        keep_payloads: int = 0,
        source: str | None = None,
    ) -> None:
        self.name = name
        self.source = source  # the local address to connect from (None: the kernel's choice)
        self.tone_hz = tone_hz
        self.kept: deque[tuple[int, bytes]] = deque(maxlen=keep_payloads)
        """The last (payload type, payload) pairs received on any of the phone's RTP ports."""
        self.host = host
        self._media_host = media_host
        self.port = port
        self.model = model
        self.version = version
        self.auto_keepalive = auto_keepalive
        self.rtp_packets = rtp_packets
        self.received: list[Message] = []
        self.received_raw: list[bytes] = []
        self.sent: list[tuple[Message, bytes]] = []
        self.scapy_mismatches: list[str] = []
        self.register_ack: RegisterAck | None = None
        self.buttons: tuple[tuple[int, int], ...] = ()
        self.lines: dict[int, LineStat] = {}
        self.speed_dials: dict[int, SpeedDialStat] = {}
        self.lamps: dict[tuple[int, int], int] = {}
        """The last SetLamp mode per (stimulus, instance)."""
        self.forwards: dict[int, ForwardStat] = {}
        """The last ForwardStat per line."""
        self.displayed: list[str] = []
        """Every text shown (DisplayNotify, DisplayPriNotify, DisplayPromptStatus), in order."""
        self.status_line = ""
        """The idle prompt (DisplayPromptStatus on line 0, call reference 0)."""
        self.soft_keys: dict[str, int] = {}
        """Softkey label -> event, from SoftKeyTemplateRes."""
        self.key_sets: tuple[Any, ...] = ()
        """The softkey sets (SoftKeySetRes), index = softkey set."""
        self.key_set: dict[tuple[int, int], int] = {}
        """The last SelectSoftKeys set per (line, call reference)."""
        self.ringer: SetRinger | None = None
        self.call_states: dict[int, CallState] = {}
        """The last CallState per call reference."""
        self.speaker = False
        """The speakerphone is on (SetSpeakerMode)."""
        self.microphone = True
        """The microphone is on (SetMicroMode); off, the phone sends silence."""
        self.rtp: dict[int, RtpEndpoint] = {}
        """Receive channels by pass-through party id."""
        self._transmitting: dict[int, RtpEndpoint] = {}
        """The endpoint each StartMediaTransmission streams from, by pass-through party id."""
        self.closed = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._consumed: set[int] = set()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    # -- connection ---------------------------------------------------------

    async def connect(self) -> SccpPhone:
        local = (self.source, 0) if self.source is not None else None
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, local_addr=local
        )
        self._tasks.append(asyncio.ensure_future(self._read_loop()))
        return self

    @property
    def local_address(self) -> tuple[str, int]:
        assert self._writer is not None
        sock = self._writer.get_extra_info("sockname")
        return str(sock[0]), int(sock[1])

    @property
    def media_host(self) -> str:
        """The IPv4 address this phone gives in Register and receives RTP on."""
        if self._media_host is not None:
            return self._media_host
        if self._writer is not None and ":" not in self.local_address[0]:
            return self.local_address[0]
        return "127.0.0.1"

    def send(self, msg: Message) -> bytes:
        """Encode ``msg`` with this phone's header version and write it."""
        assert self._writer is not None, "connect() first"
        frame = encode(msg, self.version)
        self._scapy_check(msg, frame)
        self.sent.append((msg, frame))
        self._writer.write(frame)
        return frame

    def send_raw(self, data: bytes) -> None:
        assert self._writer is not None, "connect() first"
        self._writer.write(data)

    async def drain(self) -> None:
        if self._writer is not None:
            await self._writer.drain()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for rtp in self.rtp.values():
            rtp.close()
        self.rtp.clear()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()

    async def __aenter__(self) -> SccpPhone:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- receiving ----------------------------------------------------------

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                head = await self._reader.readexactly(8)
                (length,) = struct.unpack_from("<I", head)
                if not 4 <= length <= MAX_FRAME:
                    raise ValueError(f"bad length field {length}")
                frame = head + await self._reader.readexactly(length)
                msg = decode_frame(frame)
                self.received_raw.append(frame)
                self.received.append(msg)
                self._react(msg)
                self._changed.set()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            self._changed.set()

    def _react(self, msg: Message) -> None:
        """What a phone does by itself on some messages."""
        if isinstance(msg, CapabilitiesReq):
            self.send(CapabilitiesRes(CAPABILITIES))
        elif isinstance(msg, RegisterAck):
            self.register_ack = msg
            if self.auto_keepalive:
                self._tasks.append(asyncio.ensure_future(self._keepalives(msg.keep_alive_interval)))
        elif isinstance(msg, ButtonTemplate):
            self.buttons = msg.buttons
        elif isinstance(msg, LineStat):
            self.lines[msg.line_number] = msg
        elif isinstance(msg, SpeedDialStat):
            self.speed_dials[msg.speed_dial_number] = msg
        elif isinstance(msg, OpenReceiveChannel):
            self._tasks.append(asyncio.ensure_future(self._open_receive(msg)))
        elif isinstance(msg, StartMediaTransmission):
            self._start_media(msg)
        elif isinstance(msg, StopMediaTransmission):
            sender = self._transmitting.pop(msg.pass_thru_party_id or 0, None)
            for rtp in [sender] if sender is not None else list(self.rtp.values()):
                rtp.stop_stream()
        elif isinstance(msg, CloseReceiveChannel):
            channel = self.rtp.pop(msg.pass_thru_party_id or 0, None)
            if channel is not None:
                channel.close()
        elif isinstance(msg, SetMicroMode):
            self.microphone = msg.mode == 1
            for rtp in self.rtp.values():
                rtp.tone_hz = self._sending_hz
        elif isinstance(msg, SetSpeakerMode):
            self.speaker = msg.mode == 1
        else:
            self._show(msg)

    @property
    def _sending_hz(self) -> float:
        """The tone the phone's microphone picks up: none while it is muted."""
        return self.tone_hz if self.microphone else 0.0

    def _show(self, msg: Message) -> None:
        """Keep what the phone would show: lamps, forwarding, texts, softkeys, ringer."""
        if isinstance(msg, SetLamp):
            self.lamps[(msg.stimulus, msg.stimulus_instance)] = msg.lamp_mode
        elif isinstance(msg, ForwardStat):
            self.forwards[msg.line_number] = msg
        elif isinstance(msg, DisplayNotify | DisplayPriNotify):
            self.displayed.append(msg.text)
        elif isinstance(msg, DisplayPromptStatus):
            self.displayed.append(msg.text)
            if msg.line_instance == 0 and not msg.call_reference:
                self.status_line = msg.text
        elif isinstance(msg, ClearPromptStatus):
            if msg.line_instance == 0 and msg.call_reference == 0:
                self.status_line = ""
        elif isinstance(msg, SoftKeyTemplateRes):
            self.soft_keys.update(dict(msg.soft_keys))
        elif isinstance(msg, SoftKeySetRes):
            self.key_sets = msg.sets
        elif isinstance(msg, SelectSoftKeys):
            self.key_set[(msg.line_instance, msg.call_reference)] = msg.soft_key_set_index
        elif isinstance(msg, SetRinger):
            self.ringer = msg
        elif isinstance(msg, CallState):
            self.call_states[msg.call_reference] = msg

    def keys_of(self, key_set: int) -> list[str]:
        """The labels of softkey set ``key_set``, in order (from the template and sets)."""
        labels = list(self.soft_keys)
        chosen = self.key_sets[key_set].template_index
        return [labels[i - 1] for i in chosen if 1 <= i <= len(labels)]

    async def wait_lamp(
        self, stimulus: int, instance: int, mode: int, timeout: float = 5.0
    ) -> None:
        """Wait until lamp (``stimulus``, ``instance``) is in ``mode``."""
        await self._wait_until(
            lambda: self.lamps.get((stimulus, instance)) == mode,
            timeout,
            lambda: f"lamp {(stimulus, instance)} {mode}; lamps {self.lamps}",
        )

    async def wait_display(self, text: str, timeout: float = 5.0, since: int = 0) -> str:
        """The first text shown from display index ``since`` on that contains ``text``."""
        found: list[str] = []

        def shown() -> bool:
            found[:] = [t for t in self.displayed[since:] if text in t][:1]
            return bool(found)

        await self._wait_until(shown, timeout, lambda: f"{text!r}; shown {self.displayed}")
        return found[0]

    async def _wait_until(
        self, done: Callable[[], bool], timeout: float, what: Callable[[], str]
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            remaining = deadline - loop.time()
            if remaining <= 0 or self.closed.is_set():
                raise TimeoutError(f"{self.name}: waiting for {what()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_for(
        self, match: type[M] | Callable[[Message], bool], timeout: float = 5.0, since: int = 0
    ) -> Any:
        """The first message from index ``since`` not returned before that matches.

        ``match`` is a message type or a predicate. Raises TimeoutError (with
        what did arrive) when none comes within ``timeout`` seconds.
        """
        pred: Callable[[Message], bool]
        if isinstance(match, type):
            kind = match
            pred = lambda m: isinstance(m, kind)  # noqa: E731
        else:
            pred = match
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i in range(since, len(self.received)):
                if i not in self._consumed and pred(self.received[i]):
                    self._consumed.add(i)
                    return self.received[i]
            remaining = deadline - loop.time()
            if remaining <= 0 or self.closed.is_set():
                got = [type(m).__name__ for m in self.received[since:]]
                state = "connection closed" if self.closed.is_set() else "timeout"
                raise TimeoutError(f"{self.name}: {state} waiting for {match}; got {got}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def mark(self) -> int:
        """Index to pass as ``since`` to see only messages received from now on."""
        return len(self.received)

    # -- registration -------------------------------------------------------

    def register_message(self) -> Register:
        return Register(
            self.name,
            0,
            1,
            self.media_host,
            DEVICE_TYPES.get(self.model, 7),
            5,
            0,
            self.version if self.version else 5,
        )

    async def register(self, timeout: float = 5.0) -> RegisterAck:
        """Connect if needed and run a 7960's whole registration sequence."""
        if self._writer is None:
            await self.connect()
        self.send(self.register_message())
        self.send(IpPort(self.local_address[1]))
        first = await self.wait_for(
            lambda m: isinstance(m, RegisterAck | RegisterReject), timeout=timeout
        )
        if isinstance(first, RegisterReject):
            raise PhoneRejected(first.text)
        await self.wait_for(CapabilitiesReq, timeout)
        for req in (ButtonTemplateReq(), SoftKeyTemplateReq(), SoftKeySetReq(), ConfigStatReq()):
            self.send(req)
        await self.wait_for(ButtonTemplate, timeout)
        await self.wait_for(SoftKeyTemplateRes, timeout)
        await self.wait_for(SoftKeySetRes, timeout)
        await self.wait_for(ConfigStat, timeout)
        lines = [inst for inst, kind in self.buttons if kind == 0x09]
        dials = [inst for inst, kind in self.buttons if kind == 0x02]
        for n in lines:
            self.send(LineStatReq(n))
        for n in dials:
            self.send(SpeedDialStatReq(n))
        for n in lines:
            self.send(ForwardStatReq(n))
        for _ in lines:
            await self.wait_for(LineStat, timeout)
        for _ in dials:
            await self.wait_for(SpeedDialStat, timeout)
        for _ in lines:
            await self.wait_for(ForwardStat, timeout)
        self.send(TimeDateReq())
        await self.wait_for(DefineTimeDate, timeout)
        self.send(RegisterAvailableLines(len(lines)))
        await self.drain()
        return first  # type: ignore[no-any-return]

    async def keepalive(self, timeout: float = 5.0) -> KeepAliveAck:
        mark = self.mark()
        self.send(KeepAlive())
        ack: KeepAliveAck = await self.wait_for(KeepAliveAck, timeout, since=mark)
        return ack

    async def _keepalives(self, interval: int) -> None:
        while True:
            await asyncio.sleep(max(1, interval))
            if self._writer is None or self._writer.is_closing():
                return
            self.send(KeepAlive())

    async def unregister(self, timeout: float = 5.0) -> UnregisterAck:
        self.send(Unregister())
        ack: UnregisterAck = await self.wait_for(UnregisterAck, timeout)
        return ack

    # -- call side ------------------------------------------------------------

    def off_hook(self, line: int = 0, call_reference: int = 0) -> None:
        self.send(OffHook(line, call_reference))

    def on_hook(self, line: int = 0, call_reference: int = 0) -> None:
        self.send(OnHook(line, call_reference))

    def dial(self, digits: str, line: int = 1, call_reference: int = 0) -> None:
        """One KeypadButton per digit, as a phone sends them while the user dials."""
        for d in digits:
            self.send(KeypadButton(KEYPAD[d], line, call_reference))

    def enbloc(self, digits: str, line: int = 1) -> None:
        self.send(EnblocCall(digits, line))

    def softkey(self, event: int | str, line: int = 0, call_reference: int = 0) -> None:
        """Press a softkey: its event, or its label in the template the phone was given."""
        code = self.soft_keys[event] if isinstance(event, str) else int(event)
        self.send(SoftKeyEvent(code, line, call_reference))

    def stimulus(self, code: int, instance: int = 0, call_reference: int = 0) -> None:
        """Press a feature or line button (Stimulus)."""
        self.send(Stimulus(int(code), instance, call_reference))

    # -- media ----------------------------------------------------------------

    async def _open_receive(self, msg: OpenReceiveChannel) -> None:
        rtp = await RtpEndpoint.open(self.media_host, tone_hz=self.tone_hz, kept=self.kept)
        rtp.tone_hz = self._sending_hz  # as the microphone is now
        self.rtp[msg.pass_thru_party_id] = rtp
        self.send(
            OpenReceiveChannelAck(
                0, self.media_host, rtp.port, msg.pass_thru_party_id, msg.call_reference
            )
        )

    def _start_media(self, msg: StartMediaTransmission) -> None:
        rtp = self.rtp.get(msg.pass_thru_party_id)
        if rtp is None:  # transmit without a receive channel: use a fresh socket
            rtp = next(iter(self.rtp.values()), None)
        if rtp is None:
            return
        pt = _CODEC_PT.get(msg.payload_capability or 4, PCMU)
        ptime = msg.ms_packet_size or 20
        self._transmitting[msg.pass_thru_party_id or 0] = rtp
        rtp.start_stream((msg.remote_ip, msg.remote_port), self.rtp_packets, ptime, pt)

    @property
    def rtp_received(self) -> int:
        return sum(r.received for r in self.rtp.values())

    @property
    def rtp_sent(self) -> int:
        return sum(r.sent for r in self.rtp.values())

    async def wait_rtp(self, count: int = 10, timeout: float = 5.0) -> int:
        """Wait until ``count`` RTP packets arrived on this phone's receive ports."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.rtp_received < count and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return self.rtp_received

    # -- scapy cross-check ----------------------------------------------------

    def _scapy_check(self, msg: Message, frame: bytes) -> None:
        expected = _scapy_fields(msg, self.version)
        if expected is None:
            return
        try:
            from scapy.contrib import skinny
        except ImportError:
            return
        pkt = skinny.Skinny(frame)
        if pkt.msg != msg.msg_id:
            self.scapy_mismatches.append(f"{type(msg).__name__}: scapy read id {pkt.msg}")
            return
        layer = pkt.payload
        for name, value in expected.items():
            got = layer.getfieldval(name)
            if got != value:
                self.scapy_mismatches.append(f"{type(msg).__name__}.{name}: {got!r} != {value!r}")


def _scapy_fields(msg: Message, version: int) -> dict[str, Any] | None:
    """The fields scapy.contrib.skinny reads for ``msg`` (None: scapy does not know it)."""
    if isinstance(msg, KeypadButton | SoftKeyEvent):
        key = msg.button if isinstance(msg, KeypadButton) else msg.soft_key_event
        return {"key": key, "instance": msg.line_instance, "callid": msg.call_reference}
    if isinstance(msg, OffHook | OnHook):
        return {"unknown1": msg.line_instance, "unknown2": msg.call_reference}
    if isinstance(msg, OpenReceiveChannelAck) and version < 0x11:
        return {
            "status": msg.status,
            "remote": msg.ip,
            "port": msg.port,
            "passthru": msg.pass_thru_party_id,
            "callid": msg.call_reference,
        }
    if isinstance(msg, KeepAlive):
        return {}
    return None
