"""Logging in without giving an attacker anything: throttling, blocking, bounded hashing.

Failed logins go through the same ``net.authguard.AuthGuard`` and ``[auth]``
policy as SIP digest: per source (an IPv4 address or an IPv6 /64) and per
claimed account, in bounded tables. :func:`login` asks the guard before any
work: a blocked source gets :class:`LoginRefused` (HTTP 429 with
Retry-After) before a hash is computed; a throttled one waits its delay in
one of the guard's bounded hold slots (no free slot: refused the same way).
An unknown user, a disabled one and a wrong password cost the same argon2
verification (``UserStore.verify``) and give the same answer (None).

argon2 runs in a worker thread, at most ``max_concurrent_hashes`` at once
(an ``asyncio.Semaphore``): however many logins arrive, hashing never takes
more than that many times the memory of one hash.

A session remembers the user's :func:`credential_stamp` (their row id, role
and password hash, digested) and holds only while it is unchanged: a new
password, a new role, or a user deleted and made again under the same name
ends it, whoever made the change (this process, another web process, or
``offhook user passwd`` on the command line).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from offhook.db.models import WebUser
from offhook.net.authguard import AuthGuard, source_key
from offhook.web.sessions import COOKIE_NAME, Session

if TYPE_CHECKING:
    from offhook.config import Settings
    from offhook.web.deps import WebContext

__all__ = [
    "LoginGuard",
    "LoginRefused",
    "clear_session_cookie",
    "cookie_secure",
    "credential_stamp",
    "login",
    "set_session_cookie",
]

T = TypeVar("T")

MAX_USERNAME = 128
MAX_PASSWORD = 1024


class LoginRefused(Exception):
    """The source may not try now (blocked, or throttled with no hold slot)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed logins; retry after {retry_after:.0f} s")
        self.retry_after = max(1, math.ceil(retry_after))


def credential_stamp(engine: Engine, name: str) -> str | None:
    """What a session of ``name`` depends on, digested (None: no such enabled user).

    Blocking (a database read): call it in a worker thread.
    """
    with engine.connect() as conn:
        row = conn.execute(
            select(WebUser.id, WebUser.role, WebUser.password_hash, WebUser.enabled).where(
                WebUser.name == name
            )
        ).first()
    if row is None or not row.enabled:
        return None
    material = f"{row.id}\0{row.role}\0{row.password_hash}".encode()
    return hashlib.sha256(material).hexdigest()


class LoginGuard:
    """The web process's ``AuthGuard`` and its hashing gate."""

    __slots__ = ("_hashes", "clock", "guard")

    def __init__(self, guard: AuthGuard, max_hashes: int, clock: Callable[[], float]) -> None:
        self.guard = guard
        self.clock = clock
        self._hashes = asyncio.Semaphore(max_hashes)

    def check(self, source: str) -> float:
        """The delay to wait before trying (0: none); raises LoginRefused when blocked."""
        now = self.clock()
        delay = self.guard.admit(source, now)
        if delay is None:
            # The guard does not say when the block ends; its policy bounds it.
            raise LoginRefused(self.guard.policy.block_for)
        return delay

    def failure(self, source: str, account: str | None) -> None:
        self.guard.failure(source, account, self.clock())

    async def hashing(self, fn: Callable[[], T]) -> T:
        async with self._hashes:
            return await asyncio.to_thread(fn)


async def _admitted(guard: LoginGuard, source: str) -> None:
    """Wait the source's throttle delay in a hold slot, or raise LoginRefused."""
    delay = guard.check(source)
    if delay <= 0:
        return
    if not guard.guard.hold(source):
        raise LoginRefused(delay)
    try:
        await asyncio.sleep(delay)
    finally:
        guard.guard.release(source)
    if guard.guard.is_blocked(source, guard.clock()):
        raise LoginRefused(guard.guard.policy.block_for)


async def login(ctx: WebContext, username: str, password: str, source: str) -> Session | None:
    """Check ``username``/``password`` from peer ``source`` (an address).

    A new session on success (fresh id: no fixation), None on any failure
    (same answer for unknown users, disabled ones and wrong passwords);
    :class:`LoginRefused` when the source is blocked or throttled beyond
    its hold slot.
    """
    key = source_key(source)
    guard = ctx.login_guard
    await _admitted(guard, key)
    # Over-long input costs the same verification (UserStore.verify) and fails.
    user = await guard.hashing(lambda: ctx.users.verify(username, password))
    if user is None:
        guard.failure(key, username[:MAX_USERNAME] or None)
        return None
    # After verify: a rehash of the password changes the stamp.
    stamp = await run_in_threadpool(credential_stamp, ctx.engine, user.name)
    if stamp is None:  # disabled or deleted meanwhile
        return None
    return ctx.sessions.create(user.name, ctx.clock(), stamp)


def cookie_secure(settings: Settings) -> bool:
    """Whether the session cookie is marked Secure (``[web] secure_cookies``)."""
    mode = settings.web.secure_cookies
    return mode == "always" or (mode == "auto" and settings.web.tls)


def set_session_cookie(response: Response, settings: Settings, session: Session) -> None:
    """``offhook_session``: HttpOnly, SameSite=Strict, Path=/, Secure per settings.

    No Max-Age: a browser session cookie; the server ends the session anyway.
    """
    response.set_cookie(
        COOKIE_NAME,
        session.id,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(settings),
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=cookie_secure(settings)
    )
