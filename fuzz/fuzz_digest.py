"""atheris fuzz target for SIP digest credentials and the registrar's Contact reader.

Parser: ``offhook.sip.auth.parse_digest`` (WWW-/Proxy-Authenticate and
Authorization values: a regular-expression reader with the character loop
``_parse_digest_slowly`` as its reference), ``DigestAuthenticator.verify`` of a
REGISTER carrying the input as Authorization, and
``offhook.sip.registrar.parse_contact`` (Contact and To values).

Invariant: only ``ParseError``; both digest readers give the same answer (the
same scheme and parameters, or both refuse); ``verify`` never raises and never
answers OK to credentials nobody computed; a Contact read is a sip:/sips: URI.

    python fuzz/fuzz_digest.py -max_total_time=20 fuzz/corpus/fuzz_digest

Seeds in fuzz/corpus/fuzz_digest: a SIPp Authorization, a challenge, a
header with escapes and a trailing comma, a Contact with parameters. A crash
writes ``crash-<sha1>``; replay it with ``python fuzz/fuzz_digest.py crash-<sha1>``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from offhook.common.errors import ParseError
    from offhook.sip.auth import (
        Credentials,
        DigestAuthenticator,
        _parse_digest_slowly,
        ha1,
        parse_digest,
    )
    from offhook.sip.message import Headers, SipRequest
    from offhook.sip.registrar import parse_contact

REALM = "offhook.test"
AUTH = DigestAuthenticator(b"fuzz-digest-secret-0123456789abcdef", REALM)
ACCOUNT = Credentials(
    "alice", "alice", REALM, ha1("alice", REALM, "pw", "MD5"), ha1("alice", REALM, "pw", "SHA-256")
)


class _Lookup:
    def credentials(self, username: str) -> Credentials | None:
        return ACCOUNT if username == "alice" else None


def _read(parse: object, text: str) -> object:
    try:
        return parse(text)  # type: ignore[operator]
    except ParseError:
        return "refused"


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    fast, slow = _read(parse_digest, text), _read(_parse_digest_slowly, text)
    if fast != slow and len(text) <= 4096:
        raise AssertionError(f"digest readers disagree: {fast!r} != {slow!r}")
    req = SipRequest(
        headers=Headers(
            [
                ("Via", "SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK1"),
                ("From", "<sip:alice@offhook.test>;tag=1"),
                ("To", "<sip:alice@offhook.test>"),
                ("Call-ID", "c"),
                ("CSeq", "1 REGISTER"),
                ("Authorization", text),
            ]
        ),
        method="REGISTER",
        uri="sip:offhook.test",
    )
    if AUTH.verify(req, _Lookup(), 1_000.0).ok:
        raise AssertionError("credentials nobody computed were accepted")
    try:
        spec = parse_contact(text)
    except ParseError:
        return
    if not spec.star and not spec.uri.lower().startswith(("sip:", "sips:")):
        raise AssertionError(f"not a SIP URI: {spec.uri!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
