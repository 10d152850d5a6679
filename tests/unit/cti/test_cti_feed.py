"""cti.hub's feed: followers get exactly what an offered session gets, rendered from templates.

A follower (a session with a wire, subscribed to everything) is not offered
events: the hub renders its frames from one template per event. Checked
against a session that is offered every event (no wire), on the same hub,
driven by the same steps (hypothesis: events of calls that started before
or after it attached, endings of calls nobody saw, drains of any size,
pings, subscribes, resumes, a hub gap): the same events with the same
``seq``, the same overflow at the same event with the same drop count. The
bytes are read back by the ``websockets`` library's frame parser (and the
JSON-lines wire split by lines), and each payload by ``json``; a template
formatted is the frame ``text_frames`` makes of the padded text.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Opcode

from offhook.cti.client_protocol import Ping, Resume, Subscribe
from offhook.cti.hub import SEQ_WIDTH, Hub, Wire, encode
from offhook.cti.scope import Scope
from offhook.cti.session import Overflowed, Session, SessionCounters
from offhook.web.cti_tcp import LINES_WIRE
from offhook.web.ws_guard import WS_WIRE, text_frames
from support.ws_frames import parsed

BASE = 1_000
ALL = Scope(everything=True)


async def _never(after: int | None) -> Any:  # pragma: no cover - the hub is only fed
    raise AssertionError("no upstream in these tests")


@pytest.fixture(autouse=True)
def loop() -> Any:
    new = asyncio.new_event_loop()
    asyncio.set_event_loop(new)
    yield new
    asyncio.set_event_loop(None)
    new.close()


def make_hub(replay: int = 50) -> Hub:
    h = Hub(_never, replay=replay)  # type: ignore[arg-type]
    h.feed([{"id": BASE, "type": "start"}])
    return h


def event(kind: str, call_id: str | None = None, device: str = "alice") -> dict[str, Any]:
    e: dict[str, Any] = {"type": kind, "time": 1.0, "node": "n", "device": device}
    if call_id is not None:
        e.update(call_id=call_id, state=kind.split(".")[1], calling="10%", called="1001")
    if kind == "call.ended":
        e.pop("device")
    return e


def put(h: Hub, e: dict[str, Any]) -> None:
    h.take({"id": (h.last_id or BASE) + 1, **e})


def pair(h: Hub, queue: int = 1000, wire: Wire = WS_WIRE) -> tuple[Session, Session]:
    """A follower and an offered session, attached at the same point."""

    async def snapshot() -> dict[str, Any]:
        return {"last_id": h.last_id, "devices": [], "lines": [], "calls": []}

    out = []
    for w in (wire, None):
        s = Session(h, ALL, snapshot, queue=queue, counters=SessionCounters(), wire=w)
        s.hello()
        h.attach(s)
        out.append(s)
    assert out[0].follow()
    assert not out[1].follow()
    return out[0], out[1]


def parse_ws(data: bytes) -> list[str]:
    texts = []
    for frame in parsed(data):
        assert frame.opcode is Opcode.TEXT and frame.fin
        texts.append(frame.data.decode())
    return texts


def parse(data: bytes, wire: Wire) -> list[dict[str, Any]]:
    if wire is WS_WIRE:
        texts = parse_ws(data)
    else:
        assert data.endswith(b"\n") or not data
        texts = data.decode().splitlines()
    return [json.loads(t) for t in texts]


def run(coro: Any) -> Any:
    return asyncio.get_event_loop().run_until_complete(coro)


def take_bytes(s: Session, limit: int, wire: Wire = WS_WIRE) -> list[dict[str, Any]]:
    """What the follower's writer would send now, in writes of ``limit`` frames at most."""

    async def go() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while s.queued or s.need_resync or s.overflow:
            try:
                data = await asyncio.wait_for(s.next_bytes(limit), 0.05)
            except (TimeoutError, Overflowed):
                break
            out += parse(data, wire)
        return out

    return run(go())


def take_texts(s: Session, limit: int) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while s.queued or s.need_resync or s.overflow:
            try:
                frames = await asyncio.wait_for(s.next_frames(limit), 0.05)
            except (TimeoutError, Overflowed):
                break
            out += [json.loads(f) for f in frames]
        return out

    return run(go())


def test_a_template_formatted_is_the_frame_of_the_padded_text() -> None:
    body = encode({"id": 7, "type": "call.offered", "calling": "50% off ü", "n": "%d%s"})
    for seq in (1, 42, SEQ_WIDTH * 10**8):
        text = f'{{"seq":{seq:{SEQ_WIDTH}d},{body[1:]}'
        assert WS_WIRE.template(body) % (seq,) == text_frames([text])
        assert LINES_WIRE.template(body) % (seq,) == (text + "\n").encode()
        assert json.loads(text)["seq"] == seq


