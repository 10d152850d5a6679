"""Barge on a shared line, from SIP phones, through a real ``offhook serve``.

bob and dave share DN 1002 (two baresip phones, each sending its own sine).
alice calls 1002, bob answers; dave dials ``*33`` and joins: the three talk
through a conference bridge of the media server, each hearing the two others
(judged from the RTP each receives). With privacy on bob's phone, dave's
``*33`` is refused and the call stays two-party.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.peers import require_capture
from interop.test_media_features import (
    TONES,
    assert_hears,
    heard,
    moh_plan,
    phone,
    wait_media_server,
)
from interop.test_sip_calls import dial_uri
from support.audio import dominant_frequencies, has_tone
from support.ports import HOST
from support.server import OffhookServer


def shared_plan(tmp_path: Path, privacy: bool) -> dict[str, Any]:
    plan = copy.deepcopy(moh_plan(tmp_path))
    for dev in plan["devices"]:
        if dev["name"] == "dave":
            dev["lines"] = [{"dn": "1002", "display": "Bob (dave)"}]
        if dev["name"] == "bob" and privacy:
            dev["privacy"] = True
    return plan


@pytest.fixture(params=[False, True], ids=["open", "privacy"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OffhookServer]:
    require_capture()
    srv = OffhookServer(
        tmp_path,
        shared_plan(tmp_path, request.param),
        extra_config={"media": {"listen": [HOST]}},
    )
    srv.privacy = request.param  # type: ignore[attr-defined]
    srv.start()
    try:
        wait_media_server(srv)
        yield srv
    finally:
        srv.stop()


def test_star33_barges_into_the_shared_lines_call(server: OffhookServer, tmp_path: Path) -> None:
    privacy = server.privacy  # type: ignore[attr-defined]
    alice, bob, dave = (phone(tmp_path, server, n) for n in ("alice", "bob", "dave"))
    with alice, bob, dave:
        for ua in (alice, bob, dave):
            ua.wait_registered()
        alice.dial(dial_uri(server, "1002"))
        bob.wait_event("CALL_INCOMING", timeout=10)
        dave.wait_event("CALL_INCOMING", timeout=10)
        mark = dave.mark()
        bob.accept()
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        dave.wait_event("CALL_CLOSED", timeout=10, since=mark)  # answered elsewhere
        mark = dave.mark()
        dave.dial(dial_uri(server, "*33"))
        if privacy:
            dave.wait_event("CALL_CLOSED", timeout=10, since=mark)
            assert_hears(heard(tmp_path, alice), TONES["bob"], not_=(TONES["dave"],))
            return
        dave.wait_event("CALL_ESTABLISHED", timeout=10, since=mark)
        time.sleep(0.8)  # alice and bob are moved onto the bridge
        names = ("alice", "bob", "dave")
        for ua in (alice, bob, dave):
            samples = heard(tmp_path, ua, 2.0)
            for other in names:
                if other != ua.name:
                    assert_hears(samples, TONES[other])
            assert not has_tone(samples, TONES[ua.name]), (
                ua.name,
                dominant_frequencies(samples, count=4),
            )
        mark = alice.mark()
        dave.hangup()
        time.sleep(0.5)
        assert "CALL_CLOSED" not in alice.event_types()[mark:]
        assert_hears(heard(tmp_path, alice), TONES["bob"])  # the two talk on
    rows = server.wait_cdr(lambda r: r["called"] == "*33")
    assert rows[-1]["cause"] == "16", rows
