"""Call coverage settings that change while the node runs, and message waiting.

The plan says how each line forwards; a phone may override forward all
(CFwdAll softkey, ``*21``), switch do not disturb on, log out of its hunt
groups, and a voicemail system lights a line's message lamp. ``FeatureState``
holds those run-time settings. It is call control's: only the engine changes
it, and every change is published on the event bus (``ForwardChanged``,
``DndChanged``, ``HuntLoginChanged``, ``MwiChanged``), which is how the
database keeps them across restarts (``offhook.db.feature_state``) and how
phones learn of them (SIP NOTIFY, SCCP lamps). At start the node hands the
stored settings back with :meth:`FeatureState.restore`.

Bounded: a setting exists only for a line or device of the plan (the engine
checks before changing anything), so the tables never outgrow the plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from offhook.core.records import DndChanged, ForwardChanged, HuntLoginChanged, MwiChanged

Line = tuple[str, str]  # (directory number, partition)


@dataclass(frozen=True, slots=True)
class Mwi:
    """A line's message waiting state (RFC 3842 voice-message counts, 0 when unknown)."""

    waiting: bool = False
    new: int = 0
    old: int = 0


NO_MESSAGES = Mwi()


class FeatureState:
    def __init__(self) -> None:
        # Forward all set from a phone: destination ("" = off, overriding the plan).
        self.forward_all: dict[Line, str] = {}
        self.dnd: set[str] = set()  # devices with do not disturb on
        self.hunt_logged_out: set[str] = set()  # devices logged out of their hunt groups
        self.mwi: dict[Line, Mwi] = {}

    def restore(self, events: Iterable[object]) -> None:
        """Apply stored settings (the bus events that made them), oldest first."""
        for event in events:
            self.apply(event)

    def apply(self, event: object) -> None:
        match event:
            case ForwardChanged(dn=dn, partition=partition, destination=destination):
                if destination is None:
                    self.forward_all.pop((dn, partition), None)
                else:
                    self.forward_all[(dn, partition)] = destination
            case DndChanged(device=device, on=on):
                (self.dnd.add if on else self.dnd.discard)(device)
            case HuntLoginChanged(device=device, logged_in=logged_in):
                (self.hunt_logged_out.discard if logged_in else self.hunt_logged_out.add)(device)
            case MwiChanged(dn=dn, partition=partition, waiting=waiting, new=new, old=old):
                if waiting or new or old:
                    self.mwi[(dn, partition)] = Mwi(waiting, new, old)
                else:
                    self.mwi.pop((dn, partition), None)

    def holds(self, event: object) -> bool:
        """True when applying ``event`` would change nothing."""
        match event:
            case ForwardChanged(dn=dn, partition=partition, destination=destination):
                return self.forward_all.get((dn, partition)) == destination
            case DndChanged(device=device, on=on):
                return (device in self.dnd) == on
            case HuntLoginChanged(device=device, logged_in=logged_in):
                return (device in self.hunt_logged_out) != logged_in
            case MwiChanged(dn=dn, partition=partition, waiting=waiting, new=new, old=old):
                return self.messages(dn, partition) == Mwi(waiting, new, old)
        return False

    def messages(self, dn: str, partition: str = "") -> Mwi:
        return self.mwi.get((dn, partition), NO_MESSAGES)

    def events(self) -> list[ForwardChanged | DndChanged | HuntLoginChanged | MwiChanged]:
        """The events that make the present state from the plan's (``restore``'s input)."""
        out: list[ForwardChanged | DndChanged | HuntLoginChanged | MwiChanged] = [
            ForwardChanged(dn, partition, destination)
            for (dn, partition), destination in self.forward_all.items()
        ]
        out += [DndChanged(device, True) for device in sorted(self.dnd)]
        out += [HuntLoginChanged(device, False) for device in sorted(self.hunt_logged_out)]
        out += [
            MwiChanged(dn, partition, m.waiting, m.new, m.old)
            for (dn, partition), m in self.mwi.items()
        ]
        return out