@given(st.integers(0, 70_000))
@settings(max_examples=60, deadline=None)
def test_a_template_at_any_length_reads_back(size: int) -> None:
    # The WebSocket header of some lengths holds a byte "%" (0x25): escaped too.
    body = encode({"id": 1, "pad": "x" * size})
    (text,) = parse_ws(WS_WIRE.template(body) % (9,))
    assert json.loads(text) == {"seq": 9, "id": 1, "pad": "x" * size}


def test_a_follower_gets_what_an_offered_session_gets() -> None:
    h = make_hub()
    put(h, event("call.offered", "before"))  # a call it never saw a leg of
    follower, offered = pair(h)
    put(h, event("call.offered", "c1"))
    put(h, event("device.registered"))
    put(h, event("call.ended", "before"))  # not its call
    put(h, event("call.ringing", "c1"))
    put(h, event("call.ended", "c1"))
    put(h, event("call.ended", "nobody"))  # a call nobody saw
    got = take_bytes(follower, 64)
    want = take_texts(offered, 64)
    assert got == want
    assert [f.get("type") for f in got] == [
        "hello",
        "call.offered",
        "device.registered",
        "call.ringing",
        "call.ended",
    ]
    assert [f["seq"] for f in got if "seq" in f] == [1, 2, 3, 4]
    assert follower.counters.delivered == 4
    assert follower.following


def test_a_call_in_progress_at_attach_ends_for_the_follower_once_it_saw_a_leg() -> None:
    h = make_hub()
    put(h, event("call.offered", "old"))
    follower, offered = pair(h)
    put(h, event("call.answered", "old"))  # now it saw a leg
    put(h, event("call.ended", "old"))
    assert take_bytes(follower, 1) == take_texts(offered, 1)
    assert offered.seq == follower.seq == 2


def test_a_follower_that_falls_behind_overflows_as_an_offered_session() -> None:
    h = make_hub()
    follower, offered = pair(h, queue=5)
    for n in range(4):  # with the hello, the queue is full
        put(h, event("call.offered", f"c{n}"))
    assert follower.overflow is None and offered.overflow is None
    put(h, event("call.offered", "c4"))
    for s in (follower, offered):
        assert s.overflow is not None and s.done.is_set()
        assert s.counters.dropped == 5 and s.counters.overflows == 1
        with pytest.raises(Overflowed):
            run(s.next_frame())
    assert h.followers == 0


def test_narrowing_or_resuming_leaves_the_feed_with_nothing_lost() -> None:
    h = make_hub()
    follower, offered = pair(h)
    put(h, event("call.offered", "a", device="alice"))
    put(h, event("call.offered", "b", device="bob"))
    first = take_bytes(follower, 2)
    assert first == take_texts(offered, 2)
    put(h, event("call.ringing", "b", device="bob"))
    for s in (follower, offered):
        s.handle(Subscribe(devices=("alice",), lines=None))
    assert not follower.following
    put(h, event("call.ringing", "b", device="bob"))  # not subscribed now
    put(h, event("call.ended", "b"))  # but it saw a leg of b
    assert take_bytes(follower, 64) == take_texts(offered, 64)
    for s in (follower, offered):
        s.handle(Resume(after=BASE))
    assert take_bytes(follower, 64) == take_texts(offered, 64)


def test_a_gap_gives_the_follower_a_snapshot() -> None:
    h = make_hub()
    follower, offered = pair(h)
    put(h, event("call.offered", "a"))
    follower.gap()
    offered.gap()
    assert not follower.following
    got, want = take_bytes(follower, 64), take_texts(offered, 64)
    assert got == want
    assert [f["type"] for f in got] == ["resync", "hello"]  # the event is in the snapshot


def test_control_frames_come_first_and_count_against_the_queue() -> None:
    h = make_hub()
    follower, offered = pair(h, queue=4)
    put(h, event("call.offered", "a"))
    put(h, event("call.offered", "b"))
    for s in (follower, offered):
        s.handle(Ping())  # hello, pong and two events: the queue is full
    put(h, event("call.offered", "c"))
    for s in (follower, offered):
        assert s.overflow is not None and s.counters.dropped == 3


def test_a_full_write_waiting_is_not_held_back_by_the_coalesce_wait() -> None:
    """A writer that lingered before every write would send at most ``limit``
    events each ``linger`` seconds, whatever the event rate: with a full batch
    waiting both paths write at once (the hour-long linger would fail the test)."""
    h = make_hub(replay=500)
    follower, offered = pair(h)
    for n in range(130):
        put(h, event("call.offered", f"c{n}"))

    async def writes(s: Session, ws: bool) -> list[int]:
        sizes = []
        for _ in range(2):  # two full writes, then less than one is left
            if ws:
                data = await asyncio.wait_for(s.next_bytes(64, linger=3600), 10)
                sizes.append(len(parse_ws(data)))
            else:
                sizes.append(len(await asyncio.wait_for(s.next_frames(64, linger=3600), 10)))
        return sizes

    assert run(writes(follower, True)) == [64, 64]  # the hello is a control frame
    assert run(writes(offered, False)) == [64, 64]
    assert follower.seq == offered.seq == 127


