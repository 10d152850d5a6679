"""Sanity of the SIPp scenarios themselves, against SIPp UAS scenarios (no offhook).

Each UAC scenario used against offhook runs here against a SIPp UAS that
plays the server's part (407 challenge first, then answer, ring, busy or
404), so a failure against offhook is never a broken scenario.  The answering
UAS that hangs up itself is checked with baresip as the caller.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from interop.baresip import Baresip
from interop.sipp import Sipp, describe


@pytest.mark.parametrize(
    ("uas_scenario", "uac_scenario", "auth"),
    [
        ("uas.xml", "uac.xml", False),
        ("selftest/uas_challenge_answer.xml", "uac_auth.xml", True),
        ("selftest/uas_challenge_ring.xml", "uac_cancel.xml", True),
        ("selftest/uas_challenge_busy.xml", "uac_busy.xml", True),
        ("selftest/uas_challenge_404.xml", "uac_unknown.xml", True),
    ],
)
def test_uac_scenario_against_sipp_uas(
    sipp_bin: str, tmp_path: Path, uas_scenario: str, uac_scenario: str, auth: bool
) -> None:
    uas = Sipp(tmp_path, uas_scenario, "uas", timeout_s=15).start()
    try:
        uac = Sipp(
            tmp_path,
            uac_scenario,
            "uac",
            target=uas.uri_host,
            keys={"caller": "alice"},
            service="1002",
            auth=("alice", "secret") if auth else None,
            timeout_s=15,
        )
        result = uac.run()
        assert result.ok, describe(result)
        if auth:
            assert 'uri="sip:1002@' in result.messages, result.messages
    finally:
        served = uas.wait(timeout=20)
    assert served.ok, describe(served)


def test_uas_bye_hangs_up_on_baresip(sipp_bin: str, baresip_bin: str, tmp_path: Path) -> None:
    uas = Sipp(tmp_path, "uas_bye.xml", "uas", pause_ms=1000, timeout_s=15).start()
    try:
        with Baresip(tmp_path, "a") as a:
            a.dial(f"sip:uas@{uas.uri_host}")
            a.wait_event("CALL_ESTABLISHED", timeout=10)
            closed = a.wait_event("CALL_CLOSED", timeout=10)
            assert closed.data.get("direction") == "outgoing"
    finally:
        served = uas.wait(timeout=20)
    assert served.ok, describe(served)
