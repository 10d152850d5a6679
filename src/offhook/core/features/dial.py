"""Click-to-dial (CTI make call): ring the user's phone, then call the number from it.

Theory of operation
-------------------
``CtiOps.cti_make_call`` starts a call whose caller's leg is an
``Originator``: a quiet stand-in in the device's name (its states are not
published, applications never find it). The call rings every live binding
of the device, showing the number to be called as the calling party, with no
offer (a delayed offer: the phone makes one when it answers) and
``auto_answer`` when asked. The call's own ``Setup`` (its record) is the
device's line calling the number.

When the phone answers, its offer is answered with a black hole (``inactive``
on no address: it sends and hears nothing yet, RFC 3725 §5), the other
bindings stop ringing, and the phone's leg takes the originator's place as
the call's caller: the call is routed to the number exactly as if the phone
had dialled it (feature codes first, then digit analysis with the device's
calling search space, from the device's line), with the phone's offer.
From then on the caller is a connected leg of a call that rings, as a
transferee moved into a ringing call is: the far end's early media and
ringback are offered to it, one offer at a time, and the far end's answer
joins the two (``transfer.connect_moved``). Features that answer the caller
(pickup, park retrieval) re-offer it instead.

=============================  ===============================================
event                          action
=============================  ===============================================
the phone rings or progresses  its leg's state only (nothing to relay)
the phone answers              black hole answer; other bindings released
                               (26); the call is routed as if dialled
every binding failed, or the   the call ends with that cause (its record: the
ring timeout                   line called the number, never answered)
far end early media            offered to the phone
far end alerting, no media     ringback from the media server as early media
                               (offered to the phone); without a media server
                               the phone is asked to play ringback itself
far end answers                ringback off; media joined once no offer to
                               the phone is in flight
=============================  ===============================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from offhook.core.call import EARLY_MEDIA_DEVICE
from offhook.core.causes import Cause
from offhook.core.events import Tone
from offhook.core.features import codes, hold, transfer
from offhook.core.features.resources import ResourceDriver
from offhook.core.leg import LegEvent
from offhook.core.media import INACTIVE, MediaDescription, MediaStream
from offhook.core.ports import LegDriver

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.engine import CallEngine
    from offhook.core.events import Setup
    from offhook.core.leg import Leg

log = logging.getLogger(__name__)

RINGBACK = "tone:ringback"


@dataclass(slots=True, eq=False)
class Dial:
    """A click-to-dial call's own state (``Call.dial``)."""

    number: str  # what is called once the phone answers
    ringing: bool = True  # the user's phone is being rung (not routed yet)
    tone: bool = False  # the phone was asked to play ringback itself
    # Early media waiting for the offer to the phone in flight: (media, offerer).
    waiting: tuple[MediaDescription, Leg | None] | None = None


class Originator(LegDriver):
    """The caller's side of a click-to-dial call until the phone answers: nothing to drive."""

    def offer(self, setup: Setup) -> None:  # pragma: no cover - an inbound stand-in
        return None

    def progress(self, media: MediaDescription | None) -> None:
        return None

    def alert(self, media: MediaDescription | None) -> None:
        return None

    def answer(self, media: MediaDescription | None) -> None:
        return None

    def update_media(self, offer: MediaDescription) -> None:  # pragma: no cover - never offered
        return None

    def media_answer(self, answer: MediaDescription | None, cause: int | None) -> None:
        return None

    def release(self, cause: int) -> None:
        return None


def black_hole(offer: MediaDescription) -> MediaDescription:
    """An answer to ``offer`` that starts no media: ``inactive``, on the unspecified address."""
    streams: list[MediaStream] = []
    for stream in offer.streams:
        if stream.rejected:
            streams.append(stream)
            continue
        streams.append(
            MediaStream(
                stream.kind,
                "::" if ":" in stream.address else "0.0.0.0",
                9,
                stream.codecs[:1],
                direction=INACTIVE,
                ptime=stream.ptime,
            )
        )
    return MediaDescription(tuple(streams))


