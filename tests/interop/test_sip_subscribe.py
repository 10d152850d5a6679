"""Busy lamps and message waiting through a real ``offhook serve`` (RFC 6665 SUBSCRIBE/NOTIFY).

==========  ======  =====================================================
device      DN      played by
==========  ======  =====================================================
alice       1001    baresip, calls bob
bob         1002    baresip, the watched line
carol       1003    SIPp (``subscribe_dialog.xml``, ``subscribe_mwi.xml``)
pool1..3    2000-   50 lines each: numbers to watch in the flood
voicemail   trunk   SIPp at the trunk's address (``notify_mwi.xml``)
==========  ======  =====================================================

* a BLF: carol SUBSCRIBEs to ``dialog`` of 1002 (digest, 401 first) and
  sees it idle, ringing (early), answered (confirmed) and idle again as
  alice calls bob, then unsubscribes (a final, terminated NOTIFY); SIPp
  checks each NOTIFY's body and Subscription-State;
* message waiting: carol SUBSCRIBEs to her own ``message-summary``; the
  voicemail system's unsolicited NOTIFY from the trunk's address (200)
  lights it, and carol's next NOTIFY says ``Messages-Waiting: yes`` with the
  counts; the same NOTIFY from another address is refused 403;
* floods: a SIPp loop re-subscribing 1000 times (each new subscription
  replaces the last), a client subscribing to 300 different lines (the
  per-device cap holds, the rest 403), unauthenticated SUBSCRIBEs from 64
  source addresses (401, nothing kept): the node's subscription count stays
  at the cap and its memory flat.

The node's status (``offhook status --json``) shows the subscriptions.
"""

from __future__ import annotations

import re
import secrets
import selectors
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interop.baresip import Baresip
from interop.peers import require_binary
from interop.sipp import Sipp, describe
from interop.test_sip_calls import PASSWORDS, baresip_ua, dial_uri
from interop.test_sip_features import sip_heads
from offhook.sip.auth import digest_response, ha1, parse_digest
from offhook.sip.codec import parse_message
from offhook.sip.message import SipRequest, SipResponse
from support.attack import rss_kib
from support.ports import HOST, free_port
from support.server import OffhookServer, device

POOL = [f"{2000 + i}" for i in range(150)]
PER_DEVICE_CAP = 100  # sip.subscriptions.Limits().per_device


def plan(voicemail_port: int) -> dict[str, Any]:
    phones = [
        device(name, PASSWORDS[name], dn)
        for name, dn in (("alice", "1001"), ("bob", "1002"), ("carol", "1003"))
    ]
    pool = [
        {
            "name": f"pool{k}",
            "protocol": "sip",
            "password": f"pool-Secret-{k}",
            "lines": [{"dn": dn} for dn in POOL[50 * k : 50 * (k + 1)]],
        }
        for k in range(3)
    ]
    trunk = {
        "name": "voicemail",
        "protocol": "sip",
        "host": HOST,
        "port": voicemail_port,
        "options_ping": 0,
    }
    return {"devices": phones + pool, "trunks": [trunk]}


@pytest.fixture
def voicemail_port() -> int:
    return free_port()


@pytest.fixture
def server(tmp_path: Path, voicemail_port: int) -> Iterator[OffhookServer]:
    require_binary("sipp")
    srv = OffhookServer(tmp_path, plan(voicemail_port), log_level="debug")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def sipp_dir(tmp_path: Path) -> Path:
    d = tmp_path / "sipp"
    d.mkdir()
    return d


def register_carol(server: OffhookServer, workdir: Path, contact_port: int) -> None:
    """carol's registration, with the Contact of the SIPp that will subscribe."""
    reg = Sipp(
        workdir,
        "register.xml",
        "register-carol",
        target=f"{HOST}:{server.sip_port}",
        keys={
            "user": "carol",
            "contact_host": HOST,
            "contact_port": str(contact_port),
            "expires": "300",
        },
        auth=("carol", PASSWORDS["carol"]),
        timeout_s=15,
    )
    result = reg.run()
    assert result.ok, describe(result)


def subscriber(server: OffhookServer, workdir: Path, scenario: str, service: str) -> Sipp:
    port = free_port()
    register_carol(server, workdir, port)
    return Sipp(
        workdir,
        scenario,
        f"sub-{scenario.removesuffix('.xml')}",
        target=f"{HOST}:{server.sip_port}",
        keys={"user": "carol"},
        service=service,
        auth=("carol", PASSWORDS["carol"]),
        timeout_s=60,
        local_port=port,
    )


