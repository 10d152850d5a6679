"""atheris fuzz target for the workers' local bus and the forward decision.

Parsers: ``offhook.workers.codec.decode`` over one bus datagram (a forwarded
SIP datagram or TCP message with its source, bytes for another worker's TCP
connection and its failure report, a binding change, a busy lamp, a coverage
setting, a park number, a node leg's SIP message, a table request), and
``offhook.workers.tags.owner`` over one SIP datagram (whose dialog or
transaction it is, read before any parse), and ``message_owner`` over the
same bytes once parsed (a message framed out of a TCP stream).

Invariants: ``decode`` raises nothing but ``BusError``, and what it accepts
encodes back to bytes that decode to the same message; ``owner`` never
raises and names a worker index below 64 or None, nor does ``message_owner``
on what parses; ``forward_to`` never
names this worker or one the node does not have.

    python fuzz/fuzz_worker_bus.py -max_total_time=20 fuzz/corpus/fuzz_worker_bus

Seeds in fuzz/corpus/fuzz_worker_bus: a forward of a 180 with a marked
branch (and of a BYE read from TCP), a stream write and its failure report,
a binding (SIP and SCCP), a removal, a table request, a busy lamp, two
settings, a park number, a node leg's INVITE. A crash writes
``crash-<sha1>``; replay it with ``python fuzz/fuzz_worker_bus.py crash-<sha1>``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from offhook.common.errors import ParseError
    from offhook.sip.codec import parse_message
    from offhook.workers.codec import BusError, decode, encode
    from offhook.workers.tags import forward_to, message_owner, owner


def test_one_input(data: bytes) -> None:
    try:
        message = decode(data)
    except BusError:
        pass
    else:
        if decode(encode(message)) != message:
            raise AssertionError("a decoded message does not encode back to itself")
    index = owner(data)
    if index is not None and not 0 <= index < 64:
        raise AssertionError(f"owner {index}")
    try:
        parsed = parse_message(data)
    except ParseError:
        pass
    else:
        index = message_owner(parsed)
        if index is not None and not 0 <= index < 64:
            raise AssertionError(f"message owner {index}")
    for me, workers in ((0, 2), (1, 2), (3, 4)):
        target = forward_to(data, me, workers)
        if target is not None and (target == me or not 0 <= target < workers):
            raise AssertionError(f"forward to {target} from {me} of {workers}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
