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

The client ACKs every 503 (RFC 3261 §17.1.1.3): while shedding, an ACK whose
Call-ID and CSeq number (each present once, CSeq method ACK) name a request
the memory says was shed is dropped before the parse (``_absorb_ack``; the
parsed path would find no transaction and no dialog for it and absorb it
too). Any other ACK is parsed in full.
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

__all__ = ["ack_key", "peek_invite", "shed_datagram"]

Addr = tuple[str, int]

_NAMES: dict[bytes, str] = {name.encode("ascii"): canon for name, canon in _FAST_NAMES.items()}
_KEPT = frozenset({"Via", "From", "To", "Call-ID", "CSeq", "Record-Route"})
_URI_RE = re.compile(rb"[\x21-\x7e]+\Z")
_BLANKS = b" \t"
_ACK_CALL_ID = re.compile(rb"\r\n(?i:call-id|i)[ \t]*:[ \t]*([!-~]+)[ \t]*(?=\r\n|\Z)")
_ACK_CSEQ = re.compile(rb"\r\n(?i:cseq)[ \t]*:[ \t]*([0-9]{1,10})[ \t]+ACK[ \t]*(?=\r\n|\Z)")
_ANY_CSEQ = re.compile(rb"\r\ncseq[ \t]*:", re.I)
_ANY_CALL_ID = re.compile(rb"\r\n(?:call-id|i)[ \t]*:", re.I)


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
    """True: the datagram (a new INVITE, or the ACK of a shed one's 503) was shed or
    dropped here; False: parse it in full.

    Does anything only while the endpoint's overload control sheds.
    """
    overload = endpoint.overload
    if overload is None or not overload.overloaded:
        return False
    if not data.startswith(b"INVITE "):
        return data.startswith(b"ACK ") and _absorb_ack(endpoint, data)
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


def ack_key(data: bytes) -> tuple[str, int] | None:
    """An ACK datagram's (Call-ID, CSeq number), read from its bytes; None when not sure
    (each header once, in plain ASCII, CSeq's method ACK)."""
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end]
    if b"\r\n " in head or b"\r\n\t" in head:
        return None  # a folded line: the parser joins it to the one before
    call_ids = _ACK_CALL_ID.findall(head)
    cseqs = _ACK_CSEQ.findall(head)
    if len(call_ids) != 1 or len(cseqs) != 1 or len(_ANY_CALL_ID.findall(head)) != 1:
        return None
    if len(_ANY_CSEQ.findall(head)) != 1:
        return None
    return call_ids[0].decode("ascii"), int(cseqs[0])


def _absorb_ack(endpoint: SipEndpoint, data: bytes) -> bool:
    """Is ``data`` the ACK of an answer the overload memory holds for a shed request?"""
    assert endpoint.overload is not None
    memory = endpoint.overload.memory
    key = ack_key(data)
    if key is None:
        return False
    answer = memory.answer(key, endpoint.loop.time())
    if not isinstance(answer, SipResponse):
        return False
    memory.absorbed += 1
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
