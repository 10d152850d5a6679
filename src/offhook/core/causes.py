"""Why a call (or one fork of it) ended: ITU-T Q.850 cause values.

This is core's one vocabulary for call failure and clearing; each adapter maps
it to its wire (RFC 3398 for SIP responses, tones and prompts for SCCP, H.225
release reasons) and call records store it, as CallManager's CDRs do. No
protocol's codes appear here.

``select_cause`` picks what the caller hears when every fork of a call failed,
in the spirit of RFC 3261 §16.7 response selection: the most specific,
most "final" answer from a user wins over network trouble.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class Cause(IntEnum):
    """Q.850 cause values (Table 1/Q.850) that call control uses."""

    UNALLOCATED_NUMBER = 1
    NO_ROUTE_TO_DESTINATION = 3
    NORMAL_CLEARING = 16
    USER_BUSY = 17
    NO_USER_RESPONDING = 18
    NO_ANSWER = 19
    SUBSCRIBER_ABSENT = 20
    CALL_REJECTED = 21
    NUMBER_CHANGED = 22
    NON_SELECTED_USER_CLEARING = 26
    DESTINATION_OUT_OF_ORDER = 27
    INVALID_NUMBER_FORMAT = 28
    FACILITY_REJECTED = 29
    NORMAL_UNSPECIFIED = 31
    NO_CIRCUIT_AVAILABLE = 34
    NETWORK_OUT_OF_ORDER = 38
    TEMPORARY_FAILURE = 41
    SWITCHING_EQUIPMENT_CONGESTION = 42
    RESOURCE_UNAVAILABLE = 47
    BEARER_CAPABILITY_NOT_AUTHORIZED = 57
    BEARER_CAPABILITY_NOT_AVAILABLE = 58
    SERVICE_UNAVAILABLE = 63
    BEARER_CAPABILITY_NOT_IMPLEMENTED = 65
    SERVICE_NOT_IMPLEMENTED = 79
    INVALID_CALL_REFERENCE = 81
    INCOMPATIBLE_DESTINATION = 88
    INVALID_MESSAGE = 95
    MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE = 101
    RECOVERY_ON_TIMER_EXPIRY = 102
    PROTOCOL_ERROR = 111
    INTERWORKING = 127


_TEXT: dict[int, str] = {
    Cause.UNALLOCATED_NUMBER: "Unallocated (unassigned) number",
    Cause.NO_ROUTE_TO_DESTINATION: "No route to destination",
    Cause.NORMAL_CLEARING: "Normal call clearing",
    Cause.USER_BUSY: "User busy",
    Cause.NO_USER_RESPONDING: "No user responding",
    Cause.NO_ANSWER: "No answer from user (user alerted)",
    Cause.SUBSCRIBER_ABSENT: "Subscriber absent",
    Cause.CALL_REJECTED: "Call rejected",
    Cause.NUMBER_CHANGED: "Number changed",
    Cause.NON_SELECTED_USER_CLEARING: "Non-selected user clearing",
    Cause.DESTINATION_OUT_OF_ORDER: "Destination out of order",
    Cause.INVALID_NUMBER_FORMAT: "Invalid number format (address incomplete)",
    Cause.FACILITY_REJECTED: "Facility rejected",
    Cause.NORMAL_UNSPECIFIED: "Normal, unspecified",
    Cause.NO_CIRCUIT_AVAILABLE: "No circuit/channel available",
    Cause.NETWORK_OUT_OF_ORDER: "Network out of order",
    Cause.INVALID_CALL_REFERENCE: "Invalid call reference value",
    Cause.TEMPORARY_FAILURE: "Temporary failure",
    Cause.SWITCHING_EQUIPMENT_CONGESTION: "Switching equipment congestion",
    Cause.RESOURCE_UNAVAILABLE: "Resource unavailable, unspecified",
    Cause.BEARER_CAPABILITY_NOT_AUTHORIZED: "Bearer capability not authorized",
    Cause.BEARER_CAPABILITY_NOT_AVAILABLE: "Bearer capability not presently available",
    Cause.SERVICE_UNAVAILABLE: "Service or option not available, unspecified",
    Cause.BEARER_CAPABILITY_NOT_IMPLEMENTED: "Bearer capability not implemented",
    Cause.SERVICE_NOT_IMPLEMENTED: "Service or option not implemented, unspecified",
    Cause.INCOMPATIBLE_DESTINATION: "Incompatible destination",
    Cause.INVALID_MESSAGE: "Invalid message, unspecified",
    Cause.MESSAGE_NOT_COMPATIBLE_WITH_CALL_STATE: "Message not compatible with call state",
    Cause.RECOVERY_ON_TIMER_EXPIRY: "Recovery on timer expiry",
    Cause.PROTOCOL_ERROR: "Protocol error, unspecified",
    Cause.INTERWORKING: "Interworking, unspecified",
}


def cause_text(cause: int) -> str:
    """Human text for a cause value; unknown values get a generic text."""
    text = _TEXT.get(cause)
    return text if text is not None else f"Cause {cause}"


# Which failure the caller is told when every fork failed (first listed wins).
# A user's own answer beats a device's absence, which beats network trouble;
# causes not listed rank after all listed ones, in the order they arrived.
FORK_CAUSE_PRIORITY: tuple[int, ...] = (
    Cause.CALL_REJECTED,
    Cause.USER_BUSY,
    Cause.NO_ANSWER,
    Cause.NO_USER_RESPONDING,
    Cause.INCOMPATIBLE_DESTINATION,
    Cause.BEARER_CAPABILITY_NOT_AVAILABLE,
    Cause.BEARER_CAPABILITY_NOT_IMPLEMENTED,
    Cause.SUBSCRIBER_ABSENT,
    Cause.UNALLOCATED_NUMBER,
    Cause.NO_ROUTE_TO_DESTINATION,
    Cause.DESTINATION_OUT_OF_ORDER,
    Cause.RECOVERY_ON_TIMER_EXPIRY,
    Cause.TEMPORARY_FAILURE,
    Cause.SWITCHING_EQUIPMENT_CONGESTION,
    Cause.NO_CIRCUIT_AVAILABLE,
    Cause.RESOURCE_UNAVAILABLE,
    Cause.NETWORK_OUT_OF_ORDER,
    Cause.SERVICE_UNAVAILABLE,
)
_RANK = {int(c): i for i, c in enumerate(FORK_CAUSE_PRIORITY)}


def select_cause(causes: Iterable[int], default: int = Cause.NORMAL_UNSPECIFIED) -> int:
    """The cause to report when every fork failed with ``causes`` (in arrival order)."""
    best: int | None = None
    best_rank = len(_RANK) + 1
    for cause in causes:
        rank = _RANK.get(cause, len(_RANK))
        if rank < best_rank:
            best, best_rank = cause, rank
    return default if best is None else best
