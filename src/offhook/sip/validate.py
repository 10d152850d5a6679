"""Checks a server makes on a parsed request before acting on it.

``parse_message`` only frames; this module applies the RFC 3261 §8.2 /
RFC 4475 §3.1.2 and §3.3 rules that need the structured header views:
mandatory headers, single-valued headers, CSeq, Via, From/To/Contact
syntax, Request-URI scheme, Max-Forwards, Require, Content-Type, Accept,
Expires and Date. ``check_request`` returns the answer to send
(status, reason, extra headers) or None when the request may proceed.
``check_response`` returns why a response must be dropped, or None.

Each check of a From, To, Via, Contact or Request-URI value depends on that
value alone, and the next message of a dialog or transaction carries the same
values (the ACK and BYE the INVITE's From, a 180 and 200 the Via, From and To
of their 100). ``KnownGood`` remembers values that passed lately, so those are
looked up instead of parsed again; a value never seen is always parsed. The
verdicts are the same with or without it (``tests/unit/sip/test_validate.py``).

Which RFC 4475 vector is refused where (parser vs here) is listed in
``tests/vectors/test_rfc4475.py``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

from offhook.common.errors import ParseError
from offhook.sip.abnf import CALLID_RE, DIGITS_RE, TOKEN_CLASS
from offhook.sip.extensions import SUPPORTED_TAGS
from offhook.sip.headers import NameAddr, parse_contact_list, parse_name_addr, parse_via
from offhook.sip.message import SipRequest, SipResponse, split_list
from offhook.sip.uri import SIP_SCHEMES, parse_uri

Verdict = tuple[int, str, dict[str, str]]

# RFC 3261 §8.1.1: every request carries these.
MANDATORY = ("To", "From", "Call-ID", "CSeq", "Via")
# Headers that may appear at most once (RFC 3261 §7.3.1, RFC 4475 multi01 / mcl01).
SINGLE_VALUED = (
    "To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type",
    "Expires", "Date", "Min-Expires", "MIME-Version", "Content-Disposition", "RSeq", "RAck",
    "Session-Expires", "Min-SE",
)  # fmt: skip
# Option tags this server implements (RFC 3261 §8.2.2.3): 100rel, timer, replaces.
SUPPORTED: frozenset[str] = SUPPORTED_TAGS
# Methods whose body this server interprets as a session description.
SDP_METHODS = frozenset({"INVITE", "UPDATE", "PRACK", "ACK"})
_MAX_UINT32 = 2**32 - 1
# RFC 3261 §25.1 SIP-date = rfc1123-date, always GMT (RFC 4475 baddate)
_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT\Z"
)
_ACCEPT_SDP = {"application/sdp", "application/*", "*/*"}
# Values longer than this are checked every time (a dialog's From/To/Via are far shorter).
_KNOWN_MAX_LEN = 512


class KnownGood:
    """Header values that passed their checks lately; at most ``limit`` of each kind
    (all of a kind are forgotten when it is full, so it never grows nor costs upkeep).

    - ``name_addrs``: From/To values that parse, -> whether their URI is a SIP URI
    - ``vias``: via-parms that parse with protocol SIP/2.0, -> whether their branch is
      more than the bare magic cookie (what a top Via needs, RFC 4475 badbranch)
    - ``contacts``: Contact header values that parse, with valid expires parameters
    - ``uris``: Request-URIs that parse, -> (scheme, is a SIP URI with headers)
    - ``via_shapes``: via-parms that parse with protocol SIP/2.0, with their one
      ``;branch=<token>`` value replaced by a placeholder (see ``_via_shape``): every
      new transaction's Via differs from the last one only in its branch
    """

    __slots__ = ("contacts", "limit", "name_addrs", "uris", "via_shapes", "vias")

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self.name_addrs: dict[str, bool] = {}
        self.vias: dict[str, bool] = {}
        self.contacts: set[str] = set()
        self.uris: dict[str, tuple[str, bool]] = {}
        self.via_shapes: set[str] = set()

    def remember(self, table: dict[str, Any] | set[str], value: str) -> bool:
        """Whether ``value`` may be added to ``table`` (emptied first when full)."""
        if len(value) > _KNOWN_MAX_LEN:
            return False
        if len(table) >= self.limit:
            table.clear()
        return True


class _Index:
    """Header values by name, built in one pass.

    Validation looks up a dozen names; scanning the header list for each
    would cost more than parsing the message did. Every name a ``Headers``
    holds went through ``canonical_name`` and validation looks up only known
    headers, by their canonical spelling: the names are compared as they are.
    ``repeated``: some name has more than one line.
    """

    __slots__ = ("_by", "repeated")

    def __init__(self, headers: Iterable[tuple[str, str]]) -> None:
        by: dict[str, list[str]] = {}
        lines = 0
        for n, v in headers:
            lines += 1
            values = by.get(n)
            if values is None:
                by[n] = [v]
            else:
                values.append(v)
        self._by = by
        self.repeated = lines != len(by)

    def __contains__(self, name: str) -> bool:
        return name in self._by

    def get(self, name: str) -> str | None:
        values = self._by.get(name)
        return values[0] if values else None

    def get_raw(self, name: str) -> list[str]:
        return self._by.get(name, [])

    def get_all(self, name: str) -> list[str]:
        out: list[str] = []
        for v in self.get_raw(name):
            out.extend(split_list(v))
        return out


# The one ``;branch=<token>`` of a Via value (a token: RFC 3261 §25.1, abnf.TOKEN_RE).
_BRANCH_RE = re.compile(rf";branch=([{TOKEN_CLASS}]+)(?=;|\Z)")


def _via_shape(via: str) -> tuple[str, str] | None:
    """(``via`` with its branch value replaced by a fixed token, the branch), or None.

    Only for a value whose one mention of "branch" (in any case) is ``;branch=`` and a
    token up to the next ``;`` or the end, and with no quote: ``parse_via`` accepts any
    token there, so the value parses iff its shape does, to the same protocol, and its
    branch parameter is that token.
    """
    if '"' in via or via.lower().count("branch") != 1:
        return None
    m = _BRANCH_RE.search(via)
    if m is None:
        return None
    return f"{via[: m.start(1)]}z9hG4bK.{via[m.end(1) :]}", m.group(1)


def _bad(reason: str) -> Verdict:
    return 400, f"Bad Request ({reason})", {}


def _common(msg: SipRequest | SipResponse, h: _Index, known: KnownGood) -> tuple[int, str] | str:
    """Checks shared by requests and responses: the CSeq (number, method), or why not."""
    if h.repeated:
        by = h._by
        for name in SINGLE_VALUED:
            values = by.get(name)
            if values is not None and len(values) > 1:
                return f"multiple {name} headers"
    try:
        cseq = msg.cseq  # raises ParseError when malformed
        vias = h.get_all("Via")
        if not vias:
            return "missing Via"
        known_vias = known.vias
        for v in vias:
            if v not in known_vias:
                shape = _via_shape(v)
                if shape is not None and shape[0] in known.via_shapes:
                    branch: str | None = shape[1]
                else:
                    via = parse_via(v)
                    if via.protocol != "SIP/2.0":
                        return "bad Via protocol"
                    branch = via.branch
                    if shape is not None and known.remember(known.via_shapes, shape[0]):
                        known.via_shapes.add(shape[0])
                if known.remember(known_vias, v):
                    known_vias[v] = branch is None or branch.lower() != "z9hg4bk"
        names = known.name_addrs
        for name in ("From", "To"):
            value = h.get(name)
            if value is None:
                return f"missing {name}"
            if value not in names:
                is_sip = parse_name_addr(value).uri.is_sip
                if known.remember(names, value):
                    names[value] = is_sip
    except ParseError as exc:
        return exc.reason
    call_id = h.get("Call-ID")
    if call_id is None or CALLID_RE.match(call_id) is None:
        return "bad Call-ID"
    return cseq


def check_response(resp: SipResponse, known: KnownGood | None = None) -> str | None:
    """Why a response must be dropped (RFC 4475 §3.1.2.5 scalarlg), or None.

    ``known``: the caller's memory of values that passed (none: parse every one)."""
    problem = _common(resp, _Index(resp.headers), KnownGood() if known is None else known)
    return problem if isinstance(problem, str) else None