def notifies_sent(server: OffhookServer) -> list[Any]:
    return [
        h
        for h in sip_heads(server.log())
        if h.direction == "->" and h.first_line.startswith("NOTIFY ")
    ]


def wait_notifies(server: OffhookServer, count: int, timeout: float = 15.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    sent: list[Any] = []
    while time.monotonic() < deadline:
        sent = notifies_sent(server)
        if len(sent) >= count:
            return sent
        time.sleep(0.1)
    raise AssertionError(f"{len(sent)} NOTIFYs sent, {count} expected:\n{server.log_tail(80)}")


def subscriptions(server: OffhookServer) -> dict[str, Any]:
    status: dict[str, Any] = server.status()["subscriptions"]
    return status


# -- a busy lamp --------------------------------------------------------------------------


def test_blf_follows_a_call_on_the_watched_line(
    server: OffhookServer, tmp_path: Path, sipp_dir: Path
) -> None:
    alice = baresip_ua(tmp_path, server, "alice")
    bob = baresip_ua(tmp_path, server, "bob")
    blf = subscriber(server, sipp_dir, "subscribe_dialog.xml", "1002")
    with alice, bob:
        alice.wait_registered()
        bob.wait_registered()
        blf.start(listening=False)
        try:
            wait_notifies(server, 1)  # idle
            assert subscriptions(server)["subscriptions"] == 1
            alice.dial(dial_uri(server, "1002"))
            bob.wait_event("CALL_INCOMING", timeout=10)
            wait_notifies(server, 2)  # ringing
            time.sleep(0.5)
            bob.accept()
            alice.wait_event("CALL_ESTABLISHED", timeout=10)
            wait_notifies(server, 3)  # in use
            time.sleep(0.5)
            mark = bob.mark()
            alice.hangup()
            bob.wait_event("CALL_CLOSED", timeout=10, since=mark)
            result = blf.wait(timeout=30)
        finally:
            blf.stop()
    assert result.ok, describe(result)
    sent = notifies_sent(server)
    states = [h.header("Subscription-State")[0] for h in sent]
    assert len(sent) == 5, states
    assert all(s.startswith("active;expires=") for s in states[:4]), states
    assert states[4] == "terminated;reason=timeout", states
    assert {h.header("Event")[0] for h in sent} == {"dialog"}
    assert subscriptions(server)["subscriptions"] == 0


# -- message waiting ----------------------------------------------------------------------


def voicemail_notify(
    server: OffhookServer, workdir: Path, scenario: str, port: int, name: str
) -> None:
    vm = Sipp(
        workdir,
        scenario,
        name,
        target=f"{HOST}:{server.sip_port}",
        service="1003",
        timeout_s=15,
        local_port=port,
    )
    result = vm.run()
    assert result.ok, describe(result)


def test_message_summary_lit_by_the_voicemail_trunk(
    server: OffhookServer, sipp_dir: Path, voicemail_port: int
) -> None:
    mwi = subscriber(server, sipp_dir, "subscribe_mwi.xml", "carol")
    mwi.start(listening=False)
    try:
        wait_notifies(server, 1)  # nothing waiting
        # From an address that is no trunk: refused, and carol's lamp stays dark.
        voicemail_notify(server, sipp_dir, "notify_mwi_refused.xml", free_port(), "vm-refused")
        time.sleep(0.3)
        assert len(notifies_sent(server)) == 1
        voicemail_notify(server, sipp_dir, "notify_mwi.xml", voicemail_port, "vm")
        result = mwi.wait(timeout=30)
    finally:
        mwi.stop()
    assert result.ok, describe(result)
    counters = subscriptions(server)["counters"]
    assert counters["mwi_200"] == 1 and counters["mwi_403"] == 1, counters
    sent = notifies_sent(server)
    assert [h.header("Event")[0] for h in sent] == ["message-summary"] * 3


# -- floods -------------------------------------------------------------------------------


class Phone:
    """A SIP client on one UDP socket that subscribes with digest and answers NOTIFYs 200."""

    def __init__(self, server: OffhookServer, user: str, password: str, host: str = HOST):
        self.server = (HOST, server.sip_port)
        self.user = user
        self.password = password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.addr = self.sock.getsockname()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ)
        self.challenge: dict[str, str] = {}
        self.nc = 0
        self.answers: Counter[int] = Counter()

    def close(self) -> None:
        self.sel.close()
        self.sock.close()

    def subscribe_bytes(self, target: str, event: str, call_id: str, cseq: int) -> bytes:
        uri = f"sip:{target}@{self.server[0]}:{self.server[1]}"
        lines = [
            f"SUBSCRIBE {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.addr[0]}:{self.addr[1]};branch=z9hG4bK{secrets.token_hex(6)}",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{self.server[0]}>;tag={call_id[:8]}",
            f"To: <{uri}>",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} SUBSCRIBE",
            f"Contact: <sip:{self.user}@{self.addr[0]}:{self.addr[1]}>",
            f"Event: {event}",
            "Expires: 600",
        ]
        if self.challenge:
            c = self.challenge
            self.nc += 1
            nc = f"{self.nc:08x}"
            key = ha1(self.user, c["realm"], self.password)
            resp = digest_response(
                "MD5", key, "SUBSCRIBE", uri, c["nonce"], qop="auth", nc=nc, cnonce="ab12"
            )
            lines.append(
                f'Authorization: Digest username="{self.user}", realm="{c["realm"]}", '
                f'nonce="{c["nonce"]}", uri="{uri}", response="{resp}", algorithm=MD5, '
                f'qop=auth, nc={nc}, cnonce="ab12", opaque="{c["opaque"]}"'
            )
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def pump(self, timeout: float, until: str = "") -> list[SipResponse]:
        """Read for ``timeout`` s (or until a final answer for Call-ID ``until``):
        answer NOTIFYs 200, return the SUBSCRIBE answers."""
        out: list[SipResponse] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                return out
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                continue
            msg = parse_message(data)
            if isinstance(msg, SipRequest) and msg.method == "NOTIFY":
                self.sock.sendto(self._ok(msg), self.server)
            elif isinstance(msg, SipResponse) and msg.cseq[1] == "SUBSCRIBE":
                out.append(msg)
                if until and msg.call_id == until and msg.status >= 200:
                    return out

    @staticmethod
    def _ok(req: SipRequest) -> bytes:
        lines = ["SIP/2.0 200 OK"]
        lines += [f"Via: {v}" for v in req.headers.get_all("Via")]
        for name in ("From", "To", "Call-ID", "CSeq"):
            lines.append(f"{name}: {req.headers.get(name)}")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def subscribe(self, target: str, event: str = "dialog") -> int:
        """One subscription, through its challenge; the final status."""
        call_id = secrets.token_hex(8) + "@flood"
        for cseq in (1, 2):
            self.sock.sendto(self.subscribe_bytes(target, event, call_id, cseq), self.server)
            got = self.pump(2.0, until=call_id)
            answers = [r for r in got if r.call_id == call_id and r.status >= 200]
            if not answers:
                return 0
            last = answers[-1]
            if last.status == 401 and cseq == 1:
                _, self.challenge = parse_digest(last.headers.get("WWW-Authenticate") or "")
                self.nc = 0
                continue
            self.answers[last.status] += 1
            return last.status
        return 0


