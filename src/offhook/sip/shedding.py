"""Which SIP requests overload control may shed, and the 503 that sheds them (sans-IO).

The endpoint asks ``shed_kind`` about each new out-of-dialog request while
the node is overloaded (``core.overload``), before digest or routing:

* an INVITE is a new call (``"invite"``), unless it carries ``Replaces``
  (RFC 3891: it takes over an established call, a transfer in progress);
* a REGISTER (``"register"``) is new work only when it does not refresh a
  live binding: a refresh (same Call-ID as the binding it renews, RFC 3261
  §10.2.4) keeps a phone reachable and is always processed
  (``refreshes_binding``), so overload never unregisters the phones;
* a SUBSCRIBE (``"subscribe"``) creates a subscription (refreshes are
  in-dialog);
* everything else (OPTIONS, ACK, CANCEL, what is refused outright, every
  in-dialog request and every response) is never shed.

``service_unavailable``: the stateless ``503 Service Unavailable`` with
``Retry-After`` (RFC 3261 §21.5.4) and a To tag derived from the request,
so a retransmission gets the same answer. RFC 7339 (``oc`` Via parameters):
a client that puts ``oc`` in its Via supports overload control;
``mark_oc`` tells it how much to reduce (``oc=<percent>;oc-algo="loss"``,
``oc-validity``, ``oc-seq``) on the responses we send it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from offhook.common.errors import ParseError
from offhook.common.location import Binding
from offhook.sip.auth import parse_digest
from offhook.sip.headers import parse_name_addr
from offhook.sip.message import SipRequest, SipResponse, derived_tag, make_response
from offhook.sip.uri import parse_uri

__all__ = [
    "called_number",
    "mark_oc",
    "refreshes_binding",
    "service_unavailable",
    "shed_kind",
    "wants_oc",
]

_KINDS = {"INVITE": "invite", "REGISTER": "register", "SUBSCRIBE": "subscribe"}


def shed_kind(req: SipRequest) -> str | None:
    """The overload kind of a new out-of-dialog request, or None: never shed."""
    if req.to_tag:
        return None
    kind = _KINDS.get(req.method)
    if kind == "invite" and req.headers.get_raw("Replaces"):
        return None
    return kind


def called_number(req: SipRequest) -> str:
    """The user part of the Request-URI (what an exempt number is compared with)."""
    try:
        return parse_uri(req.uri).user_unescaped or ""
    except ParseError:
        return ""


def refreshes_binding(
    req: SipRequest,
    device_of: Callable[[str], str | None],
    bindings: Callable[[str], Iterable[Binding]],
) -> bool:
    """A REGISTER that renews (or removes) a binding we hold: same device, same Call-ID.

    The device is found from the digest user name (``Authorization``), else
    the To user (the device's name or one of its numbers); ``device_of``: the
    device of a user name (None: unknown), ``bindings``: a device's live
    bindings. Unreadable: not a refresh.
    """
    users: list[str] = []
    auth = req.headers.get("Authorization")
    try:
        if auth:
            users.append(parse_digest(auth)[1].get("username", ""))
        users.append(parse_name_addr(req.headers.get("To") or "").uri.user_unescaped or "")
        call_id = req.call_id
    except ParseError:
        return False
    for user in users:
        device = device_of(user) if user else None
        if device is not None:
            return any(b.call_id == call_id for b in bindings(device))
    return False


def service_unavailable(req: SipRequest, retry_after: int) -> SipResponse:
    """RFC 3261 §21.5.4: 503 with Retry-After, the same for a retransmission."""
    resp = make_response(req, 503, "Service Unavailable", to_tag=derived_tag(req))
    resp.headers.add("Retry-After", str(retry_after))
    return resp


def wants_oc(msg: SipRequest | SipResponse) -> bool:
    """RFC 7339 §5.1: the top Via carries ``oc`` (its sender supports overload control)."""
    try:
        top = msg.top_via
    except ParseError:
        return False
    return any(p.split("=", 1)[0].strip().lower() == "oc" for p in top.split(";")[1:])


def mark_oc(resp: SipResponse, percent: int, validity_ms: int, seq: str) -> None:
    """RFC 7339 §5.2: tell the client in the top Via how much to reduce, and for how long.

    ``seq``: ``oc-seq``, increasing with every change (the wall clock, to the
    millisecond). Any ``oc*`` parameters already there (the client's bare
    ``oc``) are replaced.
    """
    top = resp.headers.pop_first("Via")
    if top is None:
        return
    parts = top.split(";")
    kept = [parts[0], *(p for p in parts[1:] if not p.strip().lower().startswith("oc"))]
    kept += [
        f"oc={max(0, min(100, percent))}",
        'oc-algo="loss"',
        f"oc-validity={validity_ms}",
        f"oc-seq={seq}",
    ]
    resp.headers.prepend("Via", ";".join(kept))
