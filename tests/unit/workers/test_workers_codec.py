"""The workers' bus messages (``workers.codec``) and the replicated location store."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.location import Binding
from offhook.core.features.linestate import IDLE, IN_USE, RINGING, LineView
from offhook.core.features.state import FeatureState
from offhook.core.records import (
    DndChanged,
    ForwardChanged,
    HuntLoginChanged,
    MwiChanged,
    ParkChanged,
)
from offhook.db.feature_state import event_of, setting_of
from offhook.workers.codec import (
    MAX_ACCOUNTS,
    AccountFailures,
    BusError,
    Forward,
    LineShare,
    Message,
    NodeSip,
    ParkShare,
    Put,
    Remove,
    Setting,
    StreamFailed,
    StreamWrite,
    TableRequest,
    decode,
    encode,
)
from offhook.workers.replica import REPUBLISH, ReplicatedLocationStore

HOSTS = st.sampled_from(["127.0.0.1", "127.0.0.3", "::1", "2001:db8::7", "192.0.2.1"])
TEXT = st.text(max_size=40)
BINDINGS = st.builds(
    Binding,
    device=st.text(min_size=1, max_size=20),
    protocol=st.sampled_from(["sip", "sccp"]),
    contact=st.text(min_size=1, max_size=40),
    expires_at=st.floats(min_value=0, max_value=1e6),
    source=st.tuples(st.text(max_size=20), st.integers(0, 65535)),
    transport=TEXT,
    aor=TEXT,
    call_id=TEXT,
    cseq=st.integers(0, 2**32 - 1),
    user_agent=TEXT,
    registered_at=st.floats(min_value=0, max_value=2e9),
    node=TEXT,
    firmware=TEXT,
    worker=st.integers(0, 255),
)
NAMES = st.text(min_size=1, max_size=20)
COUNTS = st.integers(0, 10_000)
FEATURE_EVENTS = st.one_of(
    st.builds(ForwardChanged, NAMES, TEXT, st.one_of(st.none(), TEXT), TEXT),
    st.builds(DndChanged, NAMES, st.booleans()),
    st.builds(HuntLoginChanged, NAMES, st.booleans()),
    st.builds(MwiChanged, NAMES, TEXT, st.booleans(), COUNTS, COUNTS),
)
LINE_VIEWS = st.builds(
    LineView,
    st.sampled_from([IDLE, RINGING, IN_USE]),
    st.lists(NAMES, max_size=5).map(tuple),
    st.sampled_from(["", "initiator", "recipient"]),
)
MESSAGES: st.SearchStrategy[Message] = st.one_of(
    st.builds(LineShare, st.integers(0, 63), NAMES, TEXT, LINE_VIEWS),
    FEATURE_EVENTS.map(lambda e: Setting(event_of(*setting_of(e)))),
    st.builds(
        Forward,
        st.binary(min_size=1, max_size=2000),
        st.tuples(HOSTS, st.integers(0, 65535)),
        st.sampled_from(["udp", "tcp"]),
    ),
    st.builds(
        StreamWrite,
        st.binary(min_size=1, max_size=2000),
        st.tuples(HOSTS, st.integers(0, 65535)),
        st.integers(0, 255),
        st.integers(0, 2**32 - 1),
    ),
    st.builds(StreamFailed, st.integers(0, 2**32 - 1)),
    st.builds(NodeSip, st.binary(min_size=1, max_size=2000), st.integers(0, 255)),
    st.builds(ParkShare, st.integers(0, 255), st.builds(ParkChanged, NAMES, TEXT, st.booleans())),
    st.builds(Put, BINDINGS),
    st.builds(Remove, st.text(min_size=1, max_size=20), st.one_of(st.none(), TEXT)),
    st.builds(TableRequest, st.integers(0, 255)),
    st.dictionaries(
        st.text(min_size=1, max_size=128), st.integers(1, 10**6), min_size=1, max_size=MAX_ACCOUNTS
    ).map(lambda d: AccountFailures(tuple(d.items()))),
)


@given(MESSAGES)
def test_every_message_round_trips(message: Message) -> None:
    assert decode(encode(message)) == message


@given(FEATURE_EVENTS)
def test_a_setting_is_its_event_in_the_stored_form(event: object) -> None:
    """What the bus carries of a setting is what the database stores: the event it
    means (a forward's setter kept only while it forwards; defaults in one form)."""
    kind, device, dn, partition, value = setting_of(event)  # type: ignore[arg-type]
    again = event_of(kind, device, dn, partition, value)
    assert setting_of(again) == (kind, device, dn, partition, value)
    assert decode(encode(Setting(again))) == Setting(again)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_bus_error(data: bytes) -> None:
    try:
        message = decode(data)
    except BusError:
        return
    assert decode(encode(message)) == message


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"X",
        b"F",
        b"F\x09127.0.0.1",  # no port
        b"F\x09127.0.0.1\x13\xc4",  # no datagram
        b"F\x03abc\x13\xc4x",  # not an address
        b"T",
        b"T\x01\x02",
        b"P[]",
        b'P{"device":"d","contact":"c","source":["h",70000]}',
        b'P{"device":"d","contact":"c","source":["h",1],"ttl":"x"}',
        b'P{"device":"","contact":"c","source":["h",1]}',
        b'P{"device":"d","contact":"c","source":["h",1],"ttl":1e999}',
        b'P{"device":"d","contact":"c","source":["h",1],"cseq":true}',
        b'P{"device":"d","contact":"c","source":["h",1]}',  # no worker
        b'P{"device":"d","contact":"c","source":["h",1],"worker":-1}',
        b'P{"device":"d","contact":"c","source":["h",1],"worker":256}',
        b'P{"device":"d","contact":"c","source":["h",1],"worker":true}',
        b'K{"worker":0,"number":"","partition":"","taken":true}',
        b'K{"worker":0,"number":"7000","partition":"","taken":1}',
        b'K{"worker":256,"number":"7000","partition":"","taken":true}',
        b"N",
        b"N\x01",  # a sender, no message
        b'D{"device":"d","contact":5}',
        b"D\xff",
        b"A{}",
        b"A[]",
        b'A{"alice":0}',
        b'A{"alice":1000001}',
        b'A{"alice":true}',
        b'A{"alice":1.5}',
        b'A{"":1}',
        b'A{"' + b"a" * 129 + b'":1}',
        b"A{" + b",".join(b'"u%d":1' % i for i in range(MAX_ACCOUNTS + 1)) + b"}",
        b"W\x00\x00\x00",  # short
        b"W\x00\x00\x00\x00\x01\x09127.0.0.1\x13\xc4",  # no bytes to write
        b"X\x00\x00\x01",
        b"X\x00\x00\x00\x01\x02",
        b'L{"worker":0,"dn":"1001","partition":"","state":"busy","devices":[],"direction":""}',
        b'L{"worker":0,"dn":"","partition":"","state":"idle","devices":[],"direction":""}',
        b'L{"worker":-1,"dn":"1","partition":"","state":"idle","devices":[],"direction":""}',
        b'L{"worker":0,"dn":"1","partition":"","state":"idle","devices":[1],"direction":""}',
        b'L{"worker":0,"dn":"1","partition":"","state":"idle","devices":[],"direction":"up"}',
        b'E{"kind":"dnd","device":"d","dn":"","partition":"","value":{"on":false}}',
        b'E{"kind":"park","device":"d","dn":"","partition":"","value":null}',
        b'E{"kind":"mwi","device":"","dn":"1","partition":"","value":{"waiting":1}}',
        b'E{"kind":"forward","device":"","dn":"1","partition":"","value":[]}',
    ],
)
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(BusError):
        decode(data)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def binding(
    device: str, contact: str, expires_at: float, protocol: str = "sip", worker: int = -1
) -> Binding:
    return Binding(device, protocol, contact, expires_at, ("127.0.0.3", 5062), worker=worker)


