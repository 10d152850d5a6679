"""A call on a Skinny phone: what the phone shows, and the core leg behind it.

Theory of operation. ``PhoneCall`` is one call appearance on a phone (one
call reference): it drives the phone's display, lamps, ringer and tones the
way CallManager does, and it is the ``LegDriver`` of the call's core leg.

=============  ==================================================  =========
phase          phone shows                                         core leg
=============  ==================================================  =========
DIALING        off hook, dial tone, "Enter number"; digits go to   none yet
               digit analysis (overlap, T302)
CALLING        "Call Proceed" while the call is routed             inbound
RING_OUT       ringback tone, "Ring Out"                           inbound
RING_IN        ringer (or call-waiting tone), lamp blinking,       outbound
               "From <number>"
CONNECTED      "Connected", media channels open                    either
HELD           hold lamp (wink), media closed                      either
FAILED         busy or reorder tone until the user hangs up        released
=============  ==================================================  =========

Media (see ``mediamap``): a phone that places a call sends no offer (a delayed
offer): the answer brings the far end's offer, the phone opens a receive
channel for the first codec it supports and the call answers with it. A
phone that answers opens its channel for the caller's offer, or makes the
offer itself when the caller made none. Hold closes the phone's channels and
offers ``inactive``; resume reopens them and offers the same codec again.

An intercom call (``Setup.auto_answer``) to a phone with nothing on its
call plane is answered by the phone itself (CallManager's whisper
intercom): on the speaker with the microphone muted (SetMicroMode off),
connected at once; the user answering (``talk``) turns the microphone on.

A CTI application acts for the user through ``remote`` (core's
``LegDriver.remote``): Answer, Hold and Resume run exactly what the
softkeys run (the endpoint's handlers), so the phone sees a remote answer
as it sees its user's (ringer off, speakerphone on, receive channel
opened, "Connected").

A Barge/cBarge call (``barging``) is placed like any call on the shared
line, through ``engine.barge``, and answered by a conference bridge; when it
is refused the phone shows why ("Private": the other device has privacy).

DTMF from the far end (core's ``send_digits``: SIP INFO, another phone's
keypad) is played to the user, one digit after the other: StartTone with the
digit's DTMF tone, StopTone ``DTMF_ON`` seconds later, the next digit after
``DTMF_GAP`` (call control's ``later`` times both). At most ``MAX_DTMF``
digits wait; more are dropped.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING

from offhook.core.causes import Cause
from offhook.core.events import Diversion, PartyInfo, RedirectReason, Setup, Tone, TransferState
from offhook.core.leg import Leg
from offhook.core.media import INACTIVE, SENDRECV, MediaDescription, MediaStream
from offhook.sccp import mediamap
from offhook.sccp.media import CallMedia, Receive
from offhook.sccp.messages import (
    ActivateCallPlane,
    CallInfo,
    CallState,
    ClearPromptStatus,
    DialedNumber,
    DisplayNotify,
    DisplayPriNotify,
    DisplayPromptStatus,
    SelectSoftKeys,
    SetLamp,
    SetMicroMode,
    SetRinger,
    StartTone,
    StopTone,
)
from offhook.sccp.templates import KeySet
from offhook.sccp.ui import (
    DTMF_TONES,
    CallStateCode,
    DeviceTone,
    LampMode,
    MicroMode,
    Prompt,
    RedirectCode,
    RingDuration,
    RingMode,
    Stimulus,
    prompt,
)

if TYPE_CHECKING:
    from offhook.core.dialplan.overlap import DigitCollector
    from offhook.core.ports import RemoteAction
    from offhook.sccp.phone import Phone

log = logging.getLogger(__name__)

PRECEDENCE_ROUTINE = 4
"""CallState precedence level of an ordinary call (MLPP "routine"), as CallManager sends."""
CALLER_NOTIFY_SECONDS = 10
CALLER_NOTIFY_PRIORITY = 5
NOTIFY_SECONDS = 10
"""How long ``show_display``'s notification stays on the phone's display."""

CALL_TYPE_INBOUND = 1
CALL_TYPE_OUTBOUND = 2

_BUSY_CAUSES = frozenset({Cause.USER_BUSY})
_UNKNOWN_NUMBER_CAUSES = frozenset({1, 3, 22, 28})
# Causes that end a call quietly: the far end hung up, nobody answered, it was declined.
_QUIET_CAUSES = frozenset({16, 18, 19, 21, 26, 31})

DTMF_ON = 0.1
"""Seconds a far end's DTMF digit is played (ITU-T Q.24 wants at least 40 ms)."""
DTMF_GAP = 0.06
"""Seconds of silence between two digits played."""
MAX_DTMF = 32
"""Digits waiting to be played, at most (a far end sending faster loses the rest)."""

