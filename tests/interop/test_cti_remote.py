"""CTI Answer, Hold and Resume carried out by the phones themselves (``LegDriver.remote``).

A whole node runs in-process (``offhook.app.run`` on loopback ports, the
plan loaded into SQLite), its ``CallEngine`` kept so the test can give the
commands an application gives through the control endpoint
(``cti_answer``, ``cti_hold``, ``cti_resume``: ``core.cti_ops``). The
phones are real peers:

=================  ======  ===============================================
device             DN      played by
=================  ======  ===============================================
SEP00000000E001    3001    SCCP simulator A (``support.sccp_phone``)
SEP00000000E002    3002    SCCP simulator B
bob                3101    baresip 1.0 (Debian ``baresip-core``)
carol              3102    SIPp ``uas_talk.xml``: a phone that says
                           ``Allow-Events: talk`` and answers when told
=================  ======  ===============================================

* SCCP: the application's Answer, Hold and Resume on B reach B as the very
  messages its own softkeys bring (each flow runs once with the softkey,
  once by CTI; what each phone received is compared, call references and
  ports aside), scapy's Skinny layer reads B's frames the way we wrote
  them, and the two phones exchange RTP after the answer and the resume.
* SIP: carol is asked to answer with a NOTIFY ``Event: talk`` and does
  (SIPp fails its scenario on anything else). baresip 1.0 takes neither
  the talk event nor Call-Info answer-after: it does not advertise
  ``talk``, so the command is refused (cause 79) and bob keeps ringing for
  its user; and when asked anyway, baresip refuses the NOTIFY (481) and
  the call still rings, nothing cleared.

The last tests give the same commands the way an application's do, to a
real ``offhook serve`` through its control endpoint (``cti_snapshot``,
``cti_answer``, ``cti_hold``, ``cti_resume``; ``support.server``).

Every wait is bounded; nothing is judged by how long something took.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from interop.baresip import Baresip
from interop.peers import require_binary
from interop.sipp import Sipp, describe
from offhook import app
from offhook.config import (
    AdminSettings,
    AuthSettings,
    DatabaseSettings,
    NodeSettings,
    SccpSettings,
    Settings,
    SipSettings,
    TftpSettings,
)
from offhook.core.cti_ops import CtiRefused
from offhook.core.engine import CallEngine
from offhook.core.leg import Direction, Leg, LegState
from offhook.db.plan import load_plan
from offhook.ris.control import ControlError
from offhook.sccp import decode_frame
from offhook.sccp.messages import (
    CallState,
    Message,
    StartMediaTransmission,
    StopMediaTransmission,
)
from offhook.sccp.templates import SoftKey
from offhook.sccp.ui import CallStateCode
from offhook.sip.outbound_leg import OutboundLeg
from support.ports import HOST, free_port
from support.sccp_phone import SccpPhone
from support.server import OffhookServer

REALM = "offhook.test"
A, A_DN = "SEP00000000E001", "3001"
B, B_DN = "SEP00000000E002", "3002"
BOB, BOB_DN, BOB_PW = "bob", "3101", "bob-Remote-1"
CAROL, CAROL_DN, CAROL_PW = "carol", "3102", "carol-Remote-1"
WAIT = 10.0


def plan() -> dict[str, Any]:
    def sccp(name: str, dn: str, letter: str) -> dict[str, Any]:
        return {"name": name, "protocol": "sccp", "model": "7960",
                "lines": [{"dn": dn, "display": f"Phone {letter}"}]}  # fmt: skip

    def sip(name: str, dn: str, password: str) -> dict[str, Any]:
        return {"name": name, "protocol": "sip", "password": password,
                "lines": [{"dn": dn, "display": name.capitalize()}]}  # fmt: skip

    return {
        "devices": [
            sccp(A, A_DN, "A"),
            sccp(B, B_DN, "B"),
            sip(BOB, BOB_DN, BOB_PW),
            sip(CAROL, CAROL_DN, CAROL_PW),
        ]
    }


# ----------------------------------------------------------------- the node


@dataclasses.dataclass
class Running:
    node: app.Node
    engine: CallEngine
    tmp_path: Path

    def call_ringing(self, device: str) -> tuple[str, Leg]:
        """The call ringing ``device`` and its leg there."""
        for call in self.engine.active_calls():
            for leg in call.legs():
                ringing = leg.state in (LegState.PROCEEDING, LegState.ALERTING)
                if leg.device == device and leg.direction is Direction.OUTBOUND and ringing:
                    return call.id, leg
        raise AssertionError(f"no call rings {device}")

    def call_of(self, device: str) -> str:
        for call in self.engine.active_calls():
            if any(leg.device == device for leg in call.legs()):
                return call.id
        raise AssertionError(f"{device} has no call")


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        node=NodeSettings(name="cti-remote"),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'offhook.db'}"),
        sip=SipSettings(listen=HOST, port=free_port(), allow=["127.0.0.0/8"], realm=REALM),
        admin=AdminSettings(listen=HOST, port=free_port()),
        auth=AuthSettings(secret="cti-remote-test-secret"),
        sccp=SccpSettings(listen=HOST, port=free_port(), allow=["127.0.0.0/8"]),
        tftp=TftpSettings(
            listen=HOST,
            port=free_port(),
            http_port=free_port(),
            allow=["127.0.0.0/8"],
            root=str(tmp_path / "tftproot"),
        ),
    )


def run_node(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scenario: Callable[[Running], Awaitable[None]],
    timeout: float = 90.0,
) -> None:
    """Load the plan, run the node in this process, run ``scenario``, stop the node."""
    settings = settings_for(tmp_path)
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(plan(), sort_keys=False))
    load_plan(plan_path, settings.database.url, REALM)
    nodes: list[app.Node] = []
    engines: list[CallEngine] = []

    class KeptNode(app.Node):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            nodes.append(self)

    class KeptEngine(CallEngine):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            engines.append(self)

    monkeypatch.setattr(app, "Node", KeptNode)
    monkeypatch.setattr(app, "CallEngine", KeptEngine)

    async def main() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(app.run(settings, ready))
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=20.0, return_when="FIRST_COMPLETED")
        if waiter not in done:
            waiter.cancel()
            if task.done():
                task.result()  # raises why the node did not start
            task.cancel()
            raise TimeoutError("node not ready in 20 s")
        try:
            await asyncio.wait_for(scenario(Running(nodes[-1], engines[-1], tmp_path)), timeout)
        finally:
            nodes[-1].stopping.set()
            await asyncio.wait_for(task, 20.0)

    asyncio.run(main())


# ----------------------------------------------------------------- SCCP


@contextlib.asynccontextmanager
async def sccp_pair(run: Running) -> AsyncIterator[tuple[SccpPhone, SccpPhone]]:
    a = SccpPhone(A, run.node.sccp_port, tone_hz=500, rtp_packets=3000)
    b = SccpPhone(B, run.node.sccp_port, tone_hz=620, rtp_packets=3000)
    try:
        await a.register()
        await b.register()
        yield a, b
    finally:
        await a.close()
        await b.close()


def state_is(code: CallStateCode) -> Callable[[Message], bool]:
    return lambda m: isinstance(m, CallState) and m.call_state == code


# What differs between two runs of the same flow: references, channel ids, RTP ports.
_VOLATILE = frozenset(
    [
        "call_reference",
        "pass_thru_party_id",
        "conference_id",
        "conference_id1",
        "remote_port",
        "port",
    ]
)


def shape(msgs: list[Message]) -> list[tuple[str, tuple[tuple[str, Any], ...]]]:
    """Each message's type and fields, without what differs from one call to the next."""
    out = []
    for msg in msgs:
        fields = tuple(
            (f.name, getattr(msg, f.name))
            for f in dataclasses.fields(msg)  # type: ignore[arg-type]
            if f.name not in _VOLATILE
        )
        out.append((type(msg).__name__, fields))
    return out


