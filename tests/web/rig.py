"""Fixtures of the web tests: a real database, the app, a client, users of every role.

``tests/web/conftest.py`` re-exports them; security tests import them from
here (``from web.rig import ...``). Everything is real: a temporary SQLite
database upgraded to the newest schema with the demo plan loaded, the app
from ``create_app`` (argon2 at its lowest cost so logins are fast), an
``httpx.AsyncClient`` over ``httpx.ASGITransport``, and one user per role
created through ``UserStore``, with an API token each. The node's control
endpoint points at a port nothing listens on (live routes answer 503)
unless a test builds its own app with ``control=``.

Async tests run under anyio's pytest plugin (``conftest.py`` marks every
coroutine test of tests/web; other directories add
``pytestmark = pytest.mark.anyio``).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine, make_url

from offhook.config import Settings
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.plan import DEMO_PLAN, load_plan
from offhook.db.users import ROLES
from offhook.web.app import create_app
from offhook.web.deps import WebContext
from offhook.web.server import WebServer, serve_web
from support.ports import free_port

__all__ = [
    "PASSWORD",
    "USER_DEVICES",
    "anyio_backend",
    "client",
    "client_for",
    "live_server",
    "login",
    "make_settings",
    "tokens",
    "web_app",
    "web_ctx",
    "web_engine",
    "web_settings",
    "web_users",
]

PASSWORD = "correct horse battery staple"
USER_DEVICES = ("alice",)
"""The demo plan devices owned by the self-care user ``user``."""
BASE_URL = "http://testserver"


def make_settings(db_url: str, *, auth: dict[str, Any] | None = None, **web: Any) -> Settings:
    """Settings for a test app: ``db_url``, cheap argon2, ``web`` overrides of
    ``[web]``, ``auth`` overrides of ``[auth]``."""
    web_keys: dict[str, Any] = {
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "argon2_parallelism": 1,
        "secure_cookies": "never",
        "hosts": ["testserver"],  # httpx's name for the in-process app
    }
    web_keys.update(web)
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "admin": {"port": free_port()},  # nothing listens there: the node is down
            "web": web_keys,
            "auth": dict(auth or {}),
        }
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    return make_settings(f"sqlite:///{tmp_path / 'web.db'}")


_TEMPLATES: dict[str, Path] = {}
"""Realm -> a database file upgraded and with the demo plan loaded, built once per process."""


def demo_database(path: Path, realm: str) -> None:
    """Make ``path`` a database at the newest schema with the demo plan (for ``realm``).

    Migrating and loading the plan takes a second or two; it is done once per
    test process and realm, and each test gets a copy of the file.
    """
    template = _TEMPLATES.get(realm)
    if template is None or not template.exists():
        folder = Path(tempfile.mkdtemp(prefix="offhook-web-template-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "template.db"
        engine = create_engine_for(f"sqlite:///{template}")
        try:
            upgrade(engine)
            load_plan(DEMO_PLAN, engine, realm)
        finally:
            engine.dispose()
        _TEMPLATES[realm] = template
    shutil.copyfile(template, path)


@pytest.fixture
def web_engine(web_settings: Settings) -> Any:
    url = make_url(web_settings.database.url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        demo_database(Path(url.database), web_settings.sip.realm)
        engine = create_engine_for(web_settings.database.url)
    else:
        engine = create_engine_for(web_settings.database.url)
        upgrade(engine)
        load_plan(DEMO_PLAN, engine, web_settings.sip.realm)
    yield engine
    engine.dispose()


@pytest.fixture
def web_app(web_settings: Settings, web_engine: Engine) -> FastAPI:
    return create_app(web_settings, engine=web_engine)


@pytest.fixture
def web_ctx(web_app: FastAPI) -> WebContext:
    context: WebContext = web_app.state.ctx
    return context


def client_for(app: FastAPI, host: str = "127.0.0.1", port: int = 40000) -> httpx.AsyncClient:
    """A client of ``app`` whose requests come from ``host``:``port``."""
    transport = httpx.ASGITransport(app=app, client=(host, port))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@pytest.fixture
async def client(web_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(web_app) as c:
        yield c


@pytest.fixture
def web_users(web_ctx: WebContext) -> dict[str, str]:
    """One enabled user per role, named after the role: role -> user name.

    Every password is :data:`PASSWORD`; ``user`` owns :data:`USER_DEVICES`.
    """
    out = {}
    for role in ROLES:
        devices = USER_DEVICES if role == "user" else ()
        ctx_user = web_ctx.users.add(role, role, PASSWORD, display=f"The {role}", devices=devices)
        out[role] = ctx_user.name
    return out


@pytest.fixture
def tokens(web_ctx: WebContext, web_users: dict[str, str]) -> dict[str, str]:
    """An API token per role: role -> ``Authorization: Bearer`` value."""
    return {role: web_ctx.users.create_token(name, "tests")[1] for role, name in web_users.items()}


async def login(client: httpx.AsyncClient, role: str, password: str = PASSWORD) -> str:
    """Log ``client`` in as the user of ``role`` (``web_users``); its CSRF token.

    The client keeps the session cookie; send the token as ``X-CSRF-Token``
    on POST/PUT/PATCH/DELETE (``client.headers["X-CSRF-Token"] = ...``).
    """
    answer = await client.post("/api/v1/login", json={"username": role, "password": password})
    assert answer.status_code == 200, answer.text
    csrf: str = answer.json()["csrf_token"]
    return csrf


@contextmanager
def live_server(settings: Settings) -> Iterator[WebServer]:
    """``serve_web(settings)`` in a thread (a real listener on ``[web]``) until the block ends."""
    ready = threading.Event()
    servers: list[WebServer] = []
    status: list[int] = []

    def on_ready(server: WebServer) -> None:
        servers.append(server)
        ready.set()

    def run() -> None:
        status.append(serve_web(settings, on_ready=on_ready))
        ready.set()

    thread = threading.Thread(target=run, name="web-server", daemon=True)
    thread.start()
    ready.wait(60)
    if not servers:
        thread.join(10)
        raise RuntimeError(f"the web server did not start (status {status})")
    try:
        yield servers[0]
    finally:
        servers[0].should_exit = True
        thread.join(30)
