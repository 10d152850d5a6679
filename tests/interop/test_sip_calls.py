"""Calls through a real ``offhook serve`` between independent SIP user agents.

Two different UAs are exercised: baresip (driven over ctrl_tcp) and SIPp
(scenarios in ``scenarios/``).  Every UA authenticates with digest: REGISTER
is challenged with 401, INVITE with 407.  Each test starts its own offhook
on free loopback ports with this plan:

=======  ======  ===================================
device   DN      played by
=======  ======  ===================================
alice    1001    baresip
bob      1002    baresip
carol    1003    SIPp UAC (uac_*.xml)
dave     1004    SIPp UAS, registered by register.xml
=======  ======  ===================================

Media is checked on the wire (tshark on lo) and by baresip's own RTP
summary; call records by ``offhook cdr``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary, require_capture
from interop.sipp import Sipp, SippResult, describe
from support.capture import Capture, count_between
from support.ports import HOST
from support.server import OffhookServer, device, plan_of

PASSWORDS = {
    "alice": "alice-Secret-1",
    "bob": "bob-Secret-2",
    "carol": "carol-Secret-3",
    "dave": "dave-Secret-4",
}
DNS = {"alice": "1001", "bob": "1002", "carol": "1003", "dave": "1004"}
PLAN = plan_of([device(name, PASSWORDS[name], DNS[name]) for name in DNS])

# Q.850 causes a caller's abandon (CANCEL before answer) may be recorded as.
ABANDON_CAUSES = {"16", "19", "31", "127"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, PLAN)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def uas_dir(tmp_path: Path) -> Path:
    d = tmp_path / "sipp"
    d.mkdir()
    return d


def baresip_ua(
    tmp_path: Path, server: OffhookServer, name: str, password: str | None = None
) -> Baresip:
    require_binary("baresip")
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{HOST}:{server.sip_port}",
        password=password if password is not None else PASSWORDS[name],
        regint=120,
    )


def dial_uri(server: OffhookServer, number: str) -> str:
    return f"sip:{number}@{HOST}:{server.sip_port}"


def register_sipp_uas(server: OffhookServer, workdir: Path, uas: Sipp, name: str = "dave") -> None:
    """REGISTER ``name`` with the Contact of an already listening SIPp UAS."""
    reg = Sipp(
        workdir,
        "register.xml",
        f"register-{name}",
        target=f"{HOST}:{server.sip_port}",
        keys={
            "user": name,
            "contact_host": HOST,
            "contact_port": str(uas.port),
            "expires": "300",
        },
        auth=(name, PASSWORDS[name]),
        timeout_s=15,
    )
    result = reg.run()
    assert result.ok, describe(result)


def sipp_uac(
    server: OffhookServer, workdir: Path, scenario: str, number: str, **kw: object
) -> Sipp:
    return Sipp(
        workdir,
        scenario,
        f"uac-{scenario.removesuffix('.xml')}",
        target=f"{HOST}:{server.sip_port}",
        keys={"caller": "carol"},
        service=number,
        auth=("carol", PASSWORDS["carol"]),
        timeout_s=30,
        **kw,  # type: ignore[arg-type]
    )


def cdr_for(server: OffhookServer, calling: str, called: str) -> dict[str, str]:
    """The one CDR row of a call from ``calling`` (device or DN) to ``called``."""
    callers = {calling, DNS.get(calling, calling)}
    rows = server.wait_cdr(lambda r: r.get("calling") in callers and r.get("called") == called)
    return rows[-1]


def assert_answered_cdr(row: dict[str, str]) -> None:
    assert row["cause"] == "16", row
    assert row["answer"], row
    assert row["end"], row
    assert row["call_id"], row


def established_call(caller: Baresip, callee: Baresip, uri: str) -> None:
    caller.dial(uri)
    callee.wait_event("CALL_INCOMING", timeout=10)
    caller.wait_event("CALL_RINGING", "CALL_PROGRESS", timeout=10)
    callee.accept()
    caller.wait_event("CALL_ESTABLISHED", timeout=10)
    callee.wait_event("CALL_ESTABLISHED", timeout=10)


# -- both UAs baresip: the full call, with media ---------------------------------


@pytest.mark.parametrize("hangup_side", ["caller", "callee"])
def test_baresip_call_rtp_both_ways_and_cdr(
    server: OffhookServer, tmp_path: Path, hangup_side: str
) -> None:
    require_capture()
    alice = baresip_ua(tmp_path, server, "alice")
    bob = baresip_ua(tmp_path, server, "bob")
    bpf = "udp and (portrange {}-{} or portrange {}-{})".format(*alice.rtp_ports, *bob.rtp_ports)
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        with Capture(tmp_path / "call.pcap", bpf) as cap:
            established_call(alice, bob, dial_uri(server, "1002"))
            time.sleep(1.5)
            ender, other = (alice, bob) if hangup_side == "caller" else (bob, alice)
            mark = other.mark()
            ender.hangup()
            other.wait_event("CALL_CLOSED", timeout=10, since=mark)
            cap.stop()
            flows = cap.rtp_flows()
        # RTP flows phone to phone (signalling-only B2BUA), both ways.
        assert count_between(flows, alice.rtp_ports, bob.rtp_ports) >= 25, flows
        assert count_between(flows, bob.rtp_ports, alice.rtp_ports) >= 25, flows
        time.sleep(0.3)
        for ua in (alice, bob):
            summaries = ua.rtp_summaries()
            assert summaries and min(summaries[-1]) >= 25, (ua.name, summaries)
    row = cdr_for(server, "alice", "1002")
    assert_answered_cdr(row)


def test_registrations_visible_in_status(server: OffhookServer, tmp_path: Path) -> None:
    alice = baresip_ua(tmp_path, server, "alice")
    with alice:
        alice.wait_registered()
        status = json.dumps(server.status())
    assert "alice" in status or "1001" in status, status


# -- SIPp and baresip together ---------------------------------------------------------


def test_sipp_calls_baresip_and_hangs_up(
    server: OffhookServer, tmp_path: Path, uas_dir: Path
) -> None:
    require_binary("sipp")
    bob = baresip_ua(tmp_path, server, "bob")
    with bob:
        bob.wait_registered()
        uac = sipp_uac(server, uas_dir, "uac_auth.xml", "1002", pause_ms=1000)
        uac.start(listening=False)
        bob.wait_event("CALL_INCOMING", timeout=15)
        bob.accept()
        result = uac.wait()
        assert result.ok, describe(result)
        bob.wait_event("CALL_CLOSED", timeout=10)
    assert_answered_cdr(cdr_for(server, "carol", "1002"))


def test_baresip_calls_registered_sipp_uas(
    server: OffhookServer, tmp_path: Path, uas_dir: Path
) -> None:
    require_binary("sipp")
    alice = baresip_ua(tmp_path, server, "alice")
    with Sipp(uas_dir, "uas.xml", "uas-dave", timeout_s=30) as uas, alice:
        register_sipp_uas(server, uas_dir, uas)
        alice.wait_registered()
        alice.dial(dial_uri(server, "1004"))
        alice.wait_event("CALL_ESTABLISHED", timeout=15)
        time.sleep(1.0)
        alice.hangup()
        alice.wait_event("CALL_CLOSED", timeout=10)
        served: SippResult = uas.wait(timeout=20)
        assert served.ok, describe(served)
    assert_answered_cdr(cdr_for(server, "alice", "1004"))


def test_sipp_uas_hangs_up_on_baresip(server: OffhookServer, tmp_path: Path, uas_dir: Path) -> None:
    require_binary("sipp")
    alice = baresip_ua(tmp_path, server, "alice")
    with Sipp(uas_dir, "uas_bye.xml", "uas-dave", pause_ms=1000, timeout_s=30) as uas, alice:
        register_sipp_uas(server, uas_dir, uas)
        alice.wait_registered()
        alice.dial(dial_uri(server, "1004"))
        alice.wait_event("CALL_ESTABLISHED", timeout=15)
        alice.wait_event("CALL_CLOSED", timeout=15)
        served = uas.wait(timeout=20)
        assert served.ok, describe(served)
    assert_answered_cdr(cdr_for(server, "alice", "1004"))


# -- busy ---------------------------------------------------------------------------


def test_busy_sipp_callee(server: OffhookServer, tmp_path: Path, uas_dir: Path) -> None:
    require_binary("sipp")
    alice = baresip_ua(tmp_path, server, "alice")
    with Sipp(uas_dir, "uas_busy.xml", "uas-dave", timeout_s=30) as uas, alice:
        register_sipp_uas(server, uas_dir, uas)
        alice.wait_registered()
        alice.dial(dial_uri(server, "1004"))
        closed = alice.wait_event("CALL_CLOSED", timeout=15)
        assert "486" in closed.param or "busy" in closed.param.lower(), closed.data
        served = uas.wait(timeout=20)
        assert served.ok, describe(served)
    row = cdr_for(server, "alice", "1004")
    assert row["cause"] == "17", row
    assert not row["answer"], row


def test_busy_baresip_callee_rejects_sipp_caller(
    server: OffhookServer, tmp_path: Path, uas_dir: Path
) -> None:
    require_binary("sipp")
    bob = baresip_ua(tmp_path, server, "bob")
    with bob:
        bob.wait_registered()
        uac = sipp_uac(server, uas_dir, "uac_busy.xml", "1002")
        uac.start(listening=False)
        bob.wait_event("CALL_INCOMING", timeout=15)
        bob.hangup()  # rejecting a ringing call: 486 Busy Here
        result = uac.wait()
        assert result.ok, describe(result)
    assert cdr_for(server, "carol", "1002")["cause"] == "17"


# -- no answer + cancel ---------------------------------------------------------------


def test_no_answer_baresip_caller_cancels(server: OffhookServer, tmp_path: Path) -> None:
    alice = baresip_ua(tmp_path, server, "alice")
    bob = baresip_ua(tmp_path, server, "bob")
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        alice.dial(dial_uri(server, "1002"))
        bob.wait_event("CALL_INCOMING", timeout=10)
        alice.wait_event("CALL_RINGING", timeout=10)
        time.sleep(0.5)
        alice.hangup()  # CANCEL while ringing
        bob.wait_event("CALL_CLOSED", timeout=10)
        alice.wait_event("CALL_CLOSED", timeout=10)
    row = cdr_for(server, "alice", "1002")
    assert not row["answer"], row
    assert row["cause"] in ABANDON_CAUSES, row


def test_no_answer_sipp_caller_cancels(
    server: OffhookServer, tmp_path: Path, uas_dir: Path
) -> None:
    require_binary("sipp")
    bob = baresip_ua(tmp_path, server, "bob")
    with bob:
        bob.wait_registered()
        result = sipp_uac(server, uas_dir, "uac_cancel.xml", "1002").run()
        assert result.ok, describe(result)
        bob.wait_event("CALL_INCOMING", timeout=5)
        bob.wait_event("CALL_CLOSED", timeout=10)
    row = cdr_for(server, "carol", "1002")
    assert not row["answer"], row
    assert row["cause"] in ABANDON_CAUSES, row


def test_no_answer_callee_is_sipp_ringing(
    server: OffhookServer, tmp_path: Path, uas_dir: Path
) -> None:
    """The CANCEL reaches a SIPp callee, which answers 200 + 487 as RFC 3261 §9.2 says."""
    require_binary("sipp")
    alice = baresip_ua(tmp_path, server, "alice")
    with Sipp(uas_dir, "uas_ring_cancel.xml", "uas-dave", timeout_s=30) as uas, alice:
        register_sipp_uas(server, uas_dir, uas)
        alice.wait_registered()
        alice.dial(dial_uri(server, "1004"))
        alice.wait_event("CALL_RINGING", timeout=15)
        alice.hangup()
        alice.wait_event("CALL_CLOSED", timeout=10)
        served = uas.wait(timeout=20)
        assert served.ok, describe(served)


# -- unknown number, wrong password ------------------------------------------------------


def test_unknown_number_sipp(server: OffhookServer, uas_dir: Path) -> None:
    require_binary("sipp")
    result = sipp_uac(server, uas_dir, "uac_unknown.xml", "9999").run()
    assert result.ok, describe(result)
    row = cdr_for(server, "carol", "9999")
    assert row["cause"] == "1", row


def test_unknown_number_baresip(server: OffhookServer, tmp_path: Path) -> None:
    alice = baresip_ua(tmp_path, server, "alice")
    with alice:
        alice.wait_registered()
        alice.dial(dial_uri(server, "9999"))
        closed = alice.wait_event("CALL_CLOSED", timeout=15)
        assert "404" in closed.param or "not found" in closed.param.lower(), closed.data


def test_wrong_password_baresip(server: OffhookServer, tmp_path: Path) -> None:
    alice = baresip_ua(tmp_path, server, "alice", password="not-the-password")
    with alice:
        alice.wait_register_failed(timeout=15)
        state = server.status()
        status = json.dumps(state)
    # Refused (403) at the first wrong answer: a new challenge would make
    # baresip retry on every fresh nonce until the failed-login guard throttled it.
    assert state["auth"]["failures"] == 1, state["auth"]
    assert state["auth"]["throttled_now"] == 0, state["auth"]
    assert "not-the-password" not in status


def test_wrong_password_sipp(server: OffhookServer, uas_dir: Path) -> None:
    require_binary("sipp")
    reg = Sipp(
        uas_dir,
        "register_wrong.xml",
        "register-wrong",
        target=f"{HOST}:{server.sip_port}",
        keys={"user": "dave", "contact_host": HOST, "contact_port": "5999", "expires": "300"},
        auth=("dave", "wrong-password"),
        timeout_s=15,
    )
    result = reg.run()
    assert result.ok, describe(result)


def test_unknown_user_answered_like_wrong_password(server: OffhookServer, uas_dir: Path) -> None:
    """No user enumeration: an unknown device gets the same refusal."""
    require_binary("sipp")
    reg = Sipp(
        uas_dir,
        "register_wrong.xml",
        "register-nobody",
        target=f"{HOST}:{server.sip_port}",
        keys={"user": "nobody", "contact_host": HOST, "contact_port": "5999", "expires": "300"},
        auth=("nobody", "whatever"),
        timeout_s=15,
    )
    result = reg.run()
    assert result.ok, describe(result)
