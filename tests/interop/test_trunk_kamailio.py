"""SIP trunk interop: Kamailio (registrar + proxy) as the far end of a trunk.

Each test starts, on loopback only:

- Kamailio (``interop.kamailio``) on 127.0.0.2, a registrar with no
  authentication that relays to registered users and forwards every other
  user to offhook;
- a real ``offhook serve`` with the plan of :func:`trunk_plan`: partitions
  internal/pstn; alice (1001, internal) with CSS staff [internal, pstn];
  trunk ``kam`` -> Kamailio with CSS inbound [internal] and
  ``inbound_addresses`` = Kamailio's address only (offhook's own phones are on
  127.0.0.1 and must keep authenticating); route pattern ``9.XXXX`` in pstn
  -> route list -> route group -> trunk(s), discarding the 9;
- baresip ``alice`` registered to offhook, baresip ``carol`` registered to
  Kamailio as user 2001.

Outbound: alice dials 92001, offhook sends ``sip:2001@127.0.0.2:PORT`` over
the trunk, Kamailio delivers it to carol.  Inbound: carol dials
``sip:1001@127.0.0.2:PORT``, Kamailio (1001 not registered there) forwards it
to offhook, which takes it as from trunk ``kam`` and routes 1001 with the
trunk's CSS to alice.  Failover: the route group's first trunk is a TCP port
where nothing listens (connection refused at once), the second is Kamailio.

Media is checked on the wire (tshark on lo, phone to phone: offhook and
Kamailio carry signalling only), call records with ``offhook cdr``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.kamailio import Kamailio
from interop.peers import require_binary, require_capture
from support.capture import Capture, count_between
from support.ports import HOST
from support.server import OffhookServer

KAM_HOST = "127.0.0.2"  # Kamailio: not 127.0.0.1, where the phones are
DEAD_HOST = "127.0.0.3"  # the dead trunk of the failover test

ALICE_PASSWORD = "alice-Secret-1"
ALICE_DN = "1001"
CAROL_USER = "2001"  # carol's user at Kamailio
OUT_PREFIX = "9"


def dead_tcp_port(host: str = DEAD_HOST) -> int:
    """A TCP port on ``host`` where nothing listens (a connect is refused)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def trunk_plan(kam: Kamailio, first: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plan of the module docstring; ``first`` is a trunk hunted before ``kam``."""
    trunks: list[dict[str, Any]] = [
        {
            "name": "kam",
            "protocol": "sip",
            "host": kam.host,
            "port": kam.port,
            "transport": "udp",
            "css": "inbound",
            "inbound_addresses": [f"{kam.host}/32"],
        }
    ]
    if first is not None:
        trunks.insert(0, {"protocol": "sip", "css": "inbound", **first})
    members = [t["name"] for t in trunks]
    return {
        "partitions": ["internal", "pstn"],
        "calling_search_spaces": [
            {"name": "staff", "partitions": ["internal", "pstn"]},
            {"name": "inbound", "partitions": ["internal"]},
        ],
        "devices": [
            {
                "name": "alice",
                "protocol": "sip",
                "password": ALICE_PASSWORD,
                "css": "staff",
                "lines": [{"dn": ALICE_DN, "display": "Alice", "partition": "internal"}],
            }
        ],
        "trunks": trunks,
        "route_groups": [{"name": "kam-group", "distribution": "top-down", "members": members}],
        "route_lists": [{"name": "kam-out", "groups": ["kam-group"]}],
        "route_patterns": [
            {
                "pattern": f"{OUT_PREFIX}.XXXX",
                "partition": "pstn",
                "route_list": "kam-out",
                "called_transform": {"discard": "pre-dot"},
            }
        ],
    }


@contextlib.contextmanager
def trunk_setup(
    tmp_path: Path, *, first: dict[str, Any] | None = None
) -> Iterator[tuple[OffhookServer, Kamailio, Baresip, Baresip]]:
    """Kamailio, offhook, alice (on offhook) and carol (on Kamailio), all up."""
    require_binary("kamailio")
    require_binary("baresip")
    kam = Kamailio(tmp_path, host=KAM_HOST)
    srv = OffhookServer(tmp_path, trunk_plan(kam, first), log_level="debug")
    kam.forward_to = (HOST, srv.sip_port)
    alice = Baresip(
        tmp_path,
        "alice",
        aor=f"sip:alice@{HOST}:{srv.sip_port}",
        password=ALICE_PASSWORD,
        regint=120,
    )
    carol = Baresip(tmp_path, "carol", aor=kam.uri(CAROL_USER), regint=120)
    with kam:
        srv.start()
        try:
            with alice, carol:
                alice.wait_registered()
                carol.wait_registered()
                yield srv, kam, alice, carol
        finally:
            srv.stop()


def rtp_bpf(*uas: Baresip) -> str:
    ranges = " or ".join("portrange {}-{}".format(*ua.rtp_ports) for ua in uas)
    return f"udp and ({ranges})"


def call_with_media(
    tmp_path: Path, caller: Baresip, callee: Baresip, uri: str, ender: Baresip
) -> None:
    """caller dials uri, callee answers, 1.5 s of audio, ender hangs up."""
    other = callee if ender is caller else caller
    with Capture(tmp_path / "call.pcap", rtp_bpf(caller, callee)) as cap:
        caller.dial(uri)
        callee.wait_event("CALL_INCOMING", timeout=10)
        caller.wait_event("CALL_RINGING", "CALL_PROGRESS", timeout=10)
        callee.accept()
        caller.wait_event("CALL_ESTABLISHED", timeout=10)
        callee.wait_event("CALL_ESTABLISHED", timeout=10)
        time.sleep(1.5)
        ender_mark, other_mark = ender.mark(), other.mark()
        ender.hangup()
        other.wait_event("CALL_CLOSED", timeout=10, since=other_mark)
        ender.wait_event("CALL_CLOSED", timeout=10, since=ender_mark)
        cap.stop()
        flows = cap.rtp_flows()
    # Phone to phone, both ways: neither offhook nor Kamailio relays media.
    assert count_between(flows, caller.rtp_ports, callee.rtp_ports) >= 25, flows
    assert count_between(flows, callee.rtp_ports, caller.rtp_ports) >= 25, flows


def assert_bye_via_kamailio(kam: Kamailio) -> None:
    """In-dialog requests followed Kamailio's Record-Route (RFC 3261 §16.12)."""
    assert re.search(r"\bBYE sip:\S+ from ", kam.log()), kam.log_tail()


def answered(row: dict[str, str]) -> None:
    assert row["cause"] == "16", row
    assert row["answer"], row
    assert row["end"], row


# -- outbound: offhook phone -> route pattern -> trunk -> Kamailio -> UA -----------


@pytest.mark.parametrize("hangup_side", ["offhook-phone", "kamailio-ua"])
def test_outbound_call_over_trunk_to_kamailio_user(tmp_path: Path, hangup_side: str) -> None:
    require_capture()
    with trunk_setup(tmp_path) as (srv, kam, alice, carol):
        ender = alice if hangup_side == "offhook-phone" else carol
        call_with_media(
            tmp_path, alice, carol, f"sip:{OUT_PREFIX}{CAROL_USER}@{HOST}:{srv.sip_port}", ender
        )
        # Kamailio saw the INVITE for the transformed number (9 discarded).
        assert f"INVITE sip:{CAROL_USER}@{kam.domain}" in kam.log(), kam.log_tail()
        assert_bye_via_kamailio(kam)
        rows = srv.wait_cdr(lambda r: r["calling_device"] == "alice")
    row = rows[-1]
    answered(row)
    assert row["called_device"] == "kam", row
    assert row["called"] in {OUT_PREFIX + CAROL_USER, CAROL_USER}, row


# -- inbound: Kamailio UA -> Kamailio -> trunk -> offhook (trunk CSS) -> phone --------


@pytest.mark.parametrize("hangup_side", ["kamailio-ua", "offhook-phone"])
def test_inbound_call_from_kamailio_user_routed_by_trunk_css(
    tmp_path: Path, hangup_side: str
) -> None:
    require_capture()
    with trunk_setup(tmp_path) as (srv, kam, alice, carol):
        ender = alice if hangup_side == "offhook-phone" else carol
        call_with_media(tmp_path, carol, alice, kam.uri(ALICE_DN), ender=ender)
        assert_bye_via_kamailio(kam)
        rows = srv.wait_cdr(lambda r: r["called_device"] == "alice")
    row = rows[-1]
    answered(row)
    assert row["calling_device"] == "kam", row
    assert row["called"] == ALICE_DN, row
    assert row["calling"] == CAROL_USER, row


def test_inbound_call_cannot_reach_pstn_with_trunk_css(tmp_path: Path) -> None:
    """The trunk's CSS is [internal]: 9XXXX (pstn) does not exist for it (404)."""
    with trunk_setup(tmp_path) as (srv, kam, alice, carol):
        mark = alice.mark()
        carol.dial(kam.uri(OUT_PREFIX + CAROL_USER))
        closed = carol.wait_event("CALL_CLOSED", timeout=15)
        assert "404" in closed.param or "not found" in closed.param.lower(), closed.data
        assert "CALL_INCOMING" not in alice.event_types()[mark:]
        rows = srv.wait_cdr(lambda r: r["calling_device"] == "kam")
    assert rows[-1]["cause"] == "1", rows[-1]  # unallocated number


# -- failover: the first trunk fails, the call completes over Kamailio ---------------


def dial_out(srv: OffhookServer) -> str:
    return f"sip:{OUT_PREFIX}{CAROL_USER}@{HOST}:{srv.sip_port}"


def test_failover_dead_tcp_trunk_then_kamailio(tmp_path: Path) -> None:
    require_capture()
    dead = dead_tcp_port()
    first = {
        "name": "dead",
        "host": DEAD_HOST,
        "port": dead,
        "transport": "tcp",
        "options_ping": 0,  # the call itself must find out that it is dead
    }
    with trunk_setup(tmp_path, first=first) as (srv, _kam, alice, carol):
        started = time.monotonic()
        call_with_media(tmp_path, alice, carol, dial_out(srv), ender=alice)
        elapsed = time.monotonic() - started
        rows = srv.wait_cdr(lambda r: r["calling_device"] == "alice")
        log = srv.log()
    answered(rows[-1])
    assert rows[-1]["called_device"] == "kam", rows[-1]
    assert f"{DEAD_HOST}:{dead}" in log  # the dead trunk was tried first
    assert elapsed < 15, elapsed


def test_failover_trunk_answering_503_then_kamailio(tmp_path: Path) -> None:
    """The first trunk's peer is up (answers OPTIONS) but refuses calls with 503."""
    require_capture()
    require_binary("kamailio")
    refuser = Kamailio(tmp_path, host=DEAD_HOST, reject=(503, "Service Unavailable"))
    first = {"name": "refuser", "host": refuser.host, "port": refuser.port, "transport": "udp"}
    with refuser, trunk_setup(tmp_path, first=first) as (srv, _kam, alice, carol):
        started = time.monotonic()
        call_with_media(tmp_path, alice, carol, dial_out(srv), ender=carol)
        elapsed = time.monotonic() - started
        rows = srv.wait_cdr(lambda r: r["calling_device"] == "alice")
        # The refuser was offered the call first, and said 503.
        assert f"INVITE sip:{CAROL_USER}@{refuser.domain}" in refuser.log(), refuser.log_tail()
    answered(rows[-1])
    assert rows[-1]["called_device"] == "kam", rows[-1]
    assert elapsed < 10, elapsed


def wait_log(srv: OffhookServer, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in srv.log():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} in the offhook log within {timeout}s")
        time.sleep(0.2)


def test_trunk_that_stops_answering_options_is_skipped(tmp_path: Path) -> None:
    """Ping every second; once the first trunk's peer is gone (Timer F, about
    32 s), calls go straight to Kamailio without trying it.  About 40 s."""
    require_binary("kamailio")
    other = Kamailio(tmp_path, host=DEAD_HOST)
    first = {
        "name": "flaky",
        "host": other.host,
        "port": other.port,
        "transport": "udp",
        "options_ping": 1,
    }
    with other, trunk_setup(tmp_path, first=first) as (srv, _kam, alice, carol):
        wait_log(srv, "trunk flaky is up", timeout=10)
        other.stop(show_log=False)
        wait_log(srv, "trunk flaky is down", timeout=45)
        invites_before = srv.log().count(f"INVITE sip:{CAROL_USER}@{other.domain}")
        started = time.monotonic()
        alice.dial(dial_out(srv))
        carol.wait_event("CALL_INCOMING", timeout=5)
        assert time.monotonic() - started < 5
        carol.accept()
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        mark = carol.mark()
        alice.hangup()
        carol.wait_event("CALL_CLOSED", timeout=10, since=mark)
        rows = srv.wait_cdr(lambda r: r["calling_device"] == "alice")
        # The dead trunk was not offered the call.
        assert srv.log().count(f"INVITE sip:{CAROL_USER}@{other.domain}") == invites_before
    answered(rows[-1])
    assert rows[-1]["called_device"] == "kam", rows[-1]
