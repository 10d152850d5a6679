"""AuthGuard: failed logins per source and account, throttle then block, bounded."""

from __future__ import annotations

import tracemalloc

import pytest

from offhook.net.authguard import MAX_ACCOUNT_KEY, AuthGuard, AuthPolicy, PeerGate, source_key


def guard(**kw: float) -> AuthGuard:
    base: dict[str, float] = {
        "fail_window": 60,
        "throttle_after": 3,
        "throttle_delay": 0.5,
        "max_delay": 4,
        "block_after": 6,
        "block_for": 100,
        "account_alert_after": 10,
    }
    base.update(kw)
    return AuthGuard(AuthPolicy(**base))  # type: ignore[arg-type]


def test_clean_source_is_admitted_at_once() -> None:
    g = guard()
    assert g.admit("10.0.0.1", 0.0) == 0.0
    assert len(g) == 0  # asking creates no state


def test_throttle_then_block_then_expire() -> None:
    g = guard()
    src = "10.0.0.1"
    delays = []
    for i in range(5):
        g.failure(src, f"user{i}", 1.0)
        delays.append(g.admit(src, 1.0))
    assert delays == [0.0, 0.0, 0.5, 1.0, 2.0]
    assert not g.is_blocked(src, 1.0)
    g.failure(src, "user5", 1.0)  # the 6th: blocked
    assert g.is_blocked(src, 1.0)
    assert g.admit(src, 50.0) is None
    assert g.admit(src, 100.99) is None
    assert g.dropped_blocked == 2 and g.blocks == 1
    # The block is over, and so is the window: a clean slate.
    assert g.admit(src, 101.0) == 0.0
    assert g.failures(src, 101.0) == 0
    assert g.admit("10.0.0.2", 1.0) == 0.0  # others untouched


def test_delay_capped() -> None:
    g = guard(block_after=0)  # never block
    for _ in range(40):
        g.failure("s", "a", 0.0)
    assert not g.is_blocked("s", 0.0)
    assert g.admit("s", 0.0) == 4.0


def test_failures_outside_window_do_not_add_up() -> None:
    g = guard(fail_window=10)
    for now in (0.0, 5.0, 11.0, 16.0, 22.0, 27.0, 33.0, 38.0):
        g.failure("s", None, now)
    assert not g.is_blocked("s", 38.0)
    assert g.failures("s", 38.0) == 2


def test_block_still_in_window_reblocks_at_once() -> None:
    g = guard(fail_window=1000, block_for=10)
    for _ in range(6):
        g.failure("s", "x", 0.0)
    assert g.is_blocked("s", 5.0) and not g.is_blocked("s", 10.0)
    g.failure("s", "x", 11.0)
    assert g.is_blocked("s", 11.0) and g.blocks == 2


def test_accounts_never_blocked_and_legitimate_source_untouched() -> None:
    """A distributed attack on alice: the attackers slow down, alice's phone does not."""
    g = guard()
    for i in range(200):
        g.failure(f"10.1.{i // 250}.{i % 250}", "alice", 2.0)
    assert g.account_failures("alice", 2.0) == 200
    # Alice's phone from its own address: no failures there, nothing to wait.
    assert g.admit("192.0.2.10", 2.0) == 0.0
    st = g.status(2.0)
    assert st["accounts_under_attack"] == [{"account": "alice", "failures": 200}]
    assert st["blocked_now"] == 0


def test_attacked_account_counts_double_for_its_attackers() -> None:
    g = guard(account_alert_after=2)
    g.failure("a", "alice", 0.0)  # alice: 1 failure, not under attack yet
    g.failure("b", "alice", 0.0)  # alice under attack: counts 2 for b
    assert g.failures("a", 0.0) == 1 and g.failures("b", 0.0) == 2
    for _ in range(2):
        g.failure("b", "alice", 0.0)
    assert g.is_blocked("b", 0.0)  # 6 = block_after after 3 failures
    g.failure("c", "nobody", 0.0)
    assert g.failures("c", 0.0) == 1  # only the attacked account weighs double


