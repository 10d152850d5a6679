"""Digest under abuse: nothing stored per nonce or per failure, uniform work.

Also the registrar's ``screen`` (steps 1-3 without state), which the
endpoint uses to answer challenges and failures without a transaction.

The authenticator's nonces are stateless (HMAC over a timestamp and random
bytes); the only per-nonce state is the bounded nonce-count cache, written
only after a *successful* check. A flood of challenges and wrong answers
must therefore leave it empty and allocate nothing that stays.
"""

from __future__ import annotations

import tracemalloc

import pytest

from offhook.sip.auth import (
    AuthStatus,
    Credentials,
    DigestAuthenticator,
    digest_response,
    ha1,
    parse_digest,
)
from offhook.sip.message import Headers, SipRequest, SipResponse
from offhook.sip.registrar import Registrar

SECRET = b"abuse-test-secret-0123456789abcdef"
REALM = "offhook.test"
RURI = "sip:offhook.test"


class Lookup:
    def __init__(self) -> None:
        self.alice = Credentials(
            username="alice",
            device="alice",
            realm=REALM,
            ha1_md5=ha1("alice", REALM, "alice-Secret-1", "MD5"),
            ha1_sha256=ha1("alice", REALM, "alice-Secret-1", "SHA-256"),
        )

    def credentials(self, username: str) -> Credentials | None:
        return self.alice if username == "alice" else None


def nonce_of(auth: DigestAuthenticator, now: float) -> tuple[str, str]:
    _, value = auth.challenge(now)[0]
    _, params = parse_digest(value)
    return params["nonce"], params["opaque"]


def register(user: str, password: str, nonce: str, opaque: str, nc: int = 1) -> SipRequest:
    ncs = f"{nc:08x}"
    resp = digest_response(
        "MD5", ha1(user, REALM, password), "REGISTER", RURI, nonce, qop="auth", nc=ncs, cnonce="c0"
    )
    auth = (
        f'Digest username="{user}", realm="{REALM}", nonce="{nonce}", uri="{RURI}", '
        f'response="{resp}", algorithm=MD5, opaque="{opaque}", qop=auth, nc={ncs}, cnonce="c0"'
    )
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bK1"),
            ("From", f"<sip:{user}@{REALM}>;tag=a"),
            ("To", f"<sip:{user}@{REALM}>"),
            ("Call-ID", "c1"),
            ("CSeq", "1 REGISTER"),
            ("Authorization", auth),
        ]
    )
    return SipRequest(headers=headers, method="REGISTER", uri=RURI)


def test_failed_flood_stores_nothing_per_nonce() -> None:
    auth = DigestAuthenticator(SECRET, REALM, algorithms=("MD5",))
    lookup = Lookup()
    users = ["alice", "bob", "1001", "nobody"]

    def flood(start: int, n: int) -> None:
        for i in range(start, start + n):
            nonce, opaque = nonce_of(auth, i / 100)
            req = register(users[i % 4], f"guess{i}", nonce, opaque, nc=i + 1)
            assert auth.verify(req, lookup, i / 100).status is AuthStatus.REJECTED

    flood(0, 2_000)  # warm caches, interned strings, ...
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        flood(2_000, 20_000)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(auth._nc_seen) == 0  # failures never reach the replay cache
    assert after - before < 32 * 1024


def test_one_nonce_many_wrong_answers_all_fail() -> None:
    """A cracker reusing one nonce gains nothing: every guess is a counted failure."""
    auth = DigestAuthenticator(SECRET, REALM, algorithms=("MD5",))
    nonce, opaque = nonce_of(auth, 0.0)
    for i in range(200):
        req = register("alice", f"guess{i}", nonce, opaque, nc=i + 1)
        assert auth.verify(req, Lookup(), 1.0).status is AuthStatus.REJECTED
    assert len(auth._nc_seen) == 0