def up_to(phone: SccpPhone, since: int, match: Callable[[Message], bool]) -> list[Message]:
    """What ``phone`` received from ``since`` up to and including the first ``match``."""
    for i in range(since, len(phone.received)):
        if match(phone.received[i]):
            return phone.received[since : i + 1]
    raise AssertionError(f"{phone.name}: nothing matched since {since}")


@dataclasses.dataclass
class Flow:
    a: list[Message]
    b: list[Message]
    b_frames: list[bytes]


async def ring_b(a: SccpPhone, b: SccpPhone) -> int:
    """A dials B and hears ringback; B rings. B's call reference."""
    a_mark, b_mark = a.mark(), b.mark()
    a.off_hook(1)
    await a.wait_for(state_is(CallStateCode.OFF_HOOK), since=a_mark, timeout=WAIT)
    a.dial(B_DN)
    ring = await b.wait_for(state_is(CallStateCode.RING_IN), since=b_mark, timeout=WAIT)
    await a.wait_for(state_is(CallStateCode.RING_OUT), since=a_mark, timeout=WAIT)
    return int(ring.call_reference)


async def transmitting(a: SccpPhone, b: SccpPhone, a_mark: int, b_mark: int) -> None:
    """Both phones were told to transmit to each other, and each hears the other."""
    await a.wait_for(StartMediaTransmission, since=a_mark, timeout=WAIT)
    await b.wait_for(StartMediaTransmission, since=b_mark, timeout=WAIT)
    assert await a.wait_rtp(20, timeout=WAIT) >= 20
    assert await b.wait_rtp(20, timeout=WAIT) >= 20


