"""CTI tokens against a real node: scoped to their user's devices, refused once revoked.

Xavier (role ``user``) owns alice's phone, Yvonne (role ``cti-app``) bob's.
A call from carol to bob is all Yvonne's: she sees bob's leg from offered to
cleared and the call's end, never carol's leg; Xavier sees none of it (the
call to alice that follows is his, and all he sees). Xavier's token cannot
make a call from, hang up on, subscribe to or forward bob's phone or line
(403); Yvonne's own device with a call that does not exist is the node's
refusal (409). A role without ``cti`` is refused the WebSocket (403).

A revoked token: the next client message gets ``{"type": "error"}`` and
the close 4401, nothing else (the ping before the revocation got its
pong); without any message it goes at the next periodic check ([cti]
recheck); a new connection or REST call with it is 401. A user whose role
loses ``cti`` is closed with 4403.
"""

from __future__ import annotations

from pathlib import Path

from web.cti_rig import Watcher, cti_node, established_call, hang_up


def test_a_token_sees_and_controls_only_its_users_devices(tmp_path: Path) -> None:
    with cti_node(tmp_path) as node:
        x_token, _ = node.user("xavier", "user", ("alice",))
        y_token, _ = node.user("yvonne", "cti-app", ("bob",))
        ro_token, _ = node.user("reader", "read-only")
        alice, bob, carol = node.phone("alice"), node.phone("bob"), node.phone("carol")
        with Watcher(node.ws_url, x_token) as x, Watcher(node.ws_url, y_token) as y:
            assert x.frames[0]["scope"] == {
                "all": False,
                "devices": ["alice"],
                "lines": [{"dn": "1001", "partition": ""}],
            }
            with alice, bob, carol:
                for phone in (alice, bob, carol):
                    phone.wait_registered()
                established_call(carol, bob, node.dial_uri("1002"))
                hang_up(carol, bob)
                y.wait(lambda: bool(y.of_type("call.ended")), "bob's call ended")
                bobs_call = y.of_type("call.ended")[0]["call_id"]
                established_call(carol, alice, node.dial_uri("1001"))
                hang_up(carol, alice)
                x.wait(lambda: bool(x.of_type("call.ended")), "alice's call ended")
                # Controlling what is not theirs.
                refused = [
                    node.api(
                        "POST", "/api/v1/cti/devices/bob/calls", x_token, json={"number": "1003"}
                    ),
                    node.api("POST", f"/api/v1/cti/devices/bob/calls/{bobs_call}/hangup", x_token),
                    node.api("PUT", "/api/v1/cti/devices/bob/dnd", x_token, json={"enabled": True}),
                    node.api(
                        "PUT",
                        "/api/v1/cti/lines/1002/forward_all",
                        x_token,
                        json={"destination": "1003"},
                    ),
                    node.api(
                        "POST", "/api/v1/cti/devices/alice/calls", y_token, json={"number": "1"}
                    ),
                ]
                assert [r.status_code for r in refused] == [403] * 5, [r.text for r in refused]
                assert "not yours" in refused[0].json()["detail"]
                gone = node.api("POST", "/api/v1/cti/devices/bob/calls/no-such-call/hold", y_token)
                assert gone.status_code == 409 and gone.json()["detail"], gone.text
                x.send({"op": "subscribe", "devices": ["bob"]})
                x.wait(lambda: bool(x.of_type("error")), "the subscription refused")
                assert x.of_type("error")[0] == {
                    "type": "error",
                    "reason": "not yours",
                    "devices": ["bob"],
                    "lines": [],
                }
                snap = node.api("GET", "/api/v1/cti/snapshot", x_token).json()
                assert {d["device"] for d in snap["devices"]} == {"alice"}
        with Watcher(node.ws_url, ro_token) as reader:
            assert reader.refused == 403
    xs = x.events
    assert xs and all(
        e.get("device") == "alice" or e.get("dn") == "1001" or e["type"] == "call.ended" for e in xs
    ), xs
    assert bobs_call not in {e.get("call_id") for e in xs}
    assert not [e for e in xs if e.get("device") in {"bob", "carol"}]
    ys = y.events
    assert [e["type"] for e in ys if e.get("call_id") == bobs_call and "device" in e][:4] == [
        "call.offered",
        "call.ringing",
        "call.answered",
        "call.cleared",
    ]
    assert {e.get("device") for e in ys if "device" in e} == {"bob"}
    assert [e["call_id"] for e in ys if e["type"] == "call.ended"] == [bobs_call]


def test_a_revoked_token_is_refused_on_its_next_message(tmp_path: Path) -> None:
    with cti_node(tmp_path, cti={"recheck": 300}) as node:
        token, token_id = node.user("app", "cti-app", ("alice",))
        with Watcher(node.ws_url, token) as client:
            client.send({"op": "ping"})
            client.wait(lambda: bool(client.of_type("pong")), "pong")
            assert node.users.revoke_token(token_id)
            client.send({"op": "ping"})
            client.wait(lambda: client.closed is not None, "closed")
        assert client.closed == 4401
        assert client.frames[-1] == {"type": "error", "reason": "token no longer valid"}
        assert len(client.of_type("pong")) == 1
        with Watcher(node.ws_url, token) as again:
            assert again.refused == 401
        assert node.api("GET", "/api/v1/cti/snapshot", token).status_code == 401


def test_a_revoked_token_goes_at_the_next_check_and_a_lost_role_too(tmp_path: Path) -> None:
    with cti_node(tmp_path, cti={"recheck": 0.5}) as node:
        token, token_id = node.user("app", "cti-app", ("alice",))
        other, _ = node.user("someone", "user", ("bob",))
        with Watcher(node.ws_url, token) as quiet, Watcher(node.ws_url, other) as demoted:
            assert node.users.revoke_token(token_id)
            quiet.wait(lambda: quiet.closed is not None, "closed without a message")
            node.users.update("someone", role="read-only")
            demoted.wait(lambda: demoted.closed is not None, "closed: no cti any more")
        assert quiet.closed == 4401 and demoted.closed == 4403
        assert demoted.frames[-1] == {"type": "error", "reason": "forbidden: needs cti"}
