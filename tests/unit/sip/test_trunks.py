"""Tests for offhook.sip.trunks: the ping state machine, registration timing and
client digest (checked against the server-side DigestAuthenticator)."""

from __future__ import annotations

import pytest

from offhook.common.clock import FakeClock
from offhook.sip.auth import AuthStatus, Credentials, DigestAuthenticator, ha1
from offhook.sip.message import Headers, SipRequest
from offhook.sip.trunks import (
    PingState,
    RegState,
    TrunkMonitor,
    TrunkTarget,
    digest_authorization,
    pick_challenge,
)

PING = 10.0
CARRIER = TrunkTarget("carrier", "192.0.2.1", 5060, options_ping=PING)
SILENT = TrunkTarget("silent", "192.0.2.2", 5060, options_ping=0)


def monitor(*targets: TrunkTarget, now: float = 0.0) -> TrunkMonitor:
    m = TrunkMonitor(register_retry=30.0)
    m.configure(targets, now)
    return m


def test_unmonitored_trunk_is_always_up_and_never_pinged() -> None:
    m = monitor(SILENT)
    assert m.state("silent") is PingState.UNMONITORED
    assert m.is_up("silent")
    assert m.next_timer() is None
    assert m.due_pings(1e9) == []
    assert m.ping_result("silent", None, 5.0) is None  # no ping outstanding
    assert m.is_up("silent")


def test_unknown_names_are_up() -> None:
    assert TrunkMonitor().is_up("nope")
    assert TrunkMonitor().state("nope") is None


def test_first_ping_after_one_interval_then_one_at_a_time() -> None:
    clock = FakeClock()
    t0 = clock.monotonic()
    m = monitor(CARRIER, now=t0)
    assert m.state("carrier") is PingState.UNKNOWN and m.is_up("carrier")
    assert m.next_timer() == t0 + PING
    clock.advance(PING - 0.1)
    assert m.due_pings(clock.monotonic()) == []
    clock.advance(0.1)
    assert m.due_pings(clock.monotonic()) == [CARRIER]
    # outstanding: no second ping, no timer until the result
    clock.advance(PING * 5)
    assert m.due_pings(clock.monotonic()) == []
    assert m.next_timer() is None
    change = m.ping_result("carrier", 200, t0 + PING + 0.2)
    assert change is not None and (change.old, change.new) == (PingState.UNKNOWN, PingState.UP)
    assert m.next_timer() == t0 + 2 * PING  # one interval after the previous send
    assert m.due_pings(t0 + 2 * PING) == [CARRIER]


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (200, PingState.UP),
        (401, PingState.UP),
        (407, PingState.UP),
        (404, PingState.UP),
        (405, PingState.UP),
        (500, PingState.UP),
        (603, PingState.UP),
        (503, PingState.DOWN),
        (None, PingState.DOWN),
    ],
)
def test_ping_results(status: int | None, state: PingState) -> None:
    m = monitor(CARRIER)
    m.due_pings(PING)
    m.ping_result("carrier", status, PING + 1)
    assert m.state("carrier") is state
    assert m.is_up("carrier") is (state is PingState.UP)


def test_up_down_up_with_changes_reported_once() -> None:
    m = monitor(CARRIER)
    t = PING
    changes = []
    for status in (200, 200, None, None, 503, 200, 200):
        assert m.due_pings(t) == [CARRIER]
        changes.append(m.ping_result("carrier", status, t + 0.5))
        t += PING
    states = [(c.old, c.new) if c else None for c in changes]
    assert states == [
        (PingState.UNKNOWN, PingState.UP),
        None,
        (PingState.UP, PingState.DOWN),
        None,
        None,
        (PingState.DOWN, PingState.UP),
        None,
    ]


def test_slow_ping_reschedules_at_once() -> None:
    m = monitor(CARRIER)
    m.due_pings(PING)
    m.ping_result("carrier", None, PING + 32.0)  # Timer F after 32 s > interval
    assert m.next_timer() == PING + 32.0
    assert m.due_pings(PING + 32.0) == [CARRIER]


def test_status_rows_and_last_change_in_wall_time() -> None:
    m = monitor(CARRIER, SILENT)
    rows = m.status(now=0.0, wall=1000.0)
    assert [r["name"] for r in rows] == ["carrier", "silent"]
    assert rows[0]["state"] == "unknown" and rows[0]["last_change"] is None
    assert rows[1]["state"] == "unmonitored" and rows[1]["registration"] == "off"
    m.due_pings(PING)
    m.ping_result("carrier", None, 15.0)
    row = m.status(now=20.0, wall=1020.0)[0]
    assert row == {
        "name": "carrier",
        "host": "192.0.2.1",
        "port": 5060,
        "transport": "udp",
        "state": "down",
        "last_change": 1015.0,
        "last_result": "timeout",
        "options_ping": PING,
        "registration": "off",
    }