async def hang_up(a: SccpPhone, b: SccpPhone) -> None:
    a_mark, b_mark = a.mark(), b.mark()
    a.on_hook(1)
    await a.wait_for(state_is(CallStateCode.ON_HOOK), since=a_mark, timeout=WAIT)
    await b.wait_for(state_is(CallStateCode.ON_HOOK), since=b_mark, timeout=WAIT)


async def answer_flow(run: Running, a: SccpPhone, b: SccpPhone, by_cti: bool) -> Flow:
    ref = await ring_b(a, b)
    a_mark, b_mark = a.mark(), b.mark()
    if by_cti:
        call_id, leg = run.call_ringing(B)
        run.engine.cti_answer(B, call_id)
        assert leg.state is not LegState.RELEASED
    else:
        b.softkey(SoftKey.ANSWER, 1, ref)
    await transmitting(a, b, a_mark, b_mark)
    smt = lambda m: isinstance(m, StartMediaTransmission)  # noqa: E731
    got = Flow(up_to(a, a_mark, smt), up_to(b, b_mark, smt), [])
    got.b_frames = b.received_raw[b_mark : b_mark + len(got.b)]
    return got


async def hold_flow(run: Running, a: SccpPhone, b: SccpPhone, by_cti: bool) -> Flow:
    """B holds A (A's transmission stops), then resumes (RTP flows again)."""
    ref = await ring_b(a, b)
    b.softkey(SoftKey.ANSWER, 1, ref)
    await transmitting(a, b, a.mark(), b.mark())
    a_mark, b_mark = a.mark(), b.mark()
    call_id = run.call_of(B)
    if by_cti:
        run.engine.cti_hold(B, call_id)
    else:
        b.softkey(SoftKey.HOLD, 1, ref)
    await b.wait_for(state_is(CallStateCode.HOLD), since=b_mark, timeout=WAIT)
    await a.wait_for(StopMediaTransmission, since=a_mark, timeout=WAIT)
    held_a, held_b = a.mark(), b.mark()
    if by_cti:
        run.engine.cti_resume(B, call_id)
    else:
        b.softkey(SoftKey.RESUME, 1, ref)
    await b.wait_for(state_is(CallStateCode.CONNECTED), since=held_b, timeout=WAIT)
    await transmitting(a, b, held_a, held_b)
    smt = lambda m: isinstance(m, StartMediaTransmission)  # noqa: E731
    return Flow(up_to(a, a_mark, smt), up_to(b, b_mark, smt), [])


def scapy_reads_as_we_do(frames: list[bytes]) -> list[str]:
    """Frames scapy's Skinny layer reads otherwise than ``offhook.sccp`` (empty: none)."""
    skinny = pytest.importorskip("scapy.contrib.skinny")
    fields: dict[str, dict[str, str]] = {
        "CallState": {"state": "call_state", "instance": "line_instance",
                      "callid": "call_reference"},
        "SetLamp": {"stimulus": "stimulus", "instance": "stimulus_instance", "mode": "lamp_mode"},
        "SetRinger": {"ring": "ring_mode"},
        "SetSpeakerMode": {"ring": "mode"},
        "OpenReceiveChannel": {"passthru": "pass_thru_party_id", "callid": "call_reference"},
        "StartMediaTransmission": {"remote": "remote_ip", "port": "remote_port",
                                   "callid": "call_reference"},
        "StopTone": {"instance": "line_instance", "callid": "call_reference"},
    }  # fmt: skip
    wrong = []
    for frame in frames:
        ours = decode_frame(frame)
        theirs = skinny.Skinny(frame)
        if theirs.msg != ours.msg_id:
            wrong.append(f"{type(ours).__name__}: scapy read id {theirs.msg}")
            continue
        for scapy_name, our_name in fields.get(type(ours).__name__, {}).items():
            got, want = theirs.payload.getfieldval(scapy_name), getattr(ours, our_name)
            if got != want:
                wrong.append(f"{type(ours).__name__}.{our_name}: scapy {got!r}, ours {want!r}")
    return wrong


