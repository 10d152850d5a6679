"""Call coverage on Skinny phones: forward all, pickup, park, DND, hunt login, voicemail, lamps.

``Coverage`` is the SCCP endpoint's half for the features that decide where
calls go when nobody answers, the way CallManager presents them:

=================  ===================================================================
input              what happens
=================  ===================================================================
CFwdAll softkey,   not forwarded: the phone goes off hook with the prompt "Forward
Forward All        all" and collects the destination (keypad, a speed dial, or
button             redial) until the dial plan says it is complete (or ``#``, or
                   T302); the engine checks it against the line's forward CSS.
                   Forwarded: pressing it clears the forward. A second press during
                   the entry cancels it.
PickUp             dials the pickup code (``engine.codes["pickup"]``) on the line
GPickUp            off hook, prompt "Group pickup": the digits are a pickup group's
                   number (dialled as they are) or a directory number (dialled
                   after the directed pickup code)
Park               parks the connected call (``engine.park``)
Barge, cBarge      on an appearance showing remote in use: a new call on that
                   line joins the call in progress on another appearance
                   (``engine.barge``: a conference bridge; refused with
                   privacy on the other device, "Private")
DND, HLog          toggle do not disturb / hunt group login
Messages softkey,  dial the line's voicemail pilot ("No voicemail" without one)
Messages button
=================  ===================================================================

What phones show follows the engine's bus events, whoever made the change
(a phone, a SIP feature code, an application): ``ForwardChanged`` sends
ForwardStat to every phone carrying the line; ``DndChanged`` and
``HuntLoginChanged`` a notification; ``MwiChanged`` the message lamp
(SetLamp VoiceMail, instance 0, on while any line of the phone has messages
waiting); ``LineStateChanged`` (the engine's line state tracker,
``engine.lines``) the busy lamps of speed dials on models with
busy lamp field speed dials (ringing blinks, in use is on) and remote in use
(CallState RemInUse, softkeys Barge, cBarge, NewCall) on the other
appearances of a shared line. An idle phone's status line says what is in
force: do not disturb, logged out of hunt groups, or where line 1 forwards.
A registering phone gets all of this at once; a phone with nothing to show
gets nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from offhook.core.dialplan.overlap import DigitCollector
from offhook.core.dialplan.router import Outcome
from offhook.core.records import (
    DndChanged,
    ForwardChanged,
    HuntLoginChanged,
    LineStateChanged,
    MwiChanged,
)
from offhook.sccp.calls import NOTIFY_SECONDS, PRECEDENCE_ROUTINE, Phase, PhoneCall
from offhook.sccp.device import NOT_FORWARDED, Forwards, forward_stat
from offhook.sccp.messages import (
    CallState,
    ClearPromptStatus,
    DisplayNotify,
    DisplayPromptStatus,
    SelectSoftKeys,
    SetLamp,
)
from offhook.sccp.templates import BLF_MODELS, KeySet, SoftKey, button_template
from offhook.sccp.ui import CallStateCode, LampMode, Stimulus

if TYPE_CHECKING:
    from offhook.core.directory import LineInfo
    from offhook.sccp.endpoint import SccpEndpoint
    from offhook.sccp.phone import Phone

FORWARD = "forward"  # PhoneCall.purpose: collecting a forward all destination
GROUP_PICKUP = "group-pickup"  # collecting a pickup group (or a DN to pick up)

BLF_LAMPS = {"idle": LampMode.OFF, "ringing": LampMode.BLINK, "in-use": LampMode.ON}
"""SetLamp mode of a busy lamp field speed dial per line state."""

SOFT_KEYS: Mapping[int, str] = MappingProxyType(
    {
        SoftKey.CFWD_ALL: "_on_forward_all",
        SoftKey.PICKUP: "_on_pickup",
        SoftKey.GROUP_PICKUP: "_on_group_pickup",
        SoftKey.PARK: "_on_park",
        SoftKey.DND: "_on_dnd",
        SoftKey.HLOG: "_on_hunt_login",
        SoftKey.MESSAGES: "_on_messages",
        SoftKey.BARGE: "_on_barge",
        SoftKey.C_BARGE: "_on_barge",
    }
)
"""Coverage softkey -> its ``Coverage`` handler."""

BUTTONS: Mapping[int, str] = MappingProxyType(
    {Stimulus.FORWARD_ALL: "_on_forward_all", Stimulus.VOICEMAIL: "_on_messages"}
)
"""Coverage feature button (Stimulus) -> its ``Coverage`` handler."""

_REFUSALS = {25: "Forward loop"}
"""What a refused forward shows, by the engine's cause (other causes: NOT_ALLOWED)."""
NOT_ALLOWED = "Not allowed"


