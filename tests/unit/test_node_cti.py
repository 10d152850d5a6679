"""node_cti: the journal over a real call engine's bus, and the CTI control ops.

The ops are called as the control endpoint calls them (a dict of JSON
arguments in, JSON out, ``ValueError``/``KeyError`` for a refusal) on a
``CallEngine`` with recording drivers (``core_harness``).
"""

from __future__ import annotations

from typing import Any

import pytest

from offhook.cti.journal import Subscriber
from offhook.node_cti import NodeCti
from offhook.ris.control import Streaming
from offhook.ris.control_codec import parse_event
from unit.core.core_harness import Harness, media

FIRST = 1_700_000_000_000_000

OPS = {
    "events",
    "cti_snapshot",
    "cti_make_call",
    "cti_answer",
    "cti_hangup",
    "cti_hold",
    "cti_resume",
    "cti_transfer",
    "cti_consult",
    "cti_complete_transfer",
    "cti_conference",
    "cti_redirect",
    "cti_park",
    "cti_pickup",
    "cti_dtmf",
    "cti_mwi",
}


class Rig:
    def __init__(self) -> None:
        self.h = Harness()
        h = self.h
        h.device("alice", "1001", display="Alice")
        h.device("bob", "1002")
        h.device("carol", "1003")
        for name in ("alice", "bob"):
            h.register(name)
        self.cti = NodeCti(h.engine, h.bus, h.locations, h.clock, node="n1", first_id=FIRST)
        self.ops = self.cti.ops()
        stream = self.ops["events"]({"after": None})
        assert isinstance(stream, Streaming)
        assert isinstance(stream.source, Subscriber)
        self.sub = stream.source

    def events(self) -> list[dict[str, Any]]:
        data, _ = self.sub.take()
        return [parse_event(line) for line in data.splitlines()]

    def ringing_call(self) -> str:
        a, _ = self.h.call("alice", "1002", "1001")
        b, _ = self.h.out("sip:bob@10.0.0.9")
        self.h.engine.on_alerting(b, None)
        assert a.call is not None
        return a.call.id

    def answered_call(self) -> str:
        call_id = self.ringing_call()
        b, _ = self.h.out("sip:bob@10.0.0.9")
        self.h.engine.on_connect(b, media("10.0.0.2"))
        return call_id


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_the_ops_are_those_of_the_design(rig: Rig) -> None:
    assert set(rig.ops) == OPS


def test_events_streams_the_buses_events_with_node_wide_ids(rig: Rig) -> None:
    stream = rig.ops["events"]({})
    assert stream.result == {"first_id": FIRST, "last_id": FIRST - 1, "resync": False}
    call_id = rig.ringing_call()
    got = rig.events()
    assert [e["id"] for e in got] == list(range(FIRST, FIRST + len(got)))
    calls = [(e["type"], e["device"]) for e in got if e["type"].startswith("call.")]
    assert calls == [
        ("call.initiated", "alice"),
        ("call.offered", "bob"),
        ("call.ringing", "bob"),
        ("call.ringing", "alice"),
    ]
    assert all(e["node"] == "n1" and e.get("call_id", call_id) == call_id for e in got)
    again = rig.ops["events"]({"after": FIRST})  # resume: the rest replayed
    assert again.result["resync"] is False
    data, _ = again.source.take()
    assert [parse_event(x)["id"] for x in data.splitlines()] == [e["id"] for e in got[1:]]
    for bad in ("1", True, 1.5):
        with pytest.raises(ValueError, match="after must be an event id or null"):
            rig.ops["events"]({"after": bad})
    rig.cti.close()
    rig.h.engine.on_release(rig.h.out("sip:bob@10.0.0.9")[0])
    assert rig.events() == []  # no longer following the bus


def test_snapshot_shows_devices_lines_and_calls_at_the_last_id(rig: Rig) -> None:
    call_id = rig.ringing_call()
    snap = rig.ops["cti_snapshot"]({})
    assert snap["last_id"] == rig.cti.journal.last_id == rig.events()[-1]["id"]
    assert sorted((d["device"], d["protocol"], d["registered"]) for d in snap["devices"]) == [
        ("alice", "sip", True),
        ("bob", "sip", True),
        ("carol", "sip", False),
    ]
    lines = {ln["dn"]: (ln["state"], ln["devices"]) for ln in snap["lines"]}
    assert lines == {
        "1001": ("in-use", ["alice"]),
        "1002": ("ringing", ["bob"]),
        "1003": ("idle", []),
    }
    [call] = snap["calls"]
    assert {k: call[k] for k in ("call_id", "calling", "calling_name", "called", "state")} == {
        "call_id": call_id,
        "calling": "1001",
        "calling_name": "Alice",
        "called": "1002",
        "state": "ringing",
    }
    assert (call["original_called"], call["redirect_reason"]) == ("1002", "")
    assert [(lg["device"], lg["direction"], lg["state"], lg["line"]) for lg in call["legs"]] == [
        ("alice", "inbound", "ringback", "1001"),
        ("bob", "outbound", "ringing", "1002"),
    ]
    assert "command" not in call


