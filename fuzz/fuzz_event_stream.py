"""atheris fuzz target for the node's event stream as its client reads it (ris.event_client).

The input is what a node sends on an ``events`` connection: the answer line,
then event lines. Invariants (DESIGN.md "Errors"):

- each line parses as an event (a JSON object) or raises
  ``ControlProtocolError``; an event that parses encodes to one line that
  parses back equal;
- ``EventStream`` on those bytes (``attach`` over an in-memory reader fed
  them, then EOF): the start is a ``StreamStart`` of ints and a bool, or
  the stream raises ``ControlError``/``NodeUnavailable``; iterating yields
  only dicts, and ends by ``StopAsyncIteration`` only right after an
  overflow line, else by one of those two errors (the bytes end); its
  ``last_id`` is the last integer id it yielded; it wrote one request line.

Seeds: ``fuzz/corpus/fuzz_event_stream``.

    mkdir -p /tmp/corpus && python fuzz/fuzz_event_stream.py -max_total_time=30 \\
        -max_len=4096 /tmp/corpus fuzz/corpus/fuzz_event_stream
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import atheris

with atheris.instrument_imports():
    from offhook.ris.control import ControlError, NodeUnavailable
    from offhook.ris.control_codec import ControlProtocolError, encode_event, parse_event
    from offhook.ris.event_client import EventStream

MAX_LINE = 512


class _Transport:
    def abort(self) -> None:
        return None


class _Writer:
    """The parts of ``asyncio.StreamWriter`` the client uses, in memory."""

    def __init__(self) -> None:
        self.transport = _Transport()
        self.out = bytearray()

    def write(self, data: bytes) -> None:
        self.out += data

    async def drain(self) -> None:
        return None

    async def wait_closed(self) -> None:
        return None


async def _read(data: bytes) -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    writer = _Writer()
    stream = EventStream("127.0.0.1", 1, after=7, max_line=MAX_LINE)
    try:
        start = await stream.attach(reader, writer)  # type: ignore[arg-type]
    except (ControlError, NodeUnavailable):
        return
    finally:
        if writer.out.count(b"\n") != 1 or not writer.out.startswith(b'{"op":"events"'):
            raise AssertionError("not one events request")
    if not (
        isinstance(start.first_id, int)
        and isinstance(start.last_id, int)
        and isinstance(start.resync, bool)
    ):
        raise AssertionError("a start of the wrong types")
    last: Any = 7
    previous: dict[str, Any] | None = None
    try:
        async for event in stream:
            if not isinstance(event, dict):
                raise AssertionError("an event that is no object")
            event_id = event.get("id")
            if isinstance(event_id, int) and not isinstance(event_id, bool):
                last = event_id
            previous = event
    except (ControlError, NodeUnavailable):
        return
    if previous is None or previous.get("type") != "overflow" or "id" in previous:
        raise AssertionError("the iteration stopped without an overflow line")
    if stream.last_id != last:
        raise AssertionError("last_id is not the last id yielded")


def test_one_input(data: bytes) -> None:
    for line in data.split(b"\n"):
        try:
            event = parse_event(line.strip())
        except ControlProtocolError:
            continue
        again = encode_event(event)
        if again.count(b"\n") != 1 or parse_event(again[:-1]) != event:
            raise AssertionError("event round trip changed it")
    asyncio.get_event_loop().run_until_complete(_read(data))


def main() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