def test_unknown_and_known_accounts_are_treated_alike() -> None:
    """The guard cannot tell, and its answers must not: same delay, same block."""
    a, b = guard(), guard()
    for _ in range(4):
        a.failure("s", "alice", 0.0)  # exists
        b.failure("s", "no-such-user", 0.0)  # does not
    assert a.admit("s", 0.0) == b.admit("s", 0.0) == 1.0


def test_hold_slots_bounded_one_per_source() -> None:
    g = AuthGuard(AuthPolicy(max_delayed=2))
    assert g.hold("a")
    assert not g.hold("a")  # one held request per source
    assert g.hold("b")
    assert not g.hold("c")  # no slot left
    assert g.dropped_throttled == 2 and g.throttled_total == 2
    g.release("a")
    assert g.hold("c")
    g.release("nobody")  # harmless


def test_account_keys_are_cut() -> None:
    g = guard()
    g.failure("s", "x" * 5000, 0.0)
    (name,) = [k for k, _ in g._accounts.items()]
    assert len(name) == MAX_ACCOUNT_KEY
    assert g.account_failures("x" * 6000, 0.0) == 1


def test_memory_bounded_under_flood() -> None:
    g = AuthGuard(AuthPolicy(max_tracked_sources=1000, max_tracked_accounts=1000, block_after=5))

    def flood(start: int) -> None:
        for i in range(start, start + 50_000):
            src = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            g.failure(src, f"user{i}-" + "y" * 200, i / 1000)

    tracemalloc.start()
    try:
        flood(0)
        assert len(g) == 2000
        before = tracemalloc.get_traced_memory()[0]
        flood(50_000)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(g) == 2000
    assert after - before < 64 * 1024
    assert g.status(100.0)["evicted"] == 2 * (100_000 - 1000)


def test_tables_forget_failures_whose_window_is_over() -> None:
    g = AuthGuard(AuthPolicy(fail_window=10.0, block_after=3, block_for=1000.0))
    for _ in range(3):
        g.failure("10.9.9.9", "root", 0.0)  # blocked until t=1000
    g.failure("10.9.9.10", "admin", 1.0)
    for i in range(20_000):  # 100 failing sources a second for 200 s
        g.failure(f"10.1.{i >> 8 & 255}.{i & 255}", f"u{i}", 2 + i / 100)
    assert len(g) <= 2 * (10 * 100 + 10)  # one window of sources and accounts
    assert g.is_blocked("10.9.9.9", 200.0)  # a block outlives its window
    assert g.failures("10.9.9.10", 200.0) == 0 and "10.9.9.10" not in g._sources


def test_status_counts() -> None:
    g = guard()
    for _ in range(6):
        g.failure("blocked", "alice", 0.0)
    for _ in range(3):
        g.failure("slow", "bob", 0.0)
    g.failure("clean-ish", "carol", 0.0)
    g.hold("slow")
    st = g.status(1.0)
    assert st["failures"] == 10
    assert st["blocked_now"] == 1 and st["throttled_now"] == 1 and st["held_now"] == 1
    assert st["blocks"] == 1 and st["throttled"] == 1
    assert st["tracked_sources"] == 3 and st["tracked_accounts"] == 3


def test_source_key() -> None:
    assert source_key("192.0.2.1") == "192.0.2.1"
    assert source_key("2001:db8::1") == source_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("fe80::1%eth0") == "fe80::/64"
    assert source_key("not:an:address") == "not:an:address"