def test_sccp_answer_by_cti_is_the_answer_softkey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(run: Running) -> None:
        async with sccp_pair(run) as (a, b):
            by_key = await answer_flow(run, a, b, by_cti=False)
            await hang_up(a, b)
            by_cti = await answer_flow(run, a, b, by_cti=True)
            assert b.speaker  # the speakerphone took the call: the handset is down
            await hang_up(a, b)
            assert not b.speaker
        assert shape(by_cti.b) == shape(by_key.b)
        assert shape(by_cti.a) == shape(by_key.a)
        kinds = [type(m).__name__ for m in by_cti.b]
        for kind in ("SetRinger", "SetSpeakerMode", "OpenReceiveChannel", "CallState"):
            assert kind in kinds, kinds
        assert scapy_reads_as_we_do(by_cti.b_frames) == []

    run_node(tmp_path, monkeypatch, scenario)


def test_sccp_hold_and_resume_by_cti_are_the_softkeys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(run: Running) -> None:
        async with sccp_pair(run) as (a, b):
            by_key = await hold_flow(run, a, b, by_cti=False)
            await hang_up(a, b)
            by_cti = await hold_flow(run, a, b, by_cti=True)
            await hang_up(a, b)
        assert shape(by_cti.b) == shape(by_key.b)
        assert shape(by_cti.a) == shape(by_key.a)

    run_node(tmp_path, monkeypatch, scenario)


def test_sccp_answer_refused_when_nothing_rings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(run: Running) -> None:
        async with sccp_pair(run) as (a, b):
            ref = await ring_b(a, b)
            call_id, _ = run.call_ringing(B)
            b.softkey(SoftKey.ANSWER, 1, ref)
            await transmitting(a, b, a.mark(), b.mark())
            mark = b.mark()
            with pytest.raises(CtiRefused):
                run.engine.cti_answer(B, call_id)  # connected: nothing to answer
            with pytest.raises(CtiRefused):
                run.engine.cti_resume(B, call_id)  # not held
            await hang_up(a, b)
            assert not any(isinstance(m, CallState) and m.call_state == CallStateCode.HOLD
                           for m in b.received[mark:])  # fmt: skip

    run_node(tmp_path, monkeypatch, scenario)


# ----------------------------------------------------------------- SIP


def baresip_phone(run: Running) -> Baresip:
    require_binary("baresip")
    return Baresip(
        run.tmp_path,
        BOB,
        aor=f"sip:{BOB}@{HOST}:{run.node.sip_port}",
        password=BOB_PW,
        regint=120,
    )


async def wait_until(cond: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"not in time: {what}")
        await asyncio.sleep(0.02)


async def answered_or_not(driver: OutboundLeg) -> None:
    """The phone's answer to the talk NOTIFY arrived (or its time ran out)."""
    await wait_until(lambda: driver.talk.answered is not None, "an answer to the NOTIFY", 40.0)


