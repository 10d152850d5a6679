"""TransactionLayer behaviour through its public API, with a fake clock.

Timers: every one of A-M fires at the right time in the right state, on UDP
and on TCP. Matching: client and server (RFC 3261 and RFC 2543), ACK, CANCEL.
Retransmission absorption, ACK generation, stray 2xx, timer heap at scale.
"""

from __future__ import annotations

import itertools
import sys

import pytest

from offhook.common import FakeClock
from offhook.common.ids import new_branch
from offhook.sip.message import Headers, SipRequest, SipResponse, make_response
from offhook.sip.timers import TimerConfig, TimerName
from offhook.sip.transaction import (
    AckReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    ServerTransaction,
    Stray2xx,
    TransactionError,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    TransportError,
    build_ack,
    build_cancel,
)
from offhook.sip.txn_fsm import State

PEER = ("192.0.2.10", 5060)
_n = itertools.count()


def request(
    method: str = "INVITE",
    *,
    branch: str | None = None,
    cseq: int = 1,
    transport: str = "UDP",
    sent_by: str = "192.0.2.10:5060",
    to_tag: str | None = None,
    call_id: str = "call-1@example.com",
) -> SipRequest:
    b = new_branch() if branch is None else branch
    via = f"SIP/2.0/{transport} {sent_by}" + (f";branch={b}" if b else "")
    to = "Bob <sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    return SipRequest(
        method=method,
        uri="sip:bob@example.com",
        headers=Headers(
            [
                ("Via", via),
                ("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKproxy"),
                ("Route", "<sip:p1.example.com;lr>"),
                ("Route", "<sip:p2.example.com;lr>"),
                ("Max-Forwards", "70"),
                ("From", "Alice <sip:alice@example.com>;tag=a1"),
                ("To", to),
                ("Call-ID", call_id),
                ("CSeq", f"{cseq} {method}"),
                ("Contact", "<sip:alice@192.0.2.10>"),
            ]
        ),
        body=b"",
    )


def reply(req: SipRequest, status: int, tag: str = "b1") -> SipResponse:
    return make_response(req, status, to_tag=tag)


class Harness:
    """A layer with a fake clock; runs timers until a given time."""

    def __init__(self, cfg: TimerConfig | None = None) -> None:
        self.clock = FakeClock(start=0.0)
        self.layer = TransactionLayer(cfg)

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    def run_until(self, t: float) -> list[tuple[float, Event | str]]:
        """Fire timers up to ``t``; log (time, event) and (time, "send <what>")."""
        log: list[tuple[float, Event | str]] = []
        while True:
            deadline = self.layer.next_timer()
            if deadline is None or deadline > t:
                break
            self.clock.advance(deadline - self.now)
            for ev in self.layer.handle_timers(self.now):
                log.append((round(self.now, 6), ev))
            for out in self.layer.datagrams_to_send():
                m = out.message
                what = m.method if isinstance(m, SipRequest) else str(m.status)  # type: ignore[attr-defined]
                log.append((round(self.now, 6), f"send {what}"))
        self.clock.advance(max(0.0, t - self.now))
        return log

    def sends(self) -> list[str]:
        out = []
        for o in self.layer.datagrams_to_send():
            m = o.message
            out.append(m.method if isinstance(m, SipRequest) else str(m.status))  # type: ignore[attr-defined]
        return out


def times(log: list[tuple[float, Event | str]], what: str) -> list[float]:
    return [t for t, w in log if w == what]


# --- client INVITE ---------------------------------------------------------------


def test_timer_a_doubles_without_cap_until_timer_b() -> None:
    h = Harness()
    req = request()
    txn = h.layer.send_request(req, PEER, "udp", h.now)
    assert h.sends() == ["INVITE"]
    assert txn.timers == {TimerName.A, TimerName.B}
    log = h.run_until(100)
    # RFC 3261 §17.1.1.2: A = T1, 2T1, 4T1 ... ; B = 64*T1
    assert times(log, "send INVITE") == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    kinds = [(t, type(e).__name__) for t, e in log if not isinstance(e, str)]
    assert kinds == [(32.0, "TransactionTimeout"), (32.0, "TransactionTerminated")]
    assert len(h.layer) == 0 and h.layer.next_timer() is None


