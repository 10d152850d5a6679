"""Hold and resume: the held party hears music on hold from the media server.

A device puts its call on hold with a media offer that asks for nothing
back (``sendonly``/``inactive``, or ``c=0.0.0.0`` from old phones); resume is
any later offer that does. With ``hold_reversion`` set, a holder that
leaves a call held that long is reminded (a tone and a prompt, where the
device can show them: SCCP), and again each such interval. Call control answers the holder itself
(``inactive``: it should send nothing) and, when a media server is
available, moves the held party's media to a music-on-hold endpoint; on
resume the endpoint is released and the holder's offer goes to the held
party, so the two talk directly again. Without a media server, the hold
offer goes to the held party as it is (it hears silence), as before.

======================  ==================  =====================================
holder's offer          holder holding?     action
======================  ==================  =====================================
hold                    no                  answer holder; held party -> MOH
hold (a refresh)        yes                 answer holder again, nothing else
not hold                yes                 release MOH; offer goes to held party
not hold                no                  not a hold matter: forwarded as usual
======================  ==================  =====================================

Each hold and resume is published (``CallHeld``/``CallResumed``): ``by``
"device" when the phone's user did it, "cti" when an application asked
the phone (``Leg.requested``) or held it from the network side
(``network_hold``: for a device that cannot be asked, call control offers
it ``inactive`` itself and moves the party to music the same way; the
resume is ``core.cti_ops``'s). Without a media server a phone's hold offer
still goes to the party as it came, and is published all the same.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from offhook.core.events import Tone
from offhook.core.features.resources import ResourceDriver
from offhook.core.leg import LegEvent, LegState
from offhook.core.media import INACTIVE, MediaDescription, MediaStream
from offhook.core.records import CallHeld, CallResumed

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.engine import CallEngine
    from offhook.core.leg import Leg


def family_of(media: MediaDescription | None) -> int:
    """The IP family of a description's first active stream (4 by default)."""
    if media is not None:
        for stream in media.active_streams():
            if ":" in stream.address:
                return 6
            break
    return 4


def hold_answer(offer: MediaDescription, party: Leg) -> MediaDescription:
    """Call control's answer to a hold offer: ``inactive`` (RFC 3264 §6.1 allows it for
    sendonly and inactive offers), on the held party's address."""
    theirs = party.media.active_streams() if party.media is not None else ()
    streams: list[MediaStream] = []
    for index, stream in enumerate(offer.streams):
        if stream.rejected:
            streams.append(stream)
            continue
        ref = theirs[index] if index < len(theirs) else stream
        streams.append(
            MediaStream(
                stream.kind,
                ref.address or stream.address,
                ref.port or 9,
                stream.codecs[:1],
                direction=INACTIVE,
                ptime=stream.ptime,
            )
        )
    return MediaDescription(tuple(streams))


def _is_device(call: Call, leg: Leg | None) -> bool:
    return leg is not None and leg not in call.resources and not leg.released


def requested_by(leg: Leg, action: str) -> str:
    """Who made ``leg``'s device do ``action``: "cti" when an application asked it to
    (``Leg.requested``, consumed here), else "device" (its user did)."""
    if leg.requested == action:
        leg.requested = ""
        return "cti"
    return "device"


def on_offer(engine: CallEngine, call: Call, leg: Leg, offer: MediaDescription) -> bool:
    """Handle ``leg``'s offer if it is a hold matter; False: forward it as usual."""
    if leg in call.resources or not call.connected:
        return False
    held = call.holds.get(leg.id)
    holding = offer.is_hold()
    if held is None and not holding:
        if leg.id in call.silent_holds:
            call.silent_holds.discard(leg.id)
            by = requested_by(leg, "resume")
            engine.publish(CallResumed(call.id, leg.id, leg.device, by))
        return False
    if held is not None and holding:
        engine.fire(leg, LegEvent.MEDIA)
        leg.media = offer
        answer = hold_answer(offer, held)
        engine.drive(leg, lambda d: d.media_answer(answer, None))
        return True
    if held is None:
        party = call.other(leg)
        if not _is_device(call, party):
            return False
        assert party is not None
        if engine.media is None:
            # No music: the offer goes to the held party as it came (silence).
            if leg.id not in call.silent_holds:
                call.silent_holds.add(leg.id)
                by = requested_by(leg, "hold")
                engine.publish(CallHeld(call.id, leg.id, leg.device, party.device, by))
            return False
        engine.fire(leg, LegEvent.MEDIA)
        leg.media = offer
        answer = hold_answer(offer, party)
        music_on_hold(engine, call, leg, party, offer)
        engine.drive(leg, lambda d: d.media_answer(answer, None))
        by = requested_by(leg, "hold")
        engine.publish(CallHeld(call.id, leg.id, leg.device, party.device, by))
        return True
    # Resume: the held party goes back to the holder, directly; after the
    # music's own offer to it, if that is still in flight.
    if held.id in call.pending:
        call.deferred.append((leg, offer))
        return True
    end_hold(engine, call, leg)
    engine.publish(CallResumed(call.id, leg.id, leg.device, requested_by(leg, "resume")))
    return False


