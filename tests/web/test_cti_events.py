"""The CTI WebSocket against a real ``offhook serve`` with its web process and baresip phones.

A client (the ``websockets`` library) with a full-admin token that sends
nothing gets every event: a call from alice (1001) to bob (1002) shows
bob's leg offered, ringing, answered, cleared, in that order, alice's from
initiated to cleared, then the call's ``call.ended``; ``seq`` runs 1, 2, 3
without a hole, ids increase, and every event is valid by the AsyncAPI
document's schema of its type. A client that comes back with the last id
it saw (``?after=`` or ``{"op": "resume"}``) gets the call it missed, then
live events; one that asks for an id from before the ring gets a resync
with a snapshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema

from offhook.web.cti_asyncapi import asyncapi_document, message_schema
from web.cti_rig import CtiNode, Watcher, call_events, cti_node, established_call, hang_up


def _validate(frames: list[dict[str, Any]]) -> None:
    for frame in frames:
        if "id" in frame:
            jsonschema.validate(frame, message_schema(frame["type"]))


def _call(node: CtiNode, caller: Any, callee: Any, number: str) -> None:
    established_call(caller, callee, node.dial_uri(number))
    hang_up(caller, callee)


def test_a_call_is_seen_offered_ringing_answered_cleared_in_order(tmp_path: Path) -> None:
    with cti_node(tmp_path) as node:
        token, _ = node.user("root", "full-admin")
        alice, bob = node.phone("alice"), node.phone("bob")
        with Watcher(node.ws_url, token) as watcher, alice, bob:
            hello = watcher.frames[0]
            assert hello["type"] == "hello" and hello["scope"] == {"all": True}
            alice.wait_registered()
            bob.wait_registered()
            _call(node, alice, bob, "1002")
            watcher.wait(lambda: bool(watcher.of_type("call.ended")), "the call's end")
        frames = watcher.frames
    assert call_events(frames, "bob")[:4] == [
        "call.offered",
        "call.ringing",
        "call.answered",
        "call.cleared",
    ]
    mine = call_events(frames, "alice")
    assert mine[0] == "call.initiated"
    assert "call.answered" in mine and mine[-1] == "call.cleared"
    events = watcher.events
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    ended = watcher.of_type("call.ended")[0]
    assert ended["answered"] is True and ended["calling"] == "1001" and ended["called"] == "1002"
    bob_offered = next(e for e in events if e["type"] == "call.offered" and e["device"] == "bob")
    assert bob_offered["call_id"] == ended["call_id"] and bob_offered["state"] == "offered"
    assert bob_offered["calling"] == "1001" and bob_offered["called"] == "1002"
    _validate(frames)


def _replayed(watcher: Watcher) -> list[int]:
    """The ids of the events a resumed stream replayed (its ``resumed`` notice counts them)."""
    count = watcher.of_type("resumed")[0]["events"]
    watcher.wait(lambda: len(watcher.events) >= count, "the whole replay")
    return [e["id"] for e in watcher.events[:count]]


def _seen(observer: Watcher, after: int, upto: int) -> list[int]:
    """The ids ``observer`` got in (after, upto], once it has got ``upto``."""
    observer.wait(lambda: any(e["id"] >= upto for e in observer.events), f"event {upto}")
    return [e["id"] for e in observer.events if after < e["id"] <= upto]


def test_a_client_resumes_after_the_last_id_it_saw(tmp_path: Path) -> None:
    with cti_node(tmp_path) as node:
        token, _ = node.user("root", "full-admin")
        alice, bob = node.phone("alice"), node.phone("bob")
        with Watcher(node.ws_url, token) as observer, alice, bob:
            alice.wait_registered()
            bob.wait_registered()
            with Watcher(node.ws_url, token) as first:
                _call(node, alice, bob, "1002")
                first.wait(lambda: len(first.of_type("call.ended")) == 1, "the first call")
                last_id = first.events[-1]["id"]
            # The second call while nobody is connected with that id.
            _call(node, bob, alice, "1001")
            observer.wait(lambda: len(observer.of_type("call.ended")) == 2, "the second call")
            missed = [e["id"] for e in observer.events if e["id"] > last_id]
            assert missed
            with Watcher(node.ws_url, token, query=f"after={last_id}") as again:
                again.wait(lambda: bool(again.of_type("call.ended")), "the missed call, replayed")
                assert [f["type"] for f in again.frames[:2]] == ["hello", "resumed"]
                # Events after the second call's end (a line going idle) may reach the
                # observer after it was read: the replay holds what the ring held then.
                replayed = _replayed(again)
                assert replayed[: len(missed)] == missed
                assert replayed == _seen(observer, last_id, replayed[-1])
                assert [e["seq"] for e in again.events] == list(range(1, len(again.events) + 1))
                # Then live: a third call, numbered on.
                _call(node, alice, bob, "1002")
                again.wait(lambda: len(again.of_type("call.ended")) == 2, "live after the replay")
                assert [e["seq"] for e in again.events] == list(range(1, len(again.events) + 1))
            with Watcher(node.ws_url, token, header=False) as by_op:  # ?token=, then the op
                by_op.send({"op": "resume", "after": last_id})
                by_op.wait(lambda: len(by_op.of_type("call.ended")) == 2, "replay by the op")
                replayed = _replayed(by_op)
                assert replayed[: len(missed)] == missed
                assert replayed == _seen(observer, last_id, replayed[-1])
                by_op.send({"op": "resume", "after": 12345})  # from long before this run
                by_op.wait(lambda: bool(by_op.of_type("resync")), "a resync")
                snap = by_op.of_type("resync")[0]["snapshot"]
                registered = {d["device"] for d in snap["devices"] if d.get("registered")}
                assert {"alice", "bob"} <= registered
                assert snap["last_id"] >= observer.events[-1]["id"]


def test_the_asyncapi_document(tmp_path: Path) -> None:
    doc = asyncapi_document()
    assert doc["asyncapi"] == "2.6.0"
    channel = doc["channels"]["/cti/v1/events"]
    received = {m["$ref"].rsplit("/", 1)[1] for m in channel["subscribe"]["message"]["oneOf"]}
    assert {"call_offered", "call_cleared", "call_ended", "stream_overflow"} <= received
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["type"] == "object", name
    with cti_node(tmp_path) as node:
        token, _ = node.user("app", "cti-app")
        served = node.api("GET", "/cti/v1/asyncapi.json", token)
        assert served.status_code == 200 and served.json() == doc
        assert node.api("GET", "/cti/v1/asyncapi.json", "ofh_nope").status_code == 401