def test_timer_a_with_custom_t1() -> None:
    h = Harness(TimerConfig(t1=0.1))
    h.layer.send_request(request(), PEER, "udp", h.now)
    assert h.sends() == ["INVITE"]
    log = h.run_until(100)
    assert times(log, "send INVITE") == [0.1, 0.3, 0.7, 1.5, 3.1, 6.3]
    assert [t for t, e in log if isinstance(e, TransactionTimeout)] == [6.4]


def test_invite_client_tcp_has_no_retransmissions() -> None:
    h = Harness()
    req = request(transport="TCP")
    txn = h.layer.send_request(req, PEER, "tcp", h.now)
    assert txn.reliable and txn.timers == {TimerName.B}
    assert h.sends() == ["INVITE"]
    log = h.run_until(100)
    assert times(log, "send INVITE") == []
    assert [t for t, e in log if isinstance(e, TransactionTimeout)] == [32.0]


def test_invite_client_provisional_stops_retransmission_and_timer_b() -> None:
    h = Harness()
    req = request()
    txn = h.layer.send_request(req, PEER, "udp", h.now)
    h.sends()
    h.clock.advance(0.7)  # one retransmission at 0.5
    h.layer.handle_timers(h.now)
    assert h.sends() == ["INVITE"]
    (ev,) = h.layer.receive_response(reply(req, 180), PEER, "udp", h.now)
    assert isinstance(ev, ResponseReceived) and ev.key == txn.key
    assert txn.state is State.PROCEEDING and txn.timers == set()
    assert h.run_until(1000) == []  # waits for the TU (CANCEL) indefinitely


def test_invite_client_non2xx_acks_and_timer_d() -> None:
    h = Harness()
    req = request()
    txn = h.layer.send_request(req, PEER, "udp", h.now)
    h.sends()
    h.clock.advance(2.0)
    final = reply(req, 486)
    evs = h.layer.receive_response(final, PEER, "udp", h.now)
    assert [type(e) for e in evs] == [ResponseReceived]
    (out,) = h.layer.datagrams_to_send()
    ack = out.message
    assert isinstance(ack, SipRequest) and out.addr == PEER
    # RFC 3261 §17.1.1.3
    assert ack.method == "ACK" and ack.uri == req.uri
    assert ack.headers.get_all("Via") == [req.top_via]
    assert ack.headers.get_raw("Route") == req.headers.get_raw("Route")
    assert ack.headers.get("From") == req.headers.get("From")
    assert ack.headers.get("To") == final.headers.get("To") and ack.to_tag == "b1"
    assert ack.call_id == req.call_id and ack.cseq == (1, "ACK")
    assert ack.branch == req.branch
    assert ack.body == b""
    # retransmitted final: same ACK again, not passed up
    assert h.layer.receive_response(final, PEER, "udp", h.now) == []
    (again,) = h.layer.datagrams_to_send()
    assert again.message is ack
    # provisional after final: ignored
    assert h.layer.receive_response(reply(req, 180), PEER, "udp", h.now) == []
    assert txn.state is State.COMPLETED and txn.timers == {TimerName.D}
    log = h.run_until(100)
    assert [(t, type(e)) for t, e in log] == [(34.0, TransactionTerminated)]


def test_invite_client_non2xx_over_tcp_terminates_at_once() -> None:
    h = Harness()
    req = request(transport="TCP")
    h.layer.send_request(req, PEER, "tcp", h.now)
    h.sends()
    evs = h.layer.receive_response(reply(req, 404), PEER, "tcp", h.now)
    assert [type(e) for e in evs] == [ResponseReceived, TransactionTerminated]
    assert h.sends() == ["ACK"]
    assert len(h.layer) == 0


