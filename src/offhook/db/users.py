"""The web admin's users and their API tokens (tables of migration 0007).

A user has a unique name, a role (one of :data:`ROLES`, the functional
groups of CallManager's multi-level administration; ``offhook.web.roles``
says what each may do), a password hashed with argon2id, and for the
self-care role the devices that are theirs. :class:`UserStore` is the only
code that reads or writes these rows; it is safe to call from worker
threads (each call is its own transaction).

Passwords: argon2id with the ``[web]`` cost settings (:func:`password_hasher`).
:meth:`UserStore.verify` answers an unknown or disabled user exactly as a
wrong password, after the same work (one verification against a fixed
dummy hash), and rehashes a stored hash made with other parameters when the
password is right. A password is :data:`MIN_PASSWORD` to :data:`MAX_PASSWORD`
characters.

API tokens: ``ofh_`` and 32 random bytes (URL-safe base64), returned once by
:meth:`UserStore.create_token`; only their SHA-256 is stored (a token has
256 bits of entropy, so a fast hash is enough; a database dump reveals no
usable token), with the first 8 characters to tell tokens apart in lists.
A revoked token, or one of a disabled user, authenticates nobody.

There is always an enabled ``full-admin`` once one exists: an update or a
delete that would leave none raises :class:`LastAdmin`, checked in the same
transaction as the change (the web API, the pages and ``offhook user`` all
come through here).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from offhook.db.models import ApiTokenRow, WebUser, utcnow
from offhook.db.plan_base import CONTROL_RE, NAME_RE

ROLES: tuple[str, ...] = (
    "full-admin",
    "read-only",
    "phone-admin",
    "dialplan-admin",
    "user",
    "cti-app",
)
"""The roles a user may have, most powerful first."""

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
"""Longest password accepted (characters); a longer one never verifies."""
MAX_DISPLAY = 128
MAX_LABEL = 128
MAX_DEVICES = 256
TOKEN_PREFIX = "ofh_"
MAX_TOKEN = 128
"""Longest text :meth:`UserStore.user_for_token` looks up (a token is 47 characters)."""
LAST_USED_EVERY = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token."""

_NAME = re.compile(NAME_RE)


class UserExists(ValueError):
    """A user of that name exists already."""


class UnknownUser(KeyError):
    """No user of that name."""


class LastAdmin(ValueError):
    """The change would leave no enabled ``full-admin`` (make another first)."""


