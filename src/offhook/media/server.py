"""The media server: endpoints by handle, the 20 ms tick, playing, bridges, DTMF, events.

Theory of operation. ``MediaServer`` carries out the requests of the
control protocol (docs/media-control.md) for its owners, the control
connections (``process.ControlConnection``): ``dispatch(owner, request)``
answers at once, except ``sources``, answered when its files are decoded.
Handles belong to the owner that opened them and are released with it.

- ``open`` binds an RTP/RTCP pair (``endpoint.RtpEndpoint``) on the listen
  address serving the family, on a port of its pool (``portpool``), at
  most ``max_streams`` endpoints in all. ``connect`` names the far end (an
  address in ``allow``), codec, payload types and direction.
- One timer drives the media: ``loop.call_at(t0 + n * 20 ms - EARLY)``, so
  timer error never accumulates. A tick more than ``LATE`` after its slot is
  counted late; one more than ``MAX_BEHIND`` ticks behind skips ahead
  (counted) instead of sending bursts. Each tick mixes every bridge once,
  then sends, for each *active* stream (playing, bridged or sending DTMF;
  idle endpoints cost nothing), one packet: a queued RFC 4733 event
  (``dtmf.DtmfSender``), else what it plays, else its bridge's mix. A
  played frame is encoded once per track position and codec per tick
  (``library``: music on hold is shared, so a hundred held parties cost
  one encoding), then only a 12-byte RTP header is packed per listener
  (from the stream's ``RtpStream`` fields, valid by construction; the
  packet and octet counts of RTCP sender reports are not kept: the media
  server sends no RTCP).
  A stream that was silent for a while (idle, skipped ticks) moves its RTP
  timestamp over the gap and marks its first packet (RFC 3551 §4.1).
- Received RTP (``_received``): RFC 4733 events feed the stream's
  ``DtmfDetector`` (one ``dtmf`` event per digit to the owner); audio of
  the connected payload type goes to the bridge party's jitter buffer
  (``conference``); anything else is counted. Parse errors are counted,
  never raised. Once a second, a connected far end silent for
  ``rtp_timeout`` seconds is reported (``rtp-timeout``, once per silence).

Counters of released endpoints are folded into the server's totals, so
``stats`` counts every packet the process handled.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from offhook.common.addr import is_wildcard
from offhook.media import control
from offhook.media.conference import MAX_PARTIES, Bridge, Party
from offhook.media.control import Direction, Event, Reply, error_reply
from offhook.media.dtmf import DtmfDetector, DtmfSender
from offhook.media.endpoint import COUNTERS as ENDPOINT_COUNTERS
from offhook.media.endpoint import RtpEndpoint
from offhook.media.library import SourceLibrary, Track
from offhook.media.portpool import PortPool, PortsExhausted
from offhook.media.rtp import RtpError, RtpStream, parse_rtp
from offhook.net.acl import AllowList
from offhook.net.listen import BindSpec, bind_plan

if TYPE_CHECKING:
    from offhook.config import MediaSettings

log = logging.getLogger("offhook.media.server")

PTIME = 0.02
FRAME = 160
LATE = 0.005
"""A tick (and so its packets) more than this after its 20 ms slot is late."""
EARLY = 0.001
"""The timer is armed this long before each slot: loop timers fire up to a
millisecond late (epoll and libuv count milliseconds), and a packet sent a
little early is never a problem for a receiver's jitter buffer."""
MAX_BEHIND = 5
"""Ticks the loop may fall behind before the media skips ahead."""
TIMEOUT_CHECK = 50
"""Ticks between rtp-timeout checks (one second)."""
MAX_DTMF_BACKLOG = 128
"""Digits queued on one endpoint."""
_HEADER = struct.Struct("!BBHII")


