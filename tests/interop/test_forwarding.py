"""Call forwarding and feature codes through a real ``offhook serve``, with baresip phones.

Forward no answer from the plan (the CFNA timer runs out, the destination
rings, the CDR names the redirection), forward all set by ``*21`` from a SIP
phone (stored: it survives a restart of the node; ``#21`` clears it), a
``*21`` outside the line's forward CSS refused, and feature codes never
reaching a trunk (the trunk is a SIPp UAS that would answer anything).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary
from interop.sipp import Sipp, describe
from interop.test_media_features import wait_media_server
from interop.test_sip_calls import PASSWORDS, register_sipp_uas
from support.ports import HOST
from support.server import OffhookServer, device


def coverage_plan(trunk_port: int) -> dict[str, Any]:
    internal = {"partition": "internal"}

    def line(dn: str, **extra: Any) -> list[dict[str, Any]]:
        return [{"dn": dn, "display": f"Line {dn}", **internal, **extra}]

    return {
        "partitions": ["internal", "pstn"],
        "calling_search_spaces": [
            {"name": "staff", "partitions": ["internal"]},
            {"name": "world", "partitions": ["internal", "pstn"]},
        ],
        "trunks": [{"name": "carrier", "protocol": "sip", "host": HOST, "port": trunk_port}],
        "route_groups": [{"name": "carriers", "members": ["carrier"]}],
        "route_lists": [{"name": "out", "groups": ["carriers"]}],
        # Anything starting with * or 9 goes to the carrier, for whoever reaches pstn.
        "route_patterns": [
            {"pattern": "*!", "partition": "pstn", "route_list": "out"},
            {"pattern": "9!", "partition": "pstn", "route_list": "out"},
        ],
        "devices": [
            device("alice", PASSWORDS["alice"], "1001", css="world") | {"lines": line("1001")},
            device("bob", PASSWORDS["bob"], "1002", css="staff")
            | {
                "lines": line(
                    "1002",
                    forward_no_answer={"destination": "1003"},
                    cfna_timer=2,
                )
            },
            device("carol", PASSWORDS["carol"], "1003", css="staff")
            | {"lines": [*line("1003"), *line("9003", intercom=True)]},
            device("dave", PASSWORDS["dave"], "1004", css="world") | {"lines": line("1004")},
        ],
    }


@pytest.fixture
def trunk(tmp_path: Path) -> Iterator[Sipp]:
    """A carrier that answers every call it gets (SIPp UAS): nothing may reach it here."""
    require_binary("sipp")
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    uas = Sipp(workdir, "uas.xml", "carrier", timeout_s=120)
    uas.start()
    try:
        yield uas
    finally:
        uas.stop()


@pytest.fixture
def server(tmp_path: Path, trunk: Sipp) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, coverage_plan(trunk.port))
    srv.start()
    try:
        wait_media_server(srv)  # it plays the feature codes' confirmation tone
        yield srv
    finally:
        srv.stop()


def phone(tmp_path: Path, server: OffhookServer, name: str) -> Baresip:
    require_binary("baresip")
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{HOST}:{server.sip_port}",
        password=PASSWORDS[name],
        regint=120,
    )


def uri(server: OffhookServer, number: str) -> str:
    return f"sip:{number.replace('#', '%23')}@{HOST}:{server.sip_port}"


def feature_code(server: OffhookServer, ua: Baresip, code: str) -> None:
    """``ua`` dials ``code``: offhook answers with a confirmation tone, then hangs up."""
    mark = ua.mark()
    ua.dial(uri(server, code))
    ua.wait_event("CALL_ESTABLISHED", timeout=10, since=mark)
    ua.wait_event("CALL_CLOSED", timeout=10, since=mark)


def test_forward_no_answer_rings_the_destination_and_the_cdr_says_why(
    server: OffhookServer, tmp_path: Path
) -> None:
    alice, bob, carol = (phone(tmp_path, server, n) for n in ("alice", "bob", "carol"))
    with alice, bob, carol:
        for ua in (alice, bob, carol):
            ua.wait_registered()
        alice.dial(uri(server, "1002"))
        bob.wait_event("CALL_INCOMING", timeout=10)
        started = time.monotonic()
        carol.wait_event("CALL_INCOMING", timeout=10)
        assert time.monotonic() - started >= 1.0  # after bob's CFNA timer (2 s)
        bob.wait_event("CALL_CLOSED", timeout=10)  # bob's phone stops ringing
        carol.accept()
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        carol.wait_event("CALL_ESTABLISHED", timeout=10)
        mark = carol.mark()
        alice.hangup()
        carol.wait_event("CALL_CLOSED", timeout=10, since=mark)
    row = server.wait_cdr(lambda r: r.get("original_called") == "1002")[-1]
    assert row["called"] == "1003", row
    assert row["called_device"] == "carol", row
    assert row["last_redirecting"] == "1002", row
    assert row["redirect_reason"] == "forward-no-answer", row
    assert row["cause"] == "16" and row["answer"], row


def test_star21_forward_all_survives_a_restart_and_hash21_clears_it(
    server: OffhookServer, tmp_path: Path, trunk: Sipp
) -> None:
    alice, bob, dave = (phone(tmp_path, server, n) for n in ("alice", "bob", "dave"))
    with alice, bob, dave:
        for ua in (alice, bob, dave):
            ua.wait_registered()
        feature_code(server, bob, "*211004")
    server.stop(show_log=False)
    server.start()
    wait_media_server(server)
    alice, bob, dave = (phone(tmp_path, server, n) for n in ("alice", "bob", "dave"))
    with alice, bob, dave:
        for ua in (alice, bob, dave):
            ua.wait_registered()
        alice.dial(uri(server, "1002"))
        dave.wait_event("CALL_INCOMING", timeout=10)
        assert "CALL_INCOMING" not in bob.event_types()
        mark = alice.mark()
        alice.hangup()
        alice.wait_event("CALL_CLOSED", timeout=10, since=mark)
        feature_code(server, bob, "#21")
        mark = bob.mark()
        alice.dial(uri(server, "1002"))
        bob.wait_event("CALL_INCOMING", timeout=10, since=mark)
        alice.hangup()
    row = server.wait_cdr(lambda r: r.get("redirect_reason") == "forward-all")[-1]
    assert (row["called"], row["last_redirecting"]) == ("1004", "1002"), row


def test_star21_outside_the_forward_css_is_refused_and_codes_never_reach_a_trunk(
    server: OffhookServer, tmp_path: Path, trunk: Sipp
) -> None:
    alice, bob = phone(tmp_path, server, "alice"), phone(tmp_path, server, "bob")
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        # bob's CSS (staff) reaches no trunk: neither may his forward.
        mark = bob.mark()
        bob.dial(uri(server, "*2190114412345"))
        bob.wait_event("CALL_CLOSED", timeout=10, since=mark)
        assert "CALL_ESTABLISHED" not in bob.event_types()
        # alice reaches the trunk with `*!`, but a feature code is never routed.
        feature_code(server, alice, "*78")
        mark = alice.mark()
        alice.dial(uri(server, "*8"))  # pickup: nothing rings in her (no) group
        alice.wait_event("CALL_CLOSED", timeout=10, since=mark)
        mark = bob.mark()
        alice.dial(uri(server, "1002"))
        bob.wait_event("CALL_INCOMING", timeout=10, since=mark)  # not forwarded
        alice.hangup()
    trunk.stop()
    assert "INVITE sip:" not in trunk.result().messages, trunk.result().messages
    rows = server.cdr_rows()
    assert not any(r["called_device"] == "carrier" for r in rows), rows


def test_an_intercom_call_asks_the_phone_to_answer_by_itself(
    server: OffhookServer, tmp_path: Path
) -> None:
    # The phone is a SIPp UAS that answers at once only when the INVITE asks it to
    # (Call-Info answer-after=0, Alert-Info auto-answer), else its scenario fails.
    workdir = tmp_path / "intercom"
    workdir.mkdir()
    alice = phone(tmp_path, server, "alice")
    with Sipp(workdir, "uas_auto_answer.xml", "carol-phone", timeout_s=30) as uas, alice:
        register_sipp_uas(server, workdir, uas, "carol")
        alice.wait_registered()
        alice.dial(uri(server, "9003"))
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        assert "CALL_RINGING" not in alice.event_types()
        mark = alice.mark()
        alice.hangup()
        alice.wait_event("CALL_CLOSED", timeout=10, since=mark)
        result = uas.wait(timeout=15)
    assert result.ok, describe(result)