FULL_ADMIN = "full-admin"


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the rest of offhook sees it (never the password hash)."""

    id: int
    name: str
    display: str
    role: str
    enabled: bool
    devices: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token without its secret: ``user`` is the owner's name, ``prefix``
    the token's first 8 characters."""

    id: int
    user: str
    label: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def password_hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    """An argon2id hasher with these costs (``[web] argon2_*``)."""
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_kib,
        parallelism=parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def token_hash(plaintext: str) -> str:
    """What is stored of an API token: its SHA-256, hex."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{name!r} is not a user name (1-64 of letters, digits and ._@+-, "
            "starting with a letter or digit)"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"{role!r} is not a role (one of {', '.join(ROLES)})")
    return role


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def _check_text(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"the {what} has at most {limit} characters")
    if CONTROL_RE.search(value):
        raise ValueError(f"the {what} has a control character")
    return value


def _check_devices(devices: Iterable[str]) -> tuple[str, ...]:
    if isinstance(devices, str):
        raise ValueError("devices is a list of device names")
    out: list[str] = []
    for name in devices:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{name!r} is not a device name")
        if name not in out:
            out.append(name)
    if len(out) > MAX_DEVICES:
        raise ValueError(f"a user has at most {MAX_DEVICES} devices")
    return tuple(out)


def _record(row: WebUser) -> UserRecord:
    return UserRecord(
        id=row.id,
        name=row.name,
        display=row.display,
        role=row.role,
        enabled=row.enabled,
        devices=tuple(row.devices or ()),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _token(row: ApiTokenRow, user: str) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        user=user,
        label=row.label,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _locked_user(session: Session, name: str) -> WebUser | None:
    """``name``'s row, locked with every enabled full-admin's (in id order, so no deadlock)."""
    session.scalars(
        select(WebUser.id)
        .where(WebUser.role == FULL_ADMIN, WebUser.enabled.is_(True))
        .order_by(WebUser.id)
        .with_for_update()
    ).all()
    return session.scalar(select(WebUser).where(WebUser.name == name).with_for_update())


def _keep_an_admin(session: Session, row: WebUser, stays_admin: bool) -> None:
    """Raise ``LastAdmin`` when ``row`` is the last enabled full-admin and is to stop being one."""
    if stays_admin or row.role != FULL_ADMIN or not row.enabled:
        return
    others = session.scalars(
        select(WebUser.id).where(
            WebUser.role == FULL_ADMIN, WebUser.enabled.is_(True), WebUser.id != row.id
        )
    ).first()
    if others is None:
        raise LastAdmin(f"{row.name!r} is the last enabled full-admin (make another first)")


class UserStore:
    """Users and API tokens over an engine (see the module doc)."""

    def __init__(self, engine: Engine, hasher: PasswordHasher) -> None:
        self.engine = engine
        self.hasher = hasher
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    def _dummy(self) -> str:
        """A hash no password matches, made with the current parameters (once)."""
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(32))
            return self._dummy_hash

    # -- users ---------------------------------------------------------------

    def add(
        self,
        name: str,
        role: str,
        password: str,
        *,
        display: str = "",
        devices: Iterable[str] = (),
        enabled: bool = True,
    ) -> UserRecord:
        """A new user; ``ValueError`` for a bad name, role or password, ``UserExists``."""
        check_name(name)
        check_role(role)
        check_password(password)
        _check_text(display, "display name", MAX_DISPLAY)
        owned = _check_devices(devices)
        hashed = self.hasher.hash(password)
        now = utcnow()
        row = WebUser(
            name=name,
            display=display,
            role=role,
            password_hash=hashed,
            enabled=bool(enabled),
            devices=list(owned),
            created_at=now,
            updated_at=now,
        )
        try:
            with Session(self.engine) as session, session.begin():
                if session.scalar(select(WebUser.id).where(WebUser.name == name)) is not None:
                    raise UserExists(f"user {name!r} exists already")
                session.add(row)
                session.flush()
                return _record(row)
        except IntegrityError:
            raise UserExists(f"user {name!r} exists already") from None

    def get(self, name: str) -> UserRecord | None:
        if not isinstance(name, str) or len(name) > 64:
            return None
        with Session(self.engine) as session:
            row = session.scalar(select(WebUser).where(WebUser.name == name))
            return None if row is None else _record(row)

    def update(
        self,
        name: str,
        *,
        display: str | None = None,
        role: str | None = None,
        devices: Iterable[str] | None = None,
        enabled: bool | None = None,
    ) -> UserRecord:
        """Change the fields given (None: unchanged); ``UnknownUser``, ``ValueError``."""
        values: dict[str, object] = {}
        if display is not None:
            values["display"] = _check_text(display, "display name", MAX_DISPLAY)
        if role is not None:
            values["role"] = check_role(role)
        if devices is not None:
            values["devices"] = list(_check_devices(devices))
        if enabled is not None:
            values["enabled"] = bool(enabled)
        with Session(self.engine) as session, session.begin():
            row = _locked_user(session, name)
            if row is None:
                raise UnknownUser(name)
            admin_after = values.get("role", row.role) == FULL_ADMIN
            _keep_an_admin(session, row, admin_after and bool(values.get("enabled", row.enabled)))
            changed = False
            for key, value in values.items():
                if getattr(row, key) != value:
                    setattr(row, key, value)
                    changed = True
            if changed:
                row.updated_at = utcnow()
            session.flush()
            return _record(row)

    def set_password(self, name: str, password: str) -> None:
        """A new password for ``name``; ``UnknownUser``, ``ValueError``."""
        check_password(password)
        hashed = self.hasher.hash(password)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(WebUser)
                .where(WebUser.name == name)
                .values(password_hash=hashed, updated_at=utcnow())
            ).rowcount
        if not done:
            raise UnknownUser(name)

    def delete(self, name: str) -> bool:
        """Delete ``name`` and its tokens; False when there was no such user; ``LastAdmin``."""
        with Session(self.engine) as session, session.begin():
            row = _locked_user(session, name)
            if row is None:
                return False
            _keep_an_admin(session, row, False)
            session.execute(delete(WebUser).where(WebUser.id == row.id))
            return True

    def verify(self, name: str, password: str) -> UserRecord | None:
        """The user when ``password`` is theirs and they are enabled, else None.

        Every answer costs one argon2 verification (see the module doc).
        """
        dummy = self._dummy()
        too_long = not isinstance(password, str) or len(password) > MAX_PASSWORD
        candidate = "" if too_long else password
        row: WebUser | None = None
        if isinstance(name, str) and len(name) <= 64:
            with Session(self.engine) as session:
                row = session.scalar(select(WebUser).where(WebUser.name == name))
                if row is not None:
                    session.expunge(row)
        if row is None or not row.enabled or too_long:
            with contextlib.suppress(VerificationError):
                self.hasher.verify(dummy, candidate)
            return None
        try:
            self.hasher.verify(row.password_hash, candidate)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if self.hasher.check_needs_rehash(row.password_hash):
            fresh = self.hasher.hash(candidate)
            with self.engine.begin() as conn:
                conn.execute(
                    update(WebUser)
                    .where(WebUser.id == row.id, WebUser.password_hash == row.password_hash)
                    .values(password_hash=fresh)
                )
        return _record(row)

    # -- API tokens ----------------------------------------------------------

    def create_token(self, user: str, label: str = "") -> tuple[TokenRecord, str]:
        """A new token for ``user``: its record and the token itself (shown once)."""
        _check_text(label, "label", MAX_LABEL)
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with Session(self.engine) as session, session.begin():
            owner = session.scalar(select(WebUser).where(WebUser.name == user))
            if owner is None:
                raise UnknownUser(user)
            row = ApiTokenRow(
                user_id=owner.id,
                label=label,
                token_hash=token_hash(plaintext),
                prefix=plaintext[:8],
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return _token(row, owner.name), plaintext

    def revoke_token(self, token_id: int) -> bool:
        """Revoke a token; False when there is no such token or it was revoked already."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            ).rowcount
        return bool(done)

    def tokens(self, user: str | None = None) -> builtins.list[TokenRecord]:
        """Every token (revoked ones too), or ``user``'s, oldest first."""
        stmt = (
            select(ApiTokenRow, WebUser.name)
            .join(WebUser, WebUser.id == ApiTokenRow.user_id)
            .order_by(ApiTokenRow.id)
        )
        if user is not None:
            stmt = stmt.where(WebUser.name == user)
        with Session(self.engine) as session:
            return [_token(row, name) for row, name in session.execute(stmt).all()]

    def token(self, token_id: int) -> TokenRecord | None:
        """One token's record by id (revoked or not), or None."""
        with Session(self.engine) as session:
            found = session.execute(
                select(ApiTokenRow, WebUser.name)
                .join(WebUser, WebUser.id == ApiTokenRow.user_id)
                .where(ApiTokenRow.id == token_id)
            ).first()
            return None if found is None else _token(found[0], found[1])

    def user_for_token(self, plaintext: str, now: datetime | None = None) -> UserRecord | None:
        """The enabled user a valid, unrevoked token belongs to, else None."""
        if (
            not isinstance(plaintext, str)
            or len(plaintext) > MAX_TOKEN
            or not plaintext.startswith(TOKEN_PREFIX)
        ):
            return None
        now = utcnow() if now is None else now
        with Session(self.engine) as session, session.begin():
            found = session.execute(
                select(ApiTokenRow, WebUser)
                .join(WebUser, WebUser.id == ApiTokenRow.user_id)
                .where(ApiTokenRow.token_hash == token_hash(plaintext))
            ).first()
            if found is None:
                return None
            token, owner = found
            if token.revoked_at is not None or not owner.enabled:
                return None
            if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
                token.last_used_at = now
            return _record(owner)

    def list(self) -> builtins.list[UserRecord]:
        """Every user, by name."""
        with Session(self.engine) as session:
            return [_record(r) for r in session.scalars(select(WebUser).order_by(WebUser.name))]