def check_request(
    req: SipRequest,
    supported: Collection[str] = SUPPORTED,
    schemes: Collection[str] = SIP_SCHEMES,
    known: KnownGood | None = None,
) -> Verdict | None:
    """The answer for a request that fails an RFC 3261 §8.2 check, or None if it passes.

    Returns (status, reason, extra headers), e.g.
    ``(420, "Bad Extension", {"Unsupported": "foo"})``. ``known``: the caller's
    memory of values that passed (none: parse every one).
    """
    if known is None:
        known = KnownGood()
    h = _Index(req.headers)
    # RFC 3261 §8.1.1 mandatory headers (RFC 4475 insuf)
    missing = [n for n in MANDATORY if n not in h]
    if missing:
        return _bad("missing " + ", ".join(missing))
    cseq = _common(req, h, known)
    if isinstance(cseq, str):
        return _bad(cseq)
    num, method = cseq
    if num >= 2**31:  # RFC 3261 §8.1.1.5: less than 2**31 (RFC 4475 scalar02)
        return _bad("CSeq out of range")
    # RFC 3261 §8.1.1.5, RFC 4475 mismatch01/02
    if method != req.method:
        return _bad("CSeq method does not match")
    # RFC 4475 §3.2.1 badbranch: the magic cookie alone identifies nothing.
    top = h.get_all("Via")[0]
    branch_ok = known.vias.get(top)
    if branch_ok is None:  # not remembered (too long): parsed again
        branch = parse_via(top).branch
        branch_ok = branch is None or branch.lower() != "z9hg4bk"
    if not branch_ok:
        return _bad("missing transaction identifier in branch")
    contacts: list[NameAddr] = []
    new_contacts: list[str] = []
    for value in h.get_raw("Contact"):
        if value in known.contacts:
            continue  # parsed, with valid expires parameters
        try:
            parsed = parse_contact_list(value)
        except ParseError as exc:
            return _bad(f"Contact: {exc.reason}")
        if parsed != "*":
            contacts.extend(parsed)
        new_contacts.append(value)
    verdict = _check_scalars(req, h, contacts)
    if verdict is not None:
        return verdict
    for value in new_contacts:
        if known.remember(known.contacts, value):
            known.contacts.add(value)
    # Request-URI (RFC 3261 §8.2.2.1, RFC 4475 ltgtruri / escruri / unkscm / novelsc)
    uri = known.uris.get(req.uri)
    if uri is None:
        try:
            ruri = parse_uri(req.uri)
        except ParseError:
            return _bad("malformed Request-URI")
        uri = ruri.scheme, bool(ruri.is_sip and ruri.headers)
        if known.remember(known.uris, req.uri):
            known.uris[req.uri] = uri
    scheme, sip_with_headers = uri
    if scheme not in schemes:
        return 416, "Unsupported URI Scheme", {}
    if sip_with_headers:
        return _bad("headers in Request-URI")
    if req.method == "REGISTER":
        # RFC 3261 §10.3 step 5: the address-of-record is a SIP or SIPS URI (unksm2)
        to = h.get("To") or ""
        to_is_sip = known.name_addrs.get(to)
        if to_is_sip is None:
            to_is_sip = parse_name_addr(to).uri.is_sip
        if not to_is_sip:
            return _bad("To is not a SIP URI")
    # RFC 3261 §16.3 step 3 / RFC 4475 zeromf
    mf = h.get("Max-Forwards")
    if mf is not None and int(mf) == 0:
        return 483, "Too Many Hops", {}
    # RFC 3261 §8.2.2.3 Require (RFC 4475 bext01)
    if req.method not in ("ACK", "CANCEL"):
        unknown = [t for t in h.get_all("Require") if t.lower() not in supported]
        if unknown:
            return 420, "Bad Extension", {"Unsupported": ", ".join(unknown)}
    return _check_content(req, h)