@pytest.mark.parametrize(
    "kw",
    [
        {"fail_window": 0},
        {"throttle_after": 0},
        {"block_after": -1},
        {"block_for": -1},
        {"max_tracked_sources": 0},
        {"max_delayed": 0},
        {"throttle_delay": -1},
    ],
)
def test_invalid_policy(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AuthPolicy(**kw)  # type: ignore[arg-type]


def test_peer_gate_keys_by_host_on_its_clock() -> None:
    now = [0.0]
    gate = PeerGate(guard(), lambda: now[0])
    for port in range(6):  # the port does not matter
        gate.failure(("2001:db8::1", 5060 + port), "alice")
    assert gate.admit(("2001:db8::2", 1)) is None  # the same /64
    assert gate.admit(("192.0.2.1", 1)) == 0.0
    now[0] = 1000.0
    assert gate.admit(("2001:db8::1", 5060)) == 0.0
    assert gate.hold(("192.0.2.1", 1)) and not gate.hold(("192.0.2.1", 2))
    gate.release(("192.0.2.1", 3))
    assert gate.status()["held_now"] == 0
    gate.failure(("192.0.2.1", 1), "")
    assert gate.status()["tracked_accounts"] == 1  # the empty name is no account


def test_block_log_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    g = guard(block_after=1)
    with caplog.at_level("WARNING", logger="offhook.auth"):
        for i in range(500):
            g.failure(f"10.0.{i // 250}.{i % 250}", None, 1.0)
        g.failure("10.9.9.9", None, 70.0)  # the next minute: a summary, then this one
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 22
    assert "480 more sources blocked" in lines[20]
    assert g.blocks == 501


def shared_guard(lead: bool, **kw: float) -> AuthGuard:
    policy = guard(**kw).policy
    return AuthGuard(policy, share_accounts=True, lead=lead)


def test_workers_sum_an_accounts_failures(caplog: pytest.LogCaptureFixture) -> None:
    """Two workers, each seeing half of a distributed attack on alice: each counts it all."""
    w0, w1 = shared_guard(True), shared_guard(False)
    for i in range(6):
        w0.failure(f"10.0.0.{i}", "alice", 1.0)
        w1.failure(f"10.0.1.{i}", "alice", 1.0)
    w1.failure("10.0.1.9", "bob", 1.0)
    assert w0.account_failures("alice", 1.0) == 6  # alone: below account_alert_after (10)
    to_w1, to_w0 = w0.take_shared(), w1.take_shared()
    assert to_w1 == {"alice": 6} and to_w0 == {"alice": 6, "bob": 1}
    assert w0.take_shared() == {}  # taken once
    with caplog.at_level("WARNING", logger="offhook.auth"):
        for account, n in to_w0.items():
            w0.peer_failures(account, n, 1.5)
        for account, n in to_w1.items():
            w1.peer_failures(account, n, 1.5)
    assert w0.account_failures("alice", 1.5) == w1.account_failures("alice", 1.5) == 12
    assert w0.account_failures("bob", 1.5) == 1
    # The alert is logged once, by the lead; the shares are not sent back again.
    alerts = [r for r in caplog.records if "under attack" in r.getMessage()]
    assert len(alerts) == 1 and "'alice'" in alerts[0].getMessage()
    assert w0.take_shared() == {} and w1.take_shared() == {}
    # The attack now weighs double for attackers on either worker; sources stay local.
    w1.failure("10.0.1.20", "alice", 2.0)
    assert w1.failures("10.0.1.20", 2.0) == 2 and w0.failures("10.0.1.20", 2.0) == 0
    assert w0.status(2.0)["accounts_under_attack"] == [{"account": "alice", "failures": 12}]


def test_shared_outbox_and_peer_reports_are_bounded() -> None:
    from offhook.net.authguard import MAX_PEER_FAILURES, MAX_SHARED

    g = shared_guard(True, account_alert_after=10**7)
    for i in range(MAX_SHARED + 500):
        g.failure(f"10.2.{i // 250}.{i % 250}", f"user{i}", 1.0)
    g.failure("10.3.0.1", "user0", 1.0)  # an account already in the outbox still counts
    shared = g.take_shared()
    assert len(shared) == MAX_SHARED and shared["user0"] == 2
    g.peer_failures("x" * 1000, 10**12, 1.0)
    assert g.account_failures("x" * MAX_ACCOUNT_KEY, 1.0) == MAX_PEER_FAILURES
    g.peer_failures("", 5, 1.0)
    g.peer_failures("y", 0, 1.0)
    assert g.account_failures("y", 1.0) == 0
    plain = guard()
    plain.failure("10.0.0.1", "alice", 1.0)
    assert plain.take_shared() == {}  # a single process keeps no outbox
