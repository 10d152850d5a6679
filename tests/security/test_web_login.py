"""Logging in to the web admin cannot be abused (issue 11, item 4).

- CSRF: a state-changing request authenticated by the session cookie
  without the session's token (header or form field), or with another
  one, is refused (403) and changes nothing; a bearer-token request needs
  none.
- Session fixation: a session id planted before login is never adopted;
  every login issues a new id and the one it replaces is dead.
- Idle and absolute timeouts end a session (the app's clock is injected;
  nothing sleeps); logout ends it at once.
- Unknown user, wrong password and disabled user get identical answers.
- A source over the failed-login threshold gets 429 with Retry-After
  before any password is hashed, even with the right password; another
  source still logs in (accounts are never locked). Bad API tokens count
  the same way.
- The cookie is HttpOnly, SameSite=Strict, Path=/, Secure as configured.
- A state-changing request from another site (Origin, Sec-Fetch-Site) is
  refused before anything else, the JSON login included (login CSRF).
- Every answer carries a Content-Security-Policy that lets only this
  origin's scripts run (the vendored htmx) and its one inline style.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from offhook.config import Settings
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.users import ROLES
from offhook.web.app import create_app
from offhook.web.deps import WebContext
from offhook.web.sessions import COOKIE_NAME
from web.rig import PASSWORD, anyio_backend, client_for, login, make_settings

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend"]


class FakeClock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        f"sqlite:///{tmp_path / 'web.db'}",
        session_idle=60,
        session_absolute=300,
        auth={"throttle_after": 2, "throttle_delay": 0, "block_after": 3, "block_for": 600},
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine_for(settings.database.url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: FakeClock) -> FastAPI:
    app = create_app(settings, engine=engine, clock=clock)
    context: WebContext = app.state.ctx
    for role in ROLES:
        context.users.add(role, role, PASSWORD)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


def _ctx(app: FastAPI) -> WebContext:
    context: WebContext = app.state.ctx
    return context


DOMAIN = "testserver.local"  # how httpx files the cookies of http://testserver
NEW_USER = {"name": "eve", "role": "full-admin", "password": "eve-password"}


async def test_csrf_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    csrf = await login(client, "full-admin")
    missing = await client.post("/api/v1/users", json=NEW_USER)
    assert missing.status_code == 403
    assert missing.json() == {"detail": "CSRF token missing or wrong"}
    wrong = await client.post("/api/v1/users", json=NEW_USER, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    # Another session's token is no good either.
    async with client_for(app, port=40001) as other:
        other_csrf = await login(other, "full-admin")
    crossed = await client.post(
        "/api/v1/users", json=NEW_USER, headers={"X-CSRF-Token": other_csrf}
    )
    assert crossed.status_code == 403
    assert _ctx(app).users.get("eve") is None
    # The form field works as well as the header (the HTML forms post it).
    assert (await client.post("/api/v1/logout", data={"csrf_token": "nope"})).status_code == 403
    assert (await client.get("/api/v1/me")).status_code == 200
    made = await client.post("/api/v1/users", json=NEW_USER, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    assert (await client.post("/api/v1/logout", data={"csrf_token": csrf})).status_code == 204


async def test_bearer_needs_no_csrf(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, token = _ctx(app).users.create_token("full-admin")
    made = await client.post(
        "/api/v1/users", json=NEW_USER, headers={"Authorization": f"Bearer {token}"}
    )
    assert made.status_code == 201


async def test_session_fixation_impossible(app: FastAPI, client: httpx.AsyncClient) -> None:
    planted = "attacker-chosen-session-id-0123456789abcdefghij"
    client.cookies.set(COOKIE_NAME, planted, domain=DOMAIN)
    assert (await client.get("/api/v1/me")).status_code == 401
    await login(client, "read-only")
    first = client.cookies.get(COOKIE_NAME)
    assert first and first != planted
    assert _ctx(app).sessions.get(planted, 1000.0) is None
    await login(client, "read-only")
    second = client.cookies.get(COOKIE_NAME)
    assert second and second != first
    async with client_for(app, port=40002) as replay:
        replay.cookies.set(COOKIE_NAME, first)
        assert (await replay.get("/api/v1/me")).status_code == 401
        replay.cookies.set(COOKIE_NAME, second)
        assert (await replay.get("/api/v1/me")).status_code == 200


async def test_idle_timeout(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await login(client, "user")
    clock.now += 59
    assert (await client.get("/api/v1/me")).status_code == 200
    clock.now += 59  # idle restarts at each request
    assert (await client.get("/api/v1/me")).status_code == 200
    clock.now += 60
    assert (await client.get("/api/v1/me")).status_code == 401
    clock.now += 1
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_absolute_timeout(client: httpx.AsyncClient, clock: FakeClock) -> None:
    await login(client, "user")
    for _ in range(5):
        clock.now += 59
        assert (await client.get("/api/v1/me")).status_code == 200
    clock.now += 5  # 300 s after login, never idle
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_logout_ends_the_session(app: FastAPI, client: httpx.AsyncClient) -> None:
    csrf = await login(client, "phone-admin")
    sid = client.cookies.get(COOKIE_NAME)
    answer = await client.post("/api/v1/logout", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 204
    assert COOKIE_NAME in answer.headers["set-cookie"]  # the browser forgets it
    async with client_for(app, port=40003) as replay:
        replay.cookies.set(COOKIE_NAME, sid or "")
        assert (await replay.get("/api/v1/me")).status_code == 401
    assert len(_ctx(app).sessions) == 0


async def test_uniform_answers(app: FastAPI, client: httpx.AsyncClient) -> None:
    _ctx(app).users.update("user", enabled=False)
    answers = [
        await client.post("/api/v1/login", json={"username": name, "password": password})
        for name, password in (
            ("full-admin", "not-the-password"),
            ("no-such-user", "not-the-password"),
            ("user", PASSWORD),  # disabled
        )
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.json() == {"detail": "invalid username or password"}
        headers = {k: v for k, v in answer.headers.items() if k != "date"}
        assert headers == {k: v for k, v in answers[0].headers.items() if k != "date"}


async def test_blocked_source_gets_429_before_hashing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    context = _ctx(app)
    verified: list[str] = []
    real_verify = context.users.verify

    def counting(name: str, password: str) -> object:
        verified.append(name)
        return real_verify(name, password)

    context.users.verify = counting  # type: ignore[assignment,method-assign]
    async with client_for(app, host="10.9.8.7") as attacker:
        for _ in range(3):
            wrong = {"username": "full-admin", "password": "guess-guess"}
            assert (await attacker.post("/api/v1/login", json=wrong)).status_code == 401
        assert len(verified) == 3
        right = {"username": "full-admin", "password": PASSWORD}
        blocked = await attacker.post("/api/v1/login", json=right)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1
        assert "set-cookie" not in blocked.headers
        assert len(verified) == 3  # no hash for a blocked source
        token = await attacker.get("/api/v1/me", headers={"Authorization": "Bearer ofh_x"})
        assert token.status_code == 429
    # The account is not locked: its owner, elsewhere, logs in.
    await login(client, "full-admin")
    assert (await client.get("/api/v1/me")).status_code == 200


async def test_bad_tokens_count_as_failures(app: FastAPI) -> None:
    async with client_for(app, host="10.9.8.6") as guesser:
        for n in range(3):
            answer = await guesser.get("/api/v1/me", headers={"Authorization": f"Bearer ofh_{n}"})
            assert answer.status_code == 401
        _, token = _ctx(app).users.create_token("read-only")
        blocked = await guesser.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert blocked.status_code == 429


async def test_cookie_attributes(client: httpx.AsyncClient, tmp_path: Path) -> None:
    answer = await client.post(
        "/api/v1/login", json={"username": "read-only", "password": PASSWORD}
    )
    cookie = answer.headers["set-cookie"].lower()
    for attribute in ("httponly", "samesite=strict", "path=/"):
        assert attribute in cookie
    assert "secure" not in cookie  # secure_cookies = "never" in these tests
    secure_settings = make_settings(f"sqlite:///{tmp_path / 's.db'}", secure_cookies="always")
    engine = create_engine_for(secure_settings.database.url)
    upgrade(engine)
    app = create_app(secure_settings, engine=engine)
    _ctx(app).users.add("admin", "full-admin", PASSWORD)
    async with client_for(app) as c:
        answer = await c.post("/api/v1/login", json={"username": "admin", "password": PASSWORD})
        assert "secure" in answer.headers["set-cookie"].lower()
    engine.dispose()


async def test_throttled_source_gets_one_attempt_at_a_time(tmp_path: Path, engine: Engine) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path / 'web.db'}",
        auth={"throttle_after": 1, "throttle_delay": 0.05, "block_after": 0},
    )
    app = create_app(settings, engine=engine)
    _ctx(app).users.add("admin", "full-admin", PASSWORD)
    wrong = {"username": "admin", "password": "not-it-at-all"}
    async with client_for(app, host="10.1.2.3") as c:
        assert (await c.post("/api/v1/login", json=wrong)).status_code == 401
        # Now throttled: the first attempt waits in the source's one hold slot,
        # the second finds it taken and is refused at once.
        first, second = await asyncio.gather(
            c.post("/api/v1/login", json={"username": "admin", "password": PASSWORD}),
            c.post("/api/v1/login", json=wrong),
        )
        assert first.status_code == 200
        assert second.status_code == 429 and "retry-after" in second.headers
    status = _ctx(app).login_guard.guard.status(0.0)
    assert status["throttled"] == 1 and status["dropped_throttled"] == 1


CROSS_SITE = (
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://testserver:8081"},  # another port is another origin
    {"Sec-Fetch-Site": "cross-site"},
)


async def test_cross_site_requests_are_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    right = {"username": "full-admin", "password": PASSWORD}
    body = b'{"username": "full-admin", "password": "%s"}' % PASSWORD.encode()
    for headers in CROSS_SITE:
        answer = await client.post("/api/v1/login", json=right, headers=headers)
        assert answer.status_code == 403, headers
        assert "set-cookie" not in answer.headers
        # A no-cors fetch of a Blob sends JSON without a Content-Type.
        untyped = await client.post("/api/v1/login", content=body, headers=headers)
        assert untyped.status_code == 403, headers
    assert len(_ctx(app).sessions) == 0
    csrf = await login(client, "full-admin")
    for headers in CROSS_SITE:
        with_token = {**headers, "X-CSRF-Token": csrf}
        made = await client.post("/api/v1/users", json=NEW_USER, headers=with_token)
        assert made.status_code == 403, headers
        assert (await client.post("/api/v1/logout", headers=with_token)).status_code == 403
    assert _ctx(app).users.get("eve") is None
    # Reading is not refused, and the same origin writes.
    assert (await client.get("/api/v1/me", headers=CROSS_SITE[0])).status_code == 200
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin", "X-CSRF-Token": csrf}
    assert (await client.post("/api/v1/users", json=NEW_USER, headers=same)).status_code == 201


HTMX = Path(__file__).resolve().parents[2] / "src/offhook/web/static/htmx.min.js"


async def test_content_security_policy(client: httpx.AsyncClient) -> None:
    for path in ("/login", "/api/v1/health", "/static/htmx.min.js", "/api/v1/me"):
        answer = await client.get(path)
        policy = answer.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'none'", path
        assert directives["script-src"] == "'self'", path  # no inline, no eval
        assert directives["frame-ancestors"] == "'none'"
        assert directives["base-uri"] == "'none'"
        assert answer.headers["x-content-type-options"] == "nosniff"
    # The one inline style allowed is the one the vendored htmx inserts.
    source = HTMX.read_text()
    match = re.search(r"`<style\$\{e\}>`\+`(.*?)`\+`(.*?)`\+\"</style>\"", source)
    assert match is not None, "htmx's indicator style not found: update HTMX_INDICATOR_STYLE"
    style = (match[1] + match[2]).replace("${t}", "htmx-indicator").replace("${n}", "htmx-request")
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    styles = directives["style-src"].split()
    assert styles == ["'self'", f"'sha256-{digest}'"]


async def test_a_session_ends_when_its_credentials_change(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Whoever changes them: here the store itself, as ``offhook user passwd`` in
    another process does (the web process's own routes end sessions as well)."""
    users = _ctx(app).users

    async def signed_in(role: str) -> httpx.AsyncClient:
        c = client_for(app, port=41000 + ROLES.index(role))
        await login(c, role)
        assert (await c.get("/api/v1/me")).status_code == 200
        return c

    changes: dict[str, Callable[[], object]] = {
        "read-only": lambda: users.set_password("read-only", "a-new-password"),
        "phone-admin": lambda: users.update("phone-admin", role="read-only"),
        "dialplan-admin": lambda: users.update("dialplan-admin", enabled=False),
        "user": lambda: (users.delete("user"), users.add("user", "user", PASSWORD)),
    }
    for role, change in changes.items():
        c = await signed_in(role)
        change()
        assert (await c.get("/api/v1/me")).status_code == 401, role
        await c.aclose()
    # The session of a role not changed, and a change of display name, leave it alone.
    admin = await signed_in("full-admin")
    users.update("full-admin", display="The Admin")
    assert (await admin.get("/api/v1/me")).status_code == 200
    await admin.aclose()
    assert len(_ctx(app).sessions) == 1