def test_nonces_expire() -> None:
    auth = DigestAuthenticator(SECRET, REALM, nonce_ttl=300.0, algorithms=("MD5",))
    nonce, opaque = nonce_of(auth, 1000.0)
    good = register("alice", "alice-Secret-1", nonce, opaque)
    assert auth.verify(good, Lookup(), 1300.0).ok
    late = register("alice", "alice-Secret-1", nonce, opaque, nc=2)
    assert auth.verify(late, Lookup(), 1300.5).status is AuthStatus.STALE
    # An expired nonce with a wrong password is a failure, like any wrong password.
    wrong = register("alice", "guess", nonce, opaque, nc=3)
    assert auth.verify(wrong, Lookup(), 1300.5).status is AuthStatus.REJECTED


@pytest.mark.parametrize("user", ["alice", "nobody"])
def test_unknown_user_and_wrong_password_do_the_same_work(
    user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = DigestAuthenticator(SECRET, REALM, algorithms=("MD5",))
    calls: list[str] = []
    real = auth._dummy_ha1

    def counted(algorithm: str, username: str) -> str:
        calls.append(username)
        return real(algorithm, username)

    monkeypatch.setattr(auth, "_dummy_ha1", counted)
    nonce, opaque = nonce_of(auth, 0.0)
    result = auth.verify(register(user, "wrong", nonce, opaque), Lookup(), 1.0)
    assert result.status is AuthStatus.REJECTED and result.username == user
    assert calls == [user]  # one dummy derivation either way, one response compared


# --- the registrar's screening pass (what the endpoint answers statelessly) ------


class Store:
    """A location store that must never be touched by screening."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"screen touched the store: {name}")


def registrar(failures: list[tuple[tuple[str, int], str]]) -> Registrar:
    auth = DigestAuthenticator(SECRET, REALM, algorithms=("MD5",))
    return Registrar(
        auth,
        Lookup(),
        Store(),  # type: ignore[arg-type]
        on_auth_failure=lambda src, user: failures.append((src, user)),
    )


def test_screen_answers_without_storing_and_counts_failures() -> None:
    failures: list[tuple[tuple[str, int], str]] = []
    reg = registrar(failures)
    src = ("127.0.0.9", 5060)
    bare = register("alice", "x", "n", "o")
    bare.headers = Headers([(n, v) for n, v in bare.headers if n != "Authorization"])
    first = reg.screen(bare, src, 0.0)
    assert first is not None and first.status == 401 and failures == []  # a challenge
    nonce, opaque = nonce_of(reg.auth, 0.0)
    wrong = reg.screen(register("alice", "guess", nonce, opaque), src, 1.0)
    unknown = reg.screen(register("nobody", "guess", nonce, opaque, nc=2), src, 1.0)
    assert wrong is not None and unknown is not None
    assert failures == [(src, "alice"), (src, "nobody")]

    def shape(resp: SipResponse) -> tuple[object, ...]:
        challenge = resp.headers.get("WWW-Authenticate")
        params = sorted(parse_digest(challenge)[1]) if challenge else []
        return (resp.status, resp.reason, [n for n, _ in resp.headers], params)

    # A wrong answer to our challenge is refused (403), never re-challenged
    # (UAs loop on a fresh nonce), and the same for a user that does not exist.
    assert shape(wrong) == shape(unknown)
    assert wrong.status == 403 and "WWW-Authenticate" not in wrong.headers
    assert len(reg.auth._nc_seen) == 0


def test_screen_passes_good_credentials_without_recording_the_nonce_count() -> None:
    reg = registrar([])
    nonce, opaque = nonce_of(reg.auth, 0.0)
    good = register("alice", "alice-Secret-1", nonce, opaque)
    assert reg.screen(good, ("127.0.0.9", 5060), 1.0) is None
    assert reg.screen(good, ("127.0.0.9", 5060), 1.0) is None  # not a replay yet
    assert len(reg.auth._nc_seen) == 0
    # The handling pass records it; the same nc again is then a replay (stale).
    assert reg.auth.verify(good, Lookup(), 1.0).ok
    stale = reg.screen(good, ("127.0.0.9", 5060), 1.0)
    assert stale is not None and "stale=true" in (stale.headers.get("WWW-Authenticate") or "")
