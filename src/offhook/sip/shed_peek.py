"""Shed a new INVITE from its datagram's bytes, before the full parse, while the node sheds.

Theory of operation. At several times its capacity an overloaded node answers
most new INVITEs 503 (``sip.shedding``, ``core.overload``). On the parsed
path each of them costs a full ``parse_message`` (every header line decoded,
split and named), then the endpoint's entry checks, before ``_shed`` refuses
it. While (and only while) the node sheds, the UDP transport first hands the
datagram to :func:`shed_datagram`: :func:`peek_invite` reads only what a shed
decision and its 503 need out of the bytes (the start line, Via, From, To,
Call-ID, CSeq and Record-Route, in their order), into a small ``SipRequest``
that holds nothing else. The decision is the endpoint's own
(``stamp_via``, ``shed_kind``'s rules, ``CallMemory``,
``OverloadControl.admit``, the ``oc`` marking in ``flush``); the 503 is
``shedding.service_unavailable``'s, built from the peeked headers' values
(:func:`_unavailable`: the same headers in the same order, the same derived
To tag) without looking them up again.

The peek is a strict subset of ``codec.parse_message``: it gives up (None:
the datagram takes the full path) on anything it is not sure of: not plain
ASCII, leading CRLFs, a folded line, a header name the parser's fast table
does not know as it is written (blanks before the colon, odd spellings),
a bare CR or LF, a line or a head too long, a bad or repeated
Content-Length or one larger than the body, a request line that is not
exactly ``INVITE <uri> SIP/2.0``, a ``Replaces`` header (never shed). What
it accepts, the parser accepts, with the same header values (the same
name table, the same stripping). The differential test
(``tests/unit/sip/test_shed_peek.py``) checks that.

The decision (:func:`shed_datagram`) comes to the parsed path's answer: the
Via stamped with ``received``/``rport``, a To tag (in-dialog: never shed),
the checks of ``SipEndpoint._shed`` (CSeq method, From/To, Call-ID, a server
transaction already there), the failed-login gate (asked once those pass: a
blocked source is dropped and counted as there, a held one goes to the
parsed path), then ``CallMemory``: a stored 503 is resent, a call admitted
before goes on; an exempt number goes on without a draw; else
``OverloadControl.admit`` draws. An admission is noted in the memory as
``admitted_ahead``, so that the parsed path, which asks again, follows it
without counting it twice. Whatever goes on is parsed in full as before.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from offhook.common.errors import ParseError
from offhook.sip.aio import stamp_via
from offhook.sip.codec import _FAST_NAMES, MAX_HEADERS, MAX_LINE
from offhook.sip.message import Headers, SipRequest, SipResponse, _param
from offhook.sip.shedding import called_number
from offhook.sip.transaction import server_key

if TYPE_CHECKING:
    from offhook.sip.endpoint import SipEndpoint

__all__ = ["peek_invite", "shed_datagram"]

Addr = tuple[str, int]

_NAMES: dict[bytes, str] = {name.encode("ascii"): canon for name, canon in _FAST_NAMES.items()}
_KEPT = frozenset({"Via", "From", "To", "Call-ID", "CSeq", "Record-Route"})
_URI_RE = re.compile(rb"[\x21-\x7e]+\Z")
_BLANKS = b" \t"


def peek_invite(data: bytes) -> SipRequest | None:
    """A new INVITE's Via, From, To, Call-ID, CSeq and Record-Route, or None: not sure.

    The request returned holds those headers only (in order, with the values
    the parser gives them) and the Request-URI; its body is empty.
    """
    if not data.startswith(b"INVITE "):
        return None
    end = data.find(b"\r\n\r\n")
    if end < 0 or end > MAX_LINE:
        return None
    head = data[:end]
    if not head.isascii():
        return None
    lines = head.split(b"\r\n")
    nlines = len(lines)
    if nlines > MAX_HEADERS + 1:
        return None
    if head.count(b"\n") != nlines - 1 or head.count(b"\r") != nlines - 1:
        return None
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"SIP/2.0" or _URI_RE.match(parts[1]) is None:
        return None
    items: list[tuple[str, str]] = []
    names = _NAMES
    length: bytes | None = None
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        cname = names.get(name)
        if not sep or cname is None:
            return None  # no colon, a folded line, a name spelt otherwise: the parser decides
        if cname in _KEPT:
            items.append((cname, value.strip(_BLANKS).decode("ascii")))
        elif cname == "Content-Length":
            if length is not None:
                return None
            length = value.strip(_BLANKS)
        elif cname == "Replaces":
            return None  # RFC 3891: takes over an established call, never shed
    if length is not None and (
        not length.isdigit() or len(length) > 9 or int(length) > len(data) - end - 4
    ):
        return None
    return SipRequest(
        headers=Headers.from_canonical(items), method="INVITE", uri=parts[1].decode("ascii")
    )


def shed_datagram(endpoint: SipEndpoint, data: bytes, addr: Addr) -> bool:
    """True: the datagram (a new INVITE) was shed or dropped here; False: parse it in full.

    Does anything only while the endpoint's overload control sheds.
    """
    overload = endpoint.overload
    if overload is None or not overload.overloaded or not data.startswith(b"INVITE "):
        return False
    req = peek_invite(data)
    if req is None:
        return False
    try:
        stamp_via(req, addr)
        first: dict[str, str] = {}
        for name, value in req.headers:
            first.setdefault(name, value)
        to = first.get("To")
        if to is None or "From" not in first or _param(to, "tag"):
            return False  # no To (check_request answers it), or in-dialog: never shed
        cseq = req.cseq
        call_id = req.call_id
        if cseq[1] != "INVITE" or not call_id or endpoint.txl.get(server_key(req)) is not None:
            return False
        number = called_number(req)
    except ParseError:
        return False
    gate = endpoint.auth_gate
    if gate is not None:
        delay = gate.admit(addr)
        if delay is None:
            endpoint.counters["blocked_requests"] += 1
            return True  # what the parsed path does with a blocked source
        if delay > 0:
            return False  # held back by the parsed path (it asks the gate again)
    now = endpoint.loop.time()
    memory, call = overload.memory, (call_id, cseq[0])
    answer = memory.answer(call, now)
    if isinstance(answer, SipResponse):
        memory.resent += 1
    elif memory.known(call_id, now) or (number and number in overload.policy.exempt):
        return False  # the parsed path follows it (counted there) or admits it (exempt)
    elif overload.admit("invite", number):
        memory.admitted_ahead(call_id, now)
        return False
    else:
        answer = _unavailable(req, first, overload.retry_after())
        memory.shed(call, answer, now)
    overload.unparsed += 1
    endpoint.counters["stateless_answers"] += 1
    endpoint.txl.send_stateless(answer, addr, "udp")
    endpoint.flush()
    return True


def _unavailable(req: SipRequest, first: dict[str, str], retry_after: int) -> SipResponse:
    """``shedding.service_unavailable`` for a peeked request: its headers are only the
    ones a response copies, ``first`` their first values (what ``derived_tag`` hashes)."""
    digest = hashlib.sha256()
    for name in ("Call-ID", "From", "CSeq", "Via"):
        digest.update((first.get(name) or "").encode("utf-8", "surrogateescape"))
        digest.update(b"\x00")
    tag = digest.hexdigest()[:12]
    items: list[tuple[str, str]] = []
    for name, value in req.headers:
        if name == "To" and _param(value, "tag") is None:
            value = f"{value};tag={tag}"
        items.append((name, value))
    items.append(("Retry-After", str(retry_after)))
    return SipResponse(
        headers=Headers.from_canonical(items), status=503, reason="Service Unavailable"
    )
