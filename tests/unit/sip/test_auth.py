"""Tests for offhook.sip.auth: digest vectors, challenges, verification outcomes."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.errors import ParseError
from offhook.sip.auth import (
    AuthStatus,
    Credentials,
    DigestAuthenticator,
    _parse_digest_slowly,
    digest_response,
    ha1,
    parse_digest,
    uri_matches,
)
from offhook.sip.message import Headers, SipRequest

SECRET = b"0123456789abcdef0123456789abcdef"
REALM = "pbx.example.com"
RURI = "sip:pbx.example.com"


class Lookup:
    def __init__(self, *creds: Credentials) -> None:
        self.by_user = {c.username: c for c in creds}
        self.calls: list[str] = []

    def credentials(self, username: str) -> Credentials | None:
        self.calls.append(username)
        return self.by_user.get(username)


def account(user: str = "alice", password: str = "secret", realm: str = REALM) -> Credentials:
    return Credentials(
        username=user,
        device=f"SEP-{user}",
        realm=realm,
        ha1_md5=ha1(user, realm, password, "MD5"),
        ha1_sha256=ha1(user, realm, password, "SHA-256"),
        dns=("1001",),
    )


def make_auth(**kw: object) -> DigestAuthenticator:
    return DigestAuthenticator(SECRET, REALM, **kw)  # type: ignore[arg-type]


def challenge_params(auth: DigestAuthenticator, now: float, alg: str = "SHA-256") -> dict[str, str]:
    for _, value in auth.challenge(now):
        _, params = parse_digest(value)
        if params["algorithm"] == alg:
            return params
    raise AssertionError(alg)


def authorization(
    params: dict[str, str],
    user: str = "alice",
    password: str = "secret",
    *,
    uri: str = RURI,
    method: str = "REGISTER",
    qop: bool = True,
    nc: str = "00000001",
    cnonce: str = "abcdef01",
    realm: str | None = None,
) -> str:
    alg = params["algorithm"]
    realm = realm if realm is not None else params["realm"]
    h = ha1(user, realm, password, alg)
    if qop:
        resp = digest_response(
            alg, h, method, uri, params["nonce"], qop="auth", nc=nc, cnonce=cnonce
        )
        extra = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        resp = digest_response(alg, h, method, uri, params["nonce"])
        extra = ""
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{params["nonce"]}", '
        f'uri="{uri}", response="{resp}", algorithm={alg}, opaque="{params["opaque"]}"' + extra
    )


def request(
    *auth_headers: tuple[str, str], method: str = "REGISTER", uri: str = RURI
) -> SipRequest:
    h = Headers(
        [
            ("Via", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1"),
            ("From", "<sip:1001@pbx.example.com>;tag=a"),
            ("To", "<sip:1001@pbx.example.com>"),
            ("Call-ID", "c1"),
            ("CSeq", f"1 {method}"),
            *auth_headers,
        ]
    )
    return SipRequest(headers=h, method=method, uri=uri)


# --- known-answer vectors ------------------------------------------------------


def test_rfc7616_sha256_and_md5_vectors() -> None:
    # RFC 7616 §3.9.1
    nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
    cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    expected = {
        "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    }
    for alg, want in expected.items():
        h = ha1("Mufasa", "http-auth@example.org", "Circle of Life", alg)
        got = digest_response(
            alg, h, "GET", "/dir/index.html", nonce, qop="auth", nc="00000001", cnonce=cnonce
        )
        assert got == want


def test_rfc2617_md5_vector() -> None:
    # RFC 2617 §3.5
    h = ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    got = digest_response(
        "MD5",
        h,
        "GET",
        "/dir/index.html",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert got == "6629fae49393a05397450978507c4ef1"


def test_rfc2069_form_without_qop() -> None:
    import hashlib

    h = ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    ha2 = hashlib.md5(b"GET:/dir/index.html").hexdigest()
    want = hashlib.md5(f"{h}:n0nce:{ha2}".encode()).hexdigest()
    assert digest_response("MD5", h, "GET", "/dir/index.html", "n0nce") == want


def test_ha1_rejects_unknown_algorithm() -> None:
    with pytest.raises(ValueError):
        ha1("a", "b", "c", "SHA-512-256")


# --- challenge ---------------------------------------------------------------------


def test_challenge_format_sha256_first() -> None:
    auth = make_auth()
    hdrs = auth.challenge(100.0)
    assert [n for n, _ in hdrs] == ["WWW-Authenticate", "WWW-Authenticate"]
    parsed = [parse_digest(v) for _, v in hdrs]
    assert [p["algorithm"] for _, p in parsed] == ["SHA-256", "MD5"]
    for scheme, p in parsed:
        assert scheme == "Digest"
        assert p["realm"] == REALM
        assert p["qop"] == "auth"
        assert "stale" not in p
        assert re.fullmatch(r"[A-Za-z0-9_-]+", p["nonce"])
    assert parsed[0][1]["nonce"] == parsed[1][1]["nonce"]
    assert parsed[0][1]["opaque"] == parsed[1][1]["opaque"]


def test_challenge_stale_and_proxy() -> None:
    auth = make_auth(algorithms=("MD5",))
    hdrs = auth.challenge(1.0, stale=True, proxy=True)
    assert len(hdrs) == 1
    name, value = hdrs[0]
    assert name == "Proxy-Authenticate"
    assert value.startswith("Digest ")
    assert parse_digest(value)[1]["stale"] == "true"


def test_challenge_quotes_realm() -> None:
    auth = DigestAuthenticator(SECRET, 'we"ird\\realm')
    _, value = auth.challenge(0.0)[0]
    assert parse_digest(value)[1]["realm"] == 'we"ird\\realm'


def test_nonces_differ_per_challenge() -> None:
    auth = make_auth()
    assert challenge_params(auth, 1.0)["nonce"] != challenge_params(auth, 1.0)["nonce"]


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        DigestAuthenticator(b"short", REALM)
    with pytest.raises(ValueError):
        DigestAuthenticator(SECRET, REALM, algorithms=("SHA-1",))


# --- verify ------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["SHA-256", "MD5"])
@pytest.mark.parametrize("qop", [True, False])
def test_verify_ok(alg: str, qop: bool) -> None:
    auth = make_auth()
    p = challenge_params(auth, 10.0, alg)
    req = request(("Authorization", authorization(p, qop=qop)))
    res = auth.verify(req, Lookup(account()), 20.0)
    assert res.status is AuthStatus.OK, res.reason
    assert res.ok
    assert res.username == "alice"
    assert res.credentials is not None and res.credentials.device == "SEP-alice"
    assert res.algorithm == alg


def test_verify_missing() -> None:
    auth = make_auth()
    res = auth.verify(request(), Lookup(account()), 0.0)
    assert res.status is AuthStatus.MISSING


def test_verify_wrong_password_and_unknown_user_fail_alike() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    lookup = Lookup(account())
    wrong = auth.verify(request(("Authorization", authorization(p, password="x"))), lookup, 1.0)
    unknown = auth.verify(request(("Authorization", authorization(p, user="mallory"))), lookup, 1.0)
    assert wrong.status is AuthStatus.REJECTED
    assert unknown.status is AuthStatus.REJECTED
    assert wrong.username == "alice" and unknown.username == "mallory"
    assert wrong.credentials is None and unknown.credentials is None
    # both looked up: the work is the same
    assert lookup.calls == ["alice", "mallory"]


def test_stale_nonce_with_right_password() -> None:
    auth = make_auth(nonce_ttl=60)
    p = challenge_params(auth, 0.0)
    req = request(("Authorization", authorization(p)))
    assert auth.verify(req, Lookup(account()), 61.0).status is AuthStatus.STALE


def test_stale_nonce_with_wrong_password_is_failed() -> None:
    auth = make_auth(nonce_ttl=60)
    p = challenge_params(auth, 0.0)
    req = request(("Authorization", authorization(p, password="nope")))
    assert auth.verify(req, Lookup(account()), 61.0).status is AuthStatus.REJECTED


def test_nonce_from_future_is_stale() -> None:
    auth = make_auth()
    p = challenge_params(auth, 1000.0)
    req = request(("Authorization", authorization(p)))
    assert auth.verify(req, Lookup(account()), 5.0).status is AuthStatus.STALE


def test_tampered_nonce_fails() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    n = p["nonce"]
    p["nonce"] = n[:-2] + ("AA" if n[-2:] != "AA" else "BB")
    req = request(("Authorization", authorization(p)))
    assert auth.verify(req, Lookup(account()), 1.0).status is AuthStatus.FAILED


def test_nonce_from_other_secret_fails() -> None:
    other = DigestAuthenticator(b"x" * 32, REALM)
    p = challenge_params(other, 0.0)
    req = request(("Authorization", authorization(p)))
    assert make_auth().verify(req, Lookup(account()), 1.0).status is AuthStatus.FAILED


@pytest.mark.parametrize("nonce", ["", "garbage", "!!!!", "A" * 200, "AAAA"])
def test_garbage_nonce_fails(nonce: str) -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    p["nonce"] = nonce
    req = request(("Authorization", authorization(p)))
    assert auth.verify(req, Lookup(account()), 1.0).status is AuthStatus.FAILED


def test_uri_mismatch_fails() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    req = request(("Authorization", authorization(p, uri="sip:other.example.com")))
    assert auth.verify(req, Lookup(account()), 1.0).status is AuthStatus.FAILED


def test_uri_parse_equivalent_accepted() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    hdr = authorization(p, uri="sip:PBX.example.com")
    res = auth.verify(request(("Authorization", hdr)), Lookup(account()), 1.0)
    assert res.ok


def test_wrong_method_fails() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    hdr = authorization(p, method="INVITE")
    assert auth.verify(request(("Authorization", hdr)), Lookup(account()), 1.0).status is (
        AuthStatus.REJECTED
    )


def test_wrong_realm_in_authorization_fails() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    hdr = authorization(p, realm="evil.example.com")
    assert auth.verify(request(("Authorization", hdr)), Lookup(account()), 1.0).status is (
        AuthStatus.FAILED
    )


def test_account_of_other_realm_fails() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    hdr = authorization(p)
    creds = account()
    other = Credentials(creds.username, creds.device, "elsewhere", creds.ha1_md5, creds.ha1_sha256)
    assert auth.verify(request(("Authorization", hdr)), Lookup(other), 1.0).status is (
        AuthStatus.REJECTED
    )


def test_account_without_sha256_ha1_fails_sha256_but_md5_ok() -> None:
    auth = make_auth()
    md5_only = Credentials("alice", "d", REALM, ha1_md5=ha1("alice", REALM, "secret"))
    p = challenge_params(auth, 0.0, "SHA-256")
    res = auth.verify(request(("Authorization", authorization(p))), Lookup(md5_only), 1.0)
    assert res.status is AuthStatus.REJECTED
    p = challenge_params(auth, 0.0, "MD5")
    res = auth.verify(request(("Authorization", authorization(p))), Lookup(md5_only), 1.0)
    assert res.ok


def test_algorithm_not_offered_fails() -> None:
    auth = make_auth(algorithms=("SHA-256",))
    p = challenge_params(auth, 0.0, "SHA-256")
    p["algorithm"] = "MD5"
    res = auth.verify(request(("Authorization", authorization(p))), Lookup(account()), 1.0)
    assert res.status is AuthStatus.FAILED


def test_qop_auth_int_and_bad_nc_fail() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    hdr = authorization(p).replace("qop=auth", "qop=auth-int")
    assert auth.verify(request(("Authorization", hdr)), Lookup(account()), 1.0).status is (
        AuthStatus.FAILED
    )
    hdr = authorization(p, nc="1")
    assert auth.verify(request(("Authorization", hdr)), Lookup(account()), 1.0).status is (
        AuthStatus.FAILED
    )


def test_wrong_opaque_fails_missing_opaque_ok() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    hdr = authorization(p)
    bad = hdr.replace(f'opaque="{p["opaque"]}"', 'opaque="nope"')
    assert auth.verify(request(("Authorization", bad)), Lookup(account()), 1.0).status is (
        AuthStatus.FAILED
    )
    without = hdr.replace(f', opaque="{p["opaque"]}"', "")
    assert auth.verify(request(("Authorization", without)), Lookup(account()), 1.0).ok


def test_nc_replay_is_stale_and_increment_ok() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    lookup = Lookup(account())
    first = request(("Authorization", authorization(p, nc="00000001")))
    assert auth.verify(first, lookup, 1.0).ok
    assert auth.verify(first, lookup, 2.0).status is AuthStatus.STALE
    second = request(("Authorization", authorization(p, nc="00000002")))
    assert auth.verify(second, lookup, 3.0).ok


def test_replay_cache_bounded_and_disableable() -> None:
    auth = make_auth(replay_cache=2)
    lookup = Lookup(account())
    for i in range(5):
        p = challenge_params(auth, float(i))
        assert auth.verify(request(("Authorization", authorization(p))), lookup, float(i)).ok
    assert len(auth._nc_seen) == 2
    off = make_auth(replay_cache=0)
    p = challenge_params(off, 0.0)
    req = request(("Authorization", authorization(p)))
    assert off.verify(req, lookup, 1.0).ok
    assert off.verify(req, lookup, 1.0).ok


def test_proxy_authorization() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    hdr = authorization(p, method="INVITE", uri="sip:1002@pbx.example.com")
    req = request(("Proxy-Authorization", hdr), method="INVITE", uri="sip:1002@pbx.example.com")
    assert auth.verify(req, Lookup(account()), 1.0, proxy=True).ok
    # The proxy flow does not read Authorization and vice versa.
    assert auth.verify(req, Lookup(account()), 1.0).status is AuthStatus.MISSING
    req2 = request(("Authorization", hdr), method="INVITE", uri="sip:1002@pbx.example.com")
    assert auth.verify(req2, Lookup(account()), 1.0, proxy=True).status is AuthStatus.MISSING


def test_proxy_authorization_for_other_realm_is_missing() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    hdr = authorization(p, realm="downstream.example.net")
    req = request(("Proxy-Authorization", hdr))
    assert auth.verify(req, Lookup(account()), 1.0, proxy=True).status is AuthStatus.MISSING


def test_picks_credentials_of_our_realm_among_several() -> None:
    auth = make_auth()
    p = challenge_params(auth, 0.0)
    other = authorization(p, realm="other.example.net")
    ours = authorization(p)
    req = request(
        ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
        ("Proxy-Authorization", other),
        ("Proxy-Authorization", ours),
    )
    assert auth.verify(req, Lookup(account()), 1.0, proxy=True).ok


@pytest.mark.parametrize(
    "value",
    [
        "Digest",
        "Digest username",
        'Digest username="unterminated',
        "Digest =x",
        'Digest username="a" realm="b"',
        'Digest username="a", username="b"',
        "Basic",
    ],
)
def test_malformed_headers_fail_or_missing(value: str) -> None:
    res = make_auth().verify(request(("Authorization", value)), Lookup(account()), 1.0)
    assert res.status in (AuthStatus.FAILED, AuthStatus.MISSING)
    assert res.credentials is None


# --- parser -----------------------------------------------------------------------------


def test_parse_digest_escapes_and_whitespace() -> None:
    scheme, p = parse_digest(
        '  Digest username = "a\\"b\\\\c" ,realm="r",  nc=00000001 , uri=sip:x@y;transport=udp,'
    )
    assert scheme == "Digest"
    assert p == {
        "username": 'a"b\\c',
        "realm": "r",
        "nc": "00000001",
        "uri": "sip:x@y;transport=udp",
    }


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        'Digest a="x',
        'Digest a="x\\',
        "Digest a=",
        "Digest a",
        "Digest a=b c=d",
        'Digest a="x"y',
        "Digest a=b, a=c",
        "Di/gest a=b",
        "Digest a=" + "x" * 5000,
        "Digest " + ", ".join(f"p{i}=v" for i in range(40)),
        'Digest a="line\r\nbreak"',
    ],
)
def test_parse_digest_rejects_garbage(value: str) -> None:
    with pytest.raises(ParseError):
        parse_digest(value)


@given(st.text(max_size=300))
def test_parse_digest_total(value: str) -> None:
    with contextlib.suppress(ParseError):
        parse_digest(value)


def _outcome(parse: Callable[[str], tuple[str, dict[str, str]]], value: str) -> object:
    try:
        return parse(value)
    except ParseError:
        return "error"


_DIGEST_BITS = st.sampled_from(
    ["Digest", "digest", " ", "\t", "\r\n", ",", "=", '"', "\\", "\x00", "a", "nc", "Realm",
     "realm", "uri", "sip:x@y;transport=udp", "00000001", "\u00e9", ";", "<", "~"]
)  # fmt: skip


@given(st.lists(_DIGEST_BITS, max_size=40).map("".join) | st.text(max_size=200))
def test_parse_digest_agrees_with_the_slow_reader(value: str) -> None:
    """The regular-expression reader and the character loop agree on every input
    (the same result, or both refuse it)."""
    assert _outcome(parse_digest, value) == _outcome(_parse_digest_slowly, value)


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~]{1,8}", fullmatch=True),
        st.text(max_size=20)
        | st.from_regex(r"[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]{1,10}", fullmatch=True),
        max_size=40,
    ),
    st.sampled_from([",", " , ", ",\t", ", "]),
    st.booleans(),
)
def test_parse_digest_reads_what_was_written(
    params: dict[str, str], sep: str, trailing_comma: bool
) -> None:
    """Well-formed headers (quoted values with escapes, bare tokens): both readers agree,
    and a header with distinct names (at most 32) reads back as written."""
    parts = []
    for name, val in params.items():
        bare = val and all(0x21 <= ord(c) <= 0x7E and c not in '",\\' for c in val)
        parts.append(f"{name}={val}" if bare else f"{name}={_quote_value(val)}")
    value = "Digest " + sep.join(parts) + ("," if trailing_comma and parts else "")
    assert _outcome(parse_digest, value) == _outcome(_parse_digest_slowly, value)
    names = [n.lower() for n in params]
    clean = all(not any(c in v for c in "\r\n\x00") for v in params.values())
    if len(set(names)) == len(names) <= 32 and clean:
        assert parse_digest(value) == ("Digest", {n.lower(): v for n, v in params.items()})


def _quote_value(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.text(max_size=200))
def test_verify_never_raises(value: str) -> None:
    res = make_auth().verify(request(("Authorization", value)), Lookup(account()), 1.0)
    assert res.status is not AuthStatus.OK


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("sip:pbx.example.com", "sip:pbx.example.com", True),
        ("sip:pbx.example.com", "SIP:PBX.Example.COM", True),
        ("sip:pbx.example.com;transport=udp", "sip:pbx.example.com", False),
        ("sip:pbx.example.com;foo=1", "sip:pbx.example.com", True),
        ("sip:pbx.example.com;lr;transport=TCP", "sip:pbx.example.com;transport=tcp;lr", True),
        ("sip:pbx.example.com:5060", "sip:pbx.example.com", False),
        ("sip:Alice@pbx", "sip:alice@pbx", False),
        ("sip:pbx", "sips:pbx", False),
        ("not a uri", "sip:pbx", False),
    ],
)
def test_uri_matches(a: str, b: str, same: bool) -> None:
    assert uri_matches(a, b) is same
    assert uri_matches(b, a) is same


def test_record_checks_and_remembers_the_nonce_count() -> None:
    auth = make_auth()
    params = challenge_params(auth, 10.0)
    req = request(("Authorization", authorization(params)))
    screened = auth.verify(req, Lookup(account()), 10.0, record=False)
    assert screened.ok and screened.nc == 1 and screened.nonce == params["nonce"]
    assert auth.record(screened) is screened
    replay = auth.record(screened)  # the count is known now
    assert replay.status is AuthStatus.STALE and replay.credentials is None
    assert auth.verify(req, Lookup(account()), 10.0).status is AuthStatus.STALE
    failed = auth.verify(request(("Authorization", "Digest x=1")), Lookup(account()), 10.0)
    assert auth.record(failed) is failed


def test_record_without_qop_has_nothing_to_remember() -> None:
    auth = make_auth()
    params = challenge_params(auth, 10.0)
    req = request(("Authorization", authorization(params, qop=False)))
    screened = auth.verify(req, Lookup(account()), 10.0, record=False)
    assert screened.ok and screened.nc is None
    assert auth.record(screened) is screened


@pytest.mark.parametrize("opaque", ["\u00e9", "\udcc3", "\u4e2d\u6587"])
def test_non_ascii_opaque_fails_without_raising(opaque: str) -> None:
    """A non-ASCII opaque (a UTF-8 or undecodable byte on the wire) is a failed
    check, not a TypeError out of ``hmac.compare_digest`` (found by fuzz_digest)."""
    auth = make_auth()
    params = {**challenge_params(auth, 10.0), "opaque": opaque}
    req = request(("Authorization", authorization(params)))
    assert auth.verify(req, Lookup(account()), 10.0).status is AuthStatus.FAILED
