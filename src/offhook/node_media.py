"""The node's media plane: the media server ``offhook serve`` runs, and call control's port to it.

``start_media`` starts what ``[media]`` asks for: with ``embedded`` (the
default), a ``MediaSupervisor`` runs ``offhook media`` as a child process on
a private control socket and restarts it when it dies; with ``embedded``
off and a ``control`` address, the node drives a standalone media server
there. Either way a ``MediaClient`` connects (and reconnects) to it and
``NodeMedia`` adapts it to ``core.ports.MediaResources``:

- an endpoint the media server opened on a wildcard address (no
  ``advertise``) gets the node's own advertised address for its family;
- handles the client reports lost (the media server died, a request timed
  out, it refused) clear their calls with the client's Q.850 cause;
- RFC 4733 digits the media server received are given to call control
  (meet-me PINs);
- the plan's music on hold files are sent on start and on every plan
  change (the client sends them again to a restarted media server).

The engine also learns which source a held party hears (``moh_for``: the
holder's line source, else its device's, else ``default``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offhook.core.leg import Leg
from offhook.media.client import MediaClient
from offhook.media.supervisor import MediaSupervisor

if TYPE_CHECKING:
    from offhook.config import Settings
    from offhook.core.directory import PlanSnapshot
    from offhook.core.engine import CallEngine

log = logging.getLogger("offhook.media")

_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


class NodeMedia:
    """``core.ports.MediaResources`` over a ``MediaClient``."""

    def __init__(self, client: MediaClient, advertised: dict[int, str]) -> None:
        self.client = client
        self.advertised = advertised

    def open(
        self, handle: str, family: int, reply: Callable[[tuple[str, int] | None], None]
    ) -> None:
        def opened(local: tuple[str, int] | None) -> None:
            if local is not None and local[0] in _WILDCARDS:
                host = self.advertised.get(family) or next(iter(self.advertised.values()), "")
                local = (host, local[1]) if host else None
            reply(local)

        self.client.open(handle, family, opened)

    def connect(
        self,
        handle: str,
        address: str,
        port: int,
        codec: str,
        pt: int,
        dtmf_pt: int | None,
        direction: str,
    ) -> None:
        self.client.connect(handle, address, port, codec, pt, dtmf_pt, direction)

    def play(self, handle: str, source: str, loop: bool = True) -> None:
        self.client.play(handle, source, loop)

    def stop_play(self, handle: str) -> None:
        self.client.stop_play(handle)

    def join(self, handle: str, bridge: str) -> None:
        self.client.join(handle, bridge)

    def dtmf(self, handle: str, digits: str) -> None:
        self.client.dtmf(handle, digits)

    def release(self, handle: str) -> None:
        self.client.release(handle)


def moh_chooser(snapshot: Callable[[], PlanSnapshot]) -> Callable[[Leg], str]:
    """The music a party held by ``holder`` hears: ``moh:NAME``."""

    def choose(holder: Leg) -> str:
        call = holder.call
        number = ""
        if call is not None:
            number = call.setup.calling.number if holder is call.a_leg else call.setup.called
        return "moh:" + snapshot().moh_source_for(holder.device, number)

    return choose


def moh_files(snapshot: PlanSnapshot) -> list[tuple[str, str]]:
    return sorted(snapshot.moh_sources.items())


@dataclass
class MediaPlane:
    client: MediaClient
    supervisor: MediaSupervisor | None
    sent_sources: list[tuple[str, str]] = field(default_factory=list)

    def plan_changed(self, snapshot: PlanSnapshot) -> None:
        files = moh_files(snapshot)
        if files != self.sent_sources:
            self.sent_sources = files
            self.client.sources(files, _log_sources)

    def status(self) -> dict[str, Any]:
        sup = self.supervisor
        return {
            "control": str(self.client.address),
            "connected": self.client.connected,
            "embedded": sup is not None,
            "pid": sup.pid if sup is not None else None,
            "starts": sup.starts if sup is not None else 0,
            "streams": len(self.client.handles),
            "counters": dict(self.client.counters),
        }

    async def stop(self) -> None:
        await self.client.stop()
        if self.supervisor is not None:
            await self.supervisor.stop()


def _log_sources(reply: dict[str, Any] | None) -> None:
    if reply is None:
        log.warning("media server: music on hold sources not loaded (no reply)")
        return
    for name, error in (reply.get("errors") or {}).items():
        log.error("music on hold source %s: %s", name, error)


async def start_media(
    settings: Settings,
    engine: CallEngine,
    snapshot: Callable[[], PlanSnapshot],
    advertised: dict[int, str],
    config_path: Path | None,
) -> MediaPlane | None:
    """Start the media plane ``[media]`` asks for, or None (features go without media)."""
    media = settings.media
    if not media.embedded and not media.control:
        log.info("no media server ([media] embedded off, no control address)")
        return None

    def on_event(event: dict[str, Any]) -> None:
        kind, handle = event.get("event"), str(event.get("handle", ""))
        if kind == "dtmf":
            engine.on_resource_digits(handle, str(event.get("digit", "")))
        elif kind == "play-done":
            engine.on_resource_done(handle)

    supervisor: MediaSupervisor | None = None
    if media.embedded:
        supervisor = MediaSupervisor(
            settings,
            config_path,
            on_up=lambda address: log.info("media server up on %s", address),
            on_down=lambda: log.warning("media server down; its calls are cleared"),
        )
        address = supervisor.control_address
    else:
        address = media.control
    client = MediaClient(address, on_lost=engine.on_resource_lost, on_event=on_event)
    plane = MediaPlane(client, supervisor)
    if supervisor is not None:
        await supervisor.start()
    await client.start()
    engine.media = NodeMedia(client, advertised)
    engine.moh_for = moh_chooser(snapshot)
    plane.plan_changed(snapshot())
    log.info("media server: %s (%s)", address, "embedded" if supervisor else "standalone")
    return plane
