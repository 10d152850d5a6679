"""The node's CTI event stream (control op ``events``) against a real ``offhook serve``.

Two baresip phones (alice 1001, bob 1002) call each other through the
node while ``ris.event_client.EventStream`` clients follow its events: a
call shows, per device, offered/ringing/answered/cleared in that order, and
every event carries the next node-wide id; a client that reconnects with
the last id it saw gets the events it missed, then the live ones; the
snapshot shows the registered phones.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary
from offhook.ris.event_client import EventStream, StreamStart
from support.ports import HOST
from support.server import OffhookServer, device, plan_of

PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2"}
DNS = {"alice": "1001", "bob": "1002"}
PLAN = plan_of([device(name, PASSWORDS[name], DNS[name]) for name in DNS])
WAIT = 30.0


class Watcher:
    """An ``EventStream`` on its own event loop in a thread, keeping every event."""

    def __init__(self, server: OffhookServer, after: int | None = None) -> None:
        self.server = server
        self.after = after
        self.events: list[dict[str, Any]] = []
        self.start: StreamStart | None = None
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        self.wait(lambda: self.start is not None, "the stream's start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(WAIT)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._follow())
        finally:
            self._loop.close()

    async def _follow(self) -> None:
        self._task = asyncio.current_task()
        try:
            async with EventStream(self.server.admin_host, self.server.admin_port, self.after) as s:
                with self._cond:
                    self.start = s.start
                    self._cond.notify_all()
                async for event in s:
                    with self._cond:
                        self.events.append(event)
                        self._cond.notify_all()
        except asyncio.CancelledError:
            pass
        except BaseException as exc:
            with self._cond:
                self.error = exc
                self._cond.notify_all()

    def wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        with self._cond:
            while not condition():
                assert self.error is None, f"the stream failed: {self.error!r}"
                left = deadline - time.monotonic()
                assert left > 0, f"never came: {what}; events: {self.events}"
                self._cond.wait(left)

    def ended(self, call_id: str) -> bool:
        return any(e["type"] == "call.ended" and e["call_id"] == call_id for e in self.events)

    def calls_ended(self) -> list[str]:
        return [e["call_id"] for e in self.events if e["type"] == "call.ended"]


def phone(tmp_path: Path, server: OffhookServer, name: str) -> Baresip:
    require_binary("baresip")
    return Baresip(
        tmp_path,
        name,
        aor=f"sip:{name}@{HOST}:{server.sip_port}",
        password=PASSWORDS[name],
        regint=120,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OffhookServer]:
    srv = OffhookServer(tmp_path, PLAN)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def call_and_hang_up(caller: Baresip, callee: Baresip, server: OffhookServer, dn: str) -> None:
    """One answered call, hung up by the caller (each phone's events from now on)."""
    ours, theirs = caller.mark(), callee.mark()
    caller.dial(f"sip:{dn}@{HOST}:{server.sip_port}")
    callee.wait_event("CALL_INCOMING", timeout=10, since=theirs)
    caller.wait_event("CALL_RINGING", "CALL_PROGRESS", timeout=10, since=ours)
    callee.accept()
    caller.wait_event("CALL_ESTABLISHED", timeout=10, since=ours)
    callee.wait_event("CALL_ESTABLISHED", timeout=10, since=theirs)
    caller.hangup()
    callee.wait_event("CALL_CLOSED", timeout=10, since=theirs)
    caller.wait_event("CALL_CLOSED", timeout=10, since=ours)


def call_steps(events: list[dict[str, Any]], call_id: str) -> dict[str, list[tuple[str, str]]]:
    """Each device's (type, state) of the call, in order."""
    steps: dict[str, list[tuple[str, str]]] = {}
    for e in events:
        if e.get("call_id") == call_id and "device" in e:
            steps.setdefault(e["device"], []).append((e["type"], e["state"]))
    return steps


def test_a_call_is_seen_in_order_and_a_reconnect_replays_what_was_missed(
    server: OffhookServer, tmp_path: Path
) -> None:
    alice, bob = phone(tmp_path, server, "alice"), phone(tmp_path, server, "bob")
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        snapshot = server.control("cti_snapshot")
        registered = {d["device"]: d["registered"] for d in snapshot["devices"]}
        assert registered == {"alice": True, "bob": True}
        assert {ln["dn"]: ln["state"] for ln in snapshot["lines"]} == {
            "1001": "idle",
            "1002": "idle",
        }

        with Watcher(server) as watcher:
            assert watcher.start is not None and not watcher.start.resync
            first = watcher.start.last_id + 1
            call_and_hang_up(alice, bob, server, "1002")
            watcher.wait(lambda: len(watcher.calls_ended()) == 1, "the first call's end")
            seen = list(watcher.events)
        [call_id] = [e["call_id"] for e in seen if e["type"] == "call.ended"]
        # Every event, with the next node-wide id: nothing skipped, nothing twice.
        assert [e["id"] for e in seen] == list(range(first, first + len(seen)))
        steps = call_steps(seen, call_id)
        assert steps["bob"] == [
            ("call.offered", "offered"),
            ("call.ringing", "ringing"),
            ("call.answered", "connected"),
            ("call.cleared", "cleared"),
        ]
        assert steps["alice"] == [
            ("call.initiated", "dialing"),
            ("call.ringing", "ringback"),
            ("call.answered", "connected"),
            ("call.cleared", "cleared"),
        ]
        offered = next(e for e in seen if e["type"] == "call.offered")
        assert (offered["calling"], offered["called"], offered["line"]) == ("1001", "1002", "1002")
        assert (offered["direction"], offered["node"]) == ("outbound", snapshot_node(server))
        ended = next(e for e in seen if e["type"] == "call.ended")
        assert ended["answered"] is True and ended["cause"] == 16
        last_seen = seen[-1]["id"]

        # Away: bob calls alice; then back with the last id seen.
        call_and_hang_up(bob, alice, server, "1001")
        server.wait_cdr(lambda row: row.get("calling") == "1002", timeout=WAIT)
        with Watcher(server, after=last_seen) as again:
            assert again.start is not None and not again.start.resync
            again.wait(lambda: len(again.calls_ended()) == 1, "the missed call, replayed")
            missed = list(again.events)
            assert missed[0]["id"] == last_seen + 1
            assert [e["id"] for e in missed] == list(
                range(last_seen + 1, last_seen + 1 + len(missed))
            )
            [second] = again.calls_ended()
            assert second != call_id
            steps = call_steps(missed, second)
            assert [t for t, _ in steps["alice"]] == [
                "call.offered",
                "call.ringing",
                "call.answered",
                "call.cleared",
            ]
            # ... and then live events: a third call.
            call_and_hang_up(alice, bob, server, "1002")
            again.wait(lambda: len(again.calls_ended()) == 2, "the live call after the replay")
            ids = [e["id"] for e in again.events]
            assert ids == list(range(last_seen + 1, last_seen + 1 + len(ids)))

    # A client from before this node started (an id of another run) is told to resync.
    with Watcher(server, after=1_000_000) as old:
        assert old.start is not None and old.start.resync


def snapshot_node(server: OffhookServer) -> str:
    return str(server.control("status")["node"])
