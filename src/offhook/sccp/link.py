"""The seam between the SCCP connection adapter (aio.py) and the call endpoint.

``aio.py`` owns sockets, framing and the registration ``DeviceSession``; the
endpoint (``endpoint.py``) owns calls. They meet through two small
interfaces so either can be tested without the other:

- ``PhoneLink``: one registered phone connection as the endpoint sees it
  (its name, header version, profile and capabilities; ``send`` a message;
  ``close`` it).
- ``PhoneHandler``: what the adapter tells the endpoint: a phone registered
  (``attach``; a re-registration from a new connection attaches the new link
  and the old one is detached first), is gone (``detach``), or sent a message
  that is not registration business (``on_message``: hook, keypad, softkeys,
  stimulus, OpenReceiveChannelAck, ...).

Sans-IO: no sockets here; ``now`` is monotonic seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from offhook.sccp.device import DeviceProfile
    from offhook.sccp.messages import Capability, Message


class PhoneLink(Protocol):
    """One registered phone connection."""

    @property
    def name(self) -> str:
        """The device name (SEP<MAC>)."""

    @property
    def version(self) -> int:
        """The SCCP header version the phone registered with (replies carry it)."""

    @property
    def profile(self) -> DeviceProfile:
        """What the call manager knows of the phone (lines, speed dials, model)."""

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        """The phone's media capabilities (CapabilitiesRes), empty until it answered."""

    @property
    def address(self) -> tuple[str, int]:
        """The phone's signalling source address."""

    def send(self, msg: Message) -> None:
        """Queue ``msg`` to the phone (encoded with ``version``)."""

    def close(self, reason: str) -> None:
        """Close the connection (the adapter then calls ``detach``)."""


class PhoneHandler(Protocol):
    """The call side of the SCCP adapter."""

    def attach(self, link: PhoneLink, now: float) -> None:
        """``link`` registered; it replaces any earlier link of the same device."""

    def detach(self, link: PhoneLink, reason: str, now: float) -> None:
        """``link`` is gone (unregister, keepalive timeout, closed, replaced)."""

    def on_message(self, link: PhoneLink, msg: Message, now: float) -> None:
        """A registered phone sent a message the registration session does not handle."""

    def next_timer(self) -> float | None:
        """When ``handle_timer`` should next run (monotonic), or None."""

    def handle_timer(self, now: float) -> None:
        """Run the timers that are due (T302 of phones dialing, ...)."""
