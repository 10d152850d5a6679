"""atheris fuzz target for CTI Answer on a SIP phone (``offhook.sip.remote_control``).

Parsers: ``Allow-Events`` as a called phone's responses carry it (any text,
repeated lines, the compact form ``u``), and ``RemoteAnswer`` driven by what
the phone sends back: its responses to the INVITE, and the answers (or the
silence) to the talk NOTIFY.

Invariant: nothing raises. Besides: the events kept are at most
``MAX_EVENTS`` lower-case event types; at most one NOTIFY is ever out; no
NOTIFY is sent to a phone whose last Allow-Events lacked ``talk``, nor
after the phone refused one, nor outside an early dialog; ``answer`` is
True exactly when a NOTIFY is out.

The first byte of each step picks what happens; a step's text runs to the
next newline::

    python fuzz/fuzz_remote_control.py -max_total_time=20 fuzz/corpus/fuzz_remote_control
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import atheris

with atheris.instrument_imports():
    from offhook.sip.dialog import Dialog, DialogState
    from offhook.sip.message import Headers, SipRequest, SipResponse
    from offhook.sip.remote_control import MAX_EVENTS, TALK, RemoteAnswer, allowed_events


class _Leg:
    """The leg's side: an early dialog that may be confirmed or ended; NOTIFYs sent."""

    def __init__(self) -> None:
        self.dialog: Dialog | None = Dialog(
            "c@x", "a", "b", "<sip:a@x>", "<sip:b@y>", "sip:b@y", (), 1, None, True,
            state=DialogState.EARLY,
        )  # fmt: skip
        self.sent: list[SipRequest] = []

    def send_in_dialog(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        contact: bool = False,
    ) -> SipRequest | None:
        if self.dialog is None:
            return None
        req = self.dialog.create_request(method, headers=headers)
        self.sent.append(req)
        return req


def _check(control: RemoteAnswer) -> None:
    if len(control.events) > MAX_EVENTS:
        raise AssertionError("too many events kept")
    for event in control.events:
        if event != event.lower() or not event or "," in event or event != event.strip():
            raise AssertionError(f"bad event type {event!r}")


def test_one_input(data: bytes) -> None:
    leg = _Leg()
    control = RemoteAnswer(leg)
    for line in data.split(b"\n")[:64]:
        if not line:
            continue
        op, text = line[0] % 6, line[1:].decode("utf-8", "replace")
        if op == 0:  # a response to the INVITE with Allow-Events lines
            name = "u" if len(text) % 2 else "Allow-Events"
            resp = SipResponse(status=180, headers=Headers([(name, v) for v in text.split("|")]))
            control.learn(resp)
            if control.events != allowed_events(resp.headers):
                raise AssertionError("learn and allowed_events disagree")
        elif op == 1:  # the application asks
            before = len(leg.sent)
            out = control.pending is not None
            asked = control.answer()
            sent = len(leg.sent) - before
            if sent > 1 or (sent and out):
                raise AssertionError("a second NOTIFY")
            if sent and (TALK not in control.events or control.refused):
                raise AssertionError("asked a phone that does not take talk")
            if sent and (leg.dialog is None or leg.dialog.state is not DialogState.EARLY):
                raise AssertionError("NOTIFY outside an early dialog")
            if asked != (control.pending is not None):
                raise AssertionError("answer() disagrees with the NOTIFY out")
        elif op == 2 and leg.sent:  # the phone answers the last NOTIFY
            status = 100 + int.from_bytes(line[1:3] or b"\0", "big") % 600
            control.on_response(leg.sent[-1], SipResponse(status=status))
        elif op == 3 and leg.sent:
            control.on_timeout(leg.sent[-1])
        elif op == 4 and leg.dialog is not None:  # answered, or the call is gone
            leg.dialog.state = DialogState.CONFIRMED if len(text) % 2 else DialogState.TERMINATED
        elif op == 5:  # a response to something else entirely
            other = SipRequest(method="INFO", headers=Headers())
            if control.on_response(other, SipResponse(status=200)) or control.on_timeout(other):
                raise AssertionError("took another request's answer")
        _check(control)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
