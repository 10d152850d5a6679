"""The SCCP endpoint: Skinny phones' buttons and hook in, core calls out.

``SccpEndpoint`` is the adapter's ``PhoneHandler`` (phones attach when they
register, detach when they go) and the engine's ``LegFactory`` for bindings
of protocol ``sccp``. It turns what a phone's user does into call control:

- off hook (handset), a line button, the NewCall softkey -> a new call with
  dial tone; with a call ringing, the same actions answer it; with an
  intercom call the phone answered by itself (whisper), they (and Answer)
  turn the microphone on;
- KeypadButton digits -> overlap digit analysis (``DigitCollector``, T302),
  routed as soon as the dial plan says so; feature codes (``*78``, ``*21``
  and a number, ``**`` and a DN: ``engine.digit_codes()``) are complete
  numbers too and go to core like any call (core's codes act on them);
  EnblocCall, Redial and speed dials route a whole number at once; digits
  during a connected call are relayed;
- on hook / EndCall -> the call is released; Hold / Resume softkeys;
- while the node is overloaded (``overload``, ``core.overload``), a dialled
  call it sheds gets reorder instead of going to core;
- OpenReceiveChannelAck -> the call waiting for that receive channel.

A CTI application's Answer, Hold and Resume (core's ``LegDriver.remote``
on a ``PhoneCall``) come here too (``remote``): when the call's state
allows the key, the endpoint handles that softkey's ``SoftKeyEvent`` for
the call as if the phone had sent it, so the phone gets the same messages
as for its user's press (CallManager's station stimulus for CTI).

The call itself (display, tones, media, leg driver) is ``calls.PhoneCall``;
call coverage (CFwdAll, PickUp, GPickUp, Park, DND, HLog, Messages, the
message and busy lamps) is ``coverage.Coverage``, which sees the digits a
call collects first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from offhook.core.causes import Cause
from offhook.core.dialplan.overlap import DEFAULT_T302, DigitCollector, Verdict
from offhook.core.events import PartyInfo, Release, Setup
from offhook.core.ports import MediaBridge, RemoteAction
from offhook.core.records import RegistrationChanged
from offhook.sccp import mediamap
from offhook.sccp.calls import Phase, PhoneCall
from offhook.sccp.coverage import Coverage
from offhook.sccp.messages import (
    DisplayNotify,
    EnblocCall,
    KeypadButton,
    Message,
    OffHook,
    OnHook,
    OpenReceiveChannelAck,
    SoftKeyEvent,
    Stimulus,
)
from offhook.sccp.phone import Phone
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import Stimulus as StimulusCode
from offhook.sccp.ui import keypad_digit

if TYPE_CHECKING:
    from offhook.common.location import Binding
    from offhook.core.directory import PlanSnapshot
    from offhook.core.engine import CallEngine
    from offhook.core.leg import Leg
    from offhook.core.media import MediaDescription
    from offhook.core.overload import OverloadControl
    from offhook.core.ports import LegDriver
    from offhook.sccp.link import PhoneLink
    from offhook.sccp.media import Receive

log = logging.getLogger(__name__)

MAX_CALL_REFERENCE = 0x7FFFFFFF


class _Unreachable:
    """The driver of a leg to a phone that is not registered here any more."""

    def __init__(self, engine: CallEngine, leg: Leg) -> None:
        self.engine = engine
        self.leg = leg

    def offer(self, setup: Setup) -> None:
        self.engine.dispatch(self.leg, Release(Cause.SUBSCRIBER_ABSENT))

    def progress(self, media: MediaDescription | None) -> None: ...
    def alert(self, media: MediaDescription | None) -> None: ...
    def answer(self, media: MediaDescription | None) -> None: ...
    def update_media(self, offer: MediaDescription) -> None: ...
    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None: ...
    def release(self, cause: int) -> None: ...
    def play_tone(self, tone: object) -> None: ...
    def show_display(self, text: str) -> None: ...
    def send_digits(self, digits: str) -> None: ...
    def transfer_progress(self, state: object, cause: int | None) -> None: ...

    def remote(self, action: RemoteAction) -> bool:
        return False


class SccpEndpoint:
    """Skinny phones <-> core call control (``PhoneHandler`` and ``LegFactory``)."""

    def __init__(
        self,
        engine: CallEngine,
        snapshot: Callable[[], PlanSnapshot],
        *,
        t302: float = DEFAULT_T302,
        first_reference: int = 1,
        bridge: MediaBridge | None = None,
        overload: OverloadControl | None = None,
    ) -> None:
        self.engine = engine
        self.overload = overload  # sheds new calls when the node is overloaded
        self.bridge = bridge  # SCCP media is IPv4: IPv6 far ends go through it
        self._snapshot = snapshot
        self.t302 = t302
        self.phones: dict[str, Phone] = {}
        self._next_ref = first_reference
        self._next_pass_thru = first_reference
        self._receiving: dict[int, PhoneCall] = {}
        self._dialing: dict[PhoneCall, None] = {}
        self._now = 0.0
        self._handlers: dict[type[Message], Callable[[Phone, Message], None]] = {
            OffHook: self._on_off_hook,  # type: ignore[dict-item]
            OnHook: self._on_on_hook,  # type: ignore[dict-item]
            KeypadButton: self._on_keypad,  # type: ignore[dict-item]
            EnblocCall: self._on_enbloc,  # type: ignore[dict-item]
            Stimulus: self._on_stimulus,  # type: ignore[dict-item]
            SoftKeyEvent: self._on_soft_key,  # type: ignore[dict-item]
            OpenReceiveChannelAck: self._on_receive_ack,  # type: ignore[dict-item]
        }
        self.coverage = Coverage(self)  # follows the engine's coverage events from here

    @property
    def now(self) -> float:
        """The time of the phone input or timer being handled (monotonic seconds)."""
        return self._now

    # ------------------------------------------------------------ PhoneHandler
    def attach(self, link: PhoneLink, now: float) -> None:
        self._now = now
        old = self.phones.get(link.name)
        if old is not None and old.link is not link:
            old.detach(Cause.TEMPORARY_FAILURE)
        phone = Phone(link, self.engine, self._open_receive, self._call_gone, self.remote)
        phone.bridge = self.bridge
        self.phones[link.name] = phone
        self.coverage.attached(phone)
        if old is None:
            self.engine.publish(RegistrationChanged(link.name, "sccp", True))

    def detach(self, link: PhoneLink, reason: str, now: float) -> None:
        self._now = now
        phone = self.phones.get(link.name)
        if phone is None or phone.link is not link:
            return
        del self.phones[link.name]
        self.coverage.detached(link.name)
        log.info("sccp phone %s gone (%s)", link.name, reason)
        phone.detach(Cause.TEMPORARY_FAILURE)
        self.engine.publish(RegistrationChanged(link.name, "sccp", False))

    def on_message(self, link: PhoneLink, msg: Message, now: float) -> None:
        self._now = now
        phone = self.phones.get(link.name)
        handler = self._handlers.get(type(msg))
        if phone is None or phone.link is not link or handler is None:
            return
        handler(phone, msg)

    def next_timer(self) -> float | None:
        deadlines = [
            t
            for call in self._dialing
            if call.collector is not None and (t := call.collector.next_timer()) is not None
        ]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        self._now = now
        for call in list(self._dialing):
            collector = call.collector
            if collector is None or call.phase is not Phase.DIALING:
                self._dialing.pop(call, None)
                continue
            deadline = collector.next_timer()
            if deadline is not None and deadline <= now:
                self._verdict(call, collector.handle_timer(now))

    # ------------------------------------------------------------ LegFactory
    def create(self, binding: Binding, leg: Leg) -> LegDriver:
        phone = self.phones.get(binding.device)
        if phone is None:
            return _Unreachable(self.engine, leg)
        call = PhoneCall(phone, self.reference(), 1)
        call.leg = leg
        return call

    # ------------------------------------------------------------ ids, media
    def reference(self) -> int:
        ref = self._next_ref
        self._next_ref = ref + 1 if ref < MAX_CALL_REFERENCE else 1
        return ref

    def _open_receive(
        self, call: PhoneCall, choice: mediamap.Choice, then: Callable[[Receive], None]
    ) -> None:
        pass_thru = self._next_pass_thru
        self._next_pass_thru = pass_thru + 1 if pass_thru < MAX_CALL_REFERENCE else 1
        if call.media.rx is not None:
            self._receiving.pop(call.media.rx.pass_thru, None)
        self._receiving[pass_thru] = call
        call.media.open(pass_thru, choice, then)

    def _call_gone(self, call: PhoneCall) -> None:
        self._dialing.pop(call, None)
        for pass_thru in [p for p, c in self._receiving.items() if c is call]:
            del self._receiving[pass_thru]

    def _on_receive_ack(self, phone: Phone, msg: OpenReceiveChannelAck) -> None:
        call = self._receiving.pop(msg.pass_thru_party_id, None)
        if call is None or call.phone is not phone or call.phase is Phase.ENDED:
            return
        if msg.status != 0:
            log.warning("%r: phone refused a receive channel (status %d)", call, msg.status)
            call.hang_up(Cause.RESOURCE_UNAVAILABLE)
            return
        address = msg.ip if msg.ip != "0.0.0.0" else phone.address[0]
        call.media.acknowledged(msg.pass_thru_party_id, address, msg.port)

    # ------------------------------------------------------------ call actions
    def new_call(self, phone: Phone, line: int) -> PhoneCall:
        """Dial tone on ``line``: the call on the plane is held (or ended) first."""
        self._clear_plane(phone)
        lines = len(phone.link.profile.lines)
        line = line if 1 <= line <= max(lines, 1) else 1
        call = PhoneCall(phone, self.reference(), line)
        phone.add_call(call)
        snapshot = self._snapshot()
        info = snapshot.devices.get(phone.name)
        codes, number_codes = self.engine.digit_codes()
        collector = DigitCollector(
            snapshot.dialplan,
            info.css if info else "",
            self.t302,
            codes=codes,
            number_codes=number_codes,
        )
        collector.start(self._now)
        call.start_dialing(collector)
        self._dialing[call] = None
        return call

    def _clear_plane(self, phone: Phone, keep: PhoneCall | None = None) -> None:
        active = phone.active()
        if active is None or active is keep:
            return
        if active.phase is Phase.CONNECTED:
            active.hold()
        else:
            active.hang_up()

    def _digit(self, call: PhoneCall, digit: str) -> None:
        collector = call.collector
        if collector is None or self.coverage.digit(call, digit):
            return
        if not collector.digits:
            call.first_digit()
        self._verdict(call, collector.add(digit, self._now))

    def _verdict(self, call: PhoneCall, verdict: Verdict) -> None:
        collector = call.collector
        if collector is None or verdict is Verdict.COLLECTING:
            return
        self._dialing.pop(call, None)
        if verdict is Verdict.ROUTE:
            if not self.coverage.dialed(call, collector.digits):
                self.route(call, collector.digits)
        elif not self.coverage.refused(call, collector.cause):
            call.fail(collector.cause)

    def route(self, call: PhoneCall, digits: str) -> None:
        phone = call.phone
        self._dialing.pop(call, None)
        phone.last_dialed = digits
        overload = self.overload
        if overload is not None and overload.overloaded and not overload.admit("sccp", digits):
            call.fail(Cause.SWITCHING_EQUIPMENT_CONGESTION)  # reorder, before any routing
            return
        dn, display = phone.line_info(call.line)
        leg = self.engine.inbound_leg(call, phone.name)
        call.routed(leg, digits)
        calling = PartyInfo(number=dn, name=display, device=phone.name)
        self.engine.setup(leg, Setup(calling=calling, called=digits, original_called=digits))

    def barge(self, phone: Phone, index: int, line: tuple[str, str]) -> None:
        """Barge/cBarge on appearance ``index`` (showing remote in use) of the shared
        ``line`` (DN, partition): a new call there joins the call in progress on it.

        The remote-in-use call reference becomes the barging call's; the phone
        places it as any call (a delayed offer), through ``engine.barge``.
        """
        ref = phone.remote_in_use.pop(index)
        self._clear_plane(phone)
        call = PhoneCall(phone, ref, index)
        phone.add_call(call)
        dn, display = phone.line_info(index)
        leg = self.engine.inbound_leg(call, phone.name)
        leg.line = line
        call.barging(leg, dn)
        calling = PartyInfo(number=dn, name=display, device=phone.name)
        self.engine.barge(leg, Setup(calling=calling, called=dn, original_called=dn))

    def dial_whole(self, phone: Phone, number: str, line: int = 0) -> None:
        """Redial, speed dial, EnblocCall: route ``number`` at once."""
        if not number:
            return
        active = phone.active()
        if active is not None and active.phase is Phase.DIALING and active.collector is not None:
            if active.collector.digits:
                return
            call = active
        else:
            call = self.new_call(phone, line or 1)
        if not self.coverage.dialed(call, number):
            self.route(call, number)

    def _answer(self, phone: Phone, ref: int) -> bool:
        ringing = phone.ringing(ref)
        if ringing is None:
            return False
        self._clear_plane(phone, keep=ringing)
        ringing.pick_up()
        return True

    def _resume(self, phone: Phone, call: PhoneCall) -> None:
        self._clear_plane(phone, keep=call)
        call.resume()

    # ------------------------------------------------------------ CTI
    def remote(self, call: PhoneCall, action: RemoteAction) -> bool:
        """An application presses Answer, Hold or Resume on ``call`` for its user.

        The softkey's own handling runs (``_on_soft_key`` with the call's line
        and reference): Answer a ringing call (or talk on an intercom call the
        phone answered muted), Hold a connected call, Resume a held one.
        False, and nothing sent, when the call's state does not allow the key
        or the phone is not registered here any more.
        """
        phone = call.phone
        if self.phones.get(phone.name) is not phone or phone.calls.get(call.ref) is not call:
            return False
        if call.leg is None or call.leg.released:
            return False
        key = self._remote_key(call, action)
        if key is None:
            return False
        log.info("sccp %s: %s on call %d by an application", phone.name, action, call.ref)
        if action is RemoteAction.ANSWER and call.whisper and call.phase is not Phase.RING_IN:
            # Answer on an intercom call the phone took muted: the key's talk step
            # (the key itself would answer another call ringing meanwhile first).
            return self._talk(phone, call.ref)
        self._on_soft_key(phone, SoftKeyEvent(key, call.line, call.ref))
        return True

    @staticmethod
    def _remote_key(call: PhoneCall, action: RemoteAction) -> SoftKey | None:
        """The softkey that does ``action`` on ``call`` now (None: none does)."""
        if action is RemoteAction.ANSWER:
            ringing = call.phase is Phase.RING_IN
            return SoftKey.ANSWER if ringing or call.whisper else None
        if action is RemoteAction.HOLD:
            return SoftKey.HOLD if call.phase is Phase.CONNECTED else None
        if action is RemoteAction.RESUME:
            return SoftKey.RESUME if call.phase is Phase.HELD else None
        return None

    # ------------------------------------------------------------ phone inputs
    def _talk(self, phone: Phone, ref: int, line: int = 0) -> bool:
        """Answer an intercom call the phone answered by itself (True: there was one)."""
        call = phone.calls.get(ref)
        if call is None or not call.whisper:
            whispering = (c for c in phone.calls.values() if c.whisper)
            call = next((c for c in whispering if not line or c.line == line), None)
        if call is None:
            return False
        call.talk()
        return True

    def _on_off_hook(self, phone: Phone, msg: OffHook) -> None:
        phone.handset = True
        if self._answer(phone, msg.call_reference or 0) or self._talk(
            phone, msg.call_reference or 0
        ):
            return
        if phone.active() is None:
            self.new_call(phone, msg.line_instance or 1)

    def _on_on_hook(self, phone: Phone, msg: OnHook) -> None:
        phone.handset = False
        active = phone.active()
        if active is not None:
            active.hang_up()
        elif phone.speaker:
            phone.speaker = False

    def _on_keypad(self, phone: Phone, msg: KeypadButton) -> None:
        digit = keypad_digit(msg.button)
        if digit is None:
            return
        call = phone.calls.get(msg.call_reference or 0)
        if call is None or not call.on_plane:
            call = phone.active()
        if call is None:
            return
        if call.phase is Phase.DIALING:
            self._digit(call, digit)
        elif call.phase is Phase.CONNECTED and call.leg is not None:
            self.engine.on_digits(call.leg, digit)

    def _on_enbloc(self, phone: Phone, msg: EnblocCall) -> None:
        self.dial_whole(phone, msg.called_party, msg.line_instance or 1)

    def _on_stimulus(self, phone: Phone, msg: Stimulus) -> None:
        code, instance = msg.stimulus, msg.stimulus_instance
        if code == StimulusCode.LINE:
            ref = msg.call_reference or 0
            if self._answer(phone, ref) or self._talk(phone, ref, instance):
                return
            held = phone.on_line(instance, Phase.HELD)
            if held is not None:
                self._resume(phone, held)
            elif phone.active() is None:
                self.new_call(phone, instance)
        elif code == StimulusCode.REDIAL:
            self.dial_whole(phone, phone.last_dialed)
        elif code == StimulusCode.SPEED_DIAL:
            self.dial_whole(phone, phone.speed_dial(instance))
        elif code == StimulusCode.HOLD:
            active = phone.active()
            if active is not None:
                active.hold()
        else:
            self.coverage.stimulus(phone, code, instance)

    def _on_soft_key(self, phone: Phone, msg: SoftKeyEvent) -> None:
        key, ref = msg.soft_key_event, msg.call_reference or 0
        call = phone.calls.get(ref) or phone.active()
        if key == SoftKey.NEW_CALL:
            self.new_call(phone, msg.line_instance or 1)
        elif key == SoftKey.REDIAL:
            self.dial_whole(phone, phone.last_dialed, msg.line_instance or 1)
        elif key == SoftKey.ANSWER:
            if not self._answer(phone, ref):
                self._talk(phone, ref)
        elif key == SoftKey.END_CALL and call is not None:
            call.hang_up(Cause.USER_BUSY if call.phase is Phase.RING_IN else 16)
        elif key == SoftKey.HOLD and call is not None:
            call.hold()
        elif key == SoftKey.RESUME:
            held = phone.calls.get(ref)
            if held is None or held.phase is not Phase.HELD:
                held = next((c for c in phone.calls.values() if c.phase is Phase.HELD), None)
            if held is not None:
                self._resume(phone, held)
        elif key == SoftKey.BACKSPACE and call is not None:
            self._backspace(call)
        elif key == SoftKey.JOIN and call is not None:
            if not self._join(phone, call):
                phone.send(DisplayNotify(5, "Not available"))
        elif key in (SoftKey.TRANSFER, SoftKey.CONFERENCE) and call is not None:
            kind = "transfer" if key == SoftKey.TRANSFER else "conference"
            if not self._consult_key(phone, call, kind):
                phone.send(DisplayNotify(5, "Not available"))
        elif not self.coverage.soft_key(phone, key, msg.line_instance or 1, call, ref):
            phone.send(DisplayNotify(5, "Not available"))

    def _consult_key(self, phone: Phone, call: PhoneCall, kind: str) -> bool:
        """Trnsfer/Confrn: the first press holds the call and gives dial tone for the
        consultation; the second (on the consultation) transfers or conferences."""
        origin = call.consult_for
        if origin is None:
            if call.phase is not Phase.CONNECTED or call.leg is None:
                return False
            consult = self.new_call(phone, call.line)  # holds ``call`` first
            consult.consult_for, consult.consult_kind = call, kind
            return True
        if origin.leg is None or origin.phase is not Phase.HELD or call.leg is None:
            return False
        if kind == "transfer":
            self.engine.transfer_to(origin.leg, call.leg)
            return True
        if call.phase is not Phase.CONNECTED:
            return False
        consult_leg = call.leg
        origin.rejoin()
        self.engine.conference(origin.leg, consult_leg)
        return True

    def _join(self, phone: Phone, call: PhoneCall) -> bool:
        """Join: the connected call and a held one of this phone become a conference."""
        held = next(
            (c for c in phone.calls.values() if c is not call and c.phase is Phase.HELD), None
        )
        if call.phase is not Phase.CONNECTED or call.leg is None or held is None:
            return False
        if held.leg is None:
            return False
        held_leg, active_leg = held.leg, call.leg
        held.rejoin()
        self.engine.conference(held_leg, active_leg)
        return True

    def _backspace(self, call: PhoneCall) -> None:
        collector = call.collector
        if call.phase is not Phase.DIALING or collector is None or not collector.digits:
            return
        fresh = DigitCollector(
            collector.plan,
            collector.css,
            collector.t302,
            codes=collector.codes,
            number_codes=collector.number_codes,
        )
        fresh.start(self._now)
        call.collector = fresh
        verdict = fresh.add(collector.digits[:-1], self._now) if collector.digits[:-1] else None
        if verdict is not None:
            self._verdict(call, verdict)
