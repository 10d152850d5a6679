"""Call forwarding and do not disturb: where a call to a directory number goes.

A call routed to a DN is offered by :func:`offer`, which walks this table:

==========================================  =====================================
the DN                                      the call
==========================================  =====================================
forward all set (plan, or a phone's *21)    forward all to its destination
every device do-not-disturb "reject"        forward busy (reason dnd), else 17
nothing to ring: busy (17)                  forward busy, else 17
nothing to ring: no registration (20)       forward unregistered, else 20
rings; nobody answers for the CFNA timer    forward no answer, else rings on
every ringing device failed later with 17   forward busy, else the call ends
... with 20                                 forward unregistered, else it ends
==========================================  =====================================

A forward is analysed with its own calling search space (the forward's
``css``, else the line's device's CSS): it never reaches a number the line's
owner could not dial. A forward is not taken, and the call stays where it is
(or ends with its cause), when the call already took ``max_forward_hops``
redirections, or when its destination is a DN the call was already offered
(a loop), or when the destination cannot be routed. Each forward taken
appends a ``Diversion`` (the forwarding DN and why) to the call's setup: the
CDR's last redirecting number and reason, SIP Diversion/History-Info.

Busy, no answer and unregistered each have an external variant
(``forward_busy_external``, ...) that applies instead to callers from a
trunk when it is set, as CallManager's internal/external forwards.

An intercom line (``intercom``) is never forwarded and ignores do not
disturb: its phones are asked to answer by themselves (``Setup.auto_answer``).

Do not disturb "ringer-off" still offers the call (the phone shows it without
ringing); "reject" treats the device as busy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from offhook.core.causes import Cause
from offhook.core.dialplan.router import Outcome
from offhook.core.events import Diversion, RedirectReason

if TYPE_CHECKING:
    from offhook.core.call import Call
    from offhook.core.dialplan.model import DirectoryNumber
    from offhook.core.directory import Forward, LineInfo
    from offhook.core.engine import CallEngine
    from offhook.core.events import Setup
    from offhook.core.leg import Leg

log = logging.getLogger(__name__)

# Which forward a failure cause takes (every fork failed with it).
_ON_FAILURE = {
    int(Cause.USER_BUSY): RedirectReason.FORWARD_BUSY,
    int(Cause.SUBSCRIBER_ABSENT): RedirectReason.FORWARD_UNREGISTERED,
}


@dataclass(slots=True, eq=False)
class DnCoverage:
    """A DN being offered a call, and the forwards that cover it."""

    dn: DirectoryNumber
    line: LineInfo | None
    external: bool = False  # the caller came over a trunk
    passes_declines: bool = False  # a phone declining ends the call (RFC 3261 6xx)

    def forward_for(self, reason: RedirectReason) -> Forward | None:
        line = self.line
        if line is None:
            return None
        if reason is RedirectReason.FORWARD_BUSY or reason is RedirectReason.DND:
            pair = (line.forward_busy, line.forward_busy_external)
        elif reason is RedirectReason.FORWARD_UNREGISTERED:
            pair = (line.forward_unregistered, line.forward_unregistered_external)
        elif reason is RedirectReason.FORWARD_NO_ANSWER:
            pair = (line.forward_no_answer, line.forward_no_answer_external)
        else:
            return None
        return (self.external and pair[1]) or pair[0]

    def failed(self, engine: CallEngine, call: Call, cause: int) -> bool:
        reason = _ON_FAILURE.get(cause)
        if reason is None:
            return False
        forward = self.forward_for(reason)
        return forward is not None and redirect(engine, call, self.dn, forward, reason)

    def answered(self, engine: CallEngine, call: Call, leg: Leg) -> None:
        pass


def offer(engine: CallEngine, call: Call, setup: Setup, dn: DirectoryNumber) -> None:
    """Offer ``call`` to ``dn``, as the table above says."""
    call.coverage = None
    call.visited.add((dn.dn, dn.partition))
    snapshot = engine.snapshot()
    line = snapshot.line(dn.dn, dn.partition)
    cover = DnCoverage(dn, line, snapshot.device(call.a_leg.device) is None)
    if line is not None and line.intercom:
        # Intercom: answered by the phone at once, whisper first; never forwarded.
        cause = engine.ring_dn(call, dn, replace(setup, auto_answer=True), dnd=False)
        if cause is not None:
            engine.end_call(call, cause)
        return
    forward_all = engine.forward_all_of(dn.dn, dn.partition)
    if forward_all is not None and redirect(
        engine, call, dn, forward_all, RedirectReason.FORWARD_ALL
    ):
        return
    call.coverage = cover
    cause = engine.ring_dn(call, dn, setup)
    if cause is not None:
        if cause == Cause.USER_BUSY and _all_dnd_reject(engine, call, dn):
            forward = cover.forward_for(RedirectReason.DND)
            if forward is not None and redirect(engine, call, dn, forward, RedirectReason.DND):
                return
        elif cover.failed(engine, call, cause):
            return
        engine.end_call(call, cause)
        return
    if cover.forward_for(RedirectReason.FORWARD_NO_ANSWER) is not None:
        assert line is not None
        delay = line.cfna_timer if line.cfna_timer is not None else engine.cfna_timer
        engine.later(delay, partial(_no_answer, engine, call, cover))


def _all_dnd_reject(engine: CallEngine, call: Call, dn: DirectoryNumber) -> bool:
    snapshot = engine.snapshot()
    devices = [d for d in dn.devices if d != call.a_leg.device]
    return bool(devices) and all(
        engine.dnd(d) and (info := snapshot.device(d)) is not None and info.dnd_option == "reject"
        for d in devices
    )


def _no_answer(engine: CallEngine, call: Call, cover: DnCoverage) -> None:
    if call.ended or call.connected or call.coverage is not cover:
        return
    forward = cover.forward_for(RedirectReason.FORWARD_NO_ANSWER)
    if forward is not None:
        redirect(engine, call, cover.dn, forward, RedirectReason.FORWARD_NO_ANSWER)


def redirect(
    engine: CallEngine,
    call: Call,
    dn: DirectoryNumber,
    forward: Forward,
    reason: RedirectReason,
) -> bool:
    """Send ``call`` from ``dn`` to ``forward``'s destination; False when not taken.

    The forks still ringing ``dn`` are released (cause 19 for no answer, 26
    otherwise) and the call is analysed again with the forward's CSS.
    """
    destination = forward.destination
    hops = len(call.setup.diversions)
    if not destination or hops >= engine.max_forward_hops:
        if destination:
            log.info("call %s: forward from %s not taken: %d hops", call.id, dn.dn, hops)
        return False
    snapshot = engine.snapshot()
    owner = dn.devices[0] if dn.devices else ""
    line = snapshot.line(dn.dn, dn.partition)
    css = forward.css or (engine.forward_css(owner, line, forward) if line is not None else "")
    decision = snapshot.dialplan.route(css, destination, dn.dn)
    if not decision.routable or decision.outcome in (Outcome.PICKUP, Outcome.PARK):
        log.info(
            "call %s: forward %s -> %s not taken: not routable with css %r",
            call.id,
            dn.dn,
            destination,
            css,
        )
        return False
    if decision.dn is not None and (decision.dn.dn, decision.dn.partition) in call.visited:
        log.info("call %s: forward %s -> %s not taken: a loop", call.id, dn.dn, destination)
        return False
    release = Cause.NO_ANSWER if reason is RedirectReason.FORWARD_NO_ANSWER else None
    for fork in call.live_forks():
        engine.release_leg(fork, release or Cause.NON_SELECTED_USER_CLEARING)
    moved(
        engine,
        call,
        destination,
        css,
        Diversion(dn.dn, reason, snapshot.dns[dn.dn].display if dn.dn in snapshot.dns else ""),
    )
    return True


def moved(engine: CallEngine, call: Call, destination: str, css: str, by: Diversion) -> None:
    """``call`` now goes to ``destination`` (analysed with ``css``), redirected ``by``."""
    setup = call.setup
    call.setup = replace(
        setup,
        called=destination,
        original_called=setup.original_called or setup.called,
        diversions=(*setup.diversions, by),
    )
    call.failures.clear()
    call.coverage = None
    call.ring_deadline = None
    engine.analyse(call, call.setup, css)
