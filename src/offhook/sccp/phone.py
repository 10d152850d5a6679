"""One registered Skinny phone as call control sees it: its calls, hook and speaker.

A ``Phone`` exists while its connection is registered (``SccpEndpoint``
attaches and detaches it). It owns the phone's call appearances
(``PhoneCall``, one per call reference), knows which call is on the call
plane (the one the handset or speaker is on), and keeps the per-line lamps,
the speaker and the ringer consistent as calls come and go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from offhook.sccp import mediamap
from offhook.sccp.calls import Phase, PhoneCall
from offhook.sccp.messages import Message, SelectSoftKeys, SetLamp, SetRinger, SetSpeakerMode
from offhook.sccp.templates import KeySet
from offhook.sccp.ui import LampMode, RingDuration, RingMode, SpeakerMode, Stimulus

if TYPE_CHECKING:
    from offhook.core.engine import CallEngine
    from offhook.core.ports import MediaBridge, RemoteAction
    from offhook.sccp.link import PhoneLink
    from offhook.sccp.media import Receive


class Phone:
    """A registered phone and its call appearances."""

    def __init__(
        self,
        link: PhoneLink,
        engine: CallEngine,
        open_receive: Callable[[PhoneCall, mediamap.Choice, Callable[[Receive], None]], None],
        call_gone: Callable[[PhoneCall], None],
        remote: Callable[[PhoneCall, RemoteAction], bool] | None = None,
    ) -> None:
        self.link = link
        self.engine = engine
        self._open_receive = open_receive
        self._call_gone = call_gone
        self._remote = remote
        self.calls: dict[int, PhoneCall] = {}
        self.handset = False
        self.speaker = False
        self.last_dialed = ""
        self.bridge: MediaBridge | None = None
        self.status_line = ""  # the idle prompt shown now (coverage: DND, forwarded, ...)
        self.remote_in_use: dict[int, int] = {}  # line -> call reference shown RemInUse
        self.busy_lamps: dict[int, int] = {}  # speed dial -> lamp mode shown (BLF)

    @property
    def name(self) -> str:
        return self.link.name

    @property
    def address(self) -> tuple[str, int]:
        return self.link.address

    @property
    def capabilities(self) -> tuple[int, ...]:
        return tuple(c.payload_capability for c in self.link.capabilities)

    def send(self, msg: Message) -> None:
        self.link.send(msg)

    def line_info(self, line: int) -> tuple[str, str]:
        """(DN, display name) of line ``line`` (1-based), ("", "") if there is none."""
        lines = self.link.profile.lines
        return lines[line - 1] if 1 <= line <= len(lines) else ("", "")

    def line_for(self, number: str) -> int:
        """The line a call to ``number`` rings on (line 1 when no DN matches)."""
        for index, (dn, _) in enumerate(self.link.profile.lines, start=1):
            if dn == number:
                return index
        return 1

    def speed_dial(self, index: int) -> str:
        dials = self.link.profile.speed_dials
        return dials[index - 1][0] if 1 <= index <= len(dials) else ""

    # ------------------------------------------------------------ calls
    def add_call(self, call: PhoneCall) -> None:
        self.calls[call.ref] = call

    def active(self) -> PhoneCall | None:
        """The call on the call plane, if any."""
        for call in self.calls.values():
            if call.on_plane:
                return call
        return None

    def ringing(self, ref: int = 0) -> PhoneCall | None:
        """The ringing call ``ref``, or the oldest ringing call."""
        call = self.calls.get(ref)
        if call is not None and call.phase is Phase.RING_IN:
            return call
        for call in self.calls.values():
            if call.phase is Phase.RING_IN:
                return call
        return None

    def on_line(self, line: int, phase: Phase) -> PhoneCall | None:
        for call in self.calls.values():
            if call.line == line and call.phase is phase:
                return call
        return None

    def busy_with_other(self, call: PhoneCall) -> bool:
        """True when another call is on the call plane (the new one gets call waiting)."""
        return any(c is not call and c.on_plane for c in self.calls.values())

    def open_receive(
        self, call: PhoneCall, choice: mediamap.Choice, then: Callable[[Receive], None]
    ) -> None:
        self._open_receive(call, choice, then)

    def remote(self, call: PhoneCall, action: RemoteAction) -> bool:
        """An application acts on ``call`` as the user would (False: not now)."""
        return self._remote is not None and self._remote(call, action)

    def ring_mode(self) -> RingMode:
        """How an incoming call rings: not at all with do not disturb on (ringer off)."""
        return RingMode.OFF if self.engine.dnd(self.name) else RingMode.INSIDE

    def speaker_on_if_needed(self) -> None:
        """A call goes on the plane with the handset down: the speakerphone takes it."""
        if not self.handset and not self.speaker:
            self.speaker = True
            self.send(SetSpeakerMode(SpeakerMode.ON))

    def speaker_off_if_idle(self) -> None:
        """No call is on the plane any more: the speakerphone goes off."""
        if self.speaker and self.active() is None:
            self.speaker = False
            self.send(SetSpeakerMode(SpeakerMode.OFF))

    def call_cleared(self, call: PhoneCall) -> None:
        """``call`` ended: fix the line lamp, the speaker and the ringer."""
        self.calls.pop(call.ref, None)
        self._call_gone(call)
        others = [c for c in self.calls.values() if c.line == call.line]
        lamp = LampMode.OFF
        for mode in (LampMode.BLINK, LampMode.WINK, LampMode.ON):
            if any(c.lamp() is mode for c in others):
                lamp = mode
                break
        if lamp is LampMode.OFF and call.line in self.remote_in_use:
            lamp = LampMode.ON  # another phone's appearance of the line is in use
        self.send(SetLamp(Stimulus.LINE, call.line, lamp))
        if self.active() is not None:
            return
        self.speaker_off_if_idle()
        self.send(SelectSoftKeys(0, 0, KeySet.ON_HOOK, 0xFFFFFFFF))
        ringing = self.ringing()
        if ringing is not None and not self.handset:
            # A call that was waiting rings in full now that the phone is free.
            self.send(SetRinger(self.ring_mode(), RingDuration.NORMAL, ringing.line, ringing.ref))

    def detach(self, cause: int) -> None:
        """The phone is gone: release every call it had."""
        for call in list(self.calls.values()):
            leg, call.leg = call.leg, None
            if leg is not None and not leg.released:
                self.engine.on_release(leg, cause)
            call.phase = Phase.ENDED
            self._call_gone(call)
        self.calls.clear()
