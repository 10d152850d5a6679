"""offhook.core: protocol-neutral call control (sans-IO).

Adapters implement ``LegDriver``/``LegFactory`` (``ports``) and talk to the
``CallEngine`` (``engine``) in the neutral vocabulary of ``events``,
``media`` and Q.850 ``causes``; the rest of the system listens on the
``EventBus`` (``bus``) for ``records`` events.
"""

from offhook.core.bus import EventBus
from offhook.core.call import Call
from offhook.core.causes import Cause, cause_text, select_cause
from offhook.core.engine import CallEngine
from offhook.core.events import (
    Alerting,
    Connect,
    Digits,
    MediaAnswer,
    MediaOffer,
    PartyInfo,
    Progress,
    Release,
    Setup,
    Tone,
)
from offhook.core.leg import CoreError, Direction, InvalidTransition, Leg, LegEvent, LegState
from offhook.core.media import Codec, MediaDescription, MediaStream
from offhook.core.ports import LegDriver, LegFactory
from offhook.core.records import (
    CallAlerting,
    CallAnswered,
    CallEnded,
    CallRecord,
    CallStarted,
    CallStatus,
    LegStateChanged,
    LegStatus,
)

__all__ = [
    "Alerting",
    "Call",
    "CallAlerting",
    "CallAnswered",
    "CallEnded",
    "CallEngine",
    "CallRecord",
    "CallStarted",
    "CallStatus",
    "Cause",
    "Codec",
    "Connect",
    "CoreError",
    "Digits",
    "Direction",
    "EventBus",
    "InvalidTransition",
    "Leg",
    "LegDriver",
    "LegEvent",
    "LegFactory",
    "LegState",
    "LegStateChanged",
    "LegStatus",
    "MediaAnswer",
    "MediaDescription",
    "MediaOffer",
    "MediaStream",
    "PartyInfo",
    "Progress",
    "Release",
    "Setup",
    "Tone",
    "cause_text",
    "select_cause",
]