def test_invite_client_2xx_accepted_then_timer_m_then_stray() -> None:
    h = Harness()
    req = request()
    txn = h.layer.send_request(req, PEER, "udp", h.now)
    h.sends()
    ok = reply(req, 200)
    (ev,) = h.layer.receive_response(ok, PEER, "udp", h.now)
    assert isinstance(ev, ResponseReceived)
    assert txn.state is State.ACCEPTED and txn.timers == {TimerName.M}
    assert h.sends() == []  # the TU ACKs a 2xx, never the transaction
    # RFC 6026: 2xx retransmissions in Accepted go to the TU
    (ev,) = h.layer.receive_response(ok, PEER, "udp", h.now + 1)
    assert isinstance(ev, ResponseReceived)
    # a 200 from another fork is also passed up
    (ev,) = h.layer.receive_response(reply(req, 200, tag="fork2"), PEER, "udp", h.now + 1)
    assert isinstance(ev, ResponseReceived) and ev.response.to_tag == "fork2"
    log = h.run_until(100)
    assert [(t, type(e)) for t, e in log] == [(32.0, TransactionTerminated)]
    (ev,) = h.layer.receive_response(ok, PEER, "udp", h.now)
    assert isinstance(ev, Stray2xx) and ev.response is ok and ev.addr == PEER


def test_stray_non2xx_and_non_invite_responses_are_dropped() -> None:
    h = Harness()
    req = request()
    assert h.layer.receive_response(reply(req, 486), PEER, "udp", 0.0) == []
    assert h.layer.receive_response(reply(request("BYE"), 200), PEER, "udp", 0.0) == []
    assert h.layer.counters["stray_response"] == 2


def test_client_matching_uses_branch_and_cseq_method() -> None:
    h = Harness()
    inv = request()
    inv_txn = h.layer.send_request(inv, PEER, "udp", 0.0)
    h.layer.receive_response(reply(inv, 180), PEER, "udp", 0.0)
    cancel = build_cancel(inv)
    assert cancel.branch == inv.branch and cancel.cseq == (1, "CANCEL")
    assert cancel.headers.get("To") == inv.headers.get("To")
    assert cancel.headers.get_raw("Route") == inv.headers.get_raw("Route")
    c_txn = h.layer.send_request(cancel, PEER, "udp", 0.0)
    assert c_txn.key != inv_txn.key
    (ev,) = h.layer.receive_response(reply(cancel, 200), PEER, "udp", 0.0)
    assert isinstance(ev, ResponseReceived) and ev.key == c_txn.key
    assert inv_txn.state is State.PROCEEDING
    (ev,) = h.layer.receive_response(reply(inv, 487), PEER, "udp", 0.0)
    assert isinstance(ev, ResponseReceived) and ev.key == inv_txn.key
    # a response with another branch matches nothing
    other = reply(request(), 180)
    assert h.layer.receive_response(other, PEER, "udp", 0.0) == []


