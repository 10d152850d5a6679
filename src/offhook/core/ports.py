"""The interfaces adapters implement so call control can drive their devices.

``LegDriver`` is one leg's channel driver (the way Asterisk's channel drivers
fill ``ast_channel_tech``): core calls it to act on the device; the adapter
reports what the device did by calling the ``CallEngine.on_*`` methods.
``LegFactory`` creates the driver for an outbound leg towards a registered
binding; the engine keeps one factory per protocol (``Binding.protocol``).

Calls on a driver are synchronous and must not block. A driver may call back
into the engine from inside a call (e.g. report a transport failure from
``offer``): the engine queues such reports and handles them after the current
step, so there is no re-entrancy to worry about.

After ``release`` the driver owns whatever clean-up its protocol needs (a SIP
leg that receives a 200 OK after CANCEL sends ACK and BYE); the engine ignores
further reports on a released leg.

Subclass ``LegDriver`` explicitly to inherit the no-op defaults of
``play_tone``, ``show_display``, ``send_digits`` and ``transfer_progress``.

``MediaResources`` is the media server as call control sees it (music on
hold, conference bridges, announcements): every call returns at once and
its outcome arrives later through a callback, so call processing never waits
on media.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from offhook.common.location import Binding
    from offhook.core.events import Setup, Tone, TransferState
    from offhook.core.leg import Leg
    from offhook.core.media import MediaDescription


class RemoteAction(StrEnum):
    """What an application may ask a device to do as its user would (``LegDriver.remote``)."""

    ANSWER = "answer"
    HOLD = "hold"
    RESUME = "resume"


class LegDriver(Protocol):
    """What call control can ask of one leg's device."""

    def offer(self, setup: Setup) -> None:
        """Outbound leg: place the call to the device (SIP: send INVITE)."""

    def progress(self, media: MediaDescription | None) -> None:
        """Inbound leg: tell the caller the call proceeds (SIP: 183, early media)."""

    def alert(self, media: MediaDescription | None) -> None:
        """Inbound leg: tell the caller the far end rings (SIP: 180)."""

    def answer(self, media: MediaDescription | None) -> None:
        """Inbound leg: the far end answered (SIP: 200 OK to the INVITE)."""

    def update_media(self, offer: MediaDescription) -> None:
        """Connected leg: a new media offer for this device (SIP: re-INVITE/UPDATE).

        The device's answer is reported with ``CallEngine.on_media_answer``.
        """

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        """The answer to a media offer this leg's device made, or its failure.

        ``answer`` None with ``cause`` 41 means glare or "not now, retry"
        (SIP 491); cause 101 means the offer is not allowed in this call state;
        any other cause is the far side's failure, passed through.
        """

    def release(self, cause: int) -> None:
        """Clear this leg with a Q.850 cause: hang up, cancel or reject as the state needs.

        Cause 26 (non-selected user clearing) means another device answered.
        """

    def play_tone(self, tone: Tone) -> None:
        """Play a call-progress tone on the device (SCCP); no-op by default."""
        return None

    def show_display(self, text: str) -> None:
        """Show a prompt on the device's display (SCCP); no-op by default."""
        return None

    def send_digits(self, digits: str) -> None:
        """Relay out-of-band digits to the device (SIP INFO); no-op by default."""
        return None

    def transfer_progress(self, state: TransferState, cause: int | None) -> None:
        """How the transfer this leg's device asked for goes (SIP: NOTIFY sipfrag)."""
        return None

    def remote(self, action: RemoteAction) -> bool:
        """Act on the device as if its user pressed ``action`` (a CTI command).

        SCCP runs the station's own stimulus (Answer, Hold, Resume softkeys);
        a SIP phone does what it supports. False: this device cannot, and call
        control does what it can from the network side instead (or refuses).
        """
        return False


class LegFactory(Protocol):
    """Creates the driver of an outbound leg towards ``binding`` (one per protocol)."""

    def create(self, binding: Binding, leg: Leg) -> LegDriver: ...


class MediaBridge(Protocol):
    """Anchors a media stream between devices of different IP families (IPv4 <-> IPv6).

    An adapter that is about to tell its device (of IP ``version``) to send a
    stream to ``far``, an address of the other family, asks ``bridge`` for
    an address of the device's own family instead; the bridge forwards
    between the two. ``session`` groups the streams of one call, ``owner``
    is the asking leg; ``release`` when the leg ends (the streams close when
    no leg of the session needs them). None: no media path (bridge full or
    the family not served); the call goes on.
    """

    def bridge(
        self, session: str, owner: str, stream: int, version: int, far: tuple[str, int]
    ) -> tuple[str, int] | None: ...

    def release(self, session: str, owner: str) -> None: ...


class MediaResources(Protocol):
    """RTP endpoints on a media server, named by handles call control chooses.

    ``open`` allocates an endpoint of IP ``family`` (4 or 6) and calls
    ``reply`` later with its (address, port), or None when it failed; an
    empty address means "the node's own address as the device sees it".
    ``device`` is the device the endpoint streams to (its media resource
    list chooses the media server); every endpoint of one ``bridge`` is on
    the same media server.
    The other calls never answer: an endpoint that is lost afterwards (the
    media server died, the endpoint timed out) is reported through the
    ``lost`` callback the composition root connects to
    ``CallEngine.on_resource_lost``.
    """

    def open(
        self,
        handle: str,
        family: int,
        reply: Callable[[tuple[str, int] | None], None],
        *,
        device: str = "",
        bridge: str = "",
    ) -> None: ...

    def connect(
        self,
        handle: str,
        address: str,
        port: int,
        codec: str,
        pt: int,
        dtmf_pt: int | None,
        direction: str,
    ) -> None: ...

    def play(self, handle: str, source: str, loop: bool = True) -> None: ...

    def stop_play(self, handle: str) -> None: ...

    def join(self, handle: str, bridge: str) -> None: ...

    def dtmf(self, handle: str, digits: str) -> None: ...

    def release(self, handle: str) -> None: ...