def test_replication_between_two_stores() -> None:
    a_clock, b_clock = Clock(), Clock()
    b_clock.now = 50.0  # another process: another clock
    to_b: list[Message] = []
    a = ReplicatedLocationStore(to_b.append, a_clock, index=1)
    b = ReplicatedLocationStore(lambda m: pytest.fail(f"b published {m}"), b_clock)

    a.put(binding("dave", "sip:dave@h:1", 1300.0))
    a.put(binding("cti", "cti:x", math.inf))  # never expires: not replicated
    a.put(binding("copy", "sip:c@h:1", 1300.0, worker=2))  # a copy of worker 2's: not sent on
    assert [type(m) for m in to_b] == [Put]
    put = to_b[0]
    assert isinstance(put, Put) and put.binding.expires_at == 300.0  # seconds left
    assert put.binding.worker == 1  # marked with the worker that holds the device
    heard: list[tuple[str, int]] = []
    b.on_applied = lambda device: heard.append((device, b.count()))
    b.apply(decode(encode(put)))  # type: ignore[arg-type]
    assert heard == [("dave", 1)]  # told once the copy is in
    assert [(x.expires_at, x.worker) for x in b.bindings("dave", b_clock.now)] == [(350.0, 1)]

    a.remove("dave", "sip:dave@h:1")
    a.remove("dave", "sip:dave@h:1")  # nothing left: nothing sent
    a.remove("copy", "sip:c@h:1")  # a copy: its worker says so itself
    b.apply(to_b[-1])  # type: ignore[arg-type]
    assert len(to_b) == 2 and b.all(b_clock.now) == []
    assert b.applied == 2
    assert heard == [("dave", 1), ("dave", 0)]  # and once it is gone


