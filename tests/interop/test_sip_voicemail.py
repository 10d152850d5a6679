"""A SIP voicemail system on a trunk, through a real ``offhook serve``.

bob's line (1002) forwards busy and no answer to the voicemail pilot 8000,
which a route pattern sends to the ``voicemail`` trunk: a SIPp UAS
(``uas_voicemail.xml``) that takes the call, reads the mailbox from the
INVITE's ``Diversion`` (RFC 5806; ``History-Info``, RFC 7044 with RFC 4458
causes, must be there too), and after the caller hangs up lights that
line's message lamp with an unsolicited ``NOTIFY message-summary`` from
the trunk's address. bob is a baresip whose ``mwi`` module subscribed to
his own line: it gets ``Messages-Waiting: yes``.

Checked: the headers offhook sent (its debug log: reason and cause per
redirection), the voicemail system's NOTIFY answered 200, bob's lamp, and
the CDR's original called number.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.peers import require_binary
from interop.sipp import Sipp, describe
from interop.test_sip_calls import PASSWORDS, baresip_ua, dial_uri
from interop.test_sip_features import sip_heads
from interop.test_sip_subscribe import WatchingBaresip
from support.ports import HOST, free_port
from support.server import OffhookServer, device


def voicemail_plan(vm_port: int) -> dict[str, Any]:
    line = {"partition": "internal"}
    return {
        "partitions": ["internal", "vm"],
        "calling_search_spaces": [{"name": "staff", "partitions": ["internal", "vm"]}],
        "trunks": [
            {
                "name": "voicemail",
                "protocol": "sip",
                "host": HOST,
                "port": vm_port,
                "options_ping": 0,
            }
        ],
        "route_groups": [{"name": "vm-group", "members": ["voicemail"]}],
        "route_lists": [{"name": "vm-list", "groups": ["vm-group"]}],
        "route_patterns": [{"pattern": "8000", "partition": "vm", "route_list": "vm-list"}],
        "devices": [
            device("alice", PASSWORDS["alice"], "1001", css="staff")
            | {"lines": [{"dn": "1001", **line}]},
            device("bob", PASSWORDS["bob"], "1002", css="staff")
            | {
                "lines": [
                    {
                        "dn": "1002",
                        **line,
                        "forward_busy": {"destination": "8000"},
                        "forward_no_answer": {"destination": "8000"},
                        "cfna_timer": 2,
                        "voicemail": "8000",
                    }
                ]
            },
        ],
    }


@pytest.fixture
def voicemail_port() -> int:
    return free_port()


@pytest.fixture
def server(tmp_path: Path, voicemail_port: int) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, voicemail_plan(voicemail_port), log_level="debug")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def voicemail(tmp_path: Path, server: OffhookServer, voicemail_port: int) -> Iterator[Sipp]:
    """The voicemail system (SIPp UAS) listening, then the node started."""
    require_binary("sipp")
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    uas = Sipp(
        workdir,
        "uas_voicemail.xml",
        "voicemail",
        keys={"node": f"{HOST}:{server.sip_port}"},
        timeout_s=60,
        local_port=voicemail_port,
    )
    uas.start()
    try:
        server.start()
        yield uas
    finally:
        uas.stop()


def test_forward_no_answer_to_a_sip_voicemail_which_lights_the_lamp(
    server: OffhookServer, tmp_path: Path, voicemail: Sipp
) -> None:
    require_binary("baresip")
    alice = baresip_ua(tmp_path, server, "alice")
    bob = WatchingBaresip(
        tmp_path,
        "bob",
        aor=f"sip:bob@{HOST}:{server.sip_port}",
        password=PASSWORDS["bob"],
        regint=120,
    )
    with alice, bob:
        time.sleep(0.2)
        bob.add_account()
        alice.wait_registered()
        bob.wait_registered()
        time.sleep(0.5)  # bob's message-summary subscription
        mark = bob.mark()
        alice.dial(dial_uri(server, "1002"))
        bob.wait_event("CALL_INCOMING", timeout=10)
        alice.wait_event("CALL_ESTABLISHED", timeout=15)  # the voicemail system answered
        time.sleep(1.0)
        alice.hangup()
        result = voicemail.wait(timeout=30)
        assert result.ok, describe(result)
        lamp = [
            e
            for e in bob.events[mark:]
            if e.type == "MWI_NOTIFY" and "Messages-Waiting: yes" in str(e.data.get("param"))
        ]
        deadline = time.monotonic() + 10
        while not lamp and time.monotonic() < deadline:
            time.sleep(0.2)
            lamp = [
                e
                for e in bob.events[mark:]
                if e.type == "MWI_NOTIFY" and "Messages-Waiting: yes" in str(e.data.get("param"))
            ]
        assert lamp, bob.event_types()

    to_vm = [
        h
        for h in sip_heads(server.log())
        if h.direction == "->" and h.first_line.startswith("INVITE sip:8000@")
    ]
    assert len(to_vm) == 1, [h.first_line for h in sip_heads(server.log())]
    invite = to_vm[0]
    assert invite.header("Diversion") == [
        f"<sip:1002@{HOST}:{server.sip_port}>;reason=no-answer;counter=1"
    ], invite.text
    history = invite.header("History-Info")
    assert history[0].startswith("<sip:1002@") and history[0].endswith(";index=1"), history
    assert "cause=408" in history[1] and history[1].endswith(";index=1.1;mp=1"), history
    notify_answers = [
        h
        for h in sip_heads(server.log())
        if h.direction == "->" and h.first_line == "SIP/2.0 200 OK"
        and h.header("CSeq") == ["1 NOTIFY"]
    ]  # fmt: skip
    assert notify_answers, "the voicemail system's NOTIFY was not answered 200"
    row = server.wait_cdr(lambda r: r.get("called") in ("1002", "8000"))[-1]
    assert row["original_called"] == "1002", row
