"""atheris fuzz target for the pre-parse peek of the SIP listener's rate limit.

Parser: ``offhook.sip.ingress.is_ongoing`` over one datagram, the look the
transport takes (only when a source is over its rate) to drop new requests
before responses and in-dialog requests.

Invariant: it never raises and returns a bool, on any bytes; and on every
datagram the full parser (``offhook.sip.codec.parse_message``) accepts, it
says "ongoing" exactly for responses, ACK, CANCEL and requests whose To has
a tag as ``SipMessage.to_tag`` reads it.

    python fuzz/fuzz_sip_ingress.py -max_total_time=20 fuzz/corpus/fuzz_sip_ingress

Seeds in fuzz/corpus/fuzz_sip_ingress: a new INVITE, a response, an in-dialog
BYE, a CANCEL, folded and compact To headers. A crash writes
``crash-<sha1>``; replay it with ``python fuzz/fuzz_sip_ingress.py crash-<sha1>``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from offhook.common.errors import ParseError
    from offhook.sip.codec import parse_message
    from offhook.sip.ingress import is_ongoing
    from offhook.sip.message import SipRequest, SipResponse


def test_one_input(data: bytes) -> None:
    got = is_ongoing(data)
    if not isinstance(got, bool):
        raise AssertionError("is_ongoing must answer a bool")
    try:
        msg = parse_message(data)
    except ParseError:
        return
    if isinstance(msg, SipResponse):
        want = True
    else:
        assert isinstance(msg, SipRequest)
        want = msg.method in ("ACK", "CANCEL") or bool(msg.to_tag)
    if got != want:
        raise AssertionError(f"peek says {got}, the parser {want}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