REDIRECT_CODES = {
    RedirectReason.FORWARD_ALL: RedirectCode.FORWARD_ALL,
    RedirectReason.FORWARD_BUSY: RedirectCode.FORWARD_BUSY,
    RedirectReason.FORWARD_NO_ANSWER: RedirectCode.FORWARD_NO_ANSWER,
    RedirectReason.FORWARD_UNREGISTERED: RedirectCode.FORWARD_UNREGISTERED,
    RedirectReason.DND: RedirectCode.FORWARD_BUSY,  # do not disturb (reject) forwards as busy
    RedirectReason.PICKUP: RedirectCode.PICKUP,
    RedirectReason.PARK: RedirectCode.PARK,
    RedirectReason.TRANSFER: RedirectCode.TRANSFER,
    RedirectReason.DEFLECTION: RedirectCode.DEFLECTION,
}
"""CallInfo's redirect reason per core redirect reason (a hunt pilot's: unknown)."""

BARGE_FAILED = "Failed to setup Barge"
BARGE_REFUSED: dict[int, str] = {Cause.CALL_REJECTED: "Private"}
"""What a refused Barge/cBarge shows, by cause (privacy on the other device: 21)."""

_TONES = {
    Tone.DIAL: DeviceTone.INSIDE_DIAL,
    Tone.RINGBACK: DeviceTone.ALERTING,
    Tone.BUSY: DeviceTone.LINE_BUSY,
    Tone.REORDER: DeviceTone.REORDER,
    Tone.CALL_WAITING: DeviceTone.CALL_WAITING,
}


class Phase(Enum):
    NEW = "new"
    DIALING = "dialing"
    CALLING = "calling"
    RING_OUT = "ring-out"
    RING_IN = "ring-in"
    CONNECTED = "connected"
    HELD = "held"
    FAILED = "failed"
    ENDED = "ended"


