"""SUBSCRIBE/NOTIFY through a real SipEndpoint (sip.notifier, sip.mwi_in) on a hand-driven clock.

The notifier's policy is ``Policy``: lines, CSS reach and message waiting
the test sets. Subscribers authenticate with digest (a real
``DigestAuthenticator``); a voicemail system's NOTIFY comes from the trunk
address ``VOICEMAIL``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from sip_rig import NODE, FakeEngine, FakeLoop, requests, responses

from offhook.common.clock import FakeClock
from offhook.sip.auth import Credentials, DigestAuthenticator, digest_response, ha1, parse_digest
from offhook.sip.codec import parse_message
from offhook.sip.endpoint import SipEndpoint, TrunkPeer
from offhook.sip.event_packages import LineStatus
from offhook.sip.message import SipMessage, SipRequest, SipResponse
from offhook.sip.message_summary import MessageCounts, MessageSummary, parse_message_summary
from offhook.sip.notifier import Notifier, Resource
from offhook.sip.subscriptions import Limits
from offhook.sip.timers import TimerConfig
from offhook.sip.transaction import TransactionLayer

REALM = "offhook.test"
PHONE = ("192.0.2.30", 5070)
VOICEMAIL = ("192.0.2.99", 5060)
PASSWORD = "alice-Secret-1"


class Creds:
    def credentials(self, username: str) -> Credentials | None:
        if username != "alice":
            return None
        return Credentials(
            "alice", "alice", REALM, ha1_md5=ha1("alice", REALM, PASSWORD), dns=("1001",)
        )


@dataclass
class Policy:
    registered_devices: set[str] = field(default_factory=lambda: {"alice"})
    reach: dict[str, Resource] = field(default_factory=lambda: {"1002": ("1002", "internal")})
    own: dict[str, Resource] = field(default_factory=lambda: {"1001": ("1001", "internal")})
    lines: dict[Resource, LineStatus] = field(default_factory=dict)
    mwi: dict[Resource, MessageSummary] = field(default_factory=dict)
    set_calls: list[tuple[str, MessageSummary]] = field(default_factory=list)

    def registered(self, device: str) -> bool:
        return device in self.registered_devices

    def resource(self, device: str, package: str, user: str) -> Resource | int:
        if package == "message-summary":
            if user == device:
                return self.own["1001"]
            return self.own.get(user, 403)  # type: ignore[return-value]
        return self.reach.get(user, 404)  # type: ignore[return-value]

    def line_status(self, resource: Resource) -> LineStatus:
        return self.lines.get(resource, LineStatus())

    def summary(self, resource: Resource) -> MessageSummary:
        return self.mwi.get(resource, MessageSummary(False))

    def set_mwi(self, user: str, summary: MessageSummary) -> bool:
        self.set_calls.append((user, summary))
        if user not in ("1001", "1002"):
            return False
        self.mwi[(user, "internal")] = summary
        return True


class NRig:
    def __init__(self, limits: Limits = Limits()) -> None:  # noqa: B008
        self.clock = FakeClock(start=100.0)
        self.loop = FakeLoop(self.clock)
        self.engine = FakeEngine(self.clock)
        self.wire: list[tuple[SipMessage, tuple[str, int]]] = []
        self.auth = DigestAuthenticator(b"k" * 32, REALM, algorithms=("MD5",))
        self.failures: list[tuple[tuple[str, int], str]] = []
        with mock.patch("offhook.sip.endpoint.asyncio.get_running_loop", return_value=self.loop):
            self.ep = SipEndpoint(
                engine=self.engine,  # type: ignore[arg-type]
                registrar=None,  # type: ignore[arg-type]
                authenticator=self.auth,
                credentials=Creds(),
                caller_of=lambda device: None,
                txl=TransactionLayer(TimerConfig(t1=0.5)),
                send=self._send,
                clock=self.clock,
                host=NODE[0],
                port=NODE[1],
                trunk_for=lambda addr: TrunkPeer("vm", "css") if addr == VOICEMAIL else None,
                on_auth_failure=lambda addr, user: self.failures.append((addr, user)),
            )
        self.policy = Policy()
        self.notifier = Notifier(
            self.ep, self.policy, limits=limits, min_expires=60, max_expires=3600
        )
        self.ep.notifier = self.notifier

    def _send(self, msg: SipMessage, dest: tuple[str, int], transport: str, _err: Any) -> None:
        self.wire.append((parse_message(msg.serialize()), dest))  # type: ignore[attr-defined]

    def feed(self, data: bytes, source: tuple[str, int] = PHONE) -> None:
        self.ep.on_message(parse_message(data), source, "udp")

    def take(self) -> list[SipMessage]:
        out = [m for m, _ in self.wire]
        self.wire.clear()
        return out

    def take_with_dest(self) -> list[tuple[SipMessage, tuple[str, int]]]:
        out = list(self.wire)
        self.wire.clear()
        return out


@dataclass
class Subscriber:
    """A phone's subscription dialog, written by hand, with digest."""

    rig: NRig
    event: str = "dialog"
    target: str = "1002"
    addr: tuple[str, int] = PHONE
    user: str = "alice"
    password: str = PASSWORD
    call_id: str = field(default_factory=lambda: secrets.token_hex(6) + "@phone")
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    cseq: int = 0
    remote_tag: str = ""
    challenge: dict[str, str] = field(default_factory=dict)
    nc: int = 0

    @property
    def uri(self) -> str:
        return f"sip:{self.target}@{NODE[0]}:{NODE[1]}"

    def subscribe(self, expires: int | None = 600, *, auth: bool = True,
                  extra: list[tuple[str, str]] | None = None) -> bytes:  # fmt: skip
        self.cseq += 1
        lines = [
            f"SUBSCRIBE {self.uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.addr[0]}:{self.addr[1]};branch=z9hG4bK{secrets.token_hex(5)}",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{NODE[0]}>;tag={self.tag}",
            f"To: <{self.uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else ""),
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} SUBSCRIBE",
            f"Contact: <sip:{self.user}@{self.addr[0]}:{self.addr[1]}>",
            f"Event: {self.event}",
        ]
        if expires is not None:
            lines.append(f"Expires: {expires}")
        lines += [f"{n}: {v}" for n, v in extra or []]
        if auth and self.challenge:
            lines.append(f"Authorization: {self.authorization()}")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def authorization(self) -> str:
        c = self.challenge
        self.nc += 1
        nc = f"{self.nc:08x}"
        cnonce = "c0ffee"
        ha = ha1(self.user, c["realm"], self.password)
        resp = digest_response(
            "MD5", ha, "SUBSCRIBE", self.uri, c["nonce"], qop="auth", nc=nc, cnonce=cnonce
        )
        return (
            f'Digest username="{self.user}", realm="{c["realm"]}", nonce="{c["nonce"]}", '
            f'uri="{self.uri}", response="{resp}", algorithm=MD5, qop=auth, nc={nc}, '
            f'cnonce="{cnonce}", opaque="{c["opaque"]}"'
        )

    def learn(self, resp: SipResponse) -> None:
        _, self.challenge = parse_digest(resp.headers.get("WWW-Authenticate") or "")

    def open(self, expires: int = 600, extra: list[tuple[str, str]] | None = None) -> SipResponse:
        """SUBSCRIBE, answer the 401, and return the final answer."""
        self.rig.feed(self.subscribe(expires, auth=False, extra=extra), self.addr)
        first = responses(self.rig.take(), "SUBSCRIBE")[-1]
        assert first.status == 401, first
        self.learn(first)
        self.rig.feed(self.subscribe(expires, extra=extra), self.addr)
        out = self.rig.wire[:]
        final = [r for r in responses([m for m, _ in out], "SUBSCRIBE") if r.status >= 200][-1]
        if final.status == 200:
            self.remote_tag = final.to_tag or ""
        return final

    def answer(self, notify: SipRequest, status: int = 200) -> bytes:
        lines = [f"SIP/2.0 {status} Whatever"]
        lines += [f"Via: {v}" for v in notify.headers.get_all("Via")]
        lines += [
            f"From: {notify.headers.get('From')}",
            f"To: {notify.headers.get('To')}",
            f"Call-ID: {notify.call_id}",
            f"CSeq: {notify.headers.get('CSeq')}",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def notifies(msgs: list[SipMessage]) -> list[SipRequest]:
    return requests(msgs, "NOTIFY")


def state_of(notify: SipRequest) -> str:
    return notify.body.decode().split("<state>")[1].split("</state>")[0]


# -- subscribing --------------------------------------------------------------------------


def test_dialog_subscription_full_flow_with_version_counter() -> None:
    rig = NRig()
    phone = Subscriber(rig)
    ok = phone.open()
    assert ok.status == 200 and ok.headers.get("Expires") == "600" and ok.headers.get("Contact")
    first = notifies(rig.take())
    assert len(first) == 1
    n = first[0]
    assert n.headers.get("Event") == "dialog"
    assert n.headers.get("Subscription-State") == "active;expires=600"
    assert n.headers.get("Content-Type") == "application/dialog-info+xml"
    assert n.from_tag == phone.remote_tag and n.to_tag == phone.tag and n.call_id == phone.call_id
    assert n.uri == f"sip:alice@{PHONE[0]}:{PHONE[1]}" and n.headers.get("Contact")
    assert 'version="0"' in n.body.decode() and state_of(n) == "terminated"
    rig.feed(phone.answer(n), PHONE)

    rig.policy.lines[("1002", "internal")] = LineStatus("ringing", "recipient")
    rig.notifier.changed("dialog", ("1002", "internal"))
    ringing = notifies(rig.take())[-1]
    assert state_of(ringing) == "early" and 'version="1"' in ringing.body.decode()
    assert 'direction="recipient"' in ringing.body.decode()
    # Changes while that NOTIFY is outstanding coalesce: one NOTIFY with the latest state.
    rig.policy.lines[("1002", "internal")] = LineStatus("in-use", "recipient")
    rig.notifier.changed("dialog", ("1002", "internal"))
    rig.policy.lines[("1002", "internal")] = LineStatus("idle")
    rig.notifier.changed("dialog", ("1002", "internal"))
    assert notifies(rig.take()) == []
    rig.feed(phone.answer(ringing), PHONE)
    latest = notifies(rig.take())
    assert len(latest) == 1 and state_of(latest[0]) == "terminated"
    assert 'version="2"' in latest[0].body.decode()
    assert rig.notifier.status()["subscriptions"] == 1


def test_unauthenticated_subscribe_is_challenged_statelessly() -> None:
    rig = NRig()
    phone = Subscriber(rig)
    for _ in range(3):
        rig.feed(phone.subscribe(auth=False), PHONE)
    answers = responses(rig.take(), "SUBSCRIBE")
    assert [a.status for a in answers] == [401, 401, 401]
    assert len(rig.ep.txl) == 0 and len(rig.notifier.table) == 0


def test_wrong_password_is_403_and_counted() -> None:
    rig = NRig()
    phone = Subscriber(rig, password="wrong")
    assert phone.open().status == 403
    assert rig.failures and rig.failures[0][1] == "alice"
    assert len(rig.notifier.table) == 0


@pytest.mark.parametrize(("event", "status"), [("reg", 489), ("dialog;id=", 400), ("", 400)])
def test_unknown_or_bad_event_is_refused_before_digest(event: str, status: int) -> None:
    rig = NRig()
    phone = Subscriber(rig, event=event)
    rig.feed(phone.subscribe(auth=False), PHONE)
    got = responses(rig.take(), "SUBSCRIBE")[-1]
    assert got.status == status
    if status == 489:
        assert got.headers.get("Allow-Events") == "dialog, presence, message-summary"


def test_no_event_header_is_489() -> None:
    rig = NRig()
    phone = Subscriber(rig)
    data = phone.subscribe(auth=False).replace(b"Event: dialog\r\n", b"")
    rig.feed(data, PHONE)
    assert responses(rig.take(), "SUBSCRIBE")[-1].status == 489


def test_unregistered_device_may_not_subscribe() -> None:
    rig = NRig()
    rig.policy.registered_devices.clear()
    assert Subscriber(rig).open().status == 403


def test_unknown_and_unreachable_numbers_get_the_same_404() -> None:
    rig = NRig()
    assert Subscriber(rig, target="1003").open().status == 404  # not reachable / unknown
    assert Subscriber(rig, target="9999").open().status == 404
    assert len(rig.notifier.table) == 0


def test_message_summary_only_for_own_line() -> None:
    rig = NRig()
    assert Subscriber(rig, event="message-summary", target="1002").open().status == 403
    rig.policy.mwi[("1001", "internal")] = MessageSummary(
        True, "", (MessageCounts("voice-message", 2, 5),)
    )
    own = Subscriber(rig, event="message-summary", target="alice")
    assert own.open().status == 200
    n = notifies(rig.take())[-1]
    assert n.headers.get("Content-Type") == "application/simple-message-summary"
    body = parse_message_summary(n.body)
    assert body.waiting and body.voice is not None and (body.voice.new, body.voice.old) == (2, 5)
    assert body.account == f"sip:1001@{NODE[0]}"


def test_presence_body() -> None:
    rig = NRig()
    rig.policy.lines[("1002", "internal")] = LineStatus("in-use", "initiator")
    assert Subscriber(rig, event="presence").open().status == 200
    n = notifies(rig.take())[-1]
    assert n.headers.get("Content-Type") == "application/pidf+xml"
    text = n.body.decode()
    assert "<basic>open</basic>" in text and "on-the-phone" in text


def test_expires_checks_and_accept() -> None:
    rig = NRig()
    brief = Subscriber(rig).open(expires=10)
    assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"
    long = Subscriber(rig).open(expires=999999)
    assert long.status == 200 and long.headers.get("Expires") == "3600"
    refused = Subscriber(rig, target="1002").open(extra=[("Accept", "application/xpidf+xml")])
    assert refused.status == 406


def test_fetch_with_expires_zero_sends_one_terminated_notify() -> None:
    rig = NRig()
    phone = Subscriber(rig)
    assert phone.open(expires=0).status == 200
    (n,) = notifies(rig.take())
    assert n.headers.get("Subscription-State") == "terminated;reason=timeout"
    rig.feed(phone.answer(n), PHONE)
    assert len(rig.notifier.table) == 0


# -- refresh, unsubscribe, expiry, failures --------------------------------------------


def opened(rig: NRig, **kw: Any) -> tuple[Subscriber, SipRequest]:
    phone = Subscriber(rig, **kw)
    assert phone.open().status == 200
    n = notifies(rig.take())[-1]
    rig.feed(phone.answer(n), phone.addr)
    rig.take()
    return phone, n


def test_refresh_and_unsubscribe_in_dialog() -> None:
    rig = NRig()
    phone, _ = opened(rig)
    rig.loop.advance(100)
    rig.feed(phone.subscribe(900), PHONE)
    out = rig.take()
    ok = responses(out, "SUBSCRIBE")[-1]
    assert ok.status == 200 and ok.headers.get("Expires") == "900"
    n = notifies(out)[-1]  # RFC 6665 §4.2.1.2: a NOTIFY after each refresh
    assert n.headers.get("Subscription-State") == "active;expires=900"
    rig.feed(phone.answer(n), PHONE)
    rig.feed(phone.subscribe(0), PHONE)
    out = rig.take()
    assert responses(out, "SUBSCRIBE")[-1].status == 200
    final = notifies(out)[-1]
    assert final.headers.get("Subscription-State") == "terminated;reason=timeout"
    rig.feed(phone.answer(final), PHONE)
    assert len(rig.notifier.table) == 0
    rig.feed(phone.subscribe(600), PHONE)  # the dialog is gone
    assert responses(rig.take(), "SUBSCRIBE")[-1].status == 481


def test_refresh_refused_when_the_plan_no_longer_allows_it() -> None:
    rig = NRig()
    phone, _ = opened(rig)
    del rig.policy.reach["1002"]
    rig.feed(phone.subscribe(600), PHONE)
    out = rig.take()
    assert responses(out, "SUBSCRIBE")[-1].status == 404
    assert notifies(out)[-1].headers.get("Subscription-State") == "terminated;reason=rejected"


def test_in_dialog_subscribe_for_another_event_is_481() -> None:
    rig = NRig()
    phone, _ = opened(rig)
    phone.event = "presence"
    rig.feed(phone.subscribe(600), PHONE)
    assert responses(rig.take(), "SUBSCRIBE")[-1].status == 481


def test_expiry_sends_the_final_notify() -> None:
    rig = NRig()
    phone, _ = opened(rig)
    rig.loop.advance(599)
    assert notifies(rig.take()) == []
    rig.loop.advance(2)
    final = notifies(rig.take())[-1]
    assert final.headers.get("Subscription-State") == "terminated;reason=timeout"
    rig.feed(phone.answer(final), PHONE)
    assert len(rig.notifier.table) == 0 and rig.notifier.counters["expired"] == 1


@pytest.mark.parametrize("status", [481, 500, 404])
def test_notify_refused_drops_the_subscription(status: int) -> None:
    rig = NRig()
    phone = Subscriber(rig)
    assert phone.open().status == 200
    n = notifies(rig.take())[-1]
    rig.feed(phone.answer(n, status), PHONE)
    assert len(rig.notifier.table) == 0
    rig.notifier.changed("dialog", ("1002", "internal"))
    assert notifies(rig.take()) == []


def test_notify_timeout_drops_the_subscription() -> None:
    rig = NRig()
    phone = Subscriber(rig)
    assert phone.open().status == 200
    rig.loop.advance(40)  # Timer F: 64 * T1 = 32 s
    assert len(rig.notifier.table) == 0
    assert rig.notifier.counters["notify_timeout"] == 1


def test_notify_goes_to_the_source_behind_a_nat() -> None:
    rig = NRig()
    behind = ("203.0.113.5", 40000)
    phone = Subscriber(rig, addr=behind)
    phone.addr = behind
    # The Contact names a private address: NOTIFYs go where the SUBSCRIBE came from.
    data = phone.subscribe(auth=False).replace(
        f"Contact: <sip:alice@{behind[0]}:{behind[1]}>".encode(),
        b"Contact: <sip:alice@10.0.0.5:5060>",
    )
    rig.feed(data, behind)
    phone.learn(responses(rig.take(), "SUBSCRIBE")[-1])
    data = phone.subscribe().replace(
        f"Contact: <sip:alice@{behind[0]}:{behind[1]}>".encode(),
        b"Contact: <sip:alice@10.0.0.5:5060>",
    )
    rig.feed(data, behind)
    sent = [(m, d) for m, d in rig.take_with_dest() if isinstance(m, SipRequest)]
    assert sent and sent[-1][1] == behind


# -- bounds ------------------------------------------------------------------------------


def test_per_device_limit_and_resubscription_replaces() -> None:
    rig = NRig(Limits(per_device=2, total=100))
    rig.policy.reach.update({"1003": ("1003", "internal"), "1004": ("1004", "internal")})
    opened(rig, target="1002")
    opened(rig, target="1003")
    assert Subscriber(rig, target="1004").open().status == 403
    # The same phone subscribing to 1002 afresh (a reboot): the old one is replaced.
    opened(rig, target="1002")
    assert len(rig.notifier.table) == 2 and rig.notifier.counters["replaced"] == 1


def test_total_limit_is_503_with_retry_after() -> None:
    rig = NRig(Limits(per_device=10, total=1))
    opened(rig, target="1002")
    refused = Subscriber(rig, event="presence").open()
    assert refused.status == 503 and refused.headers.get("Retry-After")


def test_flood_of_authenticated_subscribes_stays_at_the_cap() -> None:
    rig = NRig(Limits(per_device=5, total=100))
    for i in range(200):
        rig.policy.reach[str(2000 + i)] = (str(2000 + i), "internal")
        phone = Subscriber(rig, target=str(2000 + i))
        phone.open()
        for n in notifies(rig.take()):
            rig.feed(phone.answer(n), PHONE)
        rig.take()
    assert len(rig.notifier.table) == 5
    assert rig.notifier.counters["refused_device-full"] == 195


# -- a voicemail system's NOTIFY --------------------------------------------------------


def mwi_notify(user: str, body: bytes, *, event: str = "message-summary",
               ctype: str = "application/simple-message-summary") -> bytes:  # fmt: skip
    lines = [
        f"NOTIFY sip:{user}@{NODE[0]}:{NODE[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP {VOICEMAIL[0]}:{VOICEMAIL[1]};branch=z9hG4bK{secrets.token_hex(5)}",
        "Max-Forwards: 70",
        f"From: <sip:vm@{VOICEMAIL[0]}>;tag={secrets.token_hex(4)}",
        f"To: <sip:{user}@{NODE[0]}>",
        f"Call-ID: {secrets.token_hex(6)}@vm",
        "CSeq: 1 NOTIFY",
        f"Event: {event}",
        "Subscription-State: active",
        f"Content-Type: {ctype}",
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


MWI_YES = b"Messages-Waiting: yes\r\nMessage-Account: sip:*97@vm\r\nVoice-Message: 3/1 (1/0)\r\n"


def test_voicemail_notify_sets_mwi() -> None:
    rig = NRig()
    rig.feed(mwi_notify("1002", MWI_YES), VOICEMAIL)
    (ok,) = responses(rig.take(), "NOTIFY")
    assert ok.status == 200 and ok.to_tag
    user, summary = rig.policy.set_calls[-1]
    assert (
        user == "1002"
        and summary.waiting
        and summary.voice == MessageCounts("voice-message", 3, 1, 1, 0)
    )
    assert len(rig.ep.txl) == 0  # answered without a transaction


@pytest.mark.parametrize(
    ("source", "user", "body", "event", "ctype", "status"),
    [
        (PHONE, "1002", MWI_YES, "message-summary", "application/simple-message-summary", 403),
        (VOICEMAIL, "9999", MWI_YES, "message-summary", "application/simple-message-summary", 404),
        (VOICEMAIL, "1002", b"Messages-Waiting: maybe\r\n", "message-summary",
         "application/simple-message-summary", 400),
        (VOICEMAIL, "1002", MWI_YES, "dialog", "application/simple-message-summary", 489),
        (VOICEMAIL, "1002", MWI_YES, "message-summary", "text/plain", 415),
    ],
)  # fmt: skip
def test_voicemail_notify_refusals(
    source: tuple[str, int], user: str, body: bytes, event: str, ctype: str, status: int
) -> None:
    rig = NRig()
    rig.feed(mwi_notify(user, body, event=event, ctype=ctype), source)
    (answer,) = responses(rig.take(), "NOTIFY")
    assert answer.status == status
    assert rig.notifier.counters[f"mwi_{status}"] == 1
    if status in (403, 400, 489, 415):
        assert rig.policy.set_calls == []


def test_mwi_change_notifies_message_summary_watchers() -> None:
    rig = NRig()
    opened(rig, event="message-summary", target="1001")
    rig.policy.mwi[("1001", "internal")] = MessageSummary(
        True, "", (MessageCounts("voice-message", 1, 0),)
    )
    rig.notifier.changed("message-summary", ("1001", "internal"))
    n = notifies(rig.take())[-1]
    assert parse_message_summary(n.body).waiting
    assert n.headers.get("Event") == "message-summary"