def test_a_command_answers_its_id_and_tags_the_calls_events(rig: Rig) -> None:
    call_id = rig.answered_call()
    rig.events()
    answer = rig.ops["cti_hangup"]({"device": "bob", "call_id": call_id})
    assert answer == {"command": "c1"}
    after = rig.events()
    cleared = [e for e in after if e["type"] in ("call.cleared", "call.ended")]
    assert [e["type"] for e in cleared] == ["call.cleared", "call.cleared", "call.ended"]
    assert {e["command"] for e in cleared} == {"c1"}
    assert all("command" not in e for e in after if e["type"] == "line.state")


def test_make_call_rings_the_device_first_and_its_events_carry_the_command(rig: Rig) -> None:
    answer = rig.ops["cti_make_call"]({"device": "alice", "number": "1002"})
    assert answer["command"] == "c1" and isinstance(answer["call_id"], str)
    calls = [e for e in rig.events() if e["type"].startswith("call.")]
    assert [(e["type"], e["device"], e["command"]) for e in calls] == [
        ("call.offered", "alice", "c1")
    ]
    assert calls[0]["call_id"] == answer["call_id"]
    snap = rig.ops["cti_snapshot"]({})
    assert [c["command"] for c in snap["calls"]] == ["c1"]


def test_refusals_are_value_errors_that_say_why(rig: Rig) -> None:
    call_id = rig.ringing_call()
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("cti_hangup", {"device": "bob", "call_id": "nope"}, "no such call"),
        ("cti_hold", {"device": "carol", "call_id": call_id}, "wrong device"),
        ("cti_hold", {"device": "bob", "call_id": call_id}, "wrong state"),
        ("cti_answer", {"device": "bob", "call_id": call_id}, "cannot answer remotely"),
        ("cti_make_call", {"device": "carol", "number": "1001"}, "not registered"),
        ("cti_make_call", {"device": "alice", "number": 1001}, "number must be text"),
        ("cti_make_call", {"device": "alice", "number": "1", "auto_answer": 1}, "true or false"),
        ("cti_dtmf", {"device": "alice", "call_id": call_id, "digits": "12"}, "wrong state"),
        ("cti_redirect", {"call_id": call_id, "target": "1003", "device": "x" * 300}, "too long"),
        ("cti_park", {"device": "alice", "call_id": call_id}, "wrong state"),
        ("cti_pickup", {"device": "alice", "number": 1002}, "number must be text"),
        ("cti_conference", {"device": "alice", "call_id": call_id, "other_call_id": "x"}, "bridge"),
        ("cti_mwi", {"dn": "9999", "waiting": True}, "no line '9999'"),
        ("cti_mwi", {"dn": "1001", "waiting": True, "new": -1}, "0-9999"),
        ("cti_answer", {"device": "bob", "call_id": call_id, "media": {}}, "media.address"),
        (
            "cti_answer",
            {"device": "bob", "call_id": call_id, "media": {"address": "192.0.2.1", "port": 4000}},
            "is no CTI port",
        ),
        (
            "cti_make_call",
            {"device": "alice", "number": "1002", "media": {"address": "192.0.2.1", "port": 9}},
            "is no CTI port",
        ),
    ]
    for op, args, why in cases:
        with pytest.raises(ValueError, match=why):
            rig.ops[op](args)
    with pytest.raises(KeyError):
        rig.ops["cti_transfer"]({"device": "alice", "call_id": call_id})
    with pytest.raises(KeyError):
        rig.ops["cti_mwi"]({"dn": "1001"})


def test_mwi_sets_the_line_and_publishes_it(rig: Rig) -> None:
    assert rig.ops["cti_mwi"]({"dn": "1001", "waiting": True, "new": 2})["command"] == "c1"
    [mwi] = [e for e in rig.events() if e["type"] == "mwi.changed"]
    assert (mwi["dn"], mwi["waiting"], mwi["new"], mwi["old"]) == ("1001", True, 2, 0)
    assert "command" not in mwi  # no call: nothing to tag
    assert rig.h.engine.messages("1001").waiting


def test_hold_transfer_and_dtmf_are_carried_out_with_their_command(rig: Rig) -> None:
    call_id = rig.answered_call()
    rig.events()
    assert rig.ops["cti_dtmf"]({"device": "alice", "call_id": call_id, "digits": "5#"}) == {
        "command": "c1"
    }
    _, bd = rig.h.out("sip:bob@10.0.0.9")
    assert ("send_digits", "5#") in bd.calls
    [dtmf] = [e for e in rig.events() if e["type"] == "call.dtmf"]
    assert (dtmf["digits"], dtmf["command"]) == ("5#", "c1")
    # A blind transfer to carol, who is not registered: the transfer's call fails (20).
    rig.ops["cti_transfer"]({"device": "alice", "call_id": call_id, "target": "1003"})
    events = [e for e in rig.events() if "call_id" in e]
    assert [e["type"] for e in events] == ["call.initiated", "call.cleared", "call.ended"]
    assert {e["command"] for e in events} == {"c2"} and events[-1]["cause"] == 20