# ---------------------------------------------------------------- the phone rings
def device_early(
    engine: CallEngine, call: Call, leg: Leg, media: MediaDescription | None, event: LegEvent
) -> None:
    """The user's phone rings (or progresses): only its leg's state changes."""
    engine.fire(leg, event)
    if media is not None:
        leg.media = media


def device_answered(
    engine: CallEngine, call: Call, leg: Leg, media: MediaDescription | None
) -> None:
    """The user's phone answered: it becomes the caller, and the number is called."""
    dial = call.dial
    assert dial is not None
    engine.fire(leg, LegEvent.CONNECT)
    leg.media = media
    for other in call.live_forks():
        if other is not leg:
            engine.release_leg(other, Cause.NON_SELECTED_USER_CLEARING)
    if media is not None:
        silence = black_hole(media)
        engine.drive(leg, lambda d: d.media_answer(silence, None))
    engine.forget(call.a_leg)
    call.a_leg = leg
    call.forks = []
    call.b_leg = None
    call.called_device = ""
    call.failures.clear()
    call.ring_deadline = None
    call.alerted = call.relayed = False
    call.relayed_media = call.early_answer = None
    dial.ringing = False
    call.setup = replace(call.setup, media=transfer.sendrecv(media) if media is not None else None)
    log.info("call %s: %s answered, calling %s", call.id, leg.device, dial.number)
    try:
        if not codes.intercept(engine, call, leg, call.setup):
            engine.analyse(call, call.setup, engine.css_of(leg))
    except Exception:
        log.exception("routing call %s failed", call.id)
        engine.end_call(call, Cause.TEMPORARY_FAILURE)


# ---------------------------------------------------------------- the far end rings
def early(
    engine: CallEngine, call: Call, leg: Leg, media: MediaDescription | None, alert: bool
) -> None:
    """Early media or alerting from the far end, for the phone (connected already)."""
    dial = call.dial
    assert dial is not None
    a = call.a_leg
    first_alert = alert and not call.alerted
    call.relayed = True
    if media is not None:
        call.relayed_media = media
        if dial.tone:
            dial.tone = False
            engine.drive(a, lambda d: d.play_tone(Tone.OFF))
        offerer = leg if leg.device == EARLY_MEDIA_DEVICE else None
        offer(engine, call, a, media, offerer)
    elif first_alert and not call.ringback:
        ringback(engine, call, a)


def ringback(engine: CallEngine, call: Call, a: Leg) -> None:
    """The far end rings without early media: the phone hears ringback."""
    dial = call.dial
    assert dial is not None
    if engine.media is None or call.setup.media is None:
        dial.tone = True
        engine.drive(a, lambda d: d.play_tone(Tone.RINGBACK))
        return
    call.ringback = True
    port = engine.add_port(
        call, hold.family_of(call.setup.media), play=RINGBACK, early=True, device=a.device
    )
    driver = port.driver
    assert isinstance(driver, ResourceDriver)
    engine.fire(port, LegEvent.OFFER)
    driver.offer(call.setup)


def offer(
    engine: CallEngine, call: Call, a: Leg, media: MediaDescription, offerer: Leg | None
) -> None:
    """Offer ``media`` to the phone, after the offer to it in flight (the newest waits)."""
    dial = call.dial
    assert dial is not None
    if a.id not in call.pending:
        engine.offer_media(a, media, offerer=offerer)
        return
    queued = dial.waiting is not None
    dial.waiting = (media, offerer)
    if not queued:
        engine.after_offers(call, (a,), lambda: _next(engine, call, a))


def _next(engine: CallEngine, call: Call, a: Leg) -> None:
    dial = call.dial
    if dial is None or dial.waiting is None:
        return
    (media, offerer), dial.waiting = dial.waiting, None
    if call.connected or call.ended or a.released:
        return  # the far end answered: its media is joined instead
    if offerer is not None and offerer.released:
        return
    offer(engine, call, a, media, offerer)


def far_answered(engine: CallEngine, call: Call) -> None:
    """The far end answered: the phone's own ringback stops, waiting early media is dropped."""
    dial = call.dial
    if dial is None:
        return
    dial.waiting = None
    if dial.tone:
        dial.tone = False
        engine.drive(call.a_leg, lambda d: d.play_tone(Tone.OFF))
