"""Legs that end on a media server: music on hold, a bridge port, an announcement.

A ``ResourceDriver`` is the ``LegDriver`` of such a leg. It speaks to the
media server through ``core.ports.MediaResources`` and to call control like
any device would: it makes a media offer for its endpoint (hold music, a
party's bridge port) or answers the caller's offer (a call to a meet-me
number), and tells the media server where the far end is once the answer
is known. Replies from the media server arrive from outside call control's
queue and are posted into it.

============  ==========================================  ======================
state         what happened                               next
============  ==========================================  ======================
OPENING       ``open`` sent                                reply -> OFFERING/UP
OFFERING      our offer went to the peer                   answer -> UP
UP            far end known, playing or joined             re-offer -> UP
CLOSED        released or failed                           -
============  ==========================================  ======================
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from offhook.core.causes import Cause
from offhook.core.media import (
    INACTIVE,
    RECVONLY,
    SENDONLY,
    SENDRECV,
    Codec,
    MediaDescription,
    MediaStream,
)
from offhook.core.ports import LegDriver

if TYPE_CHECKING:
    from offhook.core.engine import CallEngine
    from offhook.core.events import Setup
    from offhook.core.leg import Leg
    from offhook.core.ports import MediaResources

# What a media server endpoint offers: G.711 both laws and RFC 4733 events.
OFFERED = (
    Codec("PCMU", 8000, 0),
    Codec("PCMA", 8000, 8),
    Codec("telephone-event", 8000, 101, fmtp="0-16"),
)
_G711 = frozenset({"PCMU", "PCMA"})
_ANSWER_DIRECTION = {SENDRECV: SENDRECV, SENDONLY: RECVONLY, RECVONLY: SENDONLY, INACTIVE: INACTIVE}
PIN_PROMPT = "announce:enter-pin"
MAX_PIN_TRIES = 3
_HANDLE_BAD = re.compile(r"[^A-Za-z0-9._:-]")


def resource_handle(call_id: str, leg_id: str) -> str:
    """A control-protocol handle for one endpoint (1-64 of ``A-Za-z0-9._:-``)."""
    return _HANDLE_BAD.sub("_", f"{call_id}.{leg_id}")[-64:]


class Phase(Enum):
    NEW = "new"
    OPENING = "opening"
    OFFERING = "offering"
    UP = "up"
    CLOSED = "closed"


def pick(stream: MediaStream) -> tuple[Codec, int | None] | None:
    """The G.711 codec to use from a far end's stream, and its telephone-event type."""
    audio = next((c for c in stream.codecs if c.name.upper() in _G711), None)
    if audio is None:
        return None
    dtmf = next((c for c in stream.codecs if c.name.lower() == "telephone-event"), None)
    return audio, dtmf.payload_type if dtmf is not None else None


def audio_stream(media: MediaDescription | None) -> tuple[int, MediaStream] | None:
    if media is None:
        return None
    for index, stream in enumerate(media.streams):
        if stream.kind == "audio" and not stream.rejected:
            return index, stream
    return None