def test_configure_keeps_unchanged_resets_changed_drops_removed() -> None:
    other = TrunkTarget("other", "192.0.2.3", 5060, options_ping=PING)
    m = monitor(CARRIER, other)
    m.due_pings(PING)
    m.ping_result("carrier", None, PING)
    m.ping_result("other", None, PING)
    assert not m.is_up("carrier") and not m.is_up("other")
    moved = TrunkTarget("other", "192.0.2.4", 5060, options_ping=PING)
    m.configure([CARRIER, moved], 50.0)
    assert m.state("carrier") is PingState.DOWN  # same trunk, same state
    assert m.state("other") is PingState.UNKNOWN  # changed: starts over
    assert m.target("other") == moved
    m.configure([CARRIER], 60.0)
    assert m.state("other") is None and m.is_up("other")
    assert m.ping_result("other", 200, 61.0) is None


def test_result_of_a_ping_from_before_a_change_is_ignored() -> None:
    m = monitor(CARRIER)
    m.due_pings(PING)
    m.configure([TrunkTarget("carrier", "192.0.2.9", 5060, options_ping=PING)], PING + 1)
    assert m.ping_result("carrier", None, PING + 2) is None
    assert m.state("carrier") is PingState.UNKNOWN


def test_registration_at_once_then_half_expiry_and_retry() -> None:
    reg = TrunkTarget(
        "reg", "192.0.2.5", 5060, register=True, username="acct", password="pw", expires=600
    )
    m = monitor(reg, now=100.0)
    assert m.registration("reg") is RegState.REGISTERING
    assert m.next_timer() == 100.0
    assert m.due_registrations(100.0) == [reg]
    assert m.due_registrations(100.0) == []  # outstanding
    m.register_result("reg", 600, 101.0)
    assert m.registration("reg") is RegState.REGISTERED
    assert m.next_timer() == 401.0  # RFC 3261 §10.2.4 refresh before expiry: expires/2
    assert m.due_registrations(400.0) == []
    assert m.due_registrations(401.0) == [reg]
    m.register_result("reg", None, 402.0)
    assert m.registration("reg") is RegState.FAILED
    assert m.next_timer() == 432.0
    assert m.status(0.0, 0.0)[0]["registration"] == "failed"
    m.register_result("reg", 60, 500.0)  # not outstanding: ignored
    assert m.registration("reg") is RegState.FAILED


# --- client digest -----------------------------------------------------------

SECRET = b"0123456789abcdef0123456789abcdef"
REALM = "carrier.example"
URI = "sip:5551234@192.0.2.1:5060"


class Lookup:
    def credentials(self, username: str) -> Credentials | None:
        if username != "acct":
            return None
        return Credentials(
            username="acct",
            device="carrier",
            ha1_md5=ha1("acct", REALM, "pw", "MD5"),
            ha1_sha256=ha1("acct", REALM, "pw", "SHA-256"),
        )


def request(header: str, value: str) -> SipRequest:
    items = [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx"),
        ("From", "<sip:1001@127.0.0.1>;tag=a"),
        ("To", f"<{URI}>"),
        ("Call-ID", "c@x"),
        ("CSeq", "2 INVITE"),
        (header, value),
    ]
    return SipRequest(method="INVITE", uri=URI, headers=Headers(items), body=b"")


@pytest.mark.parametrize("algorithms", [("SHA-256", "MD5"), ("MD5",)])
@pytest.mark.parametrize("proxy", [True, False])
def test_digest_answer_verifies_at_the_server(algorithms: tuple[str, ...], proxy: bool) -> None:
    auth = DigestAuthenticator(SECRET, REALM, algorithms=algorithms)
    challenges = [v for _, v in auth.challenge(1000.0, proxy=proxy)]
    chosen = pick_challenge(challenges)
    assert chosen == challenges[0]
    value = digest_authorization(chosen, "INVITE", URI, "acct", "pw")
    assert value is not None and f"algorithm={algorithms[0]}" in value
    header = "Proxy-Authorization" if proxy else "Authorization"
    result = auth.verify(request(header, value), Lookup(), 1000.0, proxy=proxy)
    assert result.status is AuthStatus.OK, result
    wrong = digest_authorization(chosen, "INVITE", URI, "acct", "nope")
    assert wrong is not None
    assert auth.verify(request(header, wrong), Lookup(), 1000.0, proxy=proxy).status is (
        AuthStatus.REJECTED
    )


def test_digest_rfc2069_form_without_qop() -> None:
    value = digest_authorization(
        'Digest realm="r", nonce="n1"', "INVITE", URI, "acct", "pw", cnonce="c"
    )
    assert value is not None
    assert "qop" not in value and "cnonce" not in value
    assert 'realm="r"' in value and 'nonce="n1"' in value and f'uri="{URI}"' in value


@pytest.mark.parametrize(
    "challenge",
    [
        'Basic realm="r"',
        'Digest nonce="n"',  # no realm
        'Digest realm="r"',  # no nonce
        'Digest realm="r", nonce="n", algorithm=SHA-512-256',
        'Digest realm="r", nonce="n", qop="auth-int"',
        "Digest realm=",  # malformed
        "",
    ],
)
def test_digest_refuses_what_it_cannot_answer(challenge: str) -> None:
    assert digest_authorization(challenge, "INVITE", URI, "acct", "pw") is None
    assert pick_challenge([challenge]) is None


def test_pick_challenge_skips_unusable_ones() -> None:
    good = 'Digest realm="r", nonce="n", algorithm=MD5, qop="auth,auth-int"'
    assert pick_challenge(['Digest realm="r", nonce="n", algorithm=SHA-512-256', good]) == good