def test_subscribe_floods_keep_state_bounded(server: OffhookServer, sipp_dir: Path) -> None:
    # One device re-subscribing in a loop (SIPp, a new Call-ID each time): each
    # subscription replaces the one before.
    port = free_port()
    register_carol(server, sipp_dir, port)
    rss_start = rss_kib(server.pid)
    loop = Sipp(
        sipp_dir,
        "subscribe_dialog_once.xml",
        "sub-loop",
        target=f"{HOST}:{server.sip_port}",
        keys={"user": "carol"},
        service="1002",
        auth=("carol", PASSWORDS["carol"]),
        calls=1000,
        timeout_s=120,
        local_port=port,
        # Under the per-source rate limit ([sip] rate_per_source, 200 a second with
        # every message of SIPp's loop counted): over it, datagrams are dropped.
        extra=["-r", "40", "-l", "40"],
    )
    result = loop.run()
    assert result.ok, describe(result)
    status = subscriptions(server)
    assert status["subscriptions"] == 1, status
    assert status["counters"]["replaced"] == 999, status

    # One device subscribing to 300 different things: the per-device cap holds.
    phone = Phone(server, "carol", PASSWORDS["carol"])
    try:
        for dn in POOL:
            for event in ("dialog", "presence"):
                phone.subscribe(dn, event)
        phone.pump(1.0)
    finally:
        phone.close()
    status = subscriptions(server)
    assert status["subscriptions"] == PER_DEVICE_CAP, status
    assert phone.answers[200] == PER_DEVICE_CAP - 1, phone.answers  # 1002 already watched
    assert phone.answers[403] == 300 - (PER_DEVICE_CAP - 1), phone.answers

    # Many sources, no credentials: each is challenged statelessly, nothing is kept.
    transactions = server.status()["counters"]["transactions"]
    senders = [Phone(server, "mallory", "x", host=f"127.0.{9 + k // 200}.{1 + k % 200}")
               for k in range(64)]  # fmt: skip
    try:
        for _ in range(10):
            for s in senders:
                s.sock.sendto(
                    s.subscribe_bytes("1002", "dialog", secrets.token_hex(8) + "@m", 1), s.server
                )
        challenged = 0
        for s in senders:
            challenged += sum(1 for r in s.pump(0.05) if r.status == 401)
    finally:
        for s in senders:
            s.close()
    assert challenged > 0
    status = subscriptions(server)
    assert status["subscriptions"] == PER_DEVICE_CAP, status
    counters = server.status()["counters"]
    assert counters["transactions"] <= transactions, counters
    assert counters["sip"]["stateless_answers"] >= challenged, counters
    growth_mb = (rss_kib(server.pid) - rss_start) / 1024
    assert growth_mb < 15, growth_mb