class Owner(Protocol):
    """A control connection: where replies and events for its handles go.

    Neither method may call back into the server (a connection that must
    close because of a write does so from the loop, later): they are called
    from inside the tick and the datagram callbacks.
    """

    def reply(self, reply: Reply) -> None: ...

    def event(self, event: Event) -> None: ...


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What a media server is given (``[media]`` settings, see ``config.MediaSettings``)."""

    listen: tuple[str, ...] = ("0.0.0.0",)
    advertise: tuple[str, ...] = ()
    port_range: tuple[int, int] = (16384, 32767)
    max_streams: int = 1000
    allow: tuple[str, ...] = ("0.0.0.0/0", "::/0")
    rtp_timeout: float = 60.0
    max_parties: int = MAX_PARTIES

    @classmethod
    def of(cls, media: MediaSettings) -> ServerConfig:
        """From a ``config.MediaSettings``."""
        return cls(
            listen=tuple(media.listen),
            advertise=tuple(media.advertise),
            port_range=media.port_range,
            max_streams=media.max_streams,
            allow=tuple(media.allow),
            rtp_timeout=media.rtp_timeout,
        )


@dataclass(slots=True)
class Playing:
    track: Track
    start: int
    loop: bool
    source: str


class Stream:
    """One handle's endpoint and media state."""

    __slots__ = (
        "bridge",
        "codec",
        "codec_id",
        "connected_at",
        "detector",
        "direction",
        "dtmf_backlog",
        "dtmf_pt",
        "endpoint",
        "family",
        "handle",
        "last_tick",
        "malformed",
        "other_pt",
        "owner",
        "party",
        "play",
        "pool",
        "port",
        "pt",
        "rtp",
        "sender",
        "sends",
        "timed_out",
    )

    def __init__(
        self, owner: Owner, handle: str, family: int, endpoint: RtpEndpoint, pool: PortPool
    ) -> None:
        self.owner = owner
        self.handle = handle
        self.family = family
        self.endpoint = endpoint
        self.pool = pool
        self.port = endpoint.local[1]
        self.codec = "PCMU"
        self.codec_id = 0  # 0 PCMU, 8 PCMA: a cheap key for the tick's encoding cache
        self.sends = False  # direction.sends, read on every tick
        self.pt = 0
        self.dtmf_pt: int | None = None
        self.direction = Direction.INACTIVE
        self.rtp: RtpStream | None = None  # set by connect
        self.detector: DtmfDetector | None = None
        self.sender: DtmfSender | None = None
        self.dtmf_backlog = 0
        self.play: Playing | None = None
        self.bridge: Bridge | None = None
        self.party: Party | None = None
        self.last_tick = 0
        self.connected_at = 0.0
        self.timed_out = False
        self.malformed = 0
        self.other_pt = 0

    @property
    def busy(self) -> bool:
        """Something to send on the next tick."""
        return self.rtp is not None and (
            self.play is not None
            or self.party is not None
            or (self.sender is not None and self.sender.busy)
        )


def _family_specs(listen: Sequence[str]) -> dict[int, BindSpec]:
    """The bind address serving each IP version (a socket of the family itself first)."""
    out: dict[int, BindSpec] = {}
    for spec in bind_plan(list(listen)):
        for version in sorted(spec.families):
            if version not in out or not spec.dual_stack:
                out[version] = spec
    return out


