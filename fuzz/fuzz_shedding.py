"""atheris fuzz target for overload shedding on the SIP side (``offhook.sip.shedding``).

Parser: what the endpoint reads of a new request while the node is overloaded:
``shed_kind`` (method, To tag, Replaces), ``called_number`` (Request-URI user),
``refreshes_binding`` (Authorization user name, To user, Call-ID), ``wants_oc``
(RFC 7339 ``oc`` in the top Via), and the answer built from it
(``service_unavailable``, ``mark_oc``).

Invariant: on every datagram the full parser (``offhook.sip.codec.parse_message``)
accepts, none of them raises anything but ``ParseError`` where documented (none
does for these), a request with a To tag is never shed, and the 503 serialises
and parses back with its Retry-After.

    python fuzz/fuzz_shedding.py -max_total_time=20 fuzz/corpus/fuzz_shedding

Seeds in fuzz/corpus/fuzz_shedding: a new INVITE with ``oc`` in its Via, a
REGISTER with credentials, an in-dialog BYE. A crash writes ``crash-<sha1>``;
replay it with ``python fuzz/fuzz_shedding.py crash-<sha1>``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from offhook.common.errors import ParseError
    from offhook.common.location import Binding
    from offhook.sip.codec import parse_message
    from offhook.sip.message import SipRequest, SipResponse
    from offhook.sip.shedding import (
        called_number,
        mark_oc,
        refreshes_binding,
        service_unavailable,
        shed_kind,
        wants_oc,
    )


def test_one_input(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except ParseError:
        return
    if not isinstance(msg, SipRequest):
        return
    kind = shed_kind(msg)
    if msg.to_tag and kind is not None:
        raise AssertionError("an in-dialog request would be shed")
    called_number(msg)
    binding = Binding("d", "sip", "sip:d@x", 1e12, call_id="c")
    refreshes_binding(msg, lambda user: "d" if user else None, lambda device: [binding])
    oc = wants_oc(msg)
    try:
        resp = service_unavailable(msg, 5)
    except ParseError:
        return  # no Call-ID/CSeq to answer with: the endpoint refused it before
    if oc:
        mark_oc(resp, 50, 1000, "1.000")
    back = parse_message(resp.serialize())
    if not isinstance(back, SipResponse) or back.status != 503:
        raise AssertionError("the 503 does not parse back")
    if back.headers.get("Retry-After") != "5":
        raise AssertionError("Retry-After lost")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
