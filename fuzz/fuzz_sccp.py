"""atheris fuzz target for the SCCP codec (offhook.sccp.SccpFramer / decode).

Invariant (DESIGN.md "Errors"): any bytes either give messages or raise
``offhook.common.ParseError``; anything else is a crash. Each decoded message
must encode to a frame that decodes back to an equal message, and the framer
never holds more than one frame of at most ``max_size`` bytes.

The first byte picks the chunk size the stream is fed in, so split frames are
covered too. Run it bounded::

    python fuzz/fuzz_sccp.py -max_total_time=30 -max_len=2048

Last run (session 1): 30 s, ~410k inputs, no crash.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from offhook.common import ParseError
    from offhook.sccp import SccpFramer, decode_frame, encode

MAX = 1024


def test_one_input(data: bytes) -> None:
    if not data:
        return
    chunk = data[0] % 64 + 1
    stream = data[1:]
    framer = SccpFramer(max_size=MAX)
    try:
        for i in range(0, len(stream), chunk):
            for message in framer.feed(stream[i : i + chunk]):
                if decode_frame(encode(message)) != message:
                    raise AssertionError(f"round trip changed {message!r}")
            if framer.buffered > 8 + MAX:
                raise AssertionError("framer holds more than one frame")
    except ParseError:
        return


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
