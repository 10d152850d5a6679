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


@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    calling: PartyInfo
    called: str
    calling_device: str
    start: float


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
