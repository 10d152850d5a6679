"""atheris fuzz target for the node's control endpoint (offhook.ris.control, JSON lines).

Invariants (DESIGN.md "Errors"):

- framing (``ris.control_codec.LineBuffer``): the bytes, in one piece and
  split at an input-chosen point, give the same lines or the same
  ``LineTooLong``; the buffer never holds more than its limit;
- parsing: every line parses as a request or raises ``BadRequest``; a
  request that parses encodes to one line that parses back equal;
- the listener (``ControlServer.handle`` on a real ``asyncio.StreamReader``
  fed the bytes, then EOF, against an in-memory writer): the callback
  returns, the connection is closed, and what was written is whole answer
  lines (``parse_answer`` accepts each), no more than the lines sent.

The first byte is the split point. Seeds: ``fuzz/corpus/fuzz_control``.

    mkdir -p /tmp/corpus && python fuzz/fuzz_control.py -max_total_time=30 \\
        -max_len=4096 /tmp/corpus fuzz/corpus/fuzz_control
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import atheris

with atheris.instrument_imports():
    from offhook.net.guard import ListenerLimits
    from offhook.ris.control import ControlServer
    from offhook.ris.control_codec import (
        BadRequest,
        LineBuffer,
        LineTooLong,
        encode_request,
        parse_answer,
        parse_request,
    )

LIMIT = 1024
_LIMITS = ListenerLimits(
    max_message=LIMIT,
    idle_timeout=5.0,
    handshake_timeout=5.0,
    rate_per_source=1e9,
    rate_burst=1e9,
)


def _async_fail(args: dict[str, Any]) -> Any:
    async def fail() -> None:
        raise RuntimeError("handler failed")

    return fail()


_HANDLERS = {
    "echo": lambda args: args,
    "fail": lambda args: 1 // 0,
    "async_fail": _async_fail,
    "need": lambda args: args["x"],
    "refuse": lambda args: int(str(args.get("x", "?"))),
}


class _Transport:
    def __init__(self) -> None:
        self.closing = False

    def abort(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


class _Writer:
    """The parts of ``asyncio.StreamWriter`` the server uses, in memory."""

    def __init__(self) -> None:
        self.transport = _Transport()
        self.out = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        if self.closed:
            raise AssertionError("write after close")
        self.out += data

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True
        self.transport.closing = True

    async def wait_closed(self) -> None:
        return None


def _lines(data: bytes, split: int) -> tuple[list[bytes], bool]:
    framer = LineBuffer(LIMIT)
    out: list[bytes] = []
    try:
        out += framer.feed(data[:split])
        out += framer.feed(data[split:])
    except LineTooLong as exc:
        return out + exc.lines, True
    finally:
        if framer.buffered > LIMIT:
            raise AssertionError("the framer holds more than a line")
    return out, False


async def _connection(data: bytes) -> _Writer:
    reader = asyncio.StreamReader(limit=LIMIT * 2)
    reader.feed_data(data)
    reader.feed_eof()
    writer = _Writer()
    server = ControlServer(_HANDLERS, allow=lambda host: True, limits=_LIMITS)
    await asyncio.wait_for(server.handle(reader, writer), 10.0)  # type: ignore[arg-type]
    if server.status()["connections"] != 0:
        raise AssertionError("a connection left counted")
    return writer


def test_one_input(data: bytes) -> None:
    split = data[0] * 4 if data else 0
    body = data[1:]
    whole = _lines(body, len(body))
    if _lines(body, split) != whole:
        raise AssertionError("framing depends on how the bytes arrive")
    for line in whole[0]:
        try:
            request = parse_request(line.strip())
        except BadRequest:
            continue
        again = encode_request(request.op, request.args)
        if again.count(b"\n") != 1 or parse_request(again[:-1]) != request:
            raise AssertionError("request round trip changed it")
    writer = asyncio.get_event_loop().run_until_complete(_connection(body))
    if not writer.closed:
        raise AssertionError("connection left open")
    out = bytes(writer.out)
    if out and not out.endswith(b"\n"):
        raise AssertionError("half an answer written")
    answers = out.split(b"\n")[:-1]
    for answer in answers:
        parse_answer(answer)  # raises if the server wrote something that is no answer
    if len(answers) > body.count(b"\n") + 1:
        raise AssertionError("more answers than lines")


def main() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
