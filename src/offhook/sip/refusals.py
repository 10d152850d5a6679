"""Answers to out-of-dialog requests that need no transaction and no state. Sans-IO.

``out_of_dialog_answer`` is the final answer to a new request that is not
REGISTER, INVITE, ACK or CANCEL, the same for a retransmission (the To tag
is derived from the request, RFC 3261 §8.2.7): OPTIONS 200 with what we
support; BYE, INFO and PRACK outside a dialog 481 (RFC 3262 §3: a PRACK
for nothing); REFER outside a dialog 403 (offhook transfers only calls it
is in, for the device in them); SUBSCRIBE 489 (no event package);
unknown methods 501 (RFC 3261 §21.5.2, e.g. RFC 4475 ``RE%47IST%45R``);
known ones we do not serve 405 with Allow (§8.2.1).
"""

from __future__ import annotations

from offhook.sip.extensions import ALLOW, SUPPORTED
from offhook.sip.message import SipRequest, SipResponse, derived_tag, make_response

__all__ = ["KNOWN_METHODS", "out_of_dialog_answer"]

USER_AGENT = "offhook"
SDP = "application/sdp"

# Methods of RFC 3261 and its registered extensions.
KNOWN_METHODS = frozenset(
    {
        "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "PRACK",
        "SUBSCRIBE", "NOTIFY", "PUBLISH", "REFER", "MESSAGE", "UPDATE",
    }
)  # fmt: skip

_STATUS = {"BYE": 481, "INFO": 481, "PRACK": 481, "REFER": 403, "SUBSCRIBE": 489}


def out_of_dialog_answer(req: SipRequest) -> SipResponse:
    """The final answer to a new request other than REGISTER, INVITE, ACK, CANCEL."""
    method = req.method
    tag = derived_tag(req)
    if method == "OPTIONS":
        resp = make_response(req, 200, to_tag=tag)
        resp.headers.add("Allow", ALLOW)
        resp.headers.add("Accept", SDP)
        resp.headers.add("Supported", SUPPORTED)
        resp.headers.add("Server", USER_AGENT)
        return resp
    status = _STATUS.get(method)
    if status is not None:
        return make_response(req, status, to_tag=tag)
    if method not in KNOWN_METHODS:
        return make_response(req, 501, to_tag=tag)
    resp = make_response(req, 405, to_tag=tag)
    resp.headers.add("Allow", ALLOW)
    return resp
