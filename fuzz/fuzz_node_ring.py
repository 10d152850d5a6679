"""atheris fuzz target for the node leg's ``X-Offhook-Ring`` header.

Parser: ``offhook.sip.node_ring.parse_ring`` (what a node leg's INVITE asks
the worker that holds a device to ring).

Invariant: only ``ParseError``; a ring read has a device and a DN and no
control characters, and writing it again (``format_ring``) reads back the
same ring.

    python fuzz/fuzz_node_ring.py -max_total_time=20 fuzz/corpus/fuzz_node_ring

Seeds in fuzz/corpus/fuzz_node_ring: a plain ring, one with percent-encoded
names and both flags. A crash writes ``crash-<sha1>``; replay it with
``python fuzz/fuzz_node_ring.py crash-<sha1>``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from offhook.common.errors import ParseError
    from offhook.sip.node_ring import format_ring, parse_ring


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    try:
        ring = parse_ring(text)
    except ParseError:
        return
    if not ring.device or not ring.dn:
        raise AssertionError("a ring without a device or a DN")
    fields = (ring.device, ring.dn, ring.partition, ring.caller)
    if any(ord(c) < 0x20 or c == "\x7f" for value in fields for c in value):
        raise AssertionError("a control character read")
    if parse_ring(format_ring(ring)) != ring:
        raise AssertionError("written again, the ring reads otherwise")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
