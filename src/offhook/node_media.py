"""The node's media plane: the media server ``offhook serve`` runs, and call control's port to it.

``start_media`` starts what ``[media]`` asks for: with ``embedded`` (the
default), a ``MediaSupervisor`` runs ``offhook media`` as a child process on
a private control socket and restarts it when it dies; with ``embedded``
off and a ``control`` address, the node drives a standalone media server
there. ``[media] servers`` names more (standalone) media servers; the
plan's media resource groups and lists choose among them per device. A
``MediaClient`` connects (and reconnects) to each, and ``NodeMedia`` adapts
them to ``core.ports.MediaResources``:

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
EMBEDDED = "embedded"  # the media server offhook serve starts (or [media] control)


class NodeMedia:
    """``core.ports.MediaResources`` over the node's media servers (``MediaClient`` each).

    ``open`` picks the server: the first connected one of the device's media
    resource list (``servers_for``; unknown names skipped), else the list's
    first (it fails fast), and every endpoint of one bridge goes where the
    bridge's first endpoint went. Later requests follow their handle.
    """

    def __init__(
        self,
        clients: dict[str, MediaClient],
        advertised: dict[int, str],
        servers_for: Callable[[str], tuple[str, ...]],
    ) -> None:
        self.clients = clients
        self.advertised = advertised
        self.servers_for = servers_for
        self._by_handle: dict[str, tuple[MediaClient, str]] = {}  # handle -> (client, bridge)
        self._bridges: dict[str, tuple[MediaClient, int]] = {}  # bridge -> (client, endpoints)

    def choose(self, device: str, bridge: str = "") -> MediaClient | None:
        if bridge in self._bridges:
            return self._bridges[bridge][0]
        listed = [self.clients[n] for n in self.servers_for(device) if n in self.clients]
        for client in listed:
            if client.connected:
                return client
        return listed[0] if listed else next(iter(self.clients.values()), None)

    def open(
        self,
        handle: str,
        family: int,
        reply: Callable[[tuple[str, int] | None], None],
        *,
        device: str = "",
        bridge: str = "",
    ) -> None:
        client = self.choose(device, bridge)
        if client is None:
            reply(None)
            return
        self._by_handle[handle] = (client, bridge)
        if bridge:
            _, count = self._bridges.get(bridge, (client, 0))
            self._bridges[bridge] = (client, count + 1)

        def opened(local: tuple[str, int] | None) -> None:
            if local is not None and local[0] in _WILDCARDS:
                host = self.advertised.get(family) or next(iter(self.advertised.values()), "")
                local = (host, local[1]) if host else None
            reply(local)

        client.open(handle, family, opened)

    def _client(self, handle: str) -> MediaClient | None:
        found = self._by_handle.get(handle)
        return found[0] if found is not None else None

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
        client = self._client(handle)
        if client is not None:
            client.connect(handle, address, port, codec, pt, dtmf_pt, direction)

    def play(self, handle: str, source: str, loop: bool = True) -> None:
        client = self._client(handle)
        if client is not None:
            client.play(handle, source, loop)

    def stop_play(self, handle: str) -> None:
        client = self._client(handle)
        if client is not None:
            client.stop_play(handle)

    def join(self, handle: str, bridge: str) -> None:
        client = self._client(handle)
        if client is not None:
            client.join(handle, bridge)

    def dtmf(self, handle: str, digits: str) -> None:
        client = self._client(handle)
        if client is not None:
            client.dtmf(handle, digits)

    def release(self, handle: str) -> None:
        client = self.forget(handle)
        if client is not None:
            client.release(handle)

    def forget(self, handle: str) -> MediaClient | None:
        """Drop ``handle``'s bookkeeping (a handle the client lost needs no release)."""
        found = self._by_handle.pop(handle, None)
        if found is None:
            return None
        client, bridge = found
        if bridge in self._bridges:
            _, count = self._bridges[bridge]
            if count <= 1:
                del self._bridges[bridge]
            else:
                self._bridges[bridge] = (client, count - 1)
        return client


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
    clients: dict[str, MediaClient]
    supervisor: MediaSupervisor | None
    sent_sources: list[tuple[str, str]] = field(default_factory=list)

    def plan_changed(self, snapshot: PlanSnapshot) -> None:
        files = moh_files(snapshot)
        if files != self.sent_sources:
            self.sent_sources = files
            for client in self.clients.values():
                # Not connected yet: the client sends them once it is (no reply to log).
                client.sources(files, _log_sources if client.connected else None)

    def status(self) -> dict[str, Any]:
        sup = self.supervisor
        servers = {
            name: {
                "control": str(client.address),
                "connected": client.connected,
                "streams": len(client.handles),
                "counters": dict(client.counters),
            }
            for name, client in self.clients.items()
        }
        first = next(iter(servers.values()))
        return {
            **first,
            "embedded": sup is not None,
            "pid": sup.pid if sup is not None else None,
            "starts": sup.starts if sup is not None else 0,
            "servers": servers,
        }

    async def stop(self) -> None:
        for client in self.clients.values():
            await client.stop()
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
    if not media.embedded and not media.control and not media.servers:
        log.info("no media server ([media] embedded off, no control address)")
        return None
    ports: list[NodeMedia] = []

    def on_lost(handle: str, cause: int) -> None:
        ports[0].forget(handle)
        engine.on_resource_lost(handle, cause)

    def on_event(event: dict[str, Any]) -> None:
        kind, handle = event.get("event"), str(event.get("handle", ""))
        if kind == "dtmf":
            engine.on_resource_digits(handle, str(event.get("digit", "")))
        elif kind == "play-done":
            engine.on_resource_done(handle)

    supervisor: MediaSupervisor | None = None
    addresses: dict[str, str] = {}
    if media.embedded:
        supervisor = MediaSupervisor(
            settings,
            config_path,
            on_up=lambda address: log.info("media server up on %s", address),
            on_down=lambda: log.warning("media server down; its calls are cleared"),
        )
        addresses[EMBEDDED] = supervisor.control_address
    elif media.control:
        addresses[EMBEDDED] = media.control
    addresses.update(media.servers)
    clients = {
        name: MediaClient(address, on_lost=on_lost, on_event=on_event)
        for name, address in addresses.items()
    }
    plane = MediaPlane(clients, supervisor)
    if supervisor is not None:
        await supervisor.start()
    for client in clients.values():
        await client.start()
    ports.append(
        NodeMedia(clients, advertised, lambda device: snapshot().media_servers_for(device))
    )
    engine.media = ports[0]
    engine.moh_for = moh_chooser(snapshot)
    plane.plan_changed(snapshot())
    for name, address in addresses.items():
        log.info("media server %s: %s", name, address)
    return plane