class MediaServer:
    """Endpoints, plays and bridges of a media server process; see the module docstring."""

    def __init__(self, config: ServerConfig, library: SourceLibrary | None = None) -> None:
        self.config = config
        self.library = library or SourceLibrary()
        self.allow = AllowList(config.allow)
        self._specs = _family_specs(config.listen)
        first, last = config.port_range
        pools = {spec: PortPool(first, last) for spec in set(self._specs.values())}
        self._pools = {version: pools[spec] for version, spec in self._specs.items()}
        self._advertise = {(6 if ":" in a else 4): a for a in config.advertise}
        self._owners: dict[Owner, dict[str, Stream]] = {}
        self._bridges: dict[tuple[Owner, str], Bridge] = {}
        self._active: dict[Stream, None] = {}  # insertion-ordered set
        self._count = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loading = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._t0 = 0.0
        self.tick = 0
        self.now = 0.0
        self.totals: dict[str, int] = dict.fromkeys(
            (
                *ENDPOINT_COUNTERS,
                "ticks",
                "late_ticks",
                "skipped_ticks",
                "tick_errors",
                "malformed",
                "other_payload_types",
                "dtmf_in",
                "dtmf_out",
                "rtp_timeouts",
                "streams_opened",
                "open_refused",
                "jitter_lost",
                "jitter_late",
                "jitter_overflow",
                "jitter_underruns",
                "jitter_resyncs",
                "wrong_size",
            ),
            0,
        )
        self._handlers: dict[type, Callable[[Owner, Any], Reply | None]] = {
            control.Hello: self._hello,
            control.Ping: lambda owner, req: Reply(req.id),
            control.Open: self._open,
            control.Connect: self._connect,
            control.Play: self._play,
            control.Stop: self._stop,
            control.Join: self._join,
            control.Leave: self._leave,
            control.Dtmf: self._dtmf,
            control.Release: self._release,
            control.Sources: self._sources,
            control.Stats: lambda owner, req: Reply(req.id, True, self.stats()),
        }

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Start the 20 ms tick on the running loop."""
        loop = self._loop = asyncio.get_running_loop()
        self._t0 = self.now = loop.time()
        self.tick = 0
        self._timer = loop.call_at(self._t0 + PTIME - EARLY, self._on_tick)

    async def close(self) -> None:
        """Stop the tick and release every endpoint."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for owner in list(self._owners):
            self.release_owner(owner)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def streams(self) -> int:
        return self._count

    # -- control requests --------------------------------------------------------

    def dispatch(self, owner: Owner, request: control.Request) -> Reply | None:
        """Carry out ``request``; its reply, or None when it comes later via ``owner.reply``."""
        return self._handlers[type(request)](owner, request)

    def _stream(self, owner: Owner, handle: str) -> Stream | None:
        table = self._owners.get(owner)
        return table.get(handle) if table is not None else None

    def _hello(self, owner: Owner, req: control.Hello) -> Reply:
        fields = {"server": "offhook", "version": control.VERSION}
        return Reply(req.id, True, {**fields, "max_streams": self.config.max_streams})

    def _open(self, owner: Owner, req: control.Open) -> Reply:
        if self._stream(owner, req.handle) is not None:
            return error_reply(req.id, f"handle {req.handle} is already open")
        if self._count >= self.config.max_streams:
            self.totals["open_refused"] += 1
            return error_reply(req.id, f"max_streams ({self.config.max_streams}) reached")
        spec = self._specs.get(req.family)
        if spec is None:
            return error_reply(req.id, f"IPv{req.family} is not served (listen)")
        pool = self._pools[req.family]
        endpoint = RtpEndpoint(self._noop_rtp)
        try:
            port = pool.take(lambda p: endpoint.bind(spec, p))
        except PortsExhausted:
            self.totals["open_refused"] += 1
            return error_reply(req.id, "no free RTP port")
        except OSError as exc:
            log.error("cannot bind an RTP port on %s: %s", spec.host, exc)
            return error_reply(req.id, f"cannot bind an RTP port: {exc.strerror or exc}")
        stream = Stream(owner, req.handle, req.family, endpoint, pool)
        endpoint.on_rtp = lambda ep, data: self._received(stream, data)
        self._owners.setdefault(owner, {})[req.handle] = stream
        self._count += 1
        self.totals["streams_opened"] += 1
        self._spawn(self._start_endpoint(stream))
        address = spec.host.split("%", 1)[0]
        if is_wildcard(address):
            address = self._advertise.get(req.family, "")
        return Reply(req.id, True, {"address": address, "port": port})

    async def _start_endpoint(self, stream: Stream) -> None:
        try:
            await stream.endpoint.start()
        except OSError as exc:
            log.error("endpoint %s could not start: %s", stream.handle, exc)
            self._drop(stream)

    def _connect(self, owner: Owner, req: control.Connect) -> Reply:
        stream = self._stream(owner, req.handle)
        if stream is None:
            return error_reply(req.id, f"unknown handle {req.handle}")
        version = 6 if ":" in req.address else 4
        if version != stream.family:
            return error_reply(req.id, f"address {req.address} is not IPv{stream.family}")
        if not self.allow.allows(req.address):
            return error_reply(req.id, f"address {req.address} is not allowed (allow)")
        stream.endpoint.connect(req.address, req.port, receives=req.direction.receives)
        stream.codec, stream.pt, stream.direction = str(req.codec), req.pt, req.direction
        stream.codec_id = 0 if req.codec is control.Codec.PCMU else 8
        stream.sends = req.direction.sends
        if stream.rtp is None:
            stream.rtp = RtpStream(req.pt)
            stream.last_tick = self.tick
        stream.rtp.payload_type = req.pt
        if req.dtmf_pt != stream.dtmf_pt or stream.detector is None:
            stream.dtmf_pt = req.dtmf_pt
            stream.detector = DtmfDetector(req.dtmf_pt) if req.dtmf_pt is not None else None
            stream.sender = DtmfSender(stream.rtp, req.dtmf_pt) if req.dtmf_pt is not None else None
            stream.dtmf_backlog = 0
        if stream.party is not None:
            stream.party.codec = stream.codec
            stream.party.speaks = req.direction.receives
        stream.connected_at = self.now
        stream.timed_out = False
        self._update(stream)
        return Reply(req.id)

    def _play(self, owner: Owner, req: control.Play) -> Reply:
        stream = self._stream(owner, req.handle)
        if stream is None:
            return error_reply(req.id, f"unknown handle {req.handle}")
        track = self.library.track(req.source)
        if track is None:
            return error_reply(req.id, f"no such source {req.source}")
        stream.play = Playing(track, self.tick + 1, req.loop, str(req.source))
        self._update(stream)
        return Reply(req.id)

    def _stop(self, owner: Owner, req: control.Stop) -> Reply:
        stream = self._stream(owner, req.handle)
        if stream is None:
            return error_reply(req.id, f"unknown handle {req.handle}")
        stream.play = None
        self._update(stream)
        return Reply(req.id)

    def _join(self, owner: Owner, req: control.Join) -> Reply:
        stream = self._stream(owner, req.handle)
        if stream is None:
            return error_reply(req.id, f"unknown handle {req.handle}")
        key = (owner, req.bridge)
        bridge = self._bridges.get(key)
        if stream.bridge is not None and stream.bridge is bridge:
            return Reply(req.id, True, {"parties": len(bridge)})
        if bridge is not None and bridge.full:
            return error_reply(req.id, f"bridge {req.bridge} is full ({bridge.max_parties})")
        self._leave_bridge(stream)
        if bridge is None:
            bridge = self._bridges[key] = Bridge(req.bridge, self.config.max_parties)
        party = Party(stream.codec)
        party.speaks = stream.direction.receives
        bridge.add(stream, party)
        stream.bridge, stream.party = bridge, party
        self._update(stream)
        return Reply(req.id, True, {"parties": len(bridge)})

    def _leave(self, owner: Owner, req: control.Leave) -> Reply:
        stream = self._stream(owner, req.handle)
        if stream is None:
            return error_reply(req.id, f"unknown handle {req.handle}")
        self._leave_bridge(stream)
        self._update(stream)
        return Reply(req.id)

    def _dtmf(self, owner: Owner, req: control.Dtmf) -> Reply:
        stream = self._stream(owner, req.handle)
        if stream is None:
            return error_reply(req.id, f"unknown handle {req.handle}")
        if stream.sender is None:
            return error_reply(req.id, f"{req.handle}: no telephone-event payload type (dtmf_pt)")
        if stream.dtmf_backlog + len(req.digits) > MAX_DTMF_BACKLOG:
            return error_reply(req.id, f"{req.handle}: more than {MAX_DTMF_BACKLOG} digits queued")
        stream.sender.queue(req.digits)
        stream.dtmf_backlog += len(req.digits)
        self._update(stream)
        return Reply(req.id)

    def _release(self, owner: Owner, req: control.Release) -> Reply:
        stream = self._stream(owner, req.handle)
        if stream is not None:
            self._drop(stream)
        return Reply(req.id)

    def _sources(self, owner: Owner, req: control.Sources) -> Reply | None:
        if self._loading:
            return error_reply(req.id, "a sources request is under way")
        self._loading = True

        async def load() -> None:
            try:
                loaded, errors = await self.library.load(req.sources)
            finally:
                self._loading = False
            owner.reply(Reply(req.id, True, {"loaded": loaded, "errors": errors}))

        self._spawn(load())
        return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- streams -----------------------------------------------------------------

    def _update(self, stream: Stream) -> None:
        if stream.busy:
            self._active[stream] = None
        else:
            self._active.pop(stream, None)

    def _leave_bridge(self, stream: Stream) -> None:
        bridge = stream.bridge
        if bridge is None:
            return
        party = bridge.remove(stream)
        if party is not None:
            self._fold(party.counters())
        stream.bridge = stream.party = None
        if not len(bridge):
            self._bridges.pop((stream.owner, bridge.name), None)

    def _drop(self, stream: Stream) -> None:
        table = self._owners.get(stream.owner)
        if table is None or table.get(stream.handle) is not stream:
            return
        del table[stream.handle]
        if not table:
            del self._owners[stream.owner]
        self._count -= 1
        self._leave_bridge(stream)
        self._active.pop(stream, None)
        stream.endpoint.close()
        stream.pool.give(stream.port)
        self._fold(stream.endpoint.counters())
        self.totals["malformed"] += stream.malformed
        self.totals["other_payload_types"] += stream.other_pt

    def release_owner(self, owner: Owner) -> int:
        """Release every endpoint of ``owner`` (its connection closed); how many."""
        streams = list(self._owners.get(owner, {}).values())
        for stream in streams:
            self._drop(stream)
        return len(streams)

    def _fold(self, counters: dict[str, int]) -> None:
        totals = self.totals
        for name, value in counters.items():
            totals[name] = totals.get(name, 0) + value

    @staticmethod
    def _noop_rtp(endpoint: RtpEndpoint, data: bytes) -> None:
        return None

    # -- received media ------------------------------------------------------------

    def _received(self, stream: Stream, data: bytes) -> None:
        stream.endpoint.last_rx = self.now
        stream.timed_out = False
        if stream.rtp is None or not stream.direction.receives:
            return
        # The usual audio packet (version 2, no padding, extension or CSRCs) is read
        # here from its fixed header; anything else goes through parse_rtp.
        if len(data) > 12 and data[0] == 0x80 and data[1] & 0x7F == stream.pt:
            if stream.party is not None:
                _, _, sequence, timestamp, _ = _HEADER.unpack_from(data)
                stream.party.push(sequence, timestamp, data[12:])
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            stream.malformed += 1
            return
        pt = packet.payload_type
        if pt == stream.pt:
            if stream.party is not None:
                stream.party.push(packet.sequence, packet.timestamp, packet.payload)
        elif pt == stream.dtmf_pt and stream.detector is not None:
            digit = stream.detector.feed(packet)
            if digit is not None:
                self.totals["dtmf_in"] += 1
                stream.owner.event(Event(control.DTMF_EVENT, stream.handle, {"digit": digit}))
        else:
            stream.other_pt += 1

    # -- the tick --------------------------------------------------------------------

    def _on_tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        tick = self.tick + 1
        behind = now - (self._t0 + tick * PTIME)
        if behind > LATE:
            self.totals["late_ticks"] += 1
            if behind > MAX_BEHIND * PTIME:
                skip = int(behind / PTIME)
                tick += skip
                self.totals["skipped_ticks"] += skip
        self.tick, self.now = tick, now
        self.totals["ticks"] += 1
        try:
            self._media(tick)
            if tick % TIMEOUT_CHECK == 0 and self.config.rtp_timeout > 0:
                self._check_timeouts(now)
        except Exception:
            self.totals["tick_errors"] += 1
            log.exception("media tick %d failed", tick)
        finally:
            self._timer = loop.call_at(self._t0 + (tick + 1) * PTIME - EARLY, self._on_tick)

    def _media(self, tick: int) -> None:
        mixes: dict[Hashable, bytes] = {}
        for bridge in self._bridges.values():
            mixes.update(bridge.mix())
        encoded: dict[tuple[int, ...], bytes] = {}
        idle: list[Stream] = []
        pack = _HEADER.pack
        # The hot loop: attribute reads, a header and one sendto a stream.
        for stream in list(self._active):
            rtp = stream.rtp
            endpoint = stream.endpoint
            if rtp is None or endpoint.closed:
                continue
            gap = tick - stream.last_tick
            stream.last_tick = tick
            marker = gap > 1
            if marker:
                rtp.skip(FRAME * (gap - 1))
            sender = stream.sender
            data = sender.tick() if sender is not None and sender.busy else None
            if data is not None:
                if data[1] & 0x80:
                    stream.dtmf_backlog -= 1
                    self.totals["dtmf_out"] += 1
            else:
                payload = None
                play = stream.play
                if play is not None:
                    payload = self._played(stream, play, tick, encoded)
                if payload is None and stream.party is not None:
                    payload = mixes.get(stream)
                if payload is None:
                    rtp.skip(FRAME)
                    if not stream.busy:
                        idle.append(stream)
                    continue
                sequence, timestamp = rtp.sequence, rtp.timestamp
                pt = rtp.payload_type | 0x80 if marker else rtp.payload_type
                data = pack(0x80, pt, sequence, timestamp, rtp.ssrc) + payload
                rtp.sequence = (sequence + 1) & 0xFFFF
                rtp.timestamp = (timestamp + FRAME) & 0xFFFFFFFF
            if stream.sends:
                transport, target = endpoint.transport, endpoint.target
                if transport is not None and target is not None:
                    try:
                        transport.sendto(data, target)
                    except OSError:
                        endpoint.send_errors += 1
                        continue
                    endpoint.tx_packets += 1
                    endpoint.tx_bytes += len(data)
        for stream in idle:
            self._active.pop(stream, None)

    def _played(
        self, stream: Stream, play: Playing, tick: int, encoded: dict[tuple[int, ...], bytes]
    ) -> bytes | None:
        track = play.track
        if track.shared and play.loop:
            # Music on hold: every listener is at the same position this tick.
            key: tuple[int, ...] = (id(track), stream.codec_id)
            payload = encoded.get(key)
            if payload is None:
                position = tick % track.frames
                payload = encoded[key] = track.broadcast.payload_at(position, stream.codec)
            return payload
        position = tick - play.start
        if not play.loop and position >= track.frames:
            stream.play = None
            fields = {"source": play.source}
            stream.owner.event(Event(control.PLAY_DONE_EVENT, stream.handle, fields))
            return None
        position %= track.frames
        key = (id(track), stream.codec_id, position)
        payload = encoded.get(key)
        if payload is None:
            payload = encoded[key] = track.broadcast.payload_at(position, stream.codec)
        return payload

    def _check_timeouts(self, now: float) -> None:
        limit = self.config.rtp_timeout
        silent = [
            stream
            for table in self._owners.values()
            for stream in table.values()
            if not stream.timed_out
            and stream.rtp is not None
            and stream.direction.receives
            and now - max(stream.endpoint.last_rx, stream.connected_at) >= limit
        ]
        for stream in silent:
            stream.timed_out = True
            self.totals["rtp_timeouts"] += 1
            stream.owner.event(Event(control.RTP_TIMEOUT_EVENT, stream.handle))

    # -- stats ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        counters = dict(self.totals)
        for table in self._owners.values():
            for stream in table.values():
                for name, value in stream.endpoint.counters().items():
                    counters[name] += value
                counters["malformed"] += stream.malformed
                counters["other_payload_types"] += stream.other_pt
                if stream.party is not None:
                    for name, value in stream.party.counters().items():
                        counters[name] += value
        return {
            "streams": self._count,
            "bridges": len(self._bridges),
            "active": len(self._active),
            "max_streams": self.config.max_streams,
            "ports_free": {f"ipv{v}": pool.free for v, pool in self._pools.items()},
            "moh": self.library.moh_names,
            "counters": counters,
        }