def test_baresip_is_not_asked_and_keeps_ringing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(run: Running) -> None:
        bob = baresip_phone(run)
        await asyncio.to_thread(bob.start)
        try:
            await asyncio.to_thread(bob.wait_registered)
            async with sccp_pair(run) as (a, _):
                for asked_anyway in (False, True):
                    mark = bob.mark()
                    a_mark = a.mark()
                    a.off_hook(1)
                    a.dial(BOB_DN)
                    await asyncio.to_thread(bob.wait_event, "CALL_INCOMING", since=mark)
                    await a.wait_for(state_is(CallStateCode.RING_OUT), since=a_mark,
                                     timeout=WAIT)  # fmt: skip
                    call_id, leg = run.call_ringing(BOB)
                    driver = leg.driver
                    assert isinstance(driver, OutboundLeg)
                    assert "talk" not in driver.talk.events  # baresip 1.0 does not say it
                    if not asked_anyway:
                        with pytest.raises(CtiRefused) as refused:
                            run.engine.cti_answer(BOB, call_id)
                        assert refused.value.cause == 79
                    else:
                        # Asked anyway (as if it had said talk): baresip refuses the NOTIFY.
                        driver.talk.events = frozenset({"talk"})
                        run.engine.cti_answer(BOB, call_id)
                        await answered_or_not(driver)
                        assert driver.talk.answered not in range(200, 300), driver.talk.answered
                        assert driver.talk.refused
                    # Still ringing for its user, who answers: an ordinary call.
                    assert "CALL_CLOSED" not in [e.type for e in bob.events[mark:]]
                    assert leg.state is LegState.ALERTING
                    await asyncio.to_thread(bob.accept)
                    await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED", since=mark)
                    await a.wait_for(state_is(CallStateCode.CONNECTED), since=a_mark,
                                     timeout=WAIT)  # fmt: skip
                    a.on_hook(1)
                    await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", since=mark)
        finally:
            await asyncio.to_thread(bob.stop)

    run_node(tmp_path, monkeypatch, scenario)


def test_a_phone_that_takes_the_talk_event_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_binary("sipp")
    workdir = tmp_path / "sipp"
    workdir.mkdir()

    async def scenario(run: Running) -> None:
        uas = Sipp(workdir, "uas_talk.xml", "carol-phone", timeout_s=40)
        uas.start()
        try:
            reg = Sipp(
                workdir,
                "register.xml",
                "register-carol",
                target=f"{HOST}:{run.node.sip_port}",
                keys={"user": CAROL, "contact_host": HOST, "contact_port": str(uas.port),
                      "expires": "300"},
                auth=(CAROL, CAROL_PW),
                timeout_s=15,
            )  # fmt: skip
            registered = await asyncio.to_thread(reg.run)
            assert registered.ok, describe(registered)
            async with sccp_pair(run) as (a, _):
                a_mark = a.mark()
                a.off_hook(1)
                a.dial(CAROL_DN)
                await a.wait_for(state_is(CallStateCode.RING_OUT), since=a_mark, timeout=WAIT)
                call_id, leg = run.call_ringing(CAROL)
                assert isinstance(leg.driver, OutboundLeg) and leg.driver.talk.supported
                run.engine.cti_answer(CAROL, call_id)
                await a.wait_for(state_is(CallStateCode.CONNECTED), since=a_mark, timeout=WAIT)
                await a.wait_for(StartMediaTransmission, since=a_mark, timeout=WAIT)  # SIPp's SDP
                assert leg.state is LegState.CONNECTED
                assert leg.driver.talk.answered == 200
                a.on_hook(1)
                await a.wait_for(state_is(CallStateCode.ON_HOOK), since=a_mark, timeout=WAIT)
            result = await asyncio.to_thread(uas.wait, 20)
            assert result.ok, describe(result)
        finally:
            uas.stop()

    run_node(tmp_path, monkeypatch, scenario)


# ----------------------------------------------------------------- through offhook serve


def ringing_call(server: OffhookServer, device: str) -> str:
    """The id of the call ringing ``device`` (``cti_snapshot``, as an application sees it)."""
    snapshot = server.control("cti_snapshot")
    for call in snapshot["calls"]:
        for leg in call["legs"]:
            if leg["device"] == device and leg["direction"] == "outbound":
                return str(call["call_id"])
    raise AssertionError(f"no call rings {device}: {snapshot['calls']}")


@contextlib.asynccontextmanager
async def served_pair(server: OffhookServer) -> AsyncIterator[tuple[SccpPhone, SccpPhone]]:
    a = SccpPhone(A, server.sccp_port, tone_hz=500, rtp_packets=3000)
    b = SccpPhone(B, server.sccp_port, tone_hz=620, rtp_packets=3000)
    try:
        await a.register()
        await b.register()
        yield a, b
    finally:
        await a.close()
        await b.close()


