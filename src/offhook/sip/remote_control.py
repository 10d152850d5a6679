"""A CTI application answering a ringing SIP phone: the ``talk`` event (sans-IO).

Theory of operation. SIP has no standard "answer this call" request; phones
of the BroadSoft remote-control family (Polycom, Yealink, Grandstream, Cisco
MPP on BroadWorks, the Technicolor TB30, soft clients on BroadWorks) say in
the 18x they send to the INVITE that they take it (``Allow-Events: talk``,
RFC 6665 §8.2.2), and answer an unsolicited NOTIFY with ``Event: talk``
sent in the INVITE's (early) dialog by going off hook on the speaker: 200
to the NOTIFY, then 200 OK to the INVITE, as if the user had pressed
Answer (the way FreeSWITCH's ``uuid_phone_event`` or Genesys SIP Server's
TAnswerCall drive them). ``RemoteAnswer`` is that for one outbound leg:
``learn`` reads each response's Allow-Events, ``answer`` sends the NOTIFY
(once: a second request while one is out is the same request), and the
NOTIFY's own answer comes back to ``on_response``/``on_timeout``. A phone
that refuses it (4xx-6xx, no answer) keeps ringing, nothing is cleared,
and it is not asked again in this call.

What was weighed and left out (baresip 1.0, the phone of the interop tests):

* ``Call-Info: <...>;answer-after=0`` on a fresh INVITE (cancelling the
  ringing one): baresip decodes answer-after only from 1.1.0 on (commit
  6350780b, "Sip autoanswer callee"); 1.0 rings again, and the CANCEL
  leaves a missed call on the phone besides.
* ``Event: talk``: baresip (any version) has no handler for a NOTIFY
  outside its own subscriptions (1.0 answers 481) and does not advertise
  ``talk``: it is never asked (False), the call keeps ringing for its user.
* ``Event: hold``: the same family honours it for hold, but call control
  holds SIP phones from the network side (music on hold), so ``remote``
  answers False to Hold and Resume.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Protocol

from offhook.sip.dialog import Dialog, DialogState
from offhook.sip.message import Headers, SipRequest, SipResponse

log = logging.getLogger("offhook.sip")

TALK = "talk"
TALK_HEADERS = (("Event", TALK), ("Subscription-State", "active"))
"""The unsolicited NOTIFY's headers (the Subscription-State RFC 6665 §8.2.3 requires)."""
MAX_EVENTS = 32
"""Event packages kept from one Allow-Events (a peer listing more is cut short)."""

# RFC 6665 §8.4 event-type: token-nodot *( "." token-nodot ).
_EVENT_TYPE = re.compile(r"[A-Za-z0-9\-!%*_+`'~]+(?:\.[A-Za-z0-9\-!%*_+`'~]+)*")


def allowed_events(headers: Headers) -> frozenset[str]:
    """The event packages a peer says it takes (``Allow-Events``, compact ``u``), lower-case.

    Anything that is not an event type is skipped; at most ``MAX_EVENTS``.
    """
    found: set[str] = set()
    for value in headers.get_all("Allow-Events"):
        token = value.strip().lower()
        if _EVENT_TYPE.fullmatch(token):
            found.add(token)
            if len(found) >= MAX_EVENTS:
                break
    return frozenset(found)


class TalkLeg(Protocol):
    """What ``RemoteAnswer`` needs of its SIP leg."""

    @property
    def dialog(self) -> Dialog | None: ...

    def send_in_dialog(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        contact: bool = False,
    ) -> SipRequest | None: ...


class RemoteAnswer:
    """The ``talk`` event toward one called phone (``OutboundLeg.remote``)."""

    def __init__(self, leg: TalkLeg) -> None:
        self.leg = leg
        self.events: frozenset[str] = frozenset()
        self.pending: SipRequest | None = None  # the NOTIFY awaiting its answer
        self.refused = False  # the phone said no (or nothing) once: not again
        self.answered: int | None = None  # its final answer to the last NOTIFY (0: none came)

    def learn(self, resp: SipResponse) -> None:
        """A response to the INVITE: what it says the phone takes (the latest that says)."""
        if "Allow-Events" in resp.headers:
            self.events = allowed_events(resp.headers)

    @property
    def supported(self) -> bool:
        return TALK in self.events and not self.refused

    def answer(self) -> bool:
        """Ask the ringing phone to answer; False when it cannot be asked.

        The caller (the leg) checks that the call is still ringing; here:
        the phone said it takes ``talk``, and the early dialog exists.
        """
        if self.pending is not None:
            return True  # asked already, its answer not in yet
        if not self.supported:
            return False
        dialog = self.leg.dialog
        if dialog is None or dialog.state is not DialogState.EARLY:
            return False
        self.pending = self.leg.send_in_dialog("NOTIFY", headers=TALK_HEADERS, contact=True)
        if self.pending is None:
            return False
        log.info("sip: asking %s to answer (NOTIFY Event: talk)", dialog.call_id)
        return True

    def on_response(self, req: SipRequest, resp: SipResponse) -> bool:
        """A response to one of our requests: True when it was the talk NOTIFY's."""
        if self.pending is None or req is not self.pending:
            return False
        if resp.status < 200:
            return True
        self.pending = None
        self.answered = resp.status
        if resp.status >= 300:
            self.refused = True
            log.info("sip: %s refused the talk event (%d): it keeps ringing",
                     req.call_id, resp.status)  # fmt: skip
        return True

    def on_timeout(self, req: SipRequest) -> bool:
        """No answer to a request of ours: True when it was the talk NOTIFY."""
        if self.pending is None or req is not self.pending:
            return False
        self.pending = None
        self.answered = 0
        self.refused = True
        log.info("sip: no answer to the talk event on %s: it keeps ringing", req.call_id)
        return True
