"""atheris fuzz target for the media server control protocol (offhook.media.control).

Invariant (DESIGN.md "Errors"): any bytes, cut into lines by ``LineFramer``
(in one piece and split at an input-chosen point), either parse or raise
``ControlError`` (a ``ParseError``); anything else is a crash. The framer
never holds more than ``MAX_LINE`` bytes. A request that parses encodes to
one line that parses back to an equal request; a non-fatal error always
names the request id to answer; a server message (``parse_message``) and a
control address (``parse_control_address``: ValueError) obey the same rule.

    mkdir -p /tmp/corpus && python fuzz/fuzz_media_control.py -max_total_time=30 \
        -max_len=4096 /tmp/corpus fuzz/corpus/fuzz_media_control

Seeds in ``fuzz/corpus/fuzz_media_control``: one line of every command, a
reply, an event, and a few malformed lines.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from offhook.media import control
    from offhook.media.control import ControlError, LineFramer


def _lines(data: bytes, split: int) -> list[bytes]:
    framer = LineFramer(control.MAX_LINE)
    out: list[bytes] = []
    try:
        out += framer.feed(data[:split])
        out += framer.feed(data[split:])
    except ControlError as exc:
        if not exc.fatal:
            raise AssertionError("a framing error must close the connection") from None
    if framer.buffered > control.MAX_LINE:
        raise AssertionError("the framer holds more than a line")
    return out


def test_one_input(data: bytes) -> None:
    split = data[0] if data else 0
    body = data[1:]
    whole = _lines(body, len(body))
    if _lines(body, split) != whole:
        raise AssertionError("framing depends on how the bytes arrive")
    for line in whole:
        try:
            request = control.parse_request(line)
        except ControlError as exc:
            if not exc.fatal and exc.request_id is None:
                raise AssertionError("an answerable error without an id") from None
        else:
            encoded = control.encode_request(request)
            if control.parse_request(encoded[:-1]) != request:
                raise AssertionError("request round trip changed it")
        with contextlib.suppress(ControlError):
            control.parse_message(line)
    with contextlib.suppress(ValueError):
        control.parse_control_address(body.decode("utf-8", "replace")[:200])


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
