"""Exhaustive tests of the transaction tables (txn_fsm) and their execution.

For every machine, every live state and every input the machine can receive,
a real transaction is driven into the state, the input applied, and the
result compared with the table: the new state, the events and the outgoing
messages each action implies. Absent entries must leave everything alone.
"""

from __future__ import annotations

import itertools

import pytest

from offhook.sip.message import Headers, SipRequest, SipResponse, make_response
from offhook.sip.timers import TimerName
from offhook.sip.transaction import (
    LINGERING,
    AckReceived,
    Event,
    Outgoing,
    RequestReceived,
    ResponseReceived,
    Transaction,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportError,
    build_ack,
)
from offhook.sip.txn_fsm import (
    INITIAL_STATE,
    MACHINE_INPUTS,
    ON_CREATE,
    START_TIMER,
    STATE_TIMERS,
    TABLES,
    TIMER_INPUT,
    Action,
    Input,
    Machine,
    State,
)

ADDR = ("192.0.2.10", 5060)
_branches = itertools.count()


def request(method: str, branch: str | None = None) -> SipRequest:
    b = branch or f"z9hG4bKfsm{next(_branches)}"
    return SipRequest(
        method=method,
        uri="sip:bob@example.com",
        headers=Headers(
            [
                ("Via", f"SIP/2.0/UDP 192.0.2.10:5060;branch={b}"),
                ("Max-Forwards", "70"),
                ("From", "<sip:alice@example.com>;tag=a1"),
                ("To", "<sip:bob@example.com>"),
                ("Call-ID", f"call-{b}"),
                ("CSeq", f"1 {method}"),
            ]
        ),
        body=b"",
    )


def resp(req: SipRequest, status: int) -> SipResponse:
    return make_response(req, status, to_tag="b1")


# --- structure of the tables -------------------------------------------------------


@pytest.mark.parametrize("machine", list(Machine))
def test_table_keys_are_well_formed(machine: Machine) -> None:
    states = STATE_TIMERS[machine]
    for (state, inp), (new_state, actions) in TABLES[machine].items():
        assert state in states and state is not State.TERMINATED
        assert new_state in states
        assert inp in MACHINE_INPUTS[machine]
        for action in actions:
            if action in START_TIMER:
                # a timer is only started in a state where it may run
                assert START_TIMER[action] in states[new_state]
        if inp.value.startswith("timer-"):
            timer = TimerName(inp.value.removeprefix("timer-"))
            assert timer in states[state], (state, inp)


@pytest.mark.parametrize("machine", list(Machine))
def test_every_timer_of_a_state_has_a_transition(machine: Machine) -> None:
    for state, timers in STATE_TIMERS[machine].items():
        for timer in timers:
            assert (state, TIMER_INPUT[timer]) in TABLES[machine], (state, timer)


@pytest.mark.parametrize("machine", list(Machine))
def test_initial_state_and_create_actions(machine: Machine) -> None:
    initial = INITIAL_STATE[machine]
    for action in ON_CREATE[machine]:
        if action in START_TIMER:
            assert START_TIMER[action] in STATE_TIMERS[machine][initial]


def test_timer_input_mapping_is_total() -> None:
    assert set(TIMER_INPUT) == set(TimerName)
    assert {START_TIMER[a] for a in START_TIMER} == set(TimerName)


# --- driving transactions into each state ---------------------------------------


def drive(
    layer: TransactionLayer, machine: Machine, state: State
) -> tuple[Transaction, SipRequest]:
    """A UDP transaction of ``machine`` in ``state``, and the request it was made for (a
    server transaction past its final response no longer holds it)."""
    now = 0.0
    if machine is Machine.INVITE_CLIENT:
        req = request("INVITE")
        txn: Transaction = layer.send_request(req, ADDR, "udp", now)
        follow = {State.PROCEEDING: 180, State.COMPLETED: 486, State.ACCEPTED: 200}
        if state in follow:
            layer.receive_response(resp(req, follow[state]), ADDR, "udp", now)
    elif machine is Machine.NON_INVITE_CLIENT:
        req = request("OPTIONS")
        txn = layer.send_request(req, ADDR, "udp", now)
        follow = {State.PROCEEDING: 100, State.COMPLETED: 200}
        if state in follow:
            layer.receive_response(resp(req, follow[state]), ADDR, "udp", now)
    elif machine is Machine.INVITE_SERVER:
        req = request("INVITE")
        (ev,) = layer.receive_request(req, ADDR, "udp", now)
        assert isinstance(ev, RequestReceived)
        found = layer.get(ev.key)
        assert found is not None
        txn = found
        if state is State.ACCEPTED:
            layer.send_response(ev.key, resp(req, 200), now)
        elif state in (State.COMPLETED, State.CONFIRMED):
            final = resp(req, 486)
            layer.send_response(ev.key, final, now)
            if state is State.CONFIRMED:
                layer.receive_request(build_ack(req, final), ADDR, "udp", now)
    else:
        req = request("OPTIONS")
        (ev,) = layer.receive_request(req, ADDR, "udp", now)
        assert isinstance(ev, RequestReceived)
        found = layer.get(ev.key)
        assert found is not None
        txn = found
        if state is State.PROCEEDING:
            layer.send_response(ev.key, resp(req, 100), now)
        elif state is State.COMPLETED:
            layer.send_response(ev.key, resp(req, 200), now)
    assert txn.state is state
    layer.datagrams_to_send()
    return txn, req


