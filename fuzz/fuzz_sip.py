"""atheris fuzz target for the SIP parser (offhook.sip.codec / uri / headers / validate).

Invariant (DESIGN.md "Errors"): any bytes either parse or raise
``offhook.common.ParseError``; anything else is a crash. For each input:

- ``parse_message`` on the whole input; on ParseError, ``salvage_for_400``
  (which must not raise at all), and a salvaged request must be answerable:
  ``stamp_via`` (received/rport on its top Via, as the transport does) and
  ``make_response`` 400 must not raise either (the soak found salvaged Vias
  that ``stamp_via`` could not read). A parsed message must re-parse from its
  serialised form with the same start line, headers and body, and
  ``check_request`` / ``check_response`` must return (never raise), and give
  the same verdict with a memory of values that passed (``KnownGood``, kept
  across the inputs of a run) as without one.
- ``StreamFramer.feed`` with the input split at a fuzzer-chosen point.
- ``parse_uri``, ``parse_via``, ``parse_name_addr``, ``parse_contact_list``
  and ``parse_auth_params`` on the input decoded as text.

Run it bounded (libFuzzer flags pass through; ``-runs`` caps iterations,
``-max_total_time`` caps seconds)::

    python fuzz/fuzz_sip.py -runs=200000
    python fuzz/fuzz_sip.py -max_total_time=60 -max_len=4096 fuzz/corpus/sip

Seed a corpus with the RFC 4475 torture messages for a much better start::

    mkdir -p fuzz/corpus/sip && cp tests/vectors/sip/rfc4475/*.dat fuzz/corpus/sip/

A crash writes ``crash-<sha1>`` to the working directory; replay it with
``python fuzz/fuzz_sip.py crash-<sha1>``.

Seeds in fuzz/corpus/fuzz_sip: the RFC 4475 and RFC 5118 (IPv6) vectors.
A request that passes the checks must still pass them after ``stamp_via``
from an IPv4, IPv6 loopback and global IPv6 source.

Last run (session 1): 60 s seeded with the 49 RFC 4475 vectors, 68,741
inputs (~1,100/s, 984 new corpus units), no crash.
"""

from __future__ import annotations

import contextlib
import sys

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from offhook.common.errors import ParseError
    from offhook.sip.aio import stamp_via
    from offhook.sip.codec import StreamFramer, parse_message, salvage_for_400
    from offhook.sip.headers import (
        parse_auth_params,
        parse_contact_list,
        parse_name_addr,
        parse_via,
    )
    from offhook.sip.message import SipRequest, make_response
    from offhook.sip.uri import parse_uri
    from offhook.sip.validate import KnownGood, check_request, check_response


# Sources as the transport hands them over (common.addr.peer: mapped -> IPv4).
_SOURCES = (("127.0.0.1", 5060), ("::1", 5062), ("2001:db8::9", 40000))


def _message(data: bytes, known: KnownGood) -> None:
    try:
        msg = parse_message(data)
    except ParseError:
        salvaged = salvage_for_400(data)
        if salvaged is not None:
            stamp_via(salvaged, ("127.0.0.1", 5060))
            make_response(salvaged, 400).serialize()
        return
    again = parse_message(msg.serialize(), max_size=1 << 20)
    if type(again) is not type(msg) or again.body != msg.body:
        raise AssertionError("round trip changed the message")
    strip = [(n, v) for n, v in msg.headers if n != "Content-Length"]
    if [(n, v) for n, v in again.headers if n != "Content-Length"] != strip:
        raise AssertionError("round trip changed the headers")
    if isinstance(msg, SipRequest):
        assert isinstance(again, SipRequest)
        if (again.method, again.uri) != (msg.method, msg.uri):
            raise AssertionError("round trip changed the request line")
        verdict = check_request(msg)
        if verdict is not None and not 400 <= verdict[0] < 500:
            raise AssertionError(f"odd verdict {verdict}")
        if check_request(msg, known=known) != verdict:
            raise AssertionError("the values remembered changed the verdict")
        if verdict is None and msg.headers.get_raw("Via"):
            # The node must accept what its transport writes into a request it
            # accepted (issue 14: received=::1 made every IPv6 request a 400).
            for source in _SOURCES:
                stamped = parse_message(msg.serialize(), max_size=1 << 20)
                assert isinstance(stamped, SipRequest)
                stamp_via(stamped, source)
                if check_request(stamped) is not None:
                    raise AssertionError(f"stamped from {source} then refused")
    elif check_response(msg, known) != check_response(msg):
        raise AssertionError("the values remembered changed the response's verdict")


def _stream(data: bytes, cut: int) -> None:
    framer = StreamFramer(max_size=4096)
    try:
        framer.feed(data[:cut])
        framer.feed(data[cut:])
    except ParseError:
        return


def _text(text: str) -> None:
    for fn in (parse_uri, parse_via, parse_name_addr, parse_contact_list, parse_auth_params):
        with contextlib.suppress(ParseError):
            fn(text)


def test_one_input(data: bytes, known: KnownGood | None = None) -> None:
    if not data:
        return
    _message(data, KnownGood() if known is None else known)
    _stream(data, data[0] % (len(data) + 1))
    _text(data.decode("utf-8", "surrogateescape"))


def main() -> None:
    known = KnownGood(limit=64)  # shared by the run's inputs: their values meet again
    atheris.Setup(sys.argv, lambda data: test_one_input(data, known))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