class ResourceDriver(LegDriver):
    """One media server endpoint standing in for a device in a call."""

    def __init__(
        self,
        engine: CallEngine,
        media: MediaResources,
        handle: str,
        family: int,
        *,
        play: str = "",
        bridge: str = "",
        pin: str = "",
        early: bool = False,
        device: str = "",
        loop: bool = True,
    ) -> None:
        self.engine = engine
        self.media = media
        self.handle = handle
        self.family = family
        self.play = play  # "moh:NAME", "tone:...", "announce:..."
        self.bridge = bridge
        self.pin = pin  # digits to collect before joining ``bridge``
        # An announcement to a caller as early media: played once, never connected.
        self.early = early
        self.device = device  # the device it streams to (chooses the media server)
        self.loop = loop  # ``play`` repeats (music, ringback) or plays once (a prompt)
        self.entered = ""
        self.tries = 0
        # Called instead of clearing the call when the endpoint cannot be opened.
        self.on_open_failed: Callable[[], None] | None = None
        # Called when a prompt played once is over (e.g. a feature code's confirmation).
        self.on_played: Callable[[], None] | None = None
        self.leg: Leg | None = None
        self.phase = Phase.NEW
        self.local: tuple[str, int] | None = None
        self.remote_offer: MediaDescription | None = None
        # What the media server sends when it only plays (hold music): sendonly.
        self.direction = SENDONLY if play and not bridge else SENDRECV

    # ---------------------------------------------------------- descriptions
    def description(self, direction: str) -> MediaDescription:
        assert self.local is not None
        address, port = self.local
        return MediaDescription(
            (MediaStream("audio", address, port, OFFERED, direction=direction, ptime=20),)
        )

    def _answer_for(self, offer: MediaDescription) -> MediaDescription | None:
        """Our answer to a far end's offer, and the media server told where to send."""
        assert self.local is not None
        found = audio_stream(offer)
        chosen = pick(found[1]) if found is not None else None
        if found is None or chosen is None:
            return None
        index, stream = found
        codec, dtmf = chosen
        far_direction = stream.direction
        ours = _ANSWER_DIRECTION[far_direction]
        if self.direction == SENDONLY and ours in (SENDRECV, SENDONLY):
            ours = SENDONLY
        elif self.direction == SENDONLY:
            ours = INACTIVE
        codecs: tuple[Codec, ...] = (codec,)
        if dtmf is not None:
            codecs += (Codec("telephone-event", 8000, dtmf, fmtp="0-16"),)
        streams = []
        for i, s in enumerate(offer.streams):
            if i == index:
                streams.append(
                    MediaStream(
                        "audio", self.local[0], self.local[1], codecs, direction=ours, ptime=20
                    )
                )
            else:
                streams.append(MediaStream(s.kind, s.address, 0, s.codecs[:1] or s.codecs))
        self._connect(stream, codec, dtmf, ours)
        return MediaDescription(tuple(streams))

    def _connect(self, far: MediaStream, codec: Codec, dtmf: int | None, ours: str) -> None:
        if far.address in ("0.0.0.0", "::") or far.port == 0:
            ours = INACTIVE if ours != SENDONLY else ours
        self.media.connect(
            self.handle, far.address, far.port, codec.name.upper(), codec.payload_type, dtmf, ours
        )
        if self.phase is not Phase.UP:
            self.phase = Phase.UP
            if self.pin:
                self.media.play(self.handle, PIN_PROMPT)
            elif self.bridge:
                self.media.join(self.handle, self.bridge)
            elif self.play:
                self.media.play(self.handle, self.play, self.loop)

    # ---------------------------------------------------------- starting
    def start_offering(self) -> None:
        """Open the endpoint, then offer it to the leg's media peer (hold music, bridge port)."""
        self._open(self._offer_when_open)

    def offer(self, setup: Setup) -> None:
        """A call routed to this endpoint (meet-me, announcement): open, then answer the caller."""
        self.remote_offer = setup.media
        self._open(self._answer_when_open)

    def _open(self, then: Callable[[tuple[str, int] | None], None]) -> None:
        self.phase = Phase.OPENING
        self.media.open(
            self.handle,
            self.family,
            lambda local: self.engine.post(lambda: then(local)),
            device=self.device,
            bridge=self.bridge,
        )

    def _opened(self, local: tuple[str, int] | None) -> Leg | None:
        """The media server's reply to ``open``: the leg to go on with, or None (dealt with)."""
        leg = self.leg
        if leg is None or leg.released or self.phase is Phase.CLOSED:
            if local is not None:
                self.media.release(self.handle)
            return None
        if local is None:
            self.phase = Phase.CLOSED
            if self.on_open_failed is not None:
                self.on_open_failed()
            else:
                self.engine.on_release(leg, Cause.RESOURCE_UNAVAILABLE)
            return None
        self.local = local
        return leg

    def _offer_when_open(self, local: tuple[str, int] | None) -> None:
        leg = self._opened(local)
        if leg is not None:
            self.phase = Phase.OFFERING
            self.engine.on_media_offer(leg, self.description(self.direction))

    def _answer_when_open(self, local: tuple[str, int] | None) -> None:
        leg = self._opened(local)
        if leg is None:
            return
        if self.remote_offer is None:
            # A delayed offer (SCCP callers): ours goes in the answer; theirs follows.
            self.phase = Phase.OFFERING
            self.engine.on_connect(leg, self.description(self.direction))
            return
        answer = self._answer_for(self.remote_offer)
        if answer is None:
            self.phase = Phase.CLOSED
            self.engine.on_release(leg, Cause.BEARER_CAPABILITY_NOT_IMPLEMENTED)
            return
        if self.early:
            self.engine.on_progress(leg, answer)
        else:
            self.engine.on_connect(leg, answer)

    # ---------------------------------------------------------- LegDriver
    def progress(self, media: MediaDescription | None) -> None:
        return None

    def alert(self, media: MediaDescription | None) -> None:
        return None

    def answer(self, media: MediaDescription | None) -> None:
        return None

    def update_media(self, offer: MediaDescription) -> None:
        """The far end re-offers (a new address, hold, resume): answer for the endpoint."""
        leg = self.leg
        if leg is None:
            return
        answer = self._answer_for(offer) if self.local is not None else None
        if answer is None:
            self.engine.on_media_answer(leg, None, Cause.BEARER_CAPABILITY_NOT_IMPLEMENTED)
            return
        self.engine.on_media_answer(leg, answer)

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        """The far end's answer to our offer: tell the media server where to send."""
        leg = self.leg
        if leg is None or self.phase is Phase.CLOSED:
            return
        if answer is not None and answer.streams and not answer.active_streams():
            return  # the far end declined the stream for now (it holds): nothing to send
        found = audio_stream(answer)
        chosen = pick(found[1]) if found is not None else None
        if found is None or chosen is None:
            if cause == Cause.TEMPORARY_FAILURE:
                return  # glare: the far end's own offer comes next and is answered
            self.engine.on_release(leg, cause or Cause.BEARER_CAPABILITY_NOT_IMPLEMENTED)
            return
        codec, dtmf = chosen
        self._connect(found[1], codec, dtmf, _ANSWER_DIRECTION[found[1].direction])

    def replay(self, source: str, *, loop: bool) -> None:
        """Play ``source`` instead of what plays now (ringback -> busy), on the same endpoint."""
        self.play, self.loop = source, loop
        if self.phase is Phase.UP:
            self.media.play(self.handle, source, loop)

    def played(self) -> None:
        """The media server finished playing (``play-done``): an announcement is over."""
        leg = self.leg
        if self.on_played is not None:
            self.engine.post(self.on_played)
            return
        if self.early and not self.loop and leg is not None and leg.call is not None:
            call = leg.call
            self.engine.post(
                lambda: self.engine.end_call(call, call.announcing or Cause.NORMAL_CLEARING)
            )

    @property
    def opening(self) -> bool:
        return self.phase is Phase.OPENING

    def release(self, cause: int) -> None:
        if self.phase is not Phase.CLOSED:
            self.phase = Phase.CLOSED
            self.media.release(self.handle)

    def send_digits(self, digits: str) -> None:
        """Digits from the far end: a PIN being entered, else relayed as RFC 4733."""
        if self.pin:
            for digit in digits:
                self.collect(digit)
            return
        self.media.dtmf(self.handle, digits)

    def collect(self, digit: str) -> None:
        """One digit towards the PIN ('#' ends it); the media server reports RTP ones here."""
        if not self.pin or self.phase is not Phase.UP or self.leg is None:
            return
        if digit != "#":
            self.entered += digit
            if len(self.entered) < len(self.pin):
                return
        if self.entered == self.pin:
            self.pin = ""
            self.media.stop_play(self.handle)
            self.media.join(self.handle, self.bridge)
            return
        self.entered = ""
        self.tries += 1
        if self.tries >= MAX_PIN_TRIES:
            self.engine.on_release(self.leg, Cause.CALL_REJECTED)
            return
        self.media.play(self.handle, PIN_PROMPT)
