"""CTI commands over REST (``/api/v1/cti``): a real node and phones, and the node down.

Click to dial from the REST API with the user's token: alice's phone rings
first (bob's not yet); when she answers, bob rings; he answers; the
answer names a command id and the events of that call carry it; a hangup
by REST ends the call for both phones. DND and forward all on the user's
own device and line go through and are in the audit log. With no node
behind the web app, a command is 503; an invalid body is 422.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from web.cti_rig import Watcher, cti_node

WAIT = 30.0


def test_click_to_dial_rings_the_users_phone_first_then_the_number(tmp_path: Path) -> None:
    with cti_node(tmp_path) as node:
        token, _ = node.user("xavier", "user", ("alice",))
        alice, bob = node.phone("alice"), node.phone("bob")
        with Watcher(node.ws_url, token) as watcher, alice, bob:
            alice.wait_registered()
            bob.wait_registered()
            answer = node.api(
                "POST", "/api/v1/cti/devices/alice/calls", token, json={"number": "1002"}
            )
            assert answer.status_code == 200, answer.text
            made = answer.json()
            assert made["command"].startswith("c") and made["call_id"]
            alice.wait_event("CALL_INCOMING", timeout=WAIT)
            assert "CALL_INCOMING" not in bob.event_types()  # alice first
            alice.accept()
            bob.wait_event("CALL_INCOMING", timeout=WAIT)
            bob.accept()
            bob.wait_event("CALL_ESTABLISHED", timeout=WAIT)
            watcher.wait(
                lambda: any(
                    e["type"] == "call.answered" and e.get("command") == made["command"]
                    for e in watcher.events
                ),
                "the answer, tagged with the command",
            )
            hung = node.api(
                "POST", f"/api/v1/cti/devices/alice/calls/{made['call_id']}/hangup", token
            )
            assert hung.status_code == 200, hung.text
            assert hung.json()["command"] != made["command"]
            alice.wait_event("CALL_CLOSED", timeout=WAIT)
            bob.wait_event("CALL_CLOSED", timeout=WAIT)
            watcher.wait(lambda: bool(watcher.of_type("call.ended")), "the end")
            tagged = [e for e in watcher.events if e.get("call_id") == made["call_id"]]
            assert tagged and all("command" in e for e in tagged)
            dnd = node.api("PUT", "/api/v1/cti/devices/alice/dnd", token, json={"enabled": True})
            assert dnd.status_code == 200 and dnd.json() == {"device": "alice", "dnd": True}
            fwd = node.api(
                "PUT", "/api/v1/cti/lines/1001/forward_all", token, json={"destination": "1002"}
            )
            assert fwd.status_code == 200, fwd.text
            assert fwd.json() == {"device": "alice", "dn": "1001", "forward_all": "1002"}
            watcher.wait(lambda: bool(watcher.of_type("forward.changed")), "forward event")
            assert watcher.of_type("dnd.changed")[-1]["on"] is True
            bad = node.api("POST", "/api/v1/cti/devices/alice/calls", token, json={"number": ""})
            assert bad.status_code == 422
        root, _ = node.user("root", "full-admin")
        deadline = time.monotonic() + WAIT
        while True:  # the audit log is written after the answer's body
            audit = node.api("GET", "/api/v1/audit", root)
            actions = {(r["action"], r["actor"]) for r in audit.json()["items"]}
            if {("dnd", "xavier"), ("forward_all", "xavier")} <= actions:
                break
            assert time.monotonic() < deadline, actions
            time.sleep(0.2)


async def test_a_command_with_no_node_is_503(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {tokens['full-admin']}"}
    answer = await client.post(
        "/api/v1/cti/devices/alice/calls", json={"number": "1002"}, headers=admin
    )
    assert answer.status_code == 503 and answer.json() == {"detail": "node unavailable"}
    user = {"Authorization": f"Bearer {tokens['user']}"}  # owns alice
    mine = await client.post("/api/v1/cti/devices/alice/calls/c1/hold", headers=user)
    assert mine.status_code == 503
    theirs = await client.post("/api/v1/cti/devices/bob/calls/c1/hold", headers=user)
    assert theirs.status_code == 403
