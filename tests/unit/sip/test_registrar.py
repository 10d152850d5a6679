"""Tests for offhook.sip.registrar: RFC 3261 §10.3 behaviour with a fake clock."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common import FakeClock, ParseError
from offhook.common.location import Binding, MemoryLocationStore
from offhook.sip.auth import Credentials, DigestAuthenticator, digest_response, ha1, parse_digest
from offhook.sip.message import Headers, SipRequest, SipResponse
from offhook.sip.registrar import Registrar, parse_contact, parse_delta_seconds

SECRET = b"registrar-test-secret-0123456789"
REALM = "pbx.example.com"
RURI = "sip:pbx.example.com"
SRC = ("10.0.0.5", 5060)


def creds(user: str, device: str, dns: tuple[str, ...], password: str = "pw") -> Credentials:
    return Credentials(
        username=user,
        device=device,
        realm=REALM,
        ha1_md5=ha1(user, REALM, password, "MD5"),
        ha1_sha256=ha1(user, REALM, password, "SHA-256"),
        dns=dns,
    )


class Lookup:
    def __init__(self, *cs: Credentials) -> None:
        self.by_user = {c.username: c for c in cs}

    def credentials(self, username: str) -> Credentials | None:
        return self.by_user.get(username)


class Env:
    def __init__(self, **kw: object) -> None:
        self.clock = FakeClock()
        self.store = MemoryLocationStore()
        self.auth = DigestAuthenticator(SECRET, REALM, nonce_ttl=300)
        self.lookup = Lookup(
            creds("SEP001", "SEP001", ("1001", "1099")),
            creds("SEP002", "SEP002", ("1002",)),
        )
        self.failures: list[tuple[tuple[str, int], str]] = []
        self.changes: list[tuple[str, list[Binding], list[Binding]]] = []
        self.refused: list[tuple[tuple[str, int], str, str]] = []
        self.reg = Registrar(
            self.auth,
            self.lookup,
            self.store,
            on_auth_failure=lambda src, user: self.failures.append((src, user)),
            on_change=lambda d, a, r: self.changes.append((d, a, r)),
            on_refused=lambda src, device, why: self.refused.append((src, device, why)),
            **kw,  # type: ignore[arg-type]
        )

    def send(self, req: SipRequest) -> SipResponse:
        return self.reg.handle(req, SRC, "udp", self.clock.monotonic(), self.clock.wall())


class Phone:
    """A minimal UAC that answers challenges."""

    def __init__(
        self, env: Env, user: str = "SEP001", aor: str = "1001", password: str = "pw"
    ) -> None:
        self.env = env
        self.user = user
        self.aor = aor
        self.password = password
        self.call_id = f"cid-{user}-{aor}"
        self.cseq = 0
        self.nonce: dict[str, str] | None = None
        self.nc = 0

    def request(
        self,
        contacts: Sequence[str] = ("<sip:1001@10.0.0.5:5060>",),
        expires: int | str | None = None,
        *,
        cseq: int | None = None,
        extra: Sequence[tuple[str, str]] = (),
        auth: bool = True,
    ) -> SipRequest:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        items = [
            ("Via", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK" + str(cseq)),
            ("From", f"<sip:{self.aor}@pbx.example.com>;tag=ft"),
            ("To", f"<sip:{self.aor}@pbx.example.com>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} REGISTER"),
            ("User-Agent", "TestPhone/1.0"),
        ]
        items += [("Contact", c) for c in contacts]
        if expires is not None:
            items.append(("Expires", str(expires)))
        items += list(extra)
        if auth and self.nonce is not None:
            self.nc += 1
            p = self.nonce
            nc = f"{self.nc:08x}"
            h = ha1(self.user, REALM, self.password, p["algorithm"])
            resp = digest_response(
                p["algorithm"], h, "REGISTER", RURI, p["nonce"], qop="auth", nc=nc, cnonce="cn"
            )
            items.append(
                (
                    "Authorization",
                    f'Digest username="{self.user}", realm="{REALM}", nonce="{p["nonce"]}", '
                    f'uri="{RURI}", response="{resp}", algorithm={p["algorithm"]}, '
                    f'qop=auth, nc={nc}, cnonce="cn", opaque="{p["opaque"]}"',
                )
            )
        return SipRequest(headers=Headers(items), method="REGISTER", uri=RURI)

    def learn(self, resp: SipResponse) -> None:
        _, p = parse_digest(resp.headers.get_all("WWW-Authenticate")[0])
        self.nonce = p
        self.nc = 0

    def register(
        self, contacts: Sequence[str] = ("<sip:1001@10.0.0.5:5060>",), expires: int | None = None,
        **kw: object,
    ) -> SipResponse:  # fmt: skip
        resp = self.env.send(self.request(contacts, expires, **kw))  # type: ignore[arg-type]
        if resp.status == 401:
            self.learn(resp)
            resp = self.env.send(self.request(contacts, expires, **kw))  # type: ignore[arg-type]
        return resp


def contact_expires(resp: SipResponse) -> dict[str, int]:
    out = {}
    for v in resp.headers.get_all("Contact"):
        spec = parse_contact(v)
        assert spec.expires is not None
        out[spec.uri] = spec.expires
    return out


# --- authentication ------------------------------------------------------------------


def test_unauthenticated_register_is_challenged() -> None:
    env = Env()
    resp = env.send(Phone(env).request())
    assert resp.status == 401
    algs = [parse_digest(v)[1]["algorithm"] for v in resp.headers.get_all("WWW-Authenticate")]
    assert algs == ["SHA-256", "MD5"]
    assert resp.to_tag
    assert env.store.count() == 0
    assert env.failures == []


def test_register_ok_creates_binding() -> None:
    env = Env()
    resp = Phone(env).register(expires=600)
    assert resp.status == 200
    assert contact_expires(resp) == {"sip:1001@10.0.0.5:5060": 600}
    assert (resp.headers.get("Date") or "").endswith("GMT")
    [b] = env.store.all(env.clock.monotonic())
    assert b.device == "SEP001"
    assert b.protocol == "sip"
    assert b.contact == "sip:1001@10.0.0.5:5060"
    assert b.expires_at == env.clock.monotonic() + 600
    assert b.source == SRC and b.transport == "udp"
    assert b.aor == "sip:1001@pbx.example.com"
    assert b.call_id == "cid-SEP001-1001" and b.cseq == 2
    assert b.user_agent == "TestPhone/1.0"
    assert b.registered_at == env.clock.wall()
    assert env.changes and env.changes[-1][0] == "SEP001"


def _failed_answer(env: Env, user: str, password: str) -> SipResponse:
    probe = Phone(env)
    probe.learn(env.send(probe.request()))
    ph = Phone(env, user=user, password=password)
    ph.call_id = "same-call-id"
    ph.nonce = probe.nonce
    return env.send(ph.request())


def _normalise(resp: SipResponse) -> bytes:
    out = []
    for n, v in resp.headers:
        if n == "WWW-Authenticate":
            _, p = parse_digest(v)
            v = v.replace(p["nonce"], "NONCE")
        out.append((n, v))
    return SipResponse(headers=Headers(out), status=resp.status, reason=resp.reason).serialize()


def test_wrong_password_and_unknown_user_answer_identically() -> None:
    env = Env()
    wrong = _failed_answer(env, "SEP001", "nope")
    unknown = _failed_answer(env, "SEP999", "pw")
    assert wrong.status == unknown.status == 403
    assert _normalise(wrong) == _normalise(unknown)
    assert env.failures == [(SRC, "SEP001"), (SRC, "SEP999")]
    assert env.store.count() == 0


def test_stale_nonce_gets_stale_challenge() -> None:
    env = Env()
    ph = Phone(env)
    assert ph.register().status == 200
    env.clock.advance(301)
    resp = env.send(ph.request())
    assert resp.status == 401
    assert parse_digest(resp.headers.get_all("WWW-Authenticate")[0])[1]["stale"] == "true"
    assert env.failures == []
    ph.learn(resp)
    assert env.send(ph.request()).status == 200


def test_nonce_reuse_with_increasing_nc() -> None:
    env = Env()
    ph = Phone(env)
    assert ph.register().status == 200
    resp = env.send(ph.request(expires=1200))  # reuses the nonce, nc=2
    assert resp.status == 200
    assert contact_expires(resp) == {"sip:1001@10.0.0.5:5060": 1200}


# --- AOR ------------------------------------------------------------------------------------


def test_aor_by_device_name_and_by_second_dn() -> None:
    env = Env()
    assert Phone(env, aor="SEP001").register().status == 200
    assert Phone(env, aor="1099").register(("<sip:1099@10.0.0.5:5062>",)).status == 200
    contacts = {b.contact for b in env.store.bindings("SEP001", env.clock.monotonic())}
    assert contacts == {"sip:1001@10.0.0.5:5060", "sip:1099@10.0.0.5:5062"}


def test_someone_elses_aor_is_forbidden() -> None:
    env = Env()
    resp = Phone(env, aor="1002").register()
    assert resp.status == 403
    assert env.store.count() == 0
    assert env.failures == []  # its password was right: not a failed login
    assert env.refused == [(SRC, "SEP001", "not-its-address")]  # but a refusal RIS shows


def test_domain_check() -> None:
    env = Env(domain_check=lambda host: host == "other.example.com")
    resp = Phone(env).register()
    assert resp.status == 404


# --- refresh / unregister --------------------------------------------------------------------


def test_refresh_updates_expiry_and_unregister_removes() -> None:
    env = Env()
    ph = Phone(env)
    assert ph.register(expires=600).status == 200
    env.clock.advance(500)
    resp = ph.register(expires=600)  # nonce is stale by now: re-challenged
    assert resp.status == 200
    assert contact_expires(resp) == {"sip:1001@10.0.0.5:5060": 600}
    [b] = env.store.all(env.clock.monotonic())
    assert b.expires_at == env.clock.monotonic() + 600
    resp = env.send(ph.request(expires=0))
    assert resp.status == 200
    assert resp.headers.get_all("Contact") == []
    assert env.store.count() == 0


def test_contact_param_overrides_expires_header() -> None:
    env = Env()
    resp = Phone(env).register(
        ("<sip:1001@10.0.0.5:5060>;expires=120", "<sip:1001@10.0.0.6>"), expires=900
    )
    assert resp.status == 200
    assert contact_expires(resp) == {"sip:1001@10.0.0.5:5060": 120, "sip:1001@10.0.0.6": 900}


def test_default_and_max_expires() -> None:
    env = Env(default_expires=1800, max_expires=3000)
    ph = Phone(env)
    assert contact_expires(ph.register()) == {"sip:1001@10.0.0.5:5060": 1800}
    resp = env.send(ph.request(expires=99999999999))
    assert contact_expires(resp) == {"sip:1001@10.0.0.5:5060": 3000}


def test_interval_too_brief() -> None:
    env = Env(min_expires=60)
    resp = Phone(env).register(expires=30)
    assert resp.status == 423
    assert resp.headers.get("Min-Expires") == "60"
    assert env.store.count() == 0


def test_423_is_atomic_over_contacts() -> None:
    env = Env()
    resp = Phone(env).register(("<sip:a@h1>;expires=600", "<sip:b@h2>;expires=5"))
    assert resp.status == 423
    assert env.store.count() == 0


def test_query_without_contact_lists_bindings() -> None:
    env = Env()
    ph = Phone(env)
    ph.register(expires=600)
    env.clock.advance(100)
    resp = env.send(ph.request(contacts=()))
    assert resp.status == 200
    assert contact_expires(resp) == {"sip:1001@10.0.0.5:5060": 500}


def test_q_values_kept() -> None:
    env = Env()
    resp = Phone(env).register(("<sip:a@h1>;q=0.7", "<sip:b@h2>"), expires=600)
    assert resp.status == 200
    q = {parse_contact(v).uri: parse_contact(v).q for v in resp.headers.get_all("Contact")}
    assert q == {"sip:a@h1": 0.7, "sip:b@h2": None}


# --- wildcard ---------------------------------------------------------------------------------


def test_star_removes_all() -> None:
    env = Env()
    ph = Phone(env)
    ph.register(("<sip:a@h1>", "<sip:b@h2>"), expires=600)
    assert env.store.count() == 2
    resp = env.send(ph.request(("*",), expires=0))
    assert resp.status == 200
    assert env.store.count() == 0
    assert resp.headers.get_all("Contact") == []
    removed = env.changes[-1][2]
    assert {b.contact for b in removed} == {"sip:a@h1", "sip:b@h2"}


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [(("*",), 60), (("*",), None), (("*", "<sip:a@h1>"), 0)],
)
def test_star_misuse_is_400(contacts: tuple[str, ...], expires: int | None) -> None:
    env = Env()
    ph = Phone(env)
    ph.register(expires=600)
    resp = env.send(ph.request(contacts, expires=expires))
    assert resp.status == 400
    assert env.store.count() == 1


def test_star_from_other_call_id_with_lower_cseq_removes() -> None:
    env = Env()
    ph = Phone(env)
    ph.register(expires=600)
    other = Phone(env)
    other.call_id = "another"
    other.nonce = ph.nonce
    other.nc = ph.nc
    resp = env.send(other.request(("*",), expires=0, cseq=1))
    assert resp.status == 200
    assert env.store.count() == 0


# --- Call-ID / CSeq ordering (RFC 3261 §10.3 step 7) ---------------------------------------------


def test_out_of_order_cseq_same_call_id_is_rejected() -> None:
    env = Env()
    ph = Phone(env)
    ph.register(expires=600)  # CSeq 2
    env.send(ph.request(expires=900, cseq=10))
    resp = env.send(ph.request(expires=0, cseq=5))
    assert resp.status == 500
    assert env.store.count() == 1
    [b] = env.store.all(env.clock.monotonic())
    assert b.cseq == 10
    resp = env.send(ph.request(("*",), expires=0, cseq=10))
    assert resp.status == 500
    assert env.store.count() == 1


def test_different_call_id_may_use_any_cseq() -> None:
    env = Env()
    ph = Phone(env)
    ph.register(expires=600, cseq=100)
    other = Phone(env)
    other.call_id = "rebooted"
    resp = other.register(expires=600)
    assert resp.status == 200
    [b] = env.store.all(env.clock.monotonic())
    assert b.call_id == "rebooted"


# --- contact limit / expiry ----------------------------------------------------------------------


def test_too_many_contacts_in_one_request_is_403() -> None:
    env = Env(max_contacts_per_device=2)
    resp = Phone(env).register([f"<sip:u@h{i}>" for i in range(3)])
    assert resp.status == 403
    assert env.store.count() == 0
    assert env.refused == [(SRC, "SEP001", "too-many-contacts")]


def test_oldest_binding_dropped_when_over_limit() -> None:
    env = Env(max_contacts_per_device=2)
    ph = Phone(env)
    ph.register(["<sip:u@h1>"], expires=600)
    env.clock.advance(10)
    ph.call_id = "c2"
    ph.register(["<sip:u@h2>"], expires=600)
    env.clock.advance(10)
    ph.call_id = "c3"
    resp = ph.register(["<sip:u@h3>"], expires=600)
    assert resp.status == 200
    assert set(contact_expires(resp)) == {"sip:u@h2", "sip:u@h3"}
    assert {b.contact for b in env.changes[-1][2]} == {"sip:u@h1"}


def test_equivalent_contact_uri_refreshes_existing_binding() -> None:
    env = Env()
    ph = Phone(env)
    ph.register(["<sip:u@HOST:5060;transport=udp;ob>"], expires=600)
    resp = ph.register(["<sip:u@host:5060;ob;transport=UDP>"], expires=300)
    assert resp.status == 200
    assert contact_expires(resp) == {"sip:u@host:5060;ob;transport=UDP": 300}


def test_expire_with_fake_clock() -> None:
    env = Env()
    ph = Phone(env)
    ph.register(["<sip:u@h1>;expires=100;q=0.5", "<sip:u@h2>;expires=1000"])
    env.clock.advance(99)
    assert env.reg.expire(env.clock.monotonic()) == []
    env.clock.advance(1)
    gone = env.reg.expire(env.clock.monotonic())
    assert [b.contact for b in gone] == ["sip:u@h1"]
    assert env.store.count() == 1
    assert env.reg._q == {}  # q of the expired binding forgotten


# --- malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contacts", "expires", "extra"),
    [
        (("<sip:u@h1>;expires=abc",), None, ()),
        (("<sip:u@h1>;q=2",), None, ()),
        (("<sip:u@h1",), None, ()),
        (("<mailto:u@h1>",), None, ()),
        (("garbage",), None, ()),
        (("<sip:u@h1>",), "soon", ()),
    ],
)
def test_malformed_register_is_4xx(
    contacts: tuple[str, ...], expires: str | None, extra: tuple[tuple[str, str], ...]
) -> None:
    env = Env()
    ph = Phone(env)
    ph.register()
    resp = env.send(ph.request(contacts, expires=expires, extra=extra))
    assert 400 <= resp.status < 500
    assert env.store.count() == 1


def test_require_is_420() -> None:
    env = Env()
    resp = Phone(env).register(extra=[("Require", "path")])
    assert resp.status == 420
    assert resp.headers.get("Unsupported") == "path"


def test_non_register_is_405() -> None:
    env = Env()
    req = Phone(env).request()
    req.method = "INVITE"
    resp = env.send(req)
    assert resp.status == 405
    assert resp.headers.get("Allow") == "REGISTER"


def test_same_request_same_to_tag() -> None:
    env = Env()
    req = Phone(env).request()
    assert env.send(req).to_tag == env.send(req).to_tag


@settings(max_examples=200)
@given(st.text(max_size=120))
def test_contact_garbage_never_raises_out(value: str) -> None:
    env = Env()
    ph = Phone(env)
    ph.register()
    resp = env.send(ph.request([value.replace("\r", "").replace("\n", "")]))
    assert 200 <= resp.status < 600


# --- helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "uri", "params"),
    [
        ("<sip:a@b>", "sip:a@b", {}),
        (
            '"Alice \\"A\\"" <sip:a@b;transport=tcp>;expires=60',
            "sip:a@b;transport=tcp",
            {"expires": "60"},
        ),
        (
            'Alice Smith <sips:a@[::1]:5061>;q=0.5;+sip.instance="<urn:uuid:1>"',
            "sips:a@[::1]:5061",
            {"q": "0.5", "+sip.instance": "<urn:uuid:1>"},
        ),
        ("sip:a@b;expires=30", "sip:a@b", {"expires": "30"}),
        ('sip:a@b;+sip.instance="<urn:x>"', "sip:a@b", {"+sip.instance": "<urn:x>"}),
        ("<sip:a@b> ; lr ; expires = 5", "sip:a@b", {"lr": "", "expires": "5"}),
    ],
)
def test_parse_contact(value: str, uri: str, params: dict[str, str]) -> None:
    spec = parse_contact(value)
    assert spec.uri == uri
    assert spec.params == params


@pytest.mark.parametrize(
    "value",
    ["", "<>", "<sip:a@b", '"unterminated <sip:a@b>', "<sip:a@b>x", "<sip:a@b>;expires=1;expires=2",
     "<tel:+123>", "sip:", "<sip:a b@c>", "<sip:a@b>;=x", "x" * 3000],
)  # fmt: skip
def test_parse_contact_rejects(value: str) -> None:
    with pytest.raises(ParseError):
        parse_contact(value)


def test_parse_delta_seconds() -> None:
    assert parse_delta_seconds(" 60 ") == 60
    assert parse_delta_seconds("99999999999999999999") == 2**32 - 1
    for bad in ("", "-1", "1.5", "١٢"):
        with pytest.raises(ParseError):
            parse_delta_seconds(bad)


def test_credentials_on_a_nonce_not_ours_are_challenged_again() -> None:
    """A phone answering another node's (or a restarted node's) nonce gets a new
    401, not 403: its password may be right, only the challenge is unknown here."""
    env = Env()
    probe = Phone(env)
    probe.learn(env.send(probe.request()))
    assert probe.nonce is not None
    ph = Phone(env, user="SEP001", password="nope")
    ph.nonce = {**probe.nonce, "nonce": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
    resp = env.send(ph.request())
    assert resp.status == 401 and resp.headers.get("WWW-Authenticate")
    assert env.failures == [(SRC, "SEP001")]


# --- screen, then handle: the digest is computed once ------------------------------


def test_handle_after_screen_of_the_same_request_verifies_once() -> None:
    env = Env()
    ph = Phone(env)
    ph.learn(env.send(ph.request()))
    req = ph.request()
    calls: list[object] = []
    verify = env.auth.verify

    def counting(*args: object, **kw: object) -> object:
        calls.append(kw.get("record"))
        return verify(*args, **kw)  # type: ignore[arg-type]

    env.auth.verify = counting  # type: ignore[method-assign]
    assert env.reg.screen(req, SRC, env.clock.wall()) is None
    assert env.send(req).status == 200
    assert calls == [False]  # handle took the screened result (and recorded its nc)
    # The nonce count was recorded: the same request again is a replay (stale).
    again = env.send(req)
    assert again.status == 401
    assert any("stale=true" in v for v in again.headers.get_all("WWW-Authenticate"))
    assert calls == [False, True]


def test_handle_of_another_request_is_verified_in_full() -> None:
    """Only the very object screened is taken: a copy of it (another datagram) and a
    request handled without a screen go through ``verify(record=True)``."""
    env = Env()
    ph = Phone(env)
    ph.learn(env.send(ph.request()))
    req = ph.request()
    assert env.reg.screen(req, SRC, env.clock.wall()) is None
    copy = SipRequest(headers=Headers(list(req.headers)), method=req.method, uri=req.uri)
    assert env.send(copy).status == 200  # verified and recorded
    assert env.send(req).status == 401  # its nc is a replay now: the screen is not trusted


def test_screened_request_replayed_in_between_is_stale() -> None:
    """Between screen and handle another request used the nonce count: handle sees
    the replay (``DigestAuthenticator.record`` checks the cache again)."""
    env = Env()
    ph = Phone(env)
    ph.learn(env.send(ph.request()))
    req = ph.request()
    assert env.reg.screen(req, SRC, env.clock.wall()) is None
    twin = SipRequest(headers=Headers(list(req.headers)), method=req.method, uri=req.uri)
    assert env.send(twin).status == 200
    resp = env.reg.handle(req, SRC, "udp", env.clock.monotonic(), env.clock.wall())
    assert resp.status == 401
    assert env.failures == []  # stale, not a failed login


def test_screen_keeps_only_the_last_request() -> None:
    env = Env()
    ph = Phone(env)
    ph.learn(env.send(ph.request()))
    first = ph.request()
    assert env.reg.screen(first, SRC, env.clock.wall()) is None
    assert env.reg.screen(Phone(env).request(auth=False), SRC, env.clock.wall()) is not None
    assert env.reg._screened is None  # bounded: a refused screen leaves nothing
    assert env.send(first).status == 200  # verified in full


def test_date_header_follows_the_wall_clock() -> None:
    env = Env()
    ph = Phone(env)
    first = ph.register(expires=600).headers.get("Date")
    env.clock.advance(1.0)
    second = ph.register(expires=600).headers.get("Date")
    assert first and second and first != second


def test_star_in_to_is_400() -> None:
    """``To: *`` (no address-of-record) is refused like any malformed To, not raised."""
    env = Env()
    ph = Phone(env)
    ph.learn(env.send(ph.request()))
    req = ph.request()
    items = [(n, "*" if n == "To" else v) for n, v in req.headers]
    resp = env.send(SipRequest(headers=Headers(items), method="REGISTER", uri=RURI))
    assert resp.status == 400


def test_request_uri_remembered_is_the_one_asked() -> None:
    """The registrar remembers the last Request-URI split: another one is split anew."""
    env = Env(domain_check=lambda host: host == "pbx.example.com")
    ph = Phone(env)
    assert ph.register().status == 200
    other = ph.request()
    other.uri = "sip:other.example.com"
    assert env.send(other).status == 404
    assert ph.register().status == 200