def test_sccp_bindings_travel_and_keepalives_only_when_they_add_enough() -> None:
    """An SCCP phone's binding goes to the others, marked with its worker; a keepalive's
    refresh goes on only once it extends the copies by REPUBLISH seconds (or the phone
    moved); a worker that is replaced takes its phones' copies with it."""
    clock = Clock()
    sent: list[Message] = []
    a = ReplicatedLocationStore(sent.append, clock, index=0)
    phone = binding("SEP1", "sccp:SEP1", clock.now + 3600, protocol="sccp")
    a.put(phone)
    assert len(sent) == 1
    clock.now += 30
    a.put(phone.with_expiry(clock.now + 3600))  # a keepalive: 30 s more
    assert len(sent) == 1
    clock.now += REPUBLISH
    a.put(phone.with_expiry(clock.now + 3600))
    assert len(sent) == 2
    moved = Binding("SEP1", "sccp", "sccp:SEP1", clock.now + 3600, ("127.0.0.9", 40000))
    a.put(moved)  # the same phone from elsewhere: at once
    assert len(sent) == 3
    b = ReplicatedLocationStore(sent.append, clock, index=1)
    for message in sent:
        b.apply(decode(encode(message)))  # type: ignore[arg-type]
    [copy] = b.bindings("SEP1", clock.now)
    assert (copy.protocol, copy.worker, copy.source) == ("sccp", 0, ("127.0.0.9", 40000))
    assert list(b.table()) == []  # a copy: each worker sends its own table
    b.apply(Put(binding("frank", "sip:frank@h", 100.0, worker=2)))  # worker 2's
    b.apply(Put(binding("gina", "sip:gina@h", 100.0, worker=3)))
    # worker 2 starts again: it gets its predecessor's phones back, and nobody else's
    assert [p.binding.device for p in b.table(starting=2)] == ["frank"]
    c = ReplicatedLocationStore(sent.append, clock, index=2)
    c.apply(next(b.table(starting=2)))
    [mine] = c.bindings("frank", clock.now)
    assert mine.worker == -1  # its own again
    b.put(binding("erin", "sip:erin@h", clock.now + 100))
    assert b.forget_worker(0) == ["SEP1"]
    assert b.bindings("SEP1", clock.now) == [] and len(b.bindings("erin", clock.now)) == 1
    a.remove_device("SEP1")
    assert sent[-1] == Remove("SEP1", None)
    a.put(phone.with_expiry(clock.now + 3600))  # back after an unregister: sent again
    assert isinstance(sent[-1], Put)


def test_remove_device_and_table() -> None:
    clock = Clock()
    sent: list[Message] = []
    a = ReplicatedLocationStore(sent.append, clock)
    a.put(binding("dave", "sip:1", 1100.0))
    a.put(binding("dave", "sip:2", 1200.0))
    assert sorted(p.binding.expires_at for p in a.table()) == [100.0, 200.0]
    b = ReplicatedLocationStore(sent.append, clock, index=1)
    for put in a.table():
        b.apply(put)
    assert b.count() == 2
    sent.clear()
    a.remove_device("dave")
    assert sent == [Remove("dave", None)]
    heard: list[str] = []
    b.on_applied = heard.append
    b.apply(Remove("dave", None))
    assert b.count() == 0 and heard == ["dave"]
    a.remove_device("dave")
    assert sent == [Remove("dave", None)]  # nothing held: nothing sent


def test_copies_expire_by_the_receivers_clock() -> None:
    clock = Clock()
    b = ReplicatedLocationStore(lambda m: None, clock)
    b.apply(Put(binding("dave", "sip:1", 30.0, worker=1)))
    clock.now += 31
    assert [x.device for x in b.expire(clock.now)] == ["dave"]


@given(st.lists(FEATURE_EVENTS, max_size=12))
def test_feature_state_gives_the_events_that_make_it(events: list[object]) -> None:
    """What a starting worker is sent (``FeatureState.events``) rebuilds the state,
    and every one of those events already holds there."""
    state = FeatureState()
    state.restore(events)
    again = FeatureState()
    again.restore(state.events())
    assert (again.forward_all, again.dnd, again.hunt_logged_out, again.mwi) == (
        state.forward_all,
        state.dnd,
        state.hunt_logged_out,
        state.mwi,
    )
    assert all(state.holds(e) for e in state.events())
    for event in events:
        before = FeatureState()
        before.restore(state.events())
        held = before.holds(event)
        before.apply(event)
        if held:  # applying what holds changes nothing
            assert before.events() == state.events()