def music_on_hold(
    engine: CallEngine, call: Call, holder: Leg, party: Leg, silence: MediaDescription
) -> None:
    """``holder`` holds ``party``: the party is moved to music on hold (a media server
    endpoint); when none can be opened, ``silence`` is offered to it instead."""
    call.holds[holder.id] = party
    call.peers[holder.id] = None
    _schedule_reminder(engine, call, holder)
    if engine.media is None:
        engine.offer_media(party, silence)
        return
    moh = engine.add_resource(
        call, family_of(party.media), play=engine.moh_for(holder), device=party.device
    )
    call.peers[party.id] = moh
    call.peers[moh.id] = party
    driver = moh.driver
    assert isinstance(driver, ResourceDriver)

    def without_music() -> None:
        # No media server endpoint: the hold offer goes to the held party
        # as it came (it hears silence), as without a media server.
        _drop_music(engine, call, party, 47)
        if not party.released and not call.ended:
            engine.offer_media(party, silence)

    driver.on_open_failed = without_music
    driver.start_offering()


def network_hold(engine: CallEngine, call: Call, holder: Leg, by: str = "cti") -> bool:
    """Hold ``holder``'s party from the network side; False when there is nothing to hold.

    The holder's device is offered ``inactive`` (on the party's address: it
    sends and hears nothing), the party is moved to music on hold as for a
    phone's own hold. No offer may be in flight to either (``after_offers``).
    """
    party = call.other(holder)
    if (
        not call.connected
        or holder.id in call.holds
        or holder.id in call.silent_holds
        or holder.state is not LegState.CONNECTED
        or not _is_device(call, party)
    ):
        return False
    assert party is not None
    ours, theirs = holder.media, party.media or holder.media
    if ours is None or theirs is None:
        return False
    engine.offer_media(holder, theirs.with_direction(INACTIVE))
    music_on_hold(engine, call, holder, party, ours.with_direction(INACTIVE))
    engine.publish(CallHeld(call.id, holder.id, holder.device, party.device, by))
    return True


def end_hold(engine: CallEngine, call: Call, holder: Leg) -> Leg | None:
    """Forget ``holder``'s hold: release the music endpoint; returns the held party."""
    party = call.holds.pop(holder.id, None)
    if party is None:
        return None  # not holding: its media peer (a bridge port, say) stays
    call.peers.pop(holder.id, None)
    _drop_music(engine, call, party, 16)
    return party


def _drop_music(engine: CallEngine, call: Call, party: Leg, cause: int) -> None:
    """Release the music endpoint ``party`` listens to, if any; ``party`` has no peer then."""
    moh = call.peers.pop(party.id, None)
    if moh is not None:
        call.peers.pop(moh.id, None)
        call.pending.pop(party.id, None)
        if moh in call.resources:
            call.resources.remove(moh)
        engine.release_leg(moh, cause)


# ---------------------------------------------------------------- hold reversion
REVERSION_TEXT = "Call on hold"


def _schedule_reminder(engine: CallEngine, call: Call, holder: Leg) -> None:
    if engine.hold_reversion:
        when = engine.monotonic() + engine.hold_reversion
        heapq.heappush(engine.hold_reminders, (when, call.id, holder.id))


def next_reminder(engine: CallEngine) -> float | None:
    """When the next hold reversion reminder is due (stale ones are dropped lazily)."""
    heap = engine.hold_reminders
    while heap:
        _, call_id, holder_id = heap[0]
        call = engine.call(call_id)
        if call is not None and holder_id in call.holds:
            return heap[0][0]
        heapq.heappop(heap)
    return None


def remind_due(engine: CallEngine, now: float) -> None:
    """Hold reversion: remind each holder whose call has been held too long, and again later."""
    heap = engine.hold_reminders
    while True:
        due = next_reminder(engine)
        if due is None or due > now:
            return
        _, call_id, holder_id = heapq.heappop(heap)
        call = engine.call(call_id)
        holder = engine.leg(holder_id)
        if call is None or holder is None or engine.hold_reversion is None:
            continue
        engine.drive(holder, lambda d: d.play_tone(Tone.CALL_WAITING))
        engine.drive(holder, lambda d: d.show_display(REVERSION_TEXT))
        heapq.heappush(heap, (now + engine.hold_reversion, call_id, holder_id))
