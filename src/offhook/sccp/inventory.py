"""What an SCCP phone says it is: model and firmware load, for real-time information (sans-IO).

A phone tells the call manager its device type in ``Register``
(``device_type``, named by ``autoreg.DEVICE_TYPES``), and its firmware in
one of two ways: newer firmware (protocol 11 and up) in ``Register``'s
``firmware_load`` field; older 79xx firmware in the ``Alarm`` it sends as it
connects, whose text reads ``Name=SEP003094C2D9D5 Load= P00308000500
Last=TCP-timeout`` (packet-skinny.c ``AlarmMessage``; the load id follows
``Load=``). ``StationInfo`` keeps what one connection learnt;
``station_model`` names a device type (``Cisco 7960``; a type we have no
name for is shown by its number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from offhook.sccp.autoreg import DEVICE_TYPES
from offhook.sccp.messages import Alarm, Message, Register

MAX_LOAD = 32
"""Characters of a firmware load id kept (the Register field's size)."""

_LOAD = re.compile(r"\bLoad=\s*([!-~]{1,32})")


def station_model(device_type: int | None) -> str:
    """The model a Register ``device_type`` names: ``Cisco 7960``, else ``SCCP type N``."""
    if device_type is None:
        return ""
    name = DEVICE_TYPES.get(device_type)
    return f"Cisco {name}" if name is not None else f"SCCP type {device_type}"


def alarm_load(text: str) -> str:
    """The firmware load id an Alarm's text names (``Load= P00308000500``), or ""."""
    match = _LOAD.search(text)
    return match.group(1) if match is not None else ""


def _printable(text: str) -> str:
    """``text`` without control characters (a phone's bytes are shown to operators)."""
    return "".join(c for c in text if c.isprintable())[:MAX_LOAD]


@dataclass(slots=True)
class StationInfo:
    """What one phone connection said about itself (model, firmware load)."""

    device_type: int | None = None
    firmware: str = ""

    @property
    def model(self) -> str:
        return station_model(self.device_type)

    def learn(self, msg: Message) -> None:
        """Take what ``msg`` tells (a Register's type and load; an Alarm's load)."""
        if isinstance(msg, Register):
            self.device_type = msg.device_type
            if msg.firmware_load:
                self.firmware = _printable(msg.firmware_load)
        elif isinstance(msg, Alarm) and not self.firmware:
            self.firmware = _printable(alarm_load(msg.text))
