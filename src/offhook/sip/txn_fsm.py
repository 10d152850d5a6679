"""The four RFC 3261 §17 transaction state machines, as data.

Each machine is a dict ``(State, Input) -> (State, actions)``. A pair that
is absent means "ignore the input" (a stray or late message is absorbed, a
stale timer does nothing). ``ON_CREATE`` lists the actions run when the
transaction is created, ``STATE_TIMERS`` the timers that may keep running in
each state: entering a state cancels every other timer of the transaction.
``transaction.py`` executes these tables; tests walk every entry.

The INVITE machines include the RFC 6026 "Accepted" state: a 2xx moves the
client and server INVITE transactions to Accepted (Timers M and L) instead
of Terminated, so that 2xx retransmissions reach the UAC's TU and
retransmitted INVITEs are absorbed at the UAS.
"""

from __future__ import annotations

from enum import StrEnum

from offhook.sip.timers import TimerName


class State(StrEnum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"  # RFC 6026
    TERMINATED = "Terminated"


class Machine(StrEnum):
    INVITE_CLIENT = "invite-client"  # RFC 3261 §17.1.1
    NON_INVITE_CLIENT = "non-invite-client"  # RFC 3261 §17.1.2
    INVITE_SERVER = "invite-server"  # RFC 3261 §17.2.1
    NON_INVITE_SERVER = "non-invite-server"  # RFC 3261 §17.2.2


class Input(StrEnum):
    # responses from the network (client machines)
    RESP_1XX = "1xx"
    RESP_2XX = "2xx"  # INVITE client only
    RESP_300_699 = "300-699"  # INVITE client only
    RESP_FINAL = "final"  # non-INVITE client: 200-699
    # requests from the network (server machines)
    REQUEST = "request"  # a retransmission of the request
    ACK = "ACK"  # INVITE server only
    # responses from the TU (server machines)
    TU_1XX = "tu-1xx"
    TU_2XX = "tu-2xx"  # INVITE server only
    TU_300_699 = "tu-300-699"  # INVITE server only
    TU_FINAL = "tu-final"  # non-INVITE server: 200-699
    TRANSPORT_ERROR = "transport-error"
    TIMER_A = "timer-A"
    TIMER_B = "timer-B"
    TIMER_D = "timer-D"
    TIMER_E = "timer-E"
    TIMER_F = "timer-F"
    TIMER_K = "timer-K"
    TIMER_G = "timer-G"
    TIMER_H = "timer-H"
    TIMER_I = "timer-I"
    TIMER_J = "timer-J"
    TIMER_L = "timer-L"
    TIMER_M = "timer-M"
    TIMER_TRYING = "timer-TRYING"


TIMER_INPUT: dict[TimerName, Input] = {t: Input("timer-" + t.value) for t in TimerName}


class Action(StrEnum):
    SEND_REQUEST = "send-request"  # client: transmit (or retransmit) the request
    PASS_TO_TU = "pass-to-tu"  # the message goes up as an event
    SEND_ACK = "send-ack"  # client INVITE: ACK a 300-699 (RFC 3261 §17.1.1.3)
    SEND_RESPONSE = "send-response"  # server: transmit the TU's response, remember it
    RESEND_RESPONSE = "resend-response"  # server: retransmit the last response, if any
    SEND_TRYING = "send-trying"  # server INVITE: 100 Trying unless a response went out
    TIMEOUT = "timeout"  # tell the TU the transaction timed out
    TRANSPORT_ERROR = "transport-error"  # tell the TU the transport failed
    START_A = "start-A"
    START_B = "start-B"
    START_D = "start-D"
    START_E = "start-E"
    START_F = "start-F"
    START_K = "start-K"
    START_G = "start-G"
    START_H = "start-H"
    START_I = "start-I"
    START_J = "start-J"
    START_L = "start-L"
    START_M = "start-M"
    START_TRYING = "start-TRYING"
    BACKOFF_A = "backoff-A"  # restart A with twice its interval
    BACKOFF_E = "backoff-E"  # restart E with min(2*interval, T2)
    RESTART_E_T2 = "restart-E-T2"  # restart E with T2 (Proceeding)
    BACKOFF_G = "backoff-G"  # restart G with min(2*interval, T2)


START_TIMER: dict[Action, TimerName] = {
    a: TimerName(a.value.removeprefix("start-")) for a in Action if a.value.startswith("start-")
}

Actions = tuple[Action, ...]
Table = dict[tuple[State, Input], tuple[State, Actions]]

S, In, A = State, Input, Action

# RFC 3261 §17.1.1.2 (Figure 5), with RFC 6026 §7.2 (Accepted, Timer M).
INVITE_CLIENT: Table = {
    (S.CALLING, In.TIMER_A): (S.CALLING, (A.SEND_REQUEST, A.BACKOFF_A)),
    (S.CALLING, In.TIMER_B): (S.TERMINATED, (A.TIMEOUT,)),
    (S.CALLING, In.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
    (S.CALLING, In.RESP_1XX): (S.PROCEEDING, (A.PASS_TO_TU,)),
    (S.CALLING, In.RESP_2XX): (S.ACCEPTED, (A.PASS_TO_TU, A.START_M)),
    (S.CALLING, In.RESP_300_699): (S.COMPLETED, (A.PASS_TO_TU, A.SEND_ACK, A.START_D)),
    (S.PROCEEDING, In.RESP_1XX): (S.PROCEEDING, (A.PASS_TO_TU,)),
    (S.PROCEEDING, In.RESP_2XX): (S.ACCEPTED, (A.PASS_TO_TU, A.START_M)),
    (S.PROCEEDING, In.RESP_300_699): (S.COMPLETED, (A.PASS_TO_TU, A.SEND_ACK, A.START_D)),
    (S.PROCEEDING, In.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
    (S.COMPLETED, In.RESP_300_699): (S.COMPLETED, (A.SEND_ACK,)),
    (S.COMPLETED, In.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
    (S.COMPLETED, In.TIMER_D): (S.TERMINATED, ()),
    (S.ACCEPTED, In.RESP_2XX): (S.ACCEPTED, (A.PASS_TO_TU,)),
    (S.ACCEPTED, In.TIMER_M): (S.TERMINATED, ()),
}

# RFC 3261 §17.1.2.2 (Figure 6).
NON_INVITE_CLIENT: Table = {
    (S.TRYING, In.TIMER_E): (S.TRYING, (A.SEND_REQUEST, A.BACKOFF_E)),
    (S.TRYING, In.TIMER_F): (S.TERMINATED, (A.TIMEOUT,)),
    (S.TRYING, In.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
    (S.TRYING, In.RESP_1XX): (S.PROCEEDING, (A.PASS_TO_TU,)),
    (S.TRYING, In.RESP_FINAL): (S.COMPLETED, (A.PASS_TO_TU, A.START_K)),
    (S.PROCEEDING, In.TIMER_E): (S.PROCEEDING, (A.SEND_REQUEST, A.RESTART_E_T2)),
    (S.PROCEEDING, In.TIMER_F): (S.TERMINATED, (A.TIMEOUT,)),
    (S.PROCEEDING, In.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
    (S.PROCEEDING, In.RESP_1XX): (S.PROCEEDING, (A.PASS_TO_TU,)),
    (S.PROCEEDING, In.RESP_FINAL): (S.COMPLETED, (A.PASS_TO_TU, A.START_K)),
    (S.COMPLETED, In.TIMER_K): (S.TERMINATED, ()),
}

# RFC 3261 §17.2.1 (Figure 7), with RFC 6026 §7.1 (Accepted, Timer L).
INVITE_SERVER: Table = {
    (S.PROCEEDING, In.REQUEST): (S.PROCEEDING, (A.RESEND_RESPONSE,)),
    (S.PROCEEDING, In.TIMER_TRYING): (S.PROCEEDING, (A.SEND_TRYING,)),
    (S.PROCEEDING, In.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, In.TU_2XX): (S.ACCEPTED, (A.SEND_RESPONSE, A.START_L)),
    (S.PROCEEDING, In.TU_300_699): (S.COMPLETED, (A.SEND_RESPONSE, A.START_G, A.START_H)),
    (S.PROCEEDING, In.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
    (S.COMPLETED, In.REQUEST): (S.COMPLETED, (A.RESEND_RESPONSE,)),
    (S.COMPLETED, In.TIMER_G): (S.COMPLETED, (A.RESEND_RESPONSE, A.BACKOFF_G)),
    (S.COMPLETED, In.TIMER_H): (S.TERMINATED, (A.TIMEOUT,)),
    (S.COMPLETED, In.ACK): (S.CONFIRMED, (A.START_I,)),
    (S.COMPLETED, In.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
    (S.CONFIRMED, In.TIMER_I): (S.TERMINATED, ()),
    # RFC 6026 §8.7: retransmitted INVITEs are absorbed in Accepted (no entry);
    # the TU retransmits its 2xx through the transaction; a matching ACK goes up.
    (S.ACCEPTED, In.TU_2XX): (S.ACCEPTED, (A.SEND_RESPONSE,)),
    (S.ACCEPTED, In.ACK): (S.ACCEPTED, (A.PASS_TO_TU,)),
    (S.ACCEPTED, In.TRANSPORT_ERROR): (S.ACCEPTED, (A.TRANSPORT_ERROR,)),
    (S.ACCEPTED, In.TIMER_L): (S.TERMINATED, ()),
}

# RFC 3261 §17.2.2 (Figure 8).
NON_INVITE_SERVER: Table = {
    (S.TRYING, In.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.TRYING, In.TU_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, In.REQUEST): (S.PROCEEDING, (A.RESEND_RESPONSE,)),
    (S.PROCEEDING, In.TU_1XX): (S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, In.TU_FINAL): (S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, In.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
    (S.COMPLETED, In.REQUEST): (S.COMPLETED, (A.RESEND_RESPONSE,)),
    (S.COMPLETED, In.TRANSPORT_ERROR): (S.TERMINATED, (A.TRANSPORT_ERROR,)),
    (S.COMPLETED, In.TIMER_J): (S.TERMINATED, ()),
}

TABLES: dict[Machine, Table] = {
    Machine.INVITE_CLIENT: INVITE_CLIENT,
    Machine.NON_INVITE_CLIENT: NON_INVITE_CLIENT,
    Machine.INVITE_SERVER: INVITE_SERVER,
    Machine.NON_INVITE_SERVER: NON_INVITE_SERVER,
}

INITIAL_STATE: dict[Machine, State] = {
    Machine.INVITE_CLIENT: S.CALLING,
    Machine.NON_INVITE_CLIENT: S.TRYING,
    Machine.INVITE_SERVER: S.PROCEEDING,
    Machine.NON_INVITE_SERVER: S.TRYING,
}

ON_CREATE: dict[Machine, Actions] = {
    Machine.INVITE_CLIENT: (A.SEND_REQUEST, A.START_A, A.START_B),
    Machine.NON_INVITE_CLIENT: (A.SEND_REQUEST, A.START_E, A.START_F),
    Machine.INVITE_SERVER: (A.PASS_TO_TU, A.START_TRYING),
    Machine.NON_INVITE_SERVER: (A.PASS_TO_TU,),
}

T = TimerName
STATE_TIMERS: dict[Machine, dict[State, frozenset[TimerName]]] = {
    Machine.INVITE_CLIENT: {
        S.CALLING: frozenset({T.A, T.B}),
        S.PROCEEDING: frozenset(),
        S.COMPLETED: frozenset({T.D}),
        S.ACCEPTED: frozenset({T.M}),
        S.TERMINATED: frozenset(),
    },
    Machine.NON_INVITE_CLIENT: {
        S.TRYING: frozenset({T.E, T.F}),
        S.PROCEEDING: frozenset({T.E, T.F}),
        S.COMPLETED: frozenset({T.K}),
        S.TERMINATED: frozenset(),
    },
    Machine.INVITE_SERVER: {
        S.PROCEEDING: frozenset({T.TRYING}),
        S.COMPLETED: frozenset({T.G, T.H}),
        S.CONFIRMED: frozenset({T.I}),
        S.ACCEPTED: frozenset({T.L}),
        S.TERMINATED: frozenset(),
    },
    Machine.NON_INVITE_SERVER: {
        S.TRYING: frozenset(),
        S.PROCEEDING: frozenset(),
        S.COMPLETED: frozenset({T.J}),
        S.TERMINATED: frozenset(),
    },
}

# The inputs each machine can receive (used by exhaustive tests).
MACHINE_INPUTS: dict[Machine, frozenset[Input]] = {
    Machine.INVITE_CLIENT: frozenset(
        {In.RESP_1XX, In.RESP_2XX, In.RESP_300_699, In.TRANSPORT_ERROR}
        | {TIMER_INPUT[t] for t in (T.A, T.B, T.D, T.M)}
    ),
    Machine.NON_INVITE_CLIENT: frozenset(
        {In.RESP_1XX, In.RESP_FINAL, In.TRANSPORT_ERROR} | {TIMER_INPUT[t] for t in (T.E, T.F, T.K)}
    ),
    Machine.INVITE_SERVER: frozenset(
        {In.REQUEST, In.ACK, In.TU_1XX, In.TU_2XX, In.TU_300_699, In.TRANSPORT_ERROR}
        | {TIMER_INPUT[t] for t in (T.G, T.H, T.I, T.L, T.TRYING)}
    ),
    Machine.NON_INVITE_SERVER: frozenset(
        {In.REQUEST, In.TU_1XX, In.TU_FINAL, In.TRANSPORT_ERROR} | {TIMER_INPUT[T.J]}
    ),
}

del S, In, A, T
