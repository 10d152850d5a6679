"""Message waiting from a voicemail system: an unsolicited NOTIFY message-summary (RFC 3842).

A voicemail system lights a line's message lamp by sending offhook an
out-of-dialog ``NOTIFY`` with ``Event: message-summary`` to the line's
number (the Request-URI's user part), the way it would to a phone
(RFC 3842 §3.1 allows such NOTIFYs outside any subscription). The line
may be of any protocol: an SCCP phone's lamp follows too.

It is trusted by where it comes from, as a call from a trunk is: the
source must be a configured trunk (its ``inbound_addresses``, else its host
and port), anything else is refused 403 and counted. Then the Event must
be ``message-summary`` (489), the body ``application/simple-message-summary``
(415) that parses (``message_summary``, 400), and the number a line of
the plan (404). The answer is always final and needs no transaction
(a retransmission sets the same state again), so a flood keeps nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from offhook.common.errors import ParseError
from offhook.sip.event_packages import MESSAGE_SUMMARY, parse_event
from offhook.sip.message import SipRequest, SipResponse, derived_tag, make_response
from offhook.sip.message_summary import CONTENT_TYPE, parse_message_summary
from offhook.sip.uri import parse_uri

if TYPE_CHECKING:
    from offhook.sip.notifier import EventPolicy

__all__ = ["unsolicited_notify"]

Addr = tuple[str, int]


def unsolicited_notify(
    req: SipRequest,
    from_trunk: bool,
    policy: EventPolicy,
    counters: Counter[str],
) -> SipResponse:
    """The final answer to an out-of-dialog NOTIFY; sets the line's MWI when it is good."""

    def answer(status: int, reason: str | None = None) -> SipResponse:
        counters[f"mwi_{status}"] += 1
        return make_response(req, status, reason, to_tag=derived_tag(req))

    if not from_trunk:
        return answer(403)
    try:
        event = parse_event(req.headers.get("Event") or "")
    except ParseError:
        event = None
    if event is None or event.package != MESSAGE_SUMMARY:
        resp = answer(489)
        resp.headers.add("Allow-Events", MESSAGE_SUMMARY)
        return resp
    if req.content_type() != CONTENT_TYPE:
        resp = answer(415)
        resp.headers.add("Accept", CONTENT_TYPE)
        return resp
    try:
        summary = parse_message_summary(req.body)
    except ParseError as exc:
        status = exc.status_hint or 400
        return answer(status, f"Bad Request ({exc.reason})" if status == 400 else None)
    try:
        user = parse_uri(req.uri).user_unescaped or ""
    except ParseError:
        user = ""
    if not user or not policy.set_mwi(user, summary):
        return answer(404)
    return answer(200)
