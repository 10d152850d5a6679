"""What call control tells the rest of the system: bus events and call records.

Call detail records, CTI and real-time information subscribe to these on the
``EventBus``; none of them is called from call control. Every call attempt,
routed or not, produces exactly one ``CallStarted`` and one ``CallEnded``
carrying its ``CallRecord`` (the CDR). Times are wall-clock seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from offhook.core.events import PartyInfo


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call attempt, as a CDR stores it.

    ``called_device`` is the device that answered, or the first one rung, or
    "" when the call was never routed. ``duration`` is whole seconds from
    answer to end (rounded), 0 when never answered.
    """

    call_id: str
    calling: str
    called: str
    original_called: str
    calling_device: str
    called_device: str
    start: float
    answer: float | None
    end: float
    duration: int
    cause: int
    cause_text: str
    node: str = ""
    # Trunks a route list tried before the one that carried the call (or all of
    # them, when none did): (trunk name, Q.850 cause of its failure or skip).
    hunt: tuple[tuple[str, int], ...] = ()
    # What features add (transfer_of / transferred_to / transferred_by links,
    # the bridge a party was joined to), as (key, value) pairs.
    extra: tuple[tuple[str, str], ...] = ()
    # The number that redirected the call last, and why (RedirectReason value),
    # as CallManager's CDR lastRedirectDn / lastRedirectRedirectReason.
    last_redirecting: str = ""
    redirect_reason: str = ""
    # The far half of a call another worker of the node owns and records
    # (``CallEngine.ring_device``): no CDR of its own.
    internal: bool = False


@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    calling: PartyInfo
    called: str
    calling_device: str
    start: float
    internal: bool = False  # a node leg's far half (``CallRecord.internal``)


@dataclass(frozen=True, slots=True)
class CallAlerting:
    call_id: str
    device: str


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    device: str
    answer: float


@dataclass(frozen=True, slots=True)
class CallEnded:
    record: CallRecord


@dataclass(frozen=True, slots=True)
class LegStateChanged:
    call_id: str  # "" for an inbound leg released before its Setup
    leg_id: str
    device: str
    direction: str
    old: str
    new: str
    cause: int | None = None
    line: str = ""  # the leg's directory number ("" none; see Leg.line)
    partition: str = ""


@dataclass(frozen=True, slots=True)
class ParkChanged:
    """A park number was taken (a party parked on it) or freed, on this process."""

    number: str
    partition: str
    taken: bool


@dataclass(frozen=True, slots=True)
class ForwardChanged:
    """A phone (or an application) set or cleared forward all on a line.

    ``destination`` None: back to what the plan says; "" : off.
    """

    dn: str
    partition: str
    destination: str | None
    device: str = ""


@dataclass(frozen=True, slots=True)
class DndChanged:
    device: str
    on: bool


@dataclass(frozen=True, slots=True)
class HuntLoginChanged:
    device: str
    logged_in: bool


@dataclass(frozen=True, slots=True)
class MwiChanged:
    """Message waiting on a line changed (RFC 3842 counts; 0 when unknown)."""

    dn: str
    partition: str
    waiting: bool
    new: int = 0
    old: int = 0


@dataclass(frozen=True, slots=True)
class RegistrationChanged:
    """A device registered (its first binding) or is gone (its last binding went)."""

    device: str
    protocol: str
    registered: bool


@dataclass(frozen=True, slots=True)
class LineStateChanged:
    """A directory number's busy-lamp state: ``idle``, ``ringing`` or ``in-use``.

    ``devices`` are the devices whose appearance of the line is in a call
    (``in-use`` on one appearance is remote-in-use on the others).
    """

    dn: str
    partition: str
    state: str
    devices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CallHeld:
    """``device`` (leg ``leg_id``) put its call on hold; ``held_device`` hears music.

    ``by`` is ``"device"`` when the phone itself held, ``"cti"`` when an
    application did (``core.cti_ops``).
    """

    call_id: str
    leg_id: str
    device: str
    held_device: str = ""
    by: str = "device"


@dataclass(frozen=True, slots=True)
class CallResumed:
    call_id: str
    leg_id: str
    device: str
    by: str = "device"


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """A transfer of ``call_id``, as seen by one of its devices.

    ``role`` ``"transferrer"``: ``device`` transferred its call; its party now
    talks to ``target``. ``role`` ``"transferee"``: ``device`` was that party,
    moved into ``new_call_id`` (its leg is there now). ``kind``: ``"blind"`` or
    ``"consult"``; ``new_call_id`` is the call the transferred party is in
    afterwards ("" while a blind transfer still rings).
    """

    call_id: str
    device: str
    kind: str
    target: str = ""
    new_call_id: str = ""
    by: str = "device"
    role: str = "transferrer"


@dataclass(frozen=True, slots=True)
class CallConferenced:
    """``device`` joined ``call_id`` (and ``other_call_id``) into the bridge ``bridge``."""

    call_id: str
    device: str
    bridge: str
    other_call_id: str = ""
    by: str = "device"


@dataclass(frozen=True, slots=True)
class DigitsReceived:
    """Digits (DTMF) a device sent in an established call."""

    call_id: str
    leg_id: str
    device: str
    digits: str


@dataclass(frozen=True, slots=True)
class RegistrationRejected:
    """A device (or a name claiming to be one) was refused registration."""

    device: str
    protocol: str
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class LegStatus:
    leg_id: str
    device: str
    direction: str
    state: str
    contact: str = ""


@dataclass(frozen=True, slots=True)
class CallStatus:
    """An active call, for status pages and the admin endpoint."""

    call_id: str
    calling: str
    called: str
    state: str
    legs: tuple[LegStatus, ...]
    start: float
    answer: float | None
