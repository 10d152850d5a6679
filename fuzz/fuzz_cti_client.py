"""atheris fuzz target for what a CTI WebSocket client sends (cti.client_protocol, cti.session).

The input is a client's text messages, one a line (the WebSocket delivers
valid UTF-8 text frames: the bytes are decoded with replacement). Each one
goes through ``parse_client_message`` and, when it parses, into a real
``Session`` over a real ``Hub`` holding a few events, with events offered
between the messages. Invariants (DESIGN.md "Errors"):

- a message parses or raises ``ClientMessageError`` with a reason; so does
  the first line as the TCP listener's ``auth`` line (``parse_auth``), and
  an ``Auth`` it gives has a token of 1 to ``MAX_TOKEN`` characters;
- the session takes every parsed request without raising; every frame it
  then gives is one JSON object; the events among them carry ``seq`` 1, 2,
  3, ... without a hole and stream control frames carry none; it never
  holds more than its queue bound plus the hub's ring; a subscription never
  widens the scope (only alice's events come out).

Seeds: ``fuzz/corpus/fuzz_cti_client``.

    mkdir -p /tmp/corpus && python fuzz/fuzz_cti_client.py -max_total_time=30 \\
        -max_len=4096 /tmp/corpus fuzz/corpus/fuzz_cti_client
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import atheris

import offhook.ris.control  # noqa: F401  (imported, not instrumented: the hub's errors)

with atheris.instrument_imports():
    from offhook.cti.client_protocol import (
        MAX_TOKEN,
        ClientMessageError,
        parse_auth,
        parse_client_message,
    )
    from offhook.cti.hub import Hub
    from offhook.cti.scope import Scope
    from offhook.cti.session import Session

BASE = 100
QUEUE = 16
RING = 8
SCOPE = Scope(devices=frozenset({"alice"}), lines=frozenset({("1001", "")}))


async def _never(after: int | None) -> Any:
    raise AssertionError("no upstream")


def _event(n: int) -> dict[str, Any]:
    device = ("alice", "bob")[n % 2]
    if n % 3 == 0:
        return {"type": "line.state", "dn": ("1001", "1002")[n % 2], "partition": ""}
    if n % 5 == 0:
        return {"type": "call.ended", "call_id": f"c{n % 4}"}
    return {"type": "call.offered", "call_id": f"c{n % 4}", "device": device, "line": "1001"}


async def _run(texts: list[str]) -> None:
    hub = Hub(_never, replay=RING)  # type: ignore[arg-type]
    hub.feed([{"id": BASE, "type": "start"}])

    async def snapshot() -> dict[str, Any]:
        return {"last_id": hub.last_id, "devices": [], "lines": [], "calls": []}

    session = Session(hub, SCOPE, snapshot, queue=QUEUE)
    hub.attach(session)
    frames: list[dict[str, Any]] = []
    for n, text in enumerate(texts):
        event = {**_event(n), "id": (hub.last_id or BASE) + 1}
        hub.take(event)
        try:
            request = parse_client_message(text)
        except ClientMessageError as exc:
            if not str(exc):
                raise AssertionError("a refusal without a reason") from None
            continue
        session.handle(request)
        if session.queued > QUEUE + RING:
            raise AssertionError("the session holds more than its bounds")
        if session.overflow is not None:
            return
        while session.queued or session.need_resync:
            try:
                frame = await asyncio.wait_for(session.next_frame(), 0.01)
            except TimeoutError:
                break
            data = json.loads(frame)
            if not isinstance(data, dict):
                raise AssertionError("a frame that is no object")
            frames.append(data)
    seqs = [f["seq"] for f in frames if "id" in f]
    if seqs != list(range(1, len(seqs) + 1)):
        raise AssertionError(f"seq with a hole: {seqs}")
    for f in frames:
        if ("seq" in f) != ("id" in f):
            raise AssertionError("seq on a control frame, or an event without one")
        if "id" in f and f.get("device", "alice") != "alice" and f.get("dn", "1001") != "1001":
            raise AssertionError(f"an event outside the scope: {f}")


def _auth(text: str) -> None:
    """The TCP listener's first line: an ``Auth`` within its bounds, or a refusal."""
    try:
        auth = parse_auth(text)
    except ClientMessageError as exc:
        if not str(exc):
            raise AssertionError("a refusal without a reason") from None
        return
    if not 0 < len(auth.token) <= MAX_TOKEN or (auth.after is not None and auth.after < 0):
        raise AssertionError(f"an auth line out of bounds: {auth}")


def test_one_input(data: bytes) -> None:
    texts = data.decode("utf-8", "replace").split("\n")[:64]
    _auth(texts[0])
    asyncio.get_event_loop().run_until_complete(_run(texts))


def main() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
