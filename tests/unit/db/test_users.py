"""The web admin's users and API tokens (offhook.db.users), on SQLite and PostgreSQL.

Passwords are argon2id hashes with the configured costs, an unknown or
disabled user costs the same one verification as a wrong password, a hash
made with other costs is redone at the next good login; API tokens are
shown once, stored as their SHA-256 only, and stop working when revoked,
when their user is disabled or deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from offhook.db.engine import create_engine_for, upgrade
from offhook.db.models import ApiTokenRow, WebUser, utcnow
from offhook.db.users import (
    LAST_USED_EVERY,
    MAX_PASSWORD,
    ROLES,
    TOKEN_PREFIX,
    LastAdmin,
    UnknownUser,
    UserExists,
    UserStore,
    password_hasher,
)

PASSWORD = "correct horse battery"


class CountingHasher(PasswordHasher):
    """An argon2id hasher (cheap costs) that counts its verifications."""

    def __init__(self, time_cost: int = 1) -> None:
        base = password_hasher(time_cost, 8, 1)
        super().__init__(
            time_cost=base.time_cost,
            memory_cost=base.memory_cost,
            parallelism=base.parallelism,
            hash_len=base.hash_len,
            salt_len=base.salt_len,
            type=base.type,
        )
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def store(engine: Engine, hasher: CountingHasher) -> UserStore:
    return UserStore(engine, hasher)


def stored_hash(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(WebUser.password_hash).where(WebUser.name == name)).scalar())


def test_password_hasher_is_argon2id_with_the_costs() -> None:
    hashed = password_hasher(2, 16, 1).hash("x" * 10)
    assert hashed.startswith("$argon2id$v=19$m=16,t=2,p=1$")


def test_add_get_list(store: UserStore, engine: Engine) -> None:
    alice = store.add("alice", "full-admin", PASSWORD, display="Alice Smith")
    bob = store.add("bob", "user", PASSWORD, devices=["bob-phone", "SEP001122334455", "bob-phone"])
    assert (alice.name, alice.role, alice.display, alice.enabled) == (
        "alice",
        "full-admin",
        "Alice Smith",
        True,
    )
    assert bob.devices == ("bob-phone", "SEP001122334455")  # duplicates dropped, order kept
    assert alice.created_at.tzinfo is not None
    assert store.get("alice") == alice
    assert store.get("bob") == bob
    assert store.get("nobody") is None
    assert store.get("x" * 1000) is None
    assert [u.name for u in store.list()] == ["alice", "bob"]
    hashed = stored_hash(engine, "alice")
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert not hasattr(alice, "password_hash")


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("bad name", "user", PASSWORD, "not a user name"),
        ("", "user", PASSWORD, "not a user name"),
        ("-dash", "user", PASSWORD, "not a user name"),
        ("x" * 65, "user", PASSWORD, "not a user name"),
        ("alice", "root", PASSWORD, "not a role"),
        ("alice", "Full-Admin", PASSWORD, "not a role"),
        ("alice", "user", "short", "8 to"),
        ("alice", "user", "x" * (MAX_PASSWORD + 1), "8 to"),
    ],
)
def test_add_refuses(store: UserStore, name: str, role: str, password: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store.add(name, role, password)
    assert store.list() == []


def test_add_refuses_bad_display_and_devices(store: UserStore) -> None:
    with pytest.raises(ValueError, match="control character"):
        store.add("alice", "user", PASSWORD, display="a\x00b")
    with pytest.raises(ValueError, match="at most 128"):
        store.add("alice", "user", PASSWORD, display="x" * 129)
    with pytest.raises(ValueError, match="not a device name"):
        store.add("alice", "user", PASSWORD, devices=["bad name"])
    with pytest.raises(ValueError, match="list of device names"):
        store.add("alice", "user", PASSWORD, devices="alice-phone")
    assert store.list() == []


def test_every_role_can_be_given(store: UserStore) -> None:
    for i, role in enumerate(ROLES):
        assert store.add(f"u{i}", role, PASSWORD).role == role
    assert ROLES == ("full-admin", "read-only", "phone-admin", "dialplan-admin", "user", "cti-app")


def test_existing_name(store: UserStore) -> None:
    store.add("alice", "user", PASSWORD)
    with pytest.raises(UserExists):
        store.add("alice", "full-admin", "another-Password-1")
    assert issubclass(UserExists, ValueError)
    assert [u.role for u in store.list()] == ["user"]


def test_verify(store: UserStore, hasher: CountingHasher) -> None:
    store.add("alice", "full-admin", PASSWORD)
    hasher.verified.clear()
    user = store.verify("alice", PASSWORD)
    assert user is not None and user.name == "alice"
    assert store.verify("alice", PASSWORD + "x") is None
    assert store.verify("alice", "") is None
    assert len(hasher.verified) == 3


def test_unknown_or_disabled_user_costs_one_verification(
    store: UserStore, hasher: CountingHasher, engine: Engine
) -> None:
    store.add("alice", "full-admin", PASSWORD)
    store.add("bob", "user", PASSWORD, enabled=False)
    alice_hash = stored_hash(engine, "alice")
    hasher.verified.clear()
    assert store.verify("nobody", PASSWORD) is None
    assert store.verify("bob", PASSWORD) is None  # right password, disabled
    assert store.verify("x" * 10_000, PASSWORD) is None
    assert store.verify("alice", "y" * (MAX_PASSWORD + 1)) is None
    assert len(hasher.verified) == 4
    # Each of them against the same dummy hash, made with the same costs.
    dummy = hasher.verified[0]
    assert set(hasher.verified) == {dummy}
    assert dummy != alice_hash
    assert dummy.split("$")[:4] == alice_hash.split("$")[:4]


def test_rehash_when_the_costs_changed(engine: Engine) -> None:
    UserStore(engine, CountingHasher(time_cost=1)).add("alice", "user", PASSWORD)
    old = stored_hash(engine, "alice")
    assert ",t=1," in old
    stronger = UserStore(engine, CountingHasher(time_cost=2))
    assert stronger.verify("alice", "wrong-Password-1") is None
    assert stored_hash(engine, "alice") == old  # not on a failed login
    assert stronger.verify("alice", PASSWORD) is not None
    new = stored_hash(engine, "alice")
    assert ",t=2," in new and new != old
    assert stronger.verify("alice", PASSWORD) is not None
    assert stored_hash(engine, "alice") == new


def test_update(store: UserStore) -> None:
    before = store.add("carol", "user", PASSWORD, devices=["carol-phone"])
    after = store.update("carol", display="Carol", role="phone-admin", devices=[], enabled=False)
    assert (after.display, after.role, after.devices, after.enabled) == (
        "Carol",
        "phone-admin",
        (),
        False,
    )
    assert after.updated_at >= before.updated_at and after.created_at == before.created_at
    assert store.get("carol") == after
    same = store.update("carol")  # nothing given: nothing changes
    assert same == after
    assert store.update("carol", role="phone-admin") == after
    with pytest.raises(UnknownUser):
        store.update("nobody", role="user")
    with pytest.raises(ValueError, match="not a role"):
        store.update("carol", role="admin")
    assert store.get("carol") == after


def test_set_password(store: UserStore) -> None:
    store.add("alice", "user", PASSWORD)
    store.set_password("alice", "new-Password-2")
    assert store.verify("alice", PASSWORD) is None
    assert store.verify("alice", "new-Password-2") is not None
    with pytest.raises(UnknownUser):
        store.set_password("nobody", "new-Password-2")
    with pytest.raises(ValueError):
        store.set_password("alice", "short")


def test_token_shown_once_stored_hashed(store: UserStore, engine: Engine) -> None:
    store.add("alice", "full-admin", PASSWORD)
    record, plaintext = store.create_token("alice", "backup script")
    assert plaintext.startswith(TOKEN_PREFIX) and len(plaintext) == len(TOKEN_PREFIX) + 43
    assert (record.user, record.label, record.prefix) == ("alice", "backup script", plaintext[:8])
    assert record.last_used_at is None and record.revoked_at is None
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_tokens")).mappings().all()
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert all(plaintext not in str(value) for value in rows[0].values())
    # Nothing gives the token back.
    assert all(plaintext not in repr(t) for t in store.tokens())
    other, second = store.create_token("alice")
    assert second != plaintext and other.id != record.id


def test_user_for_token(store: UserStore) -> None:
    store.add("root", "full-admin", PASSWORD)
    alice = store.add("alice", "full-admin", PASSWORD)
    record, plaintext = store.create_token("alice")
    assert store.user_for_token(plaintext) == alice
    for bad in ("", plaintext[:-1], plaintext + "x", plaintext.upper(), "ofh_" + "A" * 200, "x"):
        assert store.user_for_token(bad) is None
    store.update("alice", enabled=False)
    assert store.user_for_token(plaintext) is None
    store.update("alice", enabled=True)
    assert store.user_for_token(plaintext) is not None
    assert store.revoke_token(record.id) is True
    assert store.user_for_token(plaintext) is None
    assert store.revoke_token(record.id) is False  # already revoked
    assert store.revoke_token(9999) is False
    (listed,) = store.tokens()
    assert listed.revoked_at is not None
    assert store.token(record.id) == listed
    assert store.token(9999) is None


def test_last_used_at_at_most_once_a_minute(store: UserStore) -> None:
    store.add("alice", "full-admin", PASSWORD)
    _, plaintext = store.create_token("alice")
    t0 = utcnow()
    assert store.user_for_token(plaintext, now=t0) is not None
    assert store.tokens()[0].last_used_at == t0
    assert store.user_for_token(plaintext, now=t0 + timedelta(seconds=30)) is not None
    assert store.tokens()[0].last_used_at == t0
    later = t0 + LAST_USED_EVERY
    assert store.user_for_token(plaintext, now=later) is not None
    assert store.tokens()[0].last_used_at == later


def test_tokens_by_user_and_unknown_user(store: UserStore) -> None:
    store.add("alice", "full-admin", PASSWORD)
    store.add("bob", "read-only", PASSWORD)
    a, _ = store.create_token("alice", "a")
    b, _ = store.create_token("bob", "b")
    assert [t.id for t in store.tokens()] == [a.id, b.id]
    assert [t.label for t in store.tokens("bob")] == ["b"]
    assert store.tokens("nobody") == []
    with pytest.raises(UnknownUser):
        store.create_token("nobody")
    with pytest.raises(ValueError, match="control character"):
        store.create_token("alice", "a\nb")


def test_delete_takes_the_tokens(store: UserStore, engine: Engine) -> None:
    store.add("root", "full-admin", PASSWORD)
    store.add("alice", "full-admin", PASSWORD)
    _, plaintext = store.create_token("alice")
    assert store.delete("alice") is True
    assert store.delete("alice") is False
    assert store.get("alice") is None
    assert store.user_for_token(plaintext) is None
    with engine.connect() as conn:
        assert conn.execute(select(ApiTokenRow)).all() == []
    # The name is free again; the old token does not come back with it.
    store.add("alice", "user", PASSWORD)
    assert store.user_for_token(plaintext) is None


def test_the_last_enabled_full_admin_stays(store: UserStore) -> None:
    """Every way of losing the last enabled full-admin is refused, whoever asks."""
    store.add("root", "full-admin", PASSWORD)
    store.add("viewer", "read-only", PASSWORD)
    store.add("off", "full-admin", PASSWORD, enabled=False)
    for change in ({"role": "read-only"}, {"enabled": False}):
        with pytest.raises(LastAdmin, match="'root' is the last enabled full-admin"):
            store.update("root", **change)  # type: ignore[arg-type]
    with pytest.raises(LastAdmin):
        store.delete("root")
    assert store.get("root") is not None and store.get("root").role == "full-admin"  # type: ignore[union-attr]
    # Other users and the disabled admin change freely; unchanged fields are no loss.
    assert store.update("root", display="Root", role="full-admin", enabled=True).display == "Root"
    assert store.delete("off") is True and store.delete("viewer") is True
    # With a second enabled admin the first may go; then the second is the last.
    store.add("second", "full-admin", PASSWORD)
    assert store.update("root", enabled=False).enabled is False
    with pytest.raises(LastAdmin):
        store.delete("second")
    assert store.update("root", enabled=True).enabled is True
    assert store.delete("second") is True
    assert [(u.name, u.role, u.enabled) for u in store.list()] == [("root", "full-admin", True)]


def test_two_admins_deleting_each_other_at_once_leave_one(store: UserStore, engine: Engine) -> None:
    """Concurrent removals see each other (PostgreSQL row locks; SQLite has one writer)."""
    from concurrent.futures import ThreadPoolExecutor

    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises its writers")
    for round_ in range(5):
        names = [f"a{round_}", f"b{round_}"]
        for name in names:
            store.add(name, "full-admin", PASSWORD)
        for user in store.list():
            if user.name not in names:
                store.update(user.name, role="user")

        def remove(name: str) -> str:
            try:
                return "deleted" if store.delete(name) else "missing"
            except LastAdmin:
                return "refused"

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = sorted(pool.map(remove, names))
        assert results == ["deleted", "refused"]
        admins = [u.name for u in store.list() if u.role == "full-admin" and u.enabled]
        assert len(admins) == 1


def test_sql_metacharacters_are_data(store: UserStore) -> None:
    name = "o'brien"  # refused as a name: only ._@+- besides letters and digits
    with pytest.raises(ValueError):
        store.add(name, "user", PASSWORD)
    display: Any = "Robert'); DROP TABLE web_users; --"
    store.add("bobby", "user", PASSWORD, display=display)
    assert store.get("bobby") is not None and store.get("bobby").display == display  # type: ignore[union-attr]
    assert store.verify("' OR 1=1 --", PASSWORD) is None


def test_concurrent_adds_of_one_name(store: UserStore) -> None:
    """Two administrators adding the same name at once: one user, one UserExists."""
    from concurrent.futures import ThreadPoolExecutor

    def add(role: str) -> str:
        try:
            store.add("dup", role, PASSWORD)
        except UserExists:
            return "exists"
        return "added"

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = sorted(pool.map(add, ["user", "read-only", "phone-admin", "full-admin"]))
    assert results == ["added", "exists", "exists", "exists"]
    assert [u.name for u in store.list()] == ["dup"]
