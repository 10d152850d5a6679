"""SIP transaction timer values (RFC 3261 §17, Table 4; RFC 6026 Timers L and M).

``TimerConfig`` holds T1, T2, T4 and derives every named timer from them for
a given transport: on a reliable transport (TCP, TLS, WS) the retransmission
timers A, E and G are not started (``None``) and the wait-for-stragglers
timers D, I, J and K are zero (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1,
§17.2.2). Nothing here keeps time: durations are plain seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TimerName(StrEnum):
    """The transaction timers. ``TRYING`` is the 200 ms automatic 100 Trying
    of an INVITE server transaction (RFC 3261 §17.2.1)."""

    A = "A"  # INVITE request retransmit (client, unreliable)
    B = "B"  # INVITE transaction timeout (client)
    D = "D"  # wait for response retransmits (client INVITE, Completed)
    E = "E"  # non-INVITE request retransmit (client, unreliable)
    F = "F"  # non-INVITE transaction timeout (client)
    K = "K"  # wait for response retransmits (client non-INVITE, Completed)
    G = "G"  # INVITE final response retransmit (server, unreliable)
    H = "H"  # wait for ACK (server INVITE, Completed)
    I = "I"  # wait for ACK retransmits (server INVITE, Confirmed)  # noqa: E741
    J = "J"  # wait for request retransmits (server non-INVITE, Completed)
    L = "L"  # RFC 6026: server INVITE Accepted
    M = "M"  # RFC 6026: client INVITE Accepted
    TRYING = "TRYING"  # RFC 3261 §17.2.1: send 100 Trying if the TU is silent


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """Base timer values in seconds (RFC 3261 §17.1.1.1 and Table 4).

    ``timer_d`` is "at least 32 seconds" for unreliable transports.
    ``trying_delay`` is how long an INVITE server transaction waits for a TU
    provisional before sending 100 Trying itself; ``None`` leaves it to the TU.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0
    trying_delay: float | None = 0.2

    def duration(self, timer: TimerName, reliable: bool) -> float | None:
        """Initial duration of ``timer`` on that transport; ``None`` = not started."""
        t1 = self.t1
        if timer is TimerName.A or timer is TimerName.E:
            return None if reliable else t1  # RFC 3261 §17.1.1.2 / §17.1.2.2
        if timer is TimerName.G:
            return None if reliable else t1  # RFC 3261 §17.2.1
        if timer in _SIXTY_FOUR_T1:
            return 64 * t1
        if timer is TimerName.D:
            return 0.0 if reliable else self.timer_d
        if timer is TimerName.K or timer is TimerName.I:
            return 0.0 if reliable else self.t4
        if timer is TimerName.J:
            return 0.0 if reliable else 64 * t1
        # TimerName.TRYING
        return self.trying_delay

    def backoff(self, timer: TimerName, previous: float) -> float:
        """Next retransmission interval after ``previous`` for timer A, E or G.

        Timer A doubles without a cap (the transaction ends at Timer B = 64*T1);
        E and G double up to T2 (RFC 3261 §17.1.2.2, §17.2.1).
        """
        if timer is TimerName.A:
            return previous * 2
        return min(previous * 2, self.t2)


_SIXTY_FOUR_T1 = frozenset({TimerName.B, TimerName.F, TimerName.H, TimerName.L, TimerName.M})