class PhoneCall:
    """One call appearance on a phone, and the ``LegDriver`` of its core leg."""

    def __init__(self, phone: Phone, ref: int, line: int) -> None:
        self.phone = phone
        self.ref = ref
        self.line = line
        self.phase = Phase.NEW
        self.leg: Leg | None = None
        self._bridged: tuple[str, str] | None = None  # (call, leg) keys in the media bridge
        self.collector: DigitCollector | None = None
        self.remote_party = PartyInfo("")
        self.called = ""
        # How an incoming call got here: the number first dialled and every
        # redirection on the way, oldest first (CallInfo's redirect fields).
        self.original_called = ""
        self.diversions: tuple[Diversion, ...] = ()
        self.media = CallMedia(ref, phone.send)
        self.remote_offer: MediaDescription | None = None
        self.choice: mediamap.Choice | None = None
        self.awaiting_answer = False  # we made an offer; the answer starts transmission
        # A consultation call (Trnsfer/Confrn pressed on ``consult_for``) and what for.
        self.consult_for: PhoneCall | None = None
        self.consult_kind = ""
        self.conferenced = False  # this call talks to a conference bridge
        self.barge = False  # Barge/cBarge: joining another appearance's call
        self.whisper = False  # intercom answered by the phone itself, microphone muted
        # What the digits collected are for: "" a call, else a coverage feature's
        # (``coverage.FORWARD``: a forward all destination, ``GROUP_PICKUP``).
        self.purpose = ""
        # A far end's offer we answer once the receive channel opens (None: none owed).
        self.owed: MediaDescription | None = None
        self._dtmf: deque[DeviceTone] = deque()
        self._dtmf_playing = False

    def __repr__(self) -> str:
        return f"<PhoneCall {self.phone.name} ref={self.ref} {self.phase.value}>"

    # ------------------------------------------------------------ presentation
    @property
    def on_plane(self) -> bool:
        """The call the phone's handset/speaker is on (not ringing, not held)."""
        return self.phase in (
            Phase.DIALING,
            Phase.CALLING,
            Phase.RING_OUT,
            Phase.CONNECTED,
            Phase.FAILED,
        )

    def lamp(self) -> LampMode:
        if self.phase is Phase.RING_IN:
            return LampMode.BLINK
        if self.phase is Phase.HELD:
            return LampMode.WINK
        return LampMode.ON

    def _call_state(self, code: CallStateCode) -> None:
        msg = CallState(
            call_state=code,
            line_instance=self.line,
            call_reference=self.ref,
            privacy=0,
            precedence_level=PRECEDENCE_ROUTINE,
            precedence_domain=0,
        )
        self.phone.send(msg)

    def _state(
        self, code: CallStateCode, keys: KeySet, label: Prompt | None, text: str = ""
    ) -> None:
        send = self.phone.send
        self._call_state(code)
        send(SelectSoftKeys(self.line, self.ref, keys, 0xFFFFFFFF))
        if label is not None:
            send(DisplayPromptStatus(0, prompt(label, text), self.line, self.ref))

    def _tone(self, tone: DeviceTone) -> None:
        self.phone.send(StartTone(tone, 0, self.line, self.ref))

    def _stop_tone(self) -> None:
        self.phone.send(StopTone(self.line, self.ref))

    def _call_info(self, call_type: int) -> None:
        dn, display = self.phone.line_info(self.line)
        if call_type == CALL_TYPE_OUTBOUND:
            calling, calling_name = dn, display
            called, called_name = self.called, self.remote_party.name
        else:
            shown = self.remote_party.presentation_allowed
            calling = self.remote_party.number if shown else ""
            calling_name = self.remote_party.name if shown else ""
            called, called_name = dn, display
        original, original_name = called, called_name
        last_number = last_name = ""
        first_reason = last_reason = RedirectCode.UNKNOWN
        if self.diversions:
            # "Forward 1002": the number dialled first, and who redirected last.
            first, last = self.diversions[0], self.diversions[-1]
            original = self.original_called or first.number
            original_name = first.name if first.number == original else ""
            last_number, last_name = last.number, last.name
            first_reason = REDIRECT_CODES.get(first.reason, RedirectCode.UNKNOWN)
            last_reason = REDIRECT_CODES.get(last.reason, RedirectCode.UNKNOWN)
        self.phone.send(
            CallInfo(
                calling_party_name=calling_name,
                calling_party=calling,
                called_party_name=called_name,
                called_party=called,
                line_instance=self.line,
                call_reference=self.ref,
                call_type=call_type,
                original_called_party_name=original_name[:40],
                original_called_party=original[:24],
                last_redirecting_party_name=last_name[:40],
                last_redirecting_party=last_number[:24],
                original_cdpn_redirect_reason=first_reason,
                last_redirecting_reason=last_reason,
            )
        )

    def _off_hook_display(self) -> None:
        send = self.phone.send
        send(SetRinger(RingMode.OFF, RingDuration.NORMAL, 0, 0))
        self.phone.speaker_on_if_needed()
        send(SetLamp(Stimulus.LINE, self.line, LampMode.ON))
        self._call_state(CallStateCode.OFF_HOOK)
        send(ActivateCallPlane(self.line))

    # ------------------------------------------------------------ phone side
    def start_dialing(self, collector: DigitCollector) -> None:
        """Off hook with nothing ringing: dial tone and the "Enter number" prompt."""
        self.phase = Phase.DIALING
        self.collector = collector
        send = self.phone.send
        send(SetRinger(RingMode.OFF, RingDuration.NORMAL, 0, 0))
        self.phone.speaker_on_if_needed()
        send(SetLamp(Stimulus.LINE, self.line, LampMode.ON))
        self._state(CallStateCode.OFF_HOOK, KeySet.OFF_HOOK, Prompt.ENTER_NUMBER)
        send(ActivateCallPlane(self.line))
        self._tone(DeviceTone.INSIDE_DIAL)

    def first_digit(self) -> None:
        self._stop_tone()
        self.phone.send(SelectSoftKeys(self.line, self.ref, KeySet.DIGITS_FOLLOWING, 0xFFFFFFFF))

    def routed(self, leg: Leg, called: str) -> None:
        """Digit analysis is done: the call goes to core as ``called``."""
        self.phase = Phase.CALLING
        self.leg = leg
        self.called = called
        self.collector = None
        self._stop_tone()
        self.phone.send(DialedNumber(called[:24], self.line, self.ref))
        self._state(CallStateCode.PROCEED, KeySet.RING_OUT, Prompt.CALL_PROCEED)
        self._call_info(CALL_TYPE_OUTBOUND)

    def barging(self, leg: Leg, dn: str) -> None:
        """Barge/cBarge on line ``dn``: off hook, waiting to join the call on it."""
        self.phase = Phase.CALLING
        self.leg = leg
        self.called = dn
        self.barge = True
        self._off_hook_display()
        self._state(CallStateCode.PROCEED, KeySet.RING_OUT, Prompt.BARGE)
        self._call_info(CALL_TYPE_OUTBOUND)

    def fail(self, cause: int) -> None:
        """The call cannot go on: busy or reorder until the user hangs up."""
        self.phase = Phase.FAILED
        self.collector = None
        self.media.close()
        self._stop_tone()
        if cause in _BUSY_CAUSES:
            self._state(CallStateCode.BUSY, KeySet.OFF_HOOK, Prompt.BUSY)
            self._tone(DeviceTone.LINE_BUSY)
        else:
            label = Prompt.UNKNOWN_NUMBER if cause in _UNKNOWN_NUMBER_CAUSES else Prompt.TEMP_FAIL
            self._state(CallStateCode.CONGESTION, KeySet.OFF_HOOK, label)
            self._tone(DeviceTone.REORDER)

    def clear(self) -> None:
        """The call is gone from the phone: back to idle on this call reference."""
        if self.phase is Phase.ENDED:
            return
        ringing = self.phase is Phase.RING_IN
        self.phase = Phase.ENDED
        self.collector = None
        self.media.close()
        if self.whisper:
            self.whisper = False
            self.phone.send(SetMicroMode(MicroMode.ON))  # the next call is not muted
        if self._bridged is not None and self.phone.bridge is not None:
            self.phone.bridge.release(*self._bridged)
            self._bridged = None
        send = self.phone.send
        if ringing:
            send(SetRinger(RingMode.OFF, RingDuration.NORMAL, self.line, self.ref))
        send(StopTone(self.line, self.ref))
        send(ClearPromptStatus(self.line, self.ref))
        self._call_state(CallStateCode.ON_HOOK)
        send(SelectSoftKeys(self.line, self.ref, KeySet.ON_HOOK, 0xFFFFFFFF))
        self.phone.call_cleared(self)

    def hang_up(self, cause: int = Cause.NORMAL_CLEARING) -> None:
        """The user ends this call (on hook, EndCall)."""
        leg, self.leg = self.leg, None
        if leg is not None and not leg.released:
            self.phone.engine.on_release(leg, cause)
        self.clear()

    def ring(self, waiting: bool) -> None:
        """An incoming call: ringer (or the call-waiting tone), blinking lamp, caller shown."""
        self.phase = Phase.RING_IN
        send = self.phone.send
        self._state(CallStateCode.RING_IN, KeySet.RING_IN, Prompt.FROM, self.remote_party.number)
        send(
            DisplayPriNotify(
                CALLER_NOTIFY_SECONDS,
                CALLER_NOTIFY_PRIORITY,
                prompt(Prompt.FROM, self.remote_party.number),
            )
        )
        self._call_info(CALL_TYPE_INBOUND)
        send(SetLamp(Stimulus.LINE, self.line, LampMode.BLINK))
        ring_mode = self.phone.ring_mode()  # off with do not disturb: shown, not heard
        if waiting:
            if ring_mode is not RingMode.OFF:
                self._tone(DeviceTone.CALL_WAITING)
        else:
            send(SetRinger(ring_mode, RingDuration.NORMAL, self.line, self.ref))

    def pick_up(self) -> None:
        """The user answers this ringing call."""
        if self.phase is not Phase.RING_IN or self.leg is None:
            return
        self.phase = Phase.CONNECTED
        self._off_hook_display()
        self.phone.send(SetRinger(RingMode.OFF, RingDuration.NORMAL, self.line, self.ref))
        self._stop_tone()
        offer = self.remote_offer
        leg = self.leg
        if offer is None:
            choices = mediamap.preferred(self.phone.capabilities)
            self.choice = choices[0]
            self.awaiting_answer = True

            def offered(rx: Receive) -> None:
                self.phone.engine.on_connect(leg, mediamap.offer(choices, rx.address, rx.port))

            self._open(choices[0], offered)
            self._show_connected()
            return
        choice = mediamap.choose_codec(offer, self.phone.capabilities)
        if choice is None:
            self.hang_up(Cause.INCOMPATIBLE_DESTINATION)
            return
        self.choice = choice

        def answered(rx: Receive) -> None:
            self.phone.engine.on_connect(
                leg, mediamap.answer(offer, choice, rx.address, rx.port, SENDRECV)
            )
            self._transmit_to(offer)

        self._open(choice, answered)
        self._show_connected()

    def hold(self) -> None:
        """Hold softkey: close the phone's media and offer ``inactive`` to the far end."""
        if self.phase is not Phase.CONNECTED or self.leg is None:
            return
        self.phase = Phase.HELD
        rx = self.media.rx
        if self.owed is not None:
            # Held before the channel for the far end's last offer opened: answer it now.
            owed, self.owed = self.owed, None
            self._answer_inactive(self.leg, owed)
        self.media.close()
        self._state(CallStateCode.HOLD, KeySet.ON_HOLD, None)
        self.phone.send(SetLamp(Stimulus.LINE, self.line, LampMode.WINK))
        self.phone.speaker_off_if_idle()
        choice = self.choice or mediamap.preferred(self.phone.capabilities)[0]
        address = rx.address if rx is not None and rx.ready else self.phone.address[0]
        port = rx.port if rx is not None and rx.ready else 9
        self.awaiting_answer = True
        self.phone.engine.on_media_offer(
            self.leg, mediamap.offer([choice], address, port, INACTIVE)
        )

    def resume(self) -> None:
        """Resume softkey: reopen the phone's media and offer it again."""
        if self.phase is not Phase.HELD or self.leg is None:
            return
        self.phase = Phase.CONNECTED
        self._off_hook_display()
        self._show_connected()
        self.resume_media()

    def rejoin(self) -> None:
        """Back from hold into a conference: the bridge's offer opens the media."""
        if self.phase is not Phase.HELD:
            return
        self.phase = Phase.CONNECTED
        self._off_hook_display()
        self._show_connected()
        if self.conferenced:
            self.resume_media()
        self.conferenced = True

    def resume_media(self) -> None:
        choice = self.choice or mediamap.preferred(self.phone.capabilities)[0]
        leg = self.leg

        def reopened(rx: Receive) -> None:
            if leg is not None:
                self.awaiting_answer = True
                self.phone.engine.on_media_offer(leg, mediamap.offer([choice], rx.address, rx.port))

        self._open(choice, reopened)

    def _show_connected(self) -> None:
        keys = KeySet.RING_IN if self.whisper else KeySet.CONNECTED  # whisper: Answer to talk
        self._state(CallStateCode.CONNECTED, keys, Prompt.CONNECTED)

    def _open(self, choice: mediamap.Choice, then: Callable[[Receive], None]) -> None:
        self.phone.open_receive(self, choice, then)

    def _transmit_to(self, media: MediaDescription | None) -> None:
        """Start (or stop) the phone's transmission as the far end's description asks."""
        found = mediamap.audio_stream(media)
        if found is None or self.choice is None or self.phase is Phase.HELD:
            self.media.stop()
            return
        stream: MediaStream = found[1]
        if stream.direction in ("sendrecv", "recvonly") and stream.address not in ("0.0.0.0", "::"):
            far = self._reachable(stream.address, stream.port)
            if far is None:
                self.media.stop()
                return
            self.media.start(far[0], far[1], self.choice)
        else:
            self.media.stop()

    def _reachable(self, address: str, port: int) -> tuple[str, int] | None:
        """Where the phone sends to reach ``address``: SCCP media is IPv4, so an
        IPv6 far end goes through the node's media bridge (None: no path)."""
        if ":" not in address:
            return address, port
        bridge, leg = self.phone.bridge, self.leg
        if bridge is None or leg is None:
            log.warning("sccp %s: far end %s is IPv6 and no media bridge", self.phone.name, address)
            return None
        self._bridged = (leg.call.id if leg.call is not None else leg.id, leg.id)
        return bridge.bridge(*self._bridged, 0, 4, (address, port))

    # ------------------------------------------------------------ LegDriver
    def offer(self, setup: Setup) -> None:
        """Core places a call to this phone: ring it."""
        self.remote_party = setup.calling
        self.called = setup.called
        self.original_called = setup.original_called
        self.diversions = setup.diversions
        self.line = self.phone.line_for(setup.called)
        self.remote_offer = setup.media
        self.phone.add_call(self)
        waiting = self.phone.busy_with_other(self)
        if setup.auto_answer and not waiting:
            self._auto_answer()
            return
        self.ring(waiting)
        if self.leg is not None:
            self.phone.engine.on_alerting(self.leg)

    def _auto_answer(self) -> None:
        """Intercom (whisper): answered at once on the speaker, the microphone muted,
        so the caller is heard and the room is not until the user answers (``talk``)."""
        self._call_info(CALL_TYPE_INBOUND)
        self.phase = Phase.RING_IN
        self.whisper = True
        self.phone.send(SetMicroMode(MicroMode.OFF))
        self.pick_up()

    def talk(self) -> None:
        """The user answers an intercom call (Answer, the line, the handset): microphone on."""
        if not self.whisper:
            return
        self.whisper = False
        self.phone.send(SetMicroMode(MicroMode.ON))
        if self.phase is Phase.CONNECTED:
            self._show_connected()

    def progress(self, media: MediaDescription | None) -> None:
        return None

    def alert(self, media: MediaDescription | None) -> None:
        if self.phase is not Phase.CALLING:
            return
        self.phase = Phase.RING_OUT
        self._state(CallStateCode.RING_OUT, KeySet.RING_OUT, Prompt.RING_OUT)
        self._tone(DeviceTone.ALERTING)

    def answer(self, media: MediaDescription | None) -> None:
        if self.phase not in (Phase.CALLING, Phase.RING_OUT):
            return
        self.phase = Phase.CONNECTED
        self._stop_tone()
        self._show_connected()
        if media is None:
            return
        # A delayed offer (the phone sent none): the far end's answer is its offer.
        offer = media
        self.remote_offer = offer
        choice = mediamap.choose_codec(offer, self.phone.capabilities)
        leg = self.leg
        if choice is None or leg is None:
            if leg is not None:
                self.phone.engine.on_media_answer(leg, None, Cause.INCOMPATIBLE_DESTINATION)
            return
        self.choice = choice

        def answered(rx: Receive) -> None:
            self.phone.engine.on_media_answer(
                leg, mediamap.answer(offer, choice, rx.address, rx.port, SENDRECV)
            )
            self._transmit_to(offer)

        self._open(choice, answered)

    def update_media(self, offer: MediaDescription) -> None:
        """The far end re-offers (hold, resume, new address): answer for the phone."""
        leg = self.leg
        if leg is None:
            return
        self.remote_offer = offer
        found = mediamap.audio_stream(offer)
        rx = self.media.rx
        if self.phase is Phase.HELD or found is None:
            self._answer_inactive(leg, offer)
            return
        choice = mediamap.choose_codec(offer, self.phone.capabilities)
        if choice is None:
            self.phone.engine.on_media_answer(leg, None, Cause.INCOMPATIBLE_DESTINATION)
            return
        direction = mediamap.answer_direction(found[1].direction)

        def answered(rx: Receive) -> None:
            self.owed = None
            self.phone.engine.on_media_answer(
                leg, mediamap.answer(offer, choice, rx.address, rx.port, direction)
            )
            self._transmit_to(offer)

        if (
            rx is not None
            and rx.ready
            and self.choice is not None
            and (self.choice.payload == choice.payload)
        ):
            answered(rx)
            return
        self.choice = choice
        self.media.stop()
        self.owed = offer
        self._open(choice, answered)

    def _answer_inactive(self, leg: Leg, offer: MediaDescription) -> None:
        """Answer ``offer`` for a phone whose media is closed (held): ``inactive``."""
        rx = self.media.rx
        address = rx.address if rx is not None and rx.ready else self.phone.address[0]
        current = self.choice or mediamap.preferred(self.phone.capabilities)[0]
        port = rx.port if rx is not None and rx.ready else 9  # the discard port: a placeholder
        self.phone.engine.on_media_answer(
            leg, mediamap.answer(offer, current, address, port, INACTIVE)
        )

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        """The far end's answer to our offer (delayed-offer answer, hold, resume)."""
        if not self.awaiting_answer:
            return
        self.awaiting_answer = False
        if answer is None:
            log.info("%r: media offer failed (cause %s)", self, cause)
            return
        found = mediamap.audio_stream(answer)
        if found is not None and self.choice is not None:
            stream = found[1]
            picked = mediamap.choose_codec(answer, self.phone.capabilities)
            if picked is not None and picked.payload != self.choice.payload:
                # The far end answered another of our codecs: reopen for it.
                self.choice = picked
                self.media.stop()
                leg = self.leg

                def reopened(rx: Receive) -> None:
                    self._transmit_to(answer)
                    if leg is not None and (rx.address, rx.port) != (stream.address, stream.port):
                        self.awaiting_answer = True
                        self.phone.engine.on_media_offer(
                            leg, mediamap.offer([picked], rx.address, rx.port)
                        )

                self._open(picked, reopened)
                return
        self._transmit_to(answer)

    def release(self, cause: int) -> None:
        """Core clears the call: idle, or busy/reorder when a call the user placed failed."""
        self.leg = None
        if self.phase in (Phase.ENDED, Phase.FAILED, Phase.NEW):
            return
        if self.barge and self.phase is Phase.CALLING:
            self.show_display(BARGE_REFUSED.get(cause, BARGE_FAILED))
            self.clear()
            return
        if self.phase in (Phase.CALLING, Phase.RING_OUT) and cause not in _QUIET_CAUSES:
            self.fail(cause)
            return
        self.clear()

    def play_tone(self, tone: Tone) -> None:
        if tone is Tone.OFF:
            self._stop_tone()
        elif tone in _TONES:
            self._tone(_TONES[tone])

    def show_display(self, text: str) -> None:
        """A notification (a park number, "Transfer failed"): it outlasts the call."""
        self.phone.send(DisplayNotify(NOTIFY_SECONDS, text[:32]))

    def send_digits(self, digits: str) -> None:
        """The far end's DTMF: play each digit to the user (StartTone, then StopTone)."""
        if self.phase is Phase.ENDED:
            return
        for digit in digits.upper():
            if digit in DTMF_TONES and len(self._dtmf) < MAX_DTMF:
                self._dtmf.append(DTMF_TONES[digit])
        if not self._dtmf_playing:
            self._next_digit()

    def _next_digit(self) -> None:
        if self.phase is Phase.ENDED or not self._dtmf:
            self._dtmf_playing = False
            return
        self._dtmf_playing = True
        self._tone(self._dtmf.popleft())
        self.phone.engine.later(DTMF_ON, self._digit_played)

    def _digit_played(self) -> None:
        if self.phase is Phase.ENDED:
            self._dtmf_playing = False
            return
        self._stop_tone()
        self.phone.engine.later(DTMF_GAP, self._next_digit)

    def transfer_progress(self, state: TransferState, cause: int | None) -> None:
        if state is TransferState.FAILED:
            self.show_display("Transfer failed")

    def remote(self, action: RemoteAction) -> bool:
        """A CTI application presses Answer, Hold or Resume for the user: the
        phone's own softkey handling runs (``Phone.remote``, the endpoint's)."""
        return self.phone.remote(self, action)