def message_for(txn: Transaction, req: SipRequest, inp: Input) -> SipRequest | SipResponse | None:
    statuses = {
        Input.RESP_1XX: 180,
        Input.RESP_2XX: 200,
        Input.RESP_300_699: 486,
        Input.RESP_FINAL: 200,
        Input.TU_1XX: 180,
        Input.TU_2XX: 200,
        Input.TU_300_699: 486,
        Input.TU_FINAL: 200,
    }
    if inp in statuses:
        return resp(req, statuses[inp])
    if inp is Input.REQUEST:
        return req
    if inp is Input.ACK:
        return build_ack(req, txn.last_response or resp(req, 486))
    return None


CASES = [
    (machine, state, inp)
    for machine in Machine
    for state in STATE_TIMERS[machine]
    if state is not State.TERMINATED
    for inp in sorted(MACHINE_INPUTS[machine])
]


@pytest.mark.parametrize(("machine", "state", "inp"), CASES)
def test_every_state_and_input(machine: Machine, state: State, inp: Input) -> None:
    layer = TransactionLayer()
    txn, req = drive(layer, machine, state)
    before_response = txn.last_response
    msg = message_for(txn, req, inp)
    events: list[Event] = []
    handled = layer._step(txn, inp, 1.0, events, msg)
    out: list[Outgoing] = layer.datagrams_to_send()
    entry = TABLES[machine].get((state, inp))
    if entry is None:
        assert not handled
        assert txn.state is state
        assert events == [] and out == []
        assert layer.get(txn.key) is txn
        return
    new_state, actions = entry
    assert handled
    assert txn.state is new_state
    kinds = [type(e) for e in events]
    terminated = new_state is State.TERMINATED
    assert (TransactionTerminated in kinds) == terminated
    assert (layer.get(txn.key) is None) == terminated
    if terminated:
        assert not txn.timers
    assert (TransactionTimeout in kinds) == (Action.TIMEOUT in actions)
    assert (TransportError in kinds) == (Action.TRANSPORT_ERROR in actions)
    up = {ResponseReceived, RequestReceived, AckReceived}
    assert any(k in up for k in kinds) == (Action.PASS_TO_TU in actions)
    sent = [o.message for o in out]
    if Action.SEND_REQUEST in actions:
        assert req in sent
    lingering = LINGERING.get(machine, {}).get(new_state)
    if Action.SEND_RESPONSE in actions:
        assert msg in sent and txn.last_response is (None if lingering is False else msg)
    if lingering is not None:  # past the final response: the request is let go
        assert txn.request is None
        if not lingering:
            assert txn.last_response is None
    elif not terminated:
        assert txn.request is req
    if Action.RESEND_RESPONSE in actions:
        assert sent == ([before_response] if before_response is not None else [])
    if Action.SEND_ACK in actions:
        assert [m.method for m in sent if isinstance(m, SipRequest)] == ["ACK"]
    if Action.SEND_TRYING in actions:
        if before_response is None:
            assert [getattr(m, "status", None) for m in sent] == [100]
        else:
            assert sent == []
    if not any(
        a in actions
        for a in (
            Action.SEND_REQUEST,
            Action.SEND_RESPONSE,
            Action.RESEND_RESPONSE,
            Action.SEND_ACK,
            Action.SEND_TRYING,
        )
    ):
        assert out == []
    # timers left running are those of the new state
    assert txn.timers <= STATE_TIMERS[machine][new_state]
    for action in actions:
        if action in START_TIMER and not terminated:
            assert START_TIMER[action] in txn.timers