def _check_scalars(req: SipRequest, h: _Index, contacts: list[NameAddr]) -> Verdict | None:
    mf = h.get("Max-Forwards")
    if mf is not None and (DIGITS_RE.match(mf) is None or len(mf) > 5 or int(mf) > 255):
        return _bad("bad Max-Forwards")
    cl = h.get("Content-Length")
    if cl is not None and (DIGITS_RE.match(cl) is None or int(cl) != len(req.body)):
        return _bad("Content-Length mismatch")
    exp = h.get("Expires")
    if exp is not None and (
        DIGITS_RE.match(exp) is None or len(exp) > 10 or int(exp) > _MAX_UINT32
    ):
        return _bad("bad Expires")
    for c in contacts:
        e = c.expires
        if e is not None and (DIGITS_RE.match(e) is None or len(e) > 10 or int(e) > _MAX_UINT32):
            return _bad("bad Contact expires")
    date = h.get("Date")
    if date is not None and _DATE_RE.match(date) is None:
        return _bad("bad Date")
    return None


def _check_content(req: SipRequest, h: _Index) -> Verdict | None:
    if req.method == "INVITE":
        accept = h.get_raw("Accept")
        if accept:
            types = {a.split(";")[0].strip().lower() for a in h.get_all("Accept")}
            # RFC 4475 §3.3.15 sdp01: the answer cannot be in an acceptable type.
            if not types & _ACCEPT_SDP:
                return 406, "Not Acceptable", {"Accept": "application/sdp"}
    if not req.body:
        return None
    ctype = req.content_type()
    if ctype is None:
        return _bad("body without Content-Type")  # RFC 3261 §20.15
    # RFC 3261 §8.2.3, RFC 4475 invut: 415 with the types we accept
    if req.method in SDP_METHODS and ctype != "application/sdp":
        if req.method == "ACK":
            return None
        return 415, "Unsupported Media Type", {"Accept": "application/sdp"}
    return None
