"""SIP responses <-> ITU-T Q.850 causes (RFC 3398 §7.2.4.1 and §8.2.6.1).

The core speaks Q.850 only; this table is how the SIP adapter maps a final
response from a called phone to a cause, and a cause to the final response
sent to a calling phone. Plain ints: this module does not import the core.
"""

from __future__ import annotations

# RFC 3398 §8.2.6.1 (SIP status -> cause), completed for 6xx and common codes.
STATUS_TO_CAUSE: dict[int, int] = {
    400: 41,
    401: 21,
    402: 21,
    403: 21,
    404: 1,
    405: 63,
    406: 79,
    407: 21,
    408: 102,
    410: 22,
    413: 127,
    414: 127,
    415: 79,
    416: 127,
    420: 127,
    421: 127,
    423: 127,
    480: 18,
    481: 41,
    482: 25,
    483: 25,
    484: 28,
    485: 1,
    486: 17,
    487: 127,
    488: 88,
    491: 41,
    500: 41,
    501: 79,
    502: 38,
    503: 41,
    504: 102,
    505: 127,
    513: 127,
    600: 17,
    603: 21,
    604: 1,
    606: 58,
}

# RFC 3398 §7.2.4.1 (cause -> SIP status), for a call that fails before answer.
CAUSE_TO_STATUS: dict[int, int] = {
    1: 404,
    2: 404,
    3: 404,
    17: 486,
    18: 408,
    19: 480,
    20: 480,
    21: 403,
    22: 410,
    23: 410,
    26: 404,
    27: 502,
    28: 484,
    29: 501,
    31: 480,
    34: 503,
    38: 503,
    41: 503,
    42: 503,
    47: 503,
    55: 403,
    57: 403,
    58: 503,
    65: 488,
    70: 488,
    79: 501,
    87: 403,
    88: 488,
    101: 491,
    102: 408,
    111: 500,
    127: 500,
}


def cause_for_status(status: int) -> int:
    """The Q.850 cause for a final failure response (default by class)."""
    cause = STATUS_TO_CAUSE.get(status)
    if cause is not None:
        return cause
    if 300 <= status < 400:
        return 23  # redirection to new destination
    if status >= 600:
        return 31
    if status >= 500:
        return 38
    return 31


def status_for_cause(cause: int) -> int:
    """The final response for a call released with ``cause`` before answer."""
    return CAUSE_TO_STATUS.get(cause, 480)


# The Q.850 causes the SIP legs name themselves.
NORMAL_CLEARING = 16
ANSWERED_ELSEWHERE = 26  # non-selected user clearing: another device answered
TEMPORARY_FAILURE = 41
RECOVERY_ON_TIMER = 102