# -- baresip: presence of a contact (BLF) and message waiting ------------------------------


class WatchingBaresip(Baresip):
    """baresip with its ``presence`` (contacts with ``presence=p2p``) and ``mwi`` modules.

    baresip 1.0's mwi module loops forever (subscribing, never reading) when
    the account registers before the module's 1 ms start timer runs (the
    timer walks a list it appends to): it starts with no account and is
    given its account once running (``uanew``).
    """

    def __init__(self, *args: Any, watch: str = "", **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.watch = watch

    def write_config(self) -> None:
        super().write_config()
        config = self.dir / "config"
        extra = "module_app\t\tcontact.so\nmodule_app\t\tpresence.so\nmodule_app\t\tmwi.so\n"
        config.write_text(config.read_text() + extra)
        if self.watch:
            (self.dir / "contacts").write_text(f'"Watched" <{self.watch}>;presence=p2p\n')
        accounts = self.dir / "accounts"
        self.account_line = accounts.read_text().strip()
        accounts.write_text("")

    def add_account(self) -> None:
        self.command("uanew", self.account_line)

    def contact_status(self) -> str:
        """The watched contact's presence as baresip shows it (Online, Busy, ...)."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.command("contacts"))
        for line in text.splitlines():
            if self.watch in line:
                return line.split()[1] if line.startswith(">") else line.split()[0]
        return ""

    def wait_status(self, status: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            seen = self.contact_status()
            if seen == status:
                return
            time.sleep(0.2)
        raise AssertionError(f"{self.name} shows {self.watch} {seen!r}, not {status!r}")


def test_baresip_presence_and_mwi(
    server: OffhookServer, tmp_path: Path, sipp_dir: Path, voicemail_port: int
) -> None:
    """baresip's presence module watches 1002 (Online, Busy in a call, Online again);
    its mwi module gets the voicemail system's message waiting."""
    require_binary("baresip")
    alice = baresip_ua(tmp_path, server, "alice")
    bob = baresip_ua(tmp_path, server, "bob")
    carol = WatchingBaresip(
        tmp_path,
        "carol",
        aor=f"sip:carol@{HOST}:{server.sip_port}",
        password=PASSWORDS["carol"],
        regint=120,
        watch=f"sip:1002@{HOST}:{server.sip_port}",
    )
    with alice, bob, carol:
        time.sleep(0.2)
        carol.add_account()
        for ua in (alice, bob, carol):
            ua.wait_registered()
        carol.wait_status("Online")
        mark = carol.mark()
        voicemail_notify(server, sipp_dir, "notify_mwi.xml", voicemail_port, "vm")
        lit = carol.wait_event("MWI_NOTIFY", timeout=10, since=mark)
        assert "Messages-Waiting: yes" in str(lit.data.get("param")), lit.data
        assert "Voice-Message: 2/1" in str(lit.data.get("param")), lit.data
        alice.dial(dial_uri(server, "1002"))
        bob.wait_event("CALL_INCOMING", timeout=10)
        bob.accept()
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        carol.wait_status("Busy")
        mark = bob.mark()
        alice.hangup()
        bob.wait_event("CALL_CLOSED", timeout=10, since=mark)
        carol.wait_status("Online")
        status = subscriptions(server)
        assert status["by_package"] == {"presence": 1, "message-summary": 1}, status
