"""atheris fuzz target for the overload shed's look at a new INVITE before its full parse.

Parser: ``offhook.sip.shed_peek.peek_invite`` over one datagram: the start
line, Via, From, To, Call-ID, CSeq and Record-Route of a new INVITE, read
from its bytes while the node sheds, or None when it is not sure.

Also ``ack_key`` over ``ACK `` and the data: what it reads (Call-ID, CSeq
number), the parser reads the same when it accepts the ACK.

Invariant: it never raises; what it accepts, the full parser
(``offhook.sip.codec.parse_message``) accepts too, as an INVITE with the same
Request-URI, the same values of those headers in the same order, and no
Replaces header (the peek may only shed what the parsed path would).

    python fuzz/fuzz_shed_peek.py -max_total_time=20 fuzz/corpus/fuzz_shed_peek

Seeds in fuzz/corpus/fuzz_shed_peek: a new INVITE, RFC 4475 inv2543, an
INVITE with a folded To. A crash writes ``crash-<sha1>``; replay it with
``python fuzz/fuzz_shed_peek.py crash-<sha1>``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from offhook.common.errors import ParseError
    from offhook.sip.codec import parse_message
    from offhook.sip.message import SipRequest
    from offhook.sip.shed_peek import ack_key, peek_invite

KEPT = ("Via", "From", "To", "Call-ID", "CSeq", "Record-Route")


def test_one_input(data: bytes) -> None:
    for datagram in (data, b"INVITE " + data):
        got = peek_invite(datagram)
        if got is None:
            continue
        try:
            msg = parse_message(datagram)
        except ParseError as exc:
            raise AssertionError(f"the peek accepted what the parser refuses: {exc}") from exc
        if not isinstance(msg, SipRequest) or msg.method != "INVITE" or msg.uri != got.uri:
            raise AssertionError("the peek read another start line")
        if [(n, v) for n, v in msg.headers if n in KEPT] != list(got.headers):
            raise AssertionError("the peek read other header values")
        if "Replaces" in msg.headers:
            raise AssertionError("the peek accepted an INVITE with Replaces")
    ack = b"ACK " + data
    key = ack_key(ack)
    if key is not None:
        try:
            parsed = parse_message(ack)
            cseq = parsed.cseq
        except ParseError:
            return  # a malformed ACK: dropped unanswered on either path
        if (parsed.call_id, cseq[0]) != key or cseq[1] != "ACK":
            raise AssertionError(f"the ACK's key {key} is not the parser's")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