def test_sccp_answer_hold_resume_through_the_control_endpoint(tmp_path: Path) -> None:
    async def body(server: OffhookServer) -> None:
        async with served_pair(server) as (a, b):
            await ring_b(a, b)
            call_id = await asyncio.to_thread(ringing_call, server, B)
            a_mark, b_mark = a.mark(), b.mark()
            done = await asyncio.to_thread(server.control, "cti_answer", device=B, call_id=call_id)
            assert str(done["command"]).startswith("c")
            await transmitting(a, b, a_mark, b_mark)
            assert b.speaker  # answered on the speakerphone: the handset is down
            a_mark, b_mark = a.mark(), b.mark()
            await asyncio.to_thread(server.control, "cti_hold", device=B, call_id=call_id)
            await b.wait_for(state_is(CallStateCode.HOLD), since=b_mark, timeout=WAIT)
            await a.wait_for(StopMediaTransmission, since=a_mark, timeout=WAIT)
            a_mark, b_mark = a.mark(), b.mark()
            await asyncio.to_thread(server.control, "cti_resume", device=B, call_id=call_id)
            await b.wait_for(state_is(CallStateCode.CONNECTED), since=b_mark, timeout=WAIT)
            await transmitting(a, b, a_mark, b_mark)
            with pytest.raises(ControlError):  # connected: nothing rings B
                await asyncio.to_thread(server.control, "cti_answer", device=B, call_id=call_id)
            await hang_up(a, b)

    with OffhookServer(tmp_path, plan()) as server:
        asyncio.run(asyncio.wait_for(body(server), 90.0))


def test_sip_talk_phone_and_baresip_through_the_control_endpoint(tmp_path: Path) -> None:
    require_binary("sipp")
    require_binary("baresip")
    workdir = tmp_path / "sipp"
    workdir.mkdir()

    async def body(server: OffhookServer, uas: Sipp, bob: Baresip) -> None:
        async with served_pair(server) as (a, _):
            a_mark, mark = a.mark(), bob.mark()
            a.off_hook(1)
            a.dial(BOB_DN)
            await asyncio.to_thread(bob.wait_event, "CALL_INCOMING", since=mark)
            call_id = await asyncio.to_thread(ringing_call, server, BOB)
            with pytest.raises(ControlError, match="cannot answer"):
                await asyncio.to_thread(server.control, "cti_answer", device=BOB, call_id=call_id)
            assert "CALL_CLOSED" not in [e.type for e in bob.events[mark:]]  # still ringing
            a.on_hook(1)
            await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", since=mark)
            await a.wait_for(state_is(CallStateCode.ON_HOOK), since=a_mark, timeout=WAIT)
            a_mark = a.mark()
            a.off_hook(1)
            a.dial(CAROL_DN)
            await a.wait_for(state_is(CallStateCode.RING_OUT), since=a_mark, timeout=WAIT)
            call_id = await asyncio.to_thread(ringing_call, server, CAROL)
            await asyncio.to_thread(server.control, "cti_answer", device=CAROL, call_id=call_id)
            await a.wait_for(state_is(CallStateCode.CONNECTED), since=a_mark, timeout=WAIT)
            await a.wait_for(StartMediaTransmission, since=a_mark, timeout=WAIT)
            a.on_hook(1)
            await a.wait_for(state_is(CallStateCode.ON_HOOK), since=a_mark, timeout=WAIT)

    with OffhookServer(tmp_path, plan()) as server:
        bob = Baresip(tmp_path, BOB, aor=f"sip:{BOB}@{HOST}:{server.sip_port}",
                      password=BOB_PW, regint=120)  # fmt: skip
        with Sipp(workdir, "uas_talk.xml", "carol-phone", timeout_s=60) as uas, bob:
            reg = Sipp(
                workdir,
                "register.xml",
                "register-carol",
                target=f"{HOST}:{server.sip_port}",
                keys={"user": CAROL, "contact_host": HOST, "contact_port": str(uas.port),
                      "expires": "300"},
                auth=(CAROL, CAROL_PW),
                timeout_s=15,
            )  # fmt: skip
            registered = reg.run()
            assert registered.ok, describe(registered)
            bob.wait_registered()
            asyncio.run(asyncio.wait_for(body(server, uas, bob), 90.0))
            result = uas.wait(timeout=20)
        assert result.ok, describe(result)
