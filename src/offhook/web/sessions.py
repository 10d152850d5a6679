"""Browser sessions: in memory, bounded, with idle and absolute timeouts.

A session is created only by a successful login and gets a fresh random id
(32 bytes, URL-safe): an id a browser held before logging in is never
reused, so a planted cookie cannot become a logged-in one (no session
fixation). Each session has its own CSRF token, which every state-changing
request authenticated by the cookie must echo (``web.deps``).

The store holds at most ``max_sessions``; a new one beyond that evicts the
least recently used. One user holds at most ``MAX_PER_USER`` of them (a new
one evicts that user's own least recently used): a user who logs in again
and again, however low their role, cannot push everyone else out. A session
ends ``idle`` seconds after its last request or ``absolute`` seconds after
its login, whichever comes first. Nothing here reads a clock: ``now``
(seconds, monotonic) is an argument.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["COOKIE_NAME", "Session", "SessionStore"]

COOKIE_NAME = "offhook_session"
MAX_ID_LENGTH = 128  # a cookie value longer than any id we issue is not looked up
MAX_PER_USER = 16


@dataclass(slots=True)
class Session:
    """``stamp``: the user's credential stamp at login (``web.security.credential_stamp``);
    the session holds only while it is unchanged."""

    id: str
    user: str
    csrf_token: str
    created: float
    last_seen: float
    stamp: str = ""


class SessionStore:
    """Live sessions by id (see the module docstring)."""

    __slots__ = ("_sessions", "absolute", "evicted", "idle", "max_per_user", "max_sessions")

    def __init__(
        self, idle: float, absolute: float, max_sessions: int, max_per_user: int = MAX_PER_USER
    ) -> None:
        if idle <= 0 or absolute <= 0 or max_sessions < 1:
            raise ValueError("idle > 0, absolute > 0 and max_sessions >= 1 required")
        self.idle = idle
        self.absolute = absolute
        self.max_sessions = max_sessions
        self.max_per_user = max(1, max_per_user)
        self.evicted = 0
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen >= self.idle or now - session.created >= self.absolute

    def create(self, user: str, now: float, stamp: str = "") -> Session:
        """A new session for ``user`` with new random id and CSRF token."""
        self._prune(now)
        mine = [sid for sid, s in self._sessions.items() if s.user == user]  # LRU first
        for sid in mine[: max(0, len(mine) - self.max_per_user + 1)]:
            del self._sessions[sid]
            self.evicted += 1
        while len(self._sessions) >= self.max_sessions:
            self._sessions.popitem(last=False)
            self.evicted += 1
        session = Session(
            id=secrets.token_urlsafe(32),
            user=user,
            csrf_token=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
            stamp=stamp,
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str, now: float) -> Session | None:
        """The live session ``session_id`` (its idle clock restarts), or None."""
        if not session_id or len(session_id) > MAX_ID_LENGTH:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if self._expired(session, now):
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    def delete_user(self, user: str) -> int:
        """End every session of ``user`` (deleted, disabled, new password); how many."""
        gone = [sid for sid, s in self._sessions.items() if s.user == user]
        for sid in gone:
            del self._sessions[sid]
        return len(gone)

    def _prune(self, now: float) -> None:
        # Least recently used first: stop at the first live one.
        while self._sessions:
            sid, oldest = next(iter(self._sessions.items()))
            if not self._expired(oldest, now):
                break
            del self._sessions[sid]

    def __len__(self) -> int:
        return len(self._sessions)
