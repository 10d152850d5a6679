"""NodeMedia: which media server an endpoint goes to (media resource groups and lists)."""

from __future__ import annotations

from typing import Any

from offhook.media.client import MediaClient
from offhook.node_media import NodeMedia


class Client(MediaClient):
    """A real client that records what it would send instead of sending it."""

    def __init__(self, up: bool) -> None:
        super().__init__("127.0.0.1:2429", on_lost=lambda h, c: None, on_event=lambda e: None)
        self.up = up
        self.sent: list[tuple[Any, ...]] = []

    @property
    def connected(self) -> bool:
        return self.up

    def open(self, handle: str, family: int, reply: Any) -> None:  # type: ignore[override]
        self.sent.append(("open", handle))
        reply(("0.0.0.0", 30000))

    def release(self, handle: str) -> None:
        self.sent.append(("release", handle))


LISTS = {"alice": ("ms2", "embedded"), "bob": ("nowhere", "ms2"), "carol": ()}


def media(up: dict[str, bool]) -> tuple[NodeMedia, dict[str, Client]]:
    clients = {name: Client(state) for name, state in up.items()}
    port = NodeMedia(
        dict(clients), {4: "192.0.2.1"}, lambda device: LISTS.get(device) or ("embedded",)
    )
    return port, clients


def test_first_connected_server_of_the_device_list() -> None:
    port, clients = media({"embedded": True, "ms2": False})
    got: list[Any] = []
    port.open("h1", 4, got.append, device="alice")
    assert clients["embedded"].sent == [("open", "h1")]  # ms2 is down
    assert got == [("192.0.2.1", 30000)]  # a wildcard answer gets the node's address
    clients["ms2"].up = True
    port.open("h2", 4, got.append, device="alice")
    assert clients["ms2"].sent == [("open", "h2")]
    port.open("h3", 4, got.append, device="bob")  # unknown names are skipped
    assert clients["ms2"].sent[-1] == ("open", "h3")
    port.open("h4", 4, got.append, device="carol")  # no list: the embedded server
    assert clients["embedded"].sent[-1] == ("open", "h4")
    port.release("h2")
    assert clients["ms2"].sent[-1] == ("release", "h2")


def test_a_bridge_stays_on_one_server() -> None:
    port, clients = media({"embedded": True, "ms2": True})
    port.open("p1", 4, lambda r: None, device="alice", bridge="conf")  # ms2
    clients["ms2"].up = False
    port.open("p2", 4, lambda r: None, device="carol", bridge="conf")
    assert [s[1] for s in clients["ms2"].sent] == ["p1", "p2"]
    port.release("p1")
    port.release("p2")
    port.open("p3", 4, lambda r: None, device="carol", bridge="conf")  # a new bridge
    assert clients["embedded"].sent == [("open", "p3")]
