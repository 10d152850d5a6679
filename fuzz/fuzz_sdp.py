"""atheris fuzz target for the SDP parser (offhook.sdp.parse_sdp).

Invariant (DESIGN.md "Errors"): any bytes either parse or raise
``offhook.common.ParseError``; anything else is a crash. When a body parses,
its serialised form must parse back to an equal model, and the convenience
views (rtpmap, fmtp, ptime, direction, hold detection, an answer) must not
raise either.

Run it bounded (libFuzzer flags pass through; ``-runs`` caps iterations,
``-max_total_time`` caps seconds)::

    python fuzz/fuzz_sdp.py -runs=200000
    python fuzz/fuzz_sdp.py -max_total_time=30 -max_len=4096 fuzz/corpus/sdp

The optional directory argument is the corpus: libFuzzer reads its files as
seeds and adds new interesting inputs to it. Good seeds are the bodies in
``tests/unit/sdp/sdp_samples.py``; without a corpus it starts from nothing.
A crash writes ``crash-<sha1>`` to the working directory; replay it with
``python fuzz/fuzz_sdp.py crash-<sha1>``.

Last run (session 1): 30 s, ~255k inputs, no crash (after fixing one
round-trip ordering bug it found in the first seconds).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from offhook.common import ParseError
    from offhook.sdp import Codec, is_hold, make_answer, parse_sdp

_CODECS = [Codec("PCMU", 8000), Codec("opus", 48000, 2), Codec("telephone-event", 8000)]


def test_one_input(data: bytes) -> None:
    try:
        sdp = parse_sdp(data)
    except ParseError:
        return
    again = parse_sdp(sdp.serialize(), max_size=1 << 20)
    if again != sdp:
        raise AssertionError("round trip changed the model")
    for m in sdp.media:
        _ = (m.rtpmap, m.fmtp, m.ptime, m.direction, sdp.media_direction(m))
        _ = sdp.media_address(m)
    is_hold(sdp)
    answer = make_answer(sdp, _CODECS, "192.0.2.1", 4000)
    if len(answer.media) != len(sdp.media):
        raise AssertionError("answer changed the number of m-lines")
    parse_sdp(answer.serialize(), max_size=1 << 20)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