def test_send_request_rejects_ack_missing_branch_and_duplicates() -> None:
    layer = TransactionLayer()
    with pytest.raises(TransactionError):
        layer.send_request(request("ACK"), PEER, "udp", 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(request(branch="1234"), PEER, "udp", 0.0)
    req = request()
    layer.send_request(req, PEER, "udp", 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(req, PEER, "udp", 0.0)


# --- client non-INVITE -------------------------------------------------------------


def test_timer_e_doubles_up_to_t2_until_timer_f() -> None:
    h = Harness()
    h.layer.send_request(request("OPTIONS"), PEER, "udp", h.now)
    assert h.sends() == ["OPTIONS"]
    log = h.run_until(100)
    # RFC 3261 §17.1.2.2: E = T1, 2T1, 4T1, then T2 ...; F = 64*T1
    expected = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert times(log, "send OPTIONS") == expected
    assert [(t, type(e)) for t, e in log if not isinstance(e, str)] == [
        (32.0, TransactionTimeout),
        (32.0, TransactionTerminated),
    ]


def test_timer_e_in_proceeding_uses_t2() -> None:
    h = Harness()
    req = request("REGISTER")
    txn = h.layer.send_request(req, PEER, "udp", h.now)
    h.sends()
    h.clock.advance(0.1)
    (ev,) = h.layer.receive_response(reply(req, 100), PEER, "udp", h.now)
    assert isinstance(ev, ResponseReceived) and txn.state is State.PROCEEDING
    assert txn.timers == {TimerName.E, TimerName.F}
    log = h.run_until(100)
    assert times(log, "send REGISTER") == [0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert [t for t, e in log if isinstance(e, TransactionTimeout)] == [32.0]


def test_non_invite_client_final_then_timer_k() -> None:
    h = Harness()
    req = request("BYE")
    txn = h.layer.send_request(req, PEER, "udp", h.now)
    h.sends()
    h.clock.advance(1.0)
    ok = reply(req, 200)
    (ev,) = h.layer.receive_response(ok, PEER, "udp", h.now)
    assert isinstance(ev, ResponseReceived)
    assert txn.state is State.COMPLETED and txn.timers == {TimerName.K}
    assert h.layer.receive_response(ok, PEER, "udp", h.now) == []  # absorbed
    log = h.run_until(100)
    assert [(t, type(e)) for t, e in log] == [(6.0, TransactionTerminated)]  # K = T4


def test_non_invite_client_tcp() -> None:
    h = Harness()
    req = request("BYE", transport="TCP")
    txn = h.layer.send_request(req, PEER, "tcp", h.now)
    assert txn.timers == {TimerName.F}
    h.sends()
    evs = h.layer.receive_response(reply(req, 200), PEER, "tcp", h.now)
    assert [type(e) for e in evs] == [ResponseReceived, TransactionTerminated]
    req2 = request("BYE", transport="TCP")
    h.layer.send_request(req2, PEER, "tcp", h.now)
    assert h.sends() == ["BYE"]
    log = h.run_until(100)
    assert times(log, "send BYE") == []
    assert [t for t, e in log if isinstance(e, TransactionTimeout)] == [32.0]


def test_transport_error_on_client() -> None:
    h = Harness()
    txn = h.layer.send_request(request("OPTIONS", transport="TCP"), PEER, "tcp", 0.0)
    evs = h.layer.transport_error(txn.key, 0.0)
    assert [type(e) for e in evs] == [TransportError, TransactionTerminated]
    assert h.layer.transport_error(txn.key, 0.0) == []
    assert h.layer.next_timer() is None


# --- server INVITE ----------------------------------------------------------------


def new_server(h: Harness, req: SipRequest, transport: str = "udp") -> ServerTransaction:
    (ev,) = h.layer.receive_request(req, PEER, transport, h.now)
    assert isinstance(ev, RequestReceived) and ev.request is req and ev.addr == PEER
    txn = h.layer.get(ev.key)
    assert isinstance(txn, ServerTransaction)
    return txn


def test_server_sends_100_trying_after_200ms() -> None:
    h = Harness()
    req = request(transport="UDP")
    req.headers.add("Timestamp", "54")
    txn = new_server(h, req)
    assert h.sends() == []
    assert h.layer.next_timer() == pytest.approx(0.2)
    log = h.run_until(0.3)
    assert log == [(0.2, "send 100")]
    trying = txn.last_response
    assert trying is not None and trying.to_tag is None
    assert trying.headers.get("Timestamp") == "54"
    # retransmitted INVITE gets the 100 again
    assert h.layer.receive_request(req, PEER, "udp", h.now) == []
    assert h.sends() == ["100"]


def test_server_no_auto_trying_when_tu_answers_or_disabled() -> None:
    h = Harness()
    req = request()
    txn = new_server(h, req)
    h.layer.send_response(txn, reply(req, 180), h.now + 0.1)
    assert h.sends() == ["180"]
    assert h.run_until(0.3) == []
    h2 = Harness(TimerConfig(trying_delay=None))
    new_server(h2, request())
    assert h2.layer.next_timer() is None


def test_server_invite_retransmission_before_any_response_is_absorbed() -> None:
    h = Harness()
    req = request()
    new_server(h, req)
    assert h.layer.receive_request(req, PEER, "udp", 0.05) == []
    assert h.sends() == []


def test_server_invite_retransmission_gets_last_provisional() -> None:
    h = Harness()
    req = request()
    txn = new_server(h, req)
    h.layer.send_response(txn.key, reply(req, 180), 0.0)
    h.layer.send_response(txn.key, reply(req, 183), 0.0)
    h.sends()
    assert h.layer.receive_request(req, PEER, "udp", 0.1) == []
    assert h.sends() == ["183"]


def test_timer_g_and_h_without_ack() -> None:
    h = Harness()
    req = request()
    txn = new_server(h, req)
    h.layer.send_response(txn, reply(req, 486), h.now)
    assert h.sends() == ["486"]
    assert txn.state is State.COMPLETED and txn.timers == {TimerName.G, TimerName.H}
    log = h.run_until(100)
    # RFC 3261 §17.2.1: G = T1, 2T1, 4T1, then T2; H = 64*T1
    assert times(log, "send 486") == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(t, type(e)) for t, e in log if not isinstance(e, str)] == [
        (32.0, TransactionTimeout),
        (32.0, TransactionTerminated),
    ]


def test_ack_confirms_then_timer_i() -> None:
    h = Harness()
    req = request()
    txn = new_server(h, req)
    final = reply(req, 603)
    h.layer.send_response(txn, final, h.now)
    h.sends()
    h.clock.advance(0.6)
    h.layer.handle_timers(h.now)
    assert h.sends() == ["603"]
    # retransmitted INVITE in Completed gets the final again
    assert h.layer.receive_request(req, PEER, "udp", h.now) == []
    assert h.sends() == ["603"]
    ack = build_ack(req, final)
    assert h.layer.receive_request(ack, PEER, "udp", h.now) == []  # absorbed
    assert txn.state is State.CONFIRMED and txn.timers == {TimerName.I}
    assert h.layer.receive_request(ack, PEER, "udp", h.now) == []  # ACK retransmission
    assert h.layer.receive_request(req, PEER, "udp", h.now) == []
    assert h.sends() == []
    log = h.run_until(100)
    assert [(t, type(e)) for t, e in log] == [(5.6, TransactionTerminated)]  # I = T4


def test_server_invite_tcp_no_g_and_ack_terminates() -> None:
    h = Harness()
    req = request(transport="TCP")
    txn = new_server(h, req, "tcp")
    h.layer.send_response(txn, reply(req, 486), h.now)
    assert txn.timers == {TimerName.H}
    h.sends()
    evs = h.layer.receive_request(build_ack(req, reply(req, 486)), PEER, "tcp", 1.0)
    assert [type(e) for e in evs] == [TransactionTerminated]
    assert len(h.layer) == 0


def test_server_invite_tcp_timer_h() -> None:
    h = Harness()
    req = request(transport="TCP")
    txn = new_server(h, req, "tcp")
    h.layer.send_response(txn, reply(req, 486), h.now)
    assert h.sends() == ["486"]
    log = h.run_until(100)
    assert times(log, "send 486") == []
    assert [t for t, e in log if isinstance(e, TransactionTimeout)] == [32.0]


def test_server_invite_2xx_accepted_rfc6026() -> None:
    h = Harness()
    req = request()
    txn = new_server(h, req)
    ok = reply(req, 200)
    assert h.layer.send_response(txn, ok, h.now) == []
    assert h.sends() == ["200"]
    assert txn.state is State.ACCEPTED and txn.timers == {TimerName.L}
    # retransmitted INVITE is absorbed without an answer (the TU retransmits 2xx)
    assert h.layer.receive_request(req, PEER, "udp", 0.5) == []
    assert h.sends() == []
    # the TU's 2xx retransmission goes through the transaction
    h.layer.send_response(txn, ok, 0.5)
    assert h.sends() == ["200"]
    with pytest.raises(TransactionError):
        h.layer.send_response(txn, reply(req, 486), 0.5)
    # ACK for 2xx: a new branch, matches nothing, goes to the TU
    ack2xx = build_ack(req, ok)
    ack2xx.headers.set("Via", f"SIP/2.0/UDP 192.0.2.10:5060;branch={new_branch()}")
    (ev,) = h.layer.receive_request(ack2xx, PEER, "udp", 0.6)
    assert isinstance(ev, AckReceived) and ev.key is None and ev.request is ack2xx
    # an ACK reusing the INVITE branch matches the Accepted txn and goes up too
    (ev,) = h.layer.receive_request(build_ack(req, ok), PEER, "udp", 0.6)
    assert isinstance(ev, AckReceived) and ev.key == txn.key
    log = h.run_until(100)
    assert [(t, type(e)) for t, e in log] == [(32.0, TransactionTerminated)]
    (ev,) = h.layer.receive_request(build_ack(req, ok), PEER, "udp", h.now)
    assert isinstance(ev, AckReceived) and ev.key is None


def test_send_response_errors() -> None:
    h = Harness()
    req = request("OPTIONS")
    txn = new_server(h, req)
    h.layer.send_response(txn, reply(req, 200), 0.0)
    with pytest.raises(TransactionError):
        h.layer.send_response(txn, reply(req, 200), 0.0)
    with pytest.raises(TransactionError):
        h.layer.send_response(("s", "nope", "x", "OPTIONS"), reply(req, 200), 0.0)
    client = h.layer.send_request(request("OPTIONS"), PEER, "udp", 0.0)
    with pytest.raises(TransactionError):
        h.layer.send_response(client.key, reply(req, 200), 0.0)


# --- server non-INVITE -------------------------------------------------------------


def test_non_invite_server_absorbs_and_answers_retransmissions_then_timer_j() -> None:
    h = Harness()
    req = request("OPTIONS")
    txn = new_server(h, req)
    assert h.layer.receive_request(req, PEER, "udp", 0.0) == []  # Trying: absorbed
    assert h.sends() == []
    h.layer.send_response(txn, reply(req, 100), 0.0)
    assert h.sends() == ["100"] and txn.state.value == "Proceeding"
    h.layer.receive_request(req, PEER, "udp", 0.0)
    assert h.sends() == ["100"]
    h.layer.send_response(txn, reply(req, 200), 0.0)
    assert h.sends() == ["200"] and txn.state.value == "Completed"
    h.layer.receive_request(req, PEER, "udp", 1.0)
    assert h.sends() == ["200"]
    log = h.run_until(100)
    assert [(t, type(e)) for t, e in log] == [(32.0, TransactionTerminated)]  # J = 64*T1
    # after J a retransmission is a new request again
    (ev,) = h.layer.receive_request(req, PEER, "udp", h.now)
    assert isinstance(ev, RequestReceived)


def test_non_invite_server_tcp_terminates_on_final() -> None:
    h = Harness()
    req = request("BYE", transport="TCP")
    txn = new_server(h, req, "tcp")
    evs = h.layer.send_response(txn, reply(req, 200), 0.0)
    assert [type(e) for e in evs] == [TransactionTerminated]
    assert h.sends() == ["200"] and len(h.layer) == 0


def test_server_transport_error() -> None:
    h = Harness()
    req = request("MESSAGE")
    txn = new_server(h, req)
    h.layer.send_response(txn, reply(req, 200), 0.0)
    evs = h.layer.transport_error(txn.key, 0.0)
    assert [type(e) for e in evs] == [TransportError, TransactionTerminated]


# --- server matching ---------------------------------------------------------------


def test_server_matching_needs_same_sent_by_and_method() -> None:
    h = Harness()
    req = request(branch="z9hG4bKsame")
    t1 = new_server(h, req)
    other_host = request(branch="z9hG4bKsame", sent_by="198.51.100.7:5060")
    t2 = new_server(h, other_host)
    assert t1.key != t2.key
    # an OPTIONS with the same branch is another transaction
    t3 = new_server(h, request("OPTIONS", branch="z9hG4bKsame"))
    assert len({t1.key, t2.key, t3.key}) == 3
    # Via parameters stamped by the transport do not change the key
    stamped = request(branch="z9hG4bKsame")
    stamped.headers.set("Via", stamped.top_via + ";received=192.0.2.10;rport=5060")
    assert h.layer.receive_request(stamped, PEER, "udp", 0.0) == []


def test_cancel_matching() -> None:
    h = Harness()
    inv = request()
    inv_txn = new_server(h, inv)
    cancel = build_cancel(inv)
    c_txn = new_server(h, cancel)  # CANCEL is its own non-INVITE transaction
    assert c_txn.key != inv_txn.key and c_txn.method == "CANCEL"
    assert h.layer.find_invite_server_for_cancel(cancel) is inv_txn
    stranger = build_cancel(request())
    assert h.layer.find_invite_server_for_cancel(stranger) is None
    # the TU answers 200 to CANCEL and 487 to the INVITE
    h.layer.send_response(c_txn, reply(cancel, 200), 0.0)
    h.layer.send_response(inv_txn, reply(inv, 487), 0.0)
    assert h.sends() == ["200", "487"]


def test_rfc2543_matching() -> None:
    h = Harness()
    inv = request(branch="")  # no branch at all
    txn = new_server(h, inv)
    assert txn.key[0] == "s2543"
    # retransmission matches
    assert h.layer.receive_request(inv, PEER, "udp", 0.0) == []
    final = reply(inv, 486, tag="srv")
    h.layer.send_response(txn, final, 0.0)
    h.sends()
    h.layer.receive_request(inv, PEER, "udp", 0.0)
    assert h.sends() == ["486"]
    # CANCEL matches by Request-URI, From tag, Call-ID, CSeq number, top Via
    cancel = build_cancel(inv)
    assert h.layer.find_invite_server_for_cancel(cancel) is txn
    # an ACK with another To tag is not for this transaction: goes to the TU
    (ev,) = h.layer.receive_request(build_ack(inv, reply(inv, 486, tag="x")), PEER, "udp", 0.0)
    assert isinstance(ev, AckReceived)
    # the right ACK confirms
    assert h.layer.receive_request(build_ack(inv, final), PEER, "udp", 0.0) == []
    assert txn.state is State.CONFIRMED
    # an old-style branch (no magic cookie) is also RFC 2543 matching
    old = request("OPTIONS", branch="1234abcd", call_id="c2")
    t2 = new_server(h, old)
    assert t2.key[0] == "s2543"
    assert h.layer.receive_request(old, PEER, "udp", 0.0) == []
    diff_cseq = request("OPTIONS", branch="1234abcd", call_id="c2", cseq=2)
    new_server(h, diff_cseq)
    # same key except the To tag: ignored, not a retransmission, not new
    tagged = request("OPTIONS", branch="1234abcd", call_id="c2", to_tag="zz")
    assert h.layer.receive_request(tagged, PEER, "udp", 0.0) == []


def test_ack_without_transaction_goes_to_tu() -> None:
    h = Harness()
    ack = request("ACK")
    (ev,) = h.layer.receive_request(ack, PEER, "udp", 0.0)
    assert isinstance(ev, AckReceived) and ev.key is None and ev.transport == "udp"
    assert len(h.layer) == 0


def test_overload_answers_503_statelessly() -> None:
    layer = TransactionLayer(max_transactions=1)
    layer.receive_request(request("OPTIONS"), PEER, "udp", 0.0)
    layer.datagrams_to_send()
    assert layer.receive_request(request("OPTIONS"), PEER, "udp", 0.0) == []
    (out,) = layer.datagrams_to_send()
    assert isinstance(out.message, SipResponse) and out.message.status == 503
    assert len(layer) == 1 and layer.counters["overload"] == 1


def test_send_stateless() -> None:
    layer = TransactionLayer()
    ack = request("ACK")
    layer.send_stateless(ack, PEER, "udp")
    (out,) = layer.datagrams_to_send()
    assert out.message is ack and out.addr == PEER and out.transport == "udp"
    assert layer.datagrams_to_send() == []


# --- scale -----------------------------------------------------------------------


def test_ten_thousand_transactions_timer_heap() -> None:
    layer = TransactionLayer()
    n = 10_000
    reqs = []
    for i in range(n):
        req = request("OPTIONS", call_id=f"c{i}")
        layer.send_request(req, PEER, "udp", i * 0.001)
        reqs.append(req)
    assert len(layer) == n
    assert layer.next_timer() == pytest.approx(0.5)
    # answer every other one at t=0.2 (then K = 5 s), the rest time out at F
    for req in reqs[::2]:
        layer.receive_response(reply(req, 200), PEER, "udp", 0.2)
    assert len(layer) == n
    now = 0.2
    deadlines = []
    terminated = timeouts = 0
    heap_max = 0
    while (t := layer.next_timer()) is not None:
        assert t >= now - 1e-9
        deadlines.append(t)
        now = t
        for ev in layer.handle_timers(now):
            terminated += isinstance(ev, TransactionTerminated)
            timeouts += isinstance(ev, TransactionTimeout)
        layer.datagrams_to_send()
        heap_max = max(heap_max, len(layer._heap))
    assert deadlines == sorted(deadlines)
    assert terminated == n and timeouts == n // 2
    assert len(layer) == 0 and layer._live == 0
    assert heap_max <= 3 * n


def test_heap_compacts_stale_entries() -> None:
    layer = TransactionLayer()
    for i in range(5000):
        req = request("OPTIONS", call_id=f"c{i}")
        layer.send_request(req, PEER, "tcp", 0.0)  # one timer (F) each
        # over TCP the final ends the transaction at once: F goes stale
        layer.receive_response(reply(req, 200), PEER, "tcp", 0.0)
    assert len(layer) == 0 and layer._live == 0
    assert layer.next_timer() is None
    assert layer.handle_timers(1.0) == []
    assert len(layer._heap) == 0


def test_an_ended_transaction_is_not_kept_by_its_stale_timers() -> None:
    layer = TransactionLayer()
    req = request("BYE")
    alone = sys.getrefcount(req)
    txn = layer.send_request(req, PEER, "udp", 0.0)
    layer.datagrams_to_send()
    assert sys.getrefcount(req) > alone  # Trying: kept to be retransmitted
    layer.receive_response(reply(req, 200), PEER, "udp", 0.1)  # Completed: K, 5 s
    assert sys.getrefcount(req) == alone  # lingering: no longer needed
    assert layer.get(txn.key) is txn
    held = sys.getrefcount(txn)
    events = layer.handle_timers(5.2)
    assert [type(ev) for ev in events] == [TransactionTerminated]
    assert layer._heap  # Timer F's entry (at 32 s) is still there, stale
    assert sys.getrefcount(txn) == held - 1  # the layer let the transaction go
    assert layer.next_timer() is None and layer._heap == []


def test_a_lingering_server_transaction_holds_only_what_it_resends() -> None:
    """A BYE's 200 is resent for a retransmitted BYE (Completed, Timer J), without the
    BYE; an INVITE answered 2xx (Accepted, Timer L) holds neither the INVITE nor its 2xx,
    and a retransmitted INVITE is still absorbed there."""
    layer = TransactionLayer()
    bye = request("BYE", branch="z9hG4bK-bye-1")
    (ev,) = layer.receive_request(bye, PEER, "udp", 0.0)
    ok = reply(bye, 200)
    alone = sys.getrefcount(bye)
    layer.send_response(ev.key, ok, 0.0)
    assert sys.getrefcount(bye) < alone
    layer.datagrams_to_send()
    assert layer.receive_request(request("BYE", branch="z9hG4bK-bye-1"), PEER, "udp", 1.0) == []
    assert [o.message for o in layer.datagrams_to_send()] == [ok]
    invite = request("INVITE", branch="z9hG4bK-inv-1")
    (ev,) = layer.receive_request(invite, PEER, "udp", 0.0)
    layer.datagrams_to_send()
    answer = reply(invite, 200)
    before = sys.getrefcount(invite), sys.getrefcount(answer)
    layer.send_response(ev.key, answer, 0.0)
    assert [o.message for o in layer.datagrams_to_send()] == [answer]
    assert sys.getrefcount(invite) < before[0] and sys.getrefcount(answer) == before[1]
    assert layer.receive_request(request("INVITE", branch="z9hG4bK-inv-1"), PEER, "udp", 1.0) == []
    assert layer.datagrams_to_send() == []
    assert layer.get(ev.key) is not None