class Coverage:
    """Call coverage softkeys, buttons, displays and lamps of an ``SccpEndpoint``'s phones."""

    def __init__(self, endpoint: SccpEndpoint) -> None:
        self.ep = endpoint
        self.engine = endpoint.engine
        # Number -> the registered phones with a line or a busy lamp speed dial on
        # it, and each phone's numbers (bounded by the phones registered).
        self._watchers: dict[str, set[str]] = {}
        self._watching: dict[str, frozenset[str]] = {}
        self.engine.subscribe(ForwardChanged, self._forward_changed)
        self.engine.subscribe(DndChanged, self._dnd_changed)
        self.engine.subscribe(HuntLoginChanged, self._hunt_changed)
        self.engine.subscribe(MwiChanged, self._mwi_changed)
        self.engine.subscribe(LineStateChanged, self._line_state_changed)

    # ------------------------------------------------------------ lines
    def _line(self, phone: Phone, index: int) -> LineInfo | None:
        """Line ``index`` (1-based) of ``phone`` as the plan has it."""
        dn, _ = phone.line_info(index)
        return self.engine.line_of(phone.name, dn) if dn else None

    def _watchers_of(self, dn: str) -> list[Phone]:
        """The registered phones with a line or a busy lamp speed dial on ``dn``."""
        phones = (self.ep.phones.get(name) for name in self._watchers.get(dn, ()))
        return [phone for phone in phones if phone is not None]

    def _appearances(self, dn: str, partition: str) -> list[tuple[Phone, int]]:
        """(phone, line index) of every registered phone carrying line ``dn``."""
        found = []
        for phone in self._watchers_of(dn):
            for index, (number, _) in enumerate(phone.link.profile.lines, start=1):
                if number != dn:
                    continue
                line = self.engine.line_of(phone.name, dn)
                if line is not None and line.partition == partition:
                    found.append((phone, index))
        return found

    def _forwarded_to(self, line: LineInfo | None) -> str:
        """Where ``line`` forwards all its calls now ("" nowhere; a plan's forward CSS
        without a destination forwards nothing)."""
        if line is None:
            return ""
        cfa = self.engine.forward_all_of(line.dn, line.partition)
        return cfa.destination if cfa is not None else ""

    def forwards(self, name: str, index: int) -> Forwards:
        """How line ``index`` of phone ``name`` forwards now (for ForwardStat)."""
        dn = ""
        phone = self.ep.phones.get(name)
        if phone is not None:
            dn = phone.line_info(index)[0]
        else:
            info = self.engine.snapshot().device(name)
            if info is not None and 1 <= index <= len(info.lines):
                dn = info.lines[index - 1].dn
        line = self.engine.line_of(name, dn) if dn else None
        if line is None:
            return NOT_FORWARDED
        shared = self.engine.snapshot().line(line.dn, line.partition) or line
        cfb = line.forward_busy or shared.forward_busy
        cfna = line.forward_no_answer or shared.forward_no_answer
        return (
            self._forwarded_to(line),
            cfb.destination if cfb is not None else "",
            cfna.destination if cfna is not None else "",
        )

    # ------------------------------------------------------------ phones
    def attached(self, phone: Phone) -> None:
        """A phone registered: its status line and lamps as they are now."""
        self.detached(phone.name)
        numbers = frozenset(
            [dn for dn, _ in phone.link.profile.lines]
            + [number for _, number in self._busy_lamp_dials(phone)]
        )
        self._watching[phone.name] = numbers
        for number in numbers:
            self._watchers.setdefault(number, set()).add(phone.name)
        self._status(phone)
        if self._messages_waiting(phone):
            phone.send(SetLamp(Stimulus.VOICEMAIL, 0, LampMode.ON))
        dns = self.engine.snapshot().dns
        for number in sorted(numbers):
            entry = dns.get(number)
            if entry is None:
                continue
            view = self.engine.lines.view(number, entry.partition)
            if view.state != "idle":
                event = LineStateChanged(number, entry.partition, view.state, view.devices)
                self._show_line_state(phone, event)

    def detached(self, name: str) -> None:
        """Phone ``name`` is gone: it watches no number any more."""
        for number in self._watching.pop(name, ()):
            names = self._watchers.get(number)
            if names is not None:
                names.discard(name)
                if not names:
                    del self._watchers[number]

    # ------------------------------------------------------------ inputs
    def soft_key(
        self, phone: Phone, key: int, line: int, call: PhoneCall | None, ref: int = 0
    ) -> bool:
        """Handle a coverage softkey (False: not one of ours); ``ref``: the call
        reference it was pressed on (a remote-in-use appearance names its line)."""
        handler = SOFT_KEYS.get(key)
        if handler is None:
            return False
        shown = [index for index, r in phone.remote_in_use.items() if ref and r == ref]
        getattr(self, handler)(phone, shown[0] if shown else line, call)
        return True

    def stimulus(self, phone: Phone, code: int, instance: int) -> bool:
        """Handle a coverage feature button (False: not one of ours)."""
        handler = BUTTONS.get(code)
        if handler is None:
            return False
        getattr(self, handler)(phone, instance, None)
        return True

    # The handlers SOFT_KEYS and BUTTONS name: (phone, line, the call the key is for).
    def _on_forward_all(self, phone: Phone, line: int, call: PhoneCall | None) -> None:
        self._forward_key(phone, line)

    def _on_pickup(self, phone: Phone, line: int, call: PhoneCall | None) -> None:
        self._pickup(phone, line)

    def _on_group_pickup(self, phone: Phone, line: int, call: PhoneCall | None) -> None:
        self._collect(phone, line, GROUP_PICKUP, "Group pickup")

    def _on_park(self, phone: Phone, line: int, call: PhoneCall | None) -> None:
        self._park(phone, call)

    def _on_dnd(self, phone: Phone, line: int, call: PhoneCall | None) -> None:
        if not self.engine.set_dnd(phone.name, not self.engine.dnd(phone.name)):
            self._notify(phone, "Not available")

    def _on_hunt_login(self, phone: Phone, line: int, call: PhoneCall | None) -> None:
        logged_in = self.engine.hunt_logged_in(phone.name)
        if not self.engine.set_hunt_login(phone.name, not logged_in):
            self._notify(phone, "Not available")

    def _on_messages(self, phone: Phone, line: int, call: PhoneCall | None) -> None:
        self._voicemail(phone, line)

    def _on_barge(self, phone: Phone, line: int, call: PhoneCall | None) -> None:
        if line not in phone.remote_in_use and len(phone.remote_in_use) == 1:
            line = next(iter(phone.remote_in_use))  # the one appearance it can be
        info = self._line(phone, line)
        if line not in phone.remote_in_use or info is None:
            self._notify(phone, "Not available")
            return
        self.ep.barge(phone, line, (info.dn, info.partition))

    def dialed(self, call: PhoneCall, number: str) -> bool:
        """``number`` is complete on ``call``; True when coverage took it (not a call)."""
        if call.purpose == FORWARD:
            self._forward_entered(call, number)
        elif call.purpose == GROUP_PICKUP:
            call.purpose = ""
            self.ep.route(call, self._pickup_number(call, number))
        else:
            return False
        return True

    def digit(self, call: PhoneCall, digit: str) -> bool:
        """``#`` ends a forward destination (True: taken)."""
        collector = call.collector
        if call.purpose != FORWARD or digit != "#" or collector is None:
            return False
        if collector.digits:
            self._forward_entered(call, collector.digits)
        return True

    def refused(self, call: PhoneCall, cause: int) -> bool:
        """The dial plan refused what ``call`` collected; True when coverage shows it."""
        if call.purpose != FORWARD:
            return False
        call.hang_up()
        self._notify(call.phone, _REFUSALS.get(cause, NOT_ALLOWED))
        return True

    # ------------------------------------------------------------ forward all
    def _forward_key(self, phone: Phone, index: int) -> None:
        index = index or 1
        active = phone.active()
        if active is not None and active.purpose == FORWARD:
            active.hang_up()  # a second press cancels the entry
            return
        line = self._line(phone, index)
        if line is None:
            self._notify(phone, "Not available")
            return
        if self._forwarded_to(line):
            if self._fresh(active):
                assert active is not None
                active.hang_up()
            self._set_forward(phone, line.dn, "")
            return
        css = self.engine.forward_css(phone.name, line, line.forward_all)
        self._collect(phone, index, FORWARD, "Forward all", css)

    def _forward_entered(self, call: PhoneCall, number: str) -> None:
        phone = call.phone
        dn, _ = phone.line_info(call.line)
        call.hang_up()
        self._set_forward(phone, dn, number)

    def _set_forward(self, phone: Phone, dn: str, destination: str) -> None:
        cause = self.engine.set_forward_all(phone.name, dn, destination)
        if cause is not None:
            self._notify(phone, _REFUSALS.get(cause, NOT_ALLOWED))

    def _forward_changed(self, event: ForwardChanged) -> None:
        cfa = self.engine.forward_all_of(event.dn, event.partition)
        destination = cfa.destination if cfa is not None else ""
        text = f"Forwarded to {destination}" if destination else "Forward all off"
        for phone, index in self._appearances(event.dn, event.partition):
            phone.send(forward_stat(index, self.forwards(phone.name, index)))
            self._notify(phone, text)
            self._status(phone)

    # ------------------------------------------------------------ pickup, park, voicemail
    def _pickup(self, phone: Phone, index: int) -> None:
        code = self.engine.codes.get("pickup", "")
        if not code:
            self._notify(phone, "Not available")
            return
        self.ep.dial_whole(phone, code, index or 1)

    def _pickup_number(self, call: PhoneCall, digits: str) -> str:
        """GPickUp: a pickup group's number as it is, any other number as a directed pickup."""
        snapshot = self.engine.snapshot()
        info = snapshot.device(call.phone.name)
        dn, _ = call.phone.line_info(call.line)
        decision = snapshot.dialplan.route(info.css if info else "", digits, dn)
        directed = self.engine.codes.get("directed_pickup", "")
        if decision.outcome is Outcome.PICKUP or not directed:
            return digits
        return directed + digits

    def _park(self, phone: Phone, call: PhoneCall | None) -> None:
        if call is None or call.phase is not Phase.CONNECTED or call.leg is None:
            self._notify(phone, "Not available")
            return
        self.engine.park(call.leg)

    def _voicemail(self, phone: Phone, index: int) -> None:
        active = phone.active()
        if active is not None and active.phase is Phase.DIALING:
            index = active.line
        index = index or 1
        dn, _ = phone.line_info(index)
        pilot = self.engine.voicemail_pilot(phone.name, dn) if dn else ""
        if not pilot:
            self._notify(phone, "No voicemail")
            return
        self.ep.dial_whole(phone, pilot, index)

    # ------------------------------------------------------------ collecting digits
    @staticmethod
    def _fresh(call: PhoneCall | None) -> bool:
        """``call`` is dial tone with nothing dialled yet (a feature may take it over)."""
        return (
            call is not None
            and call.phase is Phase.DIALING
            and call.collector is not None
            and not call.collector.digits
        )

    def _collect(
        self, phone: Phone, index: int, purpose: str, label: str, css: str | None = None
    ) -> None:
        """Dial tone on line ``index`` collecting digits for ``purpose`` (``css``:
        analysed with it instead of the device's)."""
        active = phone.active()
        if active is not None and not self._fresh(active):
            self._notify(phone, "Not available")
            return
        call = active if active is not None else self.ep.new_call(phone, index or 1)
        call.purpose = purpose
        if call.collector is not None:
            # A destination or a group is a number, never a feature code.
            old = call.collector
            collector = DigitCollector(old.plan, old.css if css is None else css, old.t302)
            collector.start(self.ep.now)
            call.collector = collector
        phone.send(DisplayPromptStatus(0, label, call.line, call.ref))

    # ------------------------------------------------------------ DND, hunt login
    def _dnd_changed(self, event: DndChanged) -> None:
        phone = self.ep.phones.get(event.device)
        if phone is not None:
            self._notify(phone, "Do Not Disturb active" if event.on else "Do Not Disturb off")
            self._status(phone)

    def _hunt_changed(self, event: HuntLoginChanged) -> None:
        phone = self.ep.phones.get(event.device)
        if phone is not None:
            text = "Logged into hunt groups" if event.logged_in else "Logged out of hunt groups"
            self._notify(phone, text)
            self._status(phone)

    def _status(self, phone: Phone) -> None:
        """The idle status line: what is in force on the phone (nothing: cleared)."""
        text = ""
        if self.engine.dnd(phone.name):
            text = "Do Not Disturb active"
        elif not self.engine.hunt_logged_in(phone.name):
            text = "Logged out of hunt groups"
        elif destination := self._forwarded_to(self._line(phone, 1)):
            text = f"Forwarded to {destination}"
        shown = phone.status_line
        if text == shown:
            return
        phone.status_line = text
        if text:
            phone.send(DisplayPromptStatus(0, text[:32], 0, 0))
        else:
            phone.send(ClearPromptStatus(0, 0))

    # ------------------------------------------------------------ message waiting
    def _messages_waiting(self, phone: Phone) -> bool:
        lines = self.engine.snapshot().device(phone.name)
        if lines is None:
            return False
        return any(self.engine.messages(x.dn, x.partition).waiting for x in lines.lines)

    def _mwi_changed(self, event: MwiChanged) -> None:
        seen: set[str] = set()
        for phone, _ in self._appearances(event.dn, event.partition):
            if phone.name in seen:
                continue
            seen.add(phone.name)
            on = self._messages_waiting(phone)
            phone.send(SetLamp(Stimulus.VOICEMAIL, 0, LampMode.ON if on else LampMode.OFF))

    # ------------------------------------------------------------ busy lamps, remote in use
    def _line_state_changed(self, event: LineStateChanged) -> None:
        for phone in self._watchers_of(event.dn):
            self._show_line_state(phone, event)

    @staticmethod
    def _busy_lamp_dials(phone: Phone) -> list[tuple[int, str]]:
        """(speed dial, number) of ``phone``'s speed dials with a lamp (busy lamp field)."""
        profile = phone.link.profile
        if profile.model not in BLF_MODELS:
            return []
        buttons = button_template(profile.model, len(profile.lines), len(profile.speed_dials))
        dials = sum(1 for _, kind in buttons if kind == Stimulus.SPEED_DIAL)
        return [(i, number) for i, (number, _) in enumerate(profile.speed_dials[:dials], start=1)]

    def _show_line_state(self, phone: Phone, event: LineStateChanged) -> None:
        profile = phone.link.profile
        mode = BLF_LAMPS.get(event.state, LampMode.OFF)
        for index, number in self._busy_lamp_dials(phone):
            if number == event.dn and phone.busy_lamps.get(index, LampMode.OFF) != mode:
                phone.busy_lamps[index] = mode
                phone.send(SetLamp(Stimulus.SPEED_DIAL, index, mode))
        for index, (number, _) in enumerate(profile.lines, start=1):
            if number == event.dn:
                line = self.engine.line_of(phone.name, number)
                if line is not None and line.partition == event.partition:
                    remote = event.state == "in-use" and phone.name not in event.devices
                    self._remote_in_use(phone, index, remote)

    def _remote_in_use(self, phone: Phone, index: int, remote: bool) -> None:
        """Show (or clear) remote in use on ``phone``'s appearance ``index``."""
        ref = phone.remote_in_use.get(index)
        own = any(c.line == index and c.phase is not Phase.ENDED for c in phone.calls.values())
        if remote and ref is None:
            ref = self.ep.reference()
            phone.remote_in_use[index] = ref
            phone.send(CallState(CallStateCode.REMOTE_MULTILINE, index, ref, 0, PRECEDENCE_ROUTINE))
            phone.send(SelectSoftKeys(index, ref, KeySet.IN_USE_HINT, 0xFFFFFFFF))
            if not own:
                phone.send(SetLamp(Stimulus.LINE, index, LampMode.ON))
        elif not remote and ref is not None:
            del phone.remote_in_use[index]
            phone.send(CallState(CallStateCode.ON_HOOK, index, ref, 0, PRECEDENCE_ROUTINE))
            if not own:
                phone.send(SetLamp(Stimulus.LINE, index, LampMode.OFF))

    # ------------------------------------------------------------ display
    @staticmethod
    def _notify(phone: Phone, text: str) -> None:
        phone.send(DisplayNotify(NOTIFY_SECONDS, text[:32]))