@pytest.mark.parametrize("wire", [WS_WIRE, LINES_WIRE])
def test_a_name_with_bytes_that_are_not_utf8_reaches_every_client(wire: Wire) -> None:
    """The SIP parser keeps such bytes as lone surrogates (a caller's display name):
    they have no UTF-8 form, so the event escapes them, and no client's writer fails."""
    h = make_hub()
    follower, offered = pair(h, wire=wire)
    name = "caf\udce9 \u00e9"
    put(h, {**event("call.offered", "a"), "calling_name": name})
    got = take_bytes(follower, 64, wire)
    texts = run(asyncio.wait_for(offered.next_frames(64), 5))
    for text in texts:
        text.encode()  # a text frame is UTF-8
    assert [e.get("calling_name") for e in got] == [None, name]  # the hello, the event
    assert [json.loads(t).get("calling_name") for t in texts] == [None, name]


def test_seq_past_its_places_leaves_the_feed() -> None:
    h = make_hub()
    follower, offered = pair(h)
    follower.seq = offered.seq = 10**SEQ_WIDTH - 2
    for n in range(4):
        put(h, event("call.offered", f"c{n}"))
    got = take_bytes(follower, 64)
    assert got == take_texts(offered, 64)
    assert [f["seq"] for f in got if "seq" in f][-1] == 10**SEQ_WIDTH + 2
    assert not follower.following


def test_the_feed_holds_only_what_the_laggiest_follower_has_not_taken() -> None:
    h = make_hub()
    follower, _ = pair(h, queue=100)
    h.detach(_)
    for n in range(1000):
        put(h, event("call.offered", f"c{n}"))
        if n % 10 == 0:
            take_bytes(follower, 64)
    assert len(h._f_ids) <= 100
    assert follower.seq == 1000 - follower.queued
    follower.close()
    assert h.followers == 0 and not h._f_ids and not h._live


_CALLS = st.sampled_from(["c1", "c2", "c3", "c4"])
_EVENT = st.one_of(
    st.builds(event, st.sampled_from(["call.offered", "call.ringing"]), _CALLS),
    st.builds(event, st.just("call.ended"), _CALLS),
    st.builds(event, st.just("device.registered"), st.none(), st.sampled_from(["alice", "bob"])),
)
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("event"), _EVENT),
        st.tuples(st.just("take"), st.integers(1, 8)),
        st.tuples(st.just("ping"), st.none()),
        st.tuples(st.just("everything"), st.none()),
        st.tuples(st.just("narrow"), st.sampled_from(["alice", "bob"])),
        st.tuples(st.just("resume"), st.integers(0, 60)),
        st.tuples(st.just("gap"), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_EVENT, max_size=6), _STEPS, st.integers(3, 30), st.booleans(), st.booleans())
def test_any_steps_give_the_same_frames(
    before: list[dict[str, Any]],
    steps: list[tuple[str, Any]],
    queue: int,
    lines: bool,
    wide: bool,
) -> None:
    loop = asyncio.new_event_loop()  # one per example
    asyncio.set_event_loop(loop)
    try:
        _same(before, steps, queue, LINES_WIRE if lines else WS_WIRE, 10**SEQ_WIDTH - 6 * wide)
    finally:
        loop.close()


def _same(
    before: list[dict[str, Any]],
    steps: list[tuple[str, Any]],
    queue: int,
    wire: Wire,
    seq: int,
) -> None:
    h = make_hub(replay=20)
    for e in before:
        put(h, e)
    follower, offered = pair(h, queue=queue, wire=wire)
    follower.seq = offered.seq = seq % 10**SEQ_WIDTH  # wide: a few events from the limit
    got: list[dict[str, Any]] = []
    want: list[dict[str, Any]] = []
    for kind, arg in steps:
        if kind == "event":
            put(h, arg)
        elif kind == "take":
            got += take_bytes(follower, arg, wire)
            want += take_texts(offered, arg)
        elif kind == "gap":
            follower.gap()
            offered.gap()
        else:
            message: Any
            if kind == "ping":
                message = Ping()
            elif kind == "everything":
                message = Subscribe(devices=None, lines=None)
            elif kind == "narrow":
                message = Subscribe(devices=(arg,), lines=None)
            else:
                message = Resume(after=BASE + arg)
            follower.handle(message)
            offered.handle(message)
        assert (follower.overflow is None) == (offered.overflow is None)
        if follower.overflow is not None:
            break
    got += take_bytes(follower, 64, wire)
    want += take_texts(offered, 64)
    assert got == want
    assert follower.counters == offered.counters
    seqs = [f["seq"] for f in got if "id" in f]
    first = seq % 10**SEQ_WIDTH + 1
    assert seqs == list(range(first, first + len(seqs)))
