"""``offhook user`` / ``offhook token`` / ``offhook export`` (offhook.cli_users, mounted
by offhook.cli), through typer's runner: the password from stdin, a token printed once
and stored hashed, revocation, and every change in the audit log."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from offhook import cli_users
from offhook.cli import app
from offhook.db.audit import AuditLog
from offhook.db.engine import create_engine_for
from offhook.db.plan import DEMO_PLAN, load_plan
from offhook.db.users import UserStore, password_hasher

runner = CliRunner()
PASSWORD = "first-Admin-Password"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("OFFHOOK_") and "__" in key:
            monkeypatch.delenv(key)
    path = tmp_path / "offhook.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "offhook.db"}"\n'
        "[web]\nargon2_time_cost = 1\nargon2_memory_kib = 8\nargon2_parallelism = 1\n"
    )
    return path


@pytest.fixture
def engine(config: Path, tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine_for(f"sqlite:///{tmp_path / 'offhook.db'}")
    yield eng
    eng.dispose()


def store(engine: Engine) -> UserStore:
    return UserStore(engine, password_hasher(1, 8, 1))


def invoke(config: Path, *args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, [*args, "--config", str(config)], input=stdin)


def test_first_admin_from_stdin(config: Path, engine: Engine) -> None:
    r = invoke(config, "user", "add", "admin", "--role", "full-admin", stdin=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert "user admin added (full-admin)" in r.stdout
    users = store(engine)
    assert users.verify("admin", PASSWORD) is not None
    assert users.verify("admin", PASSWORD + "\n") is None
    (entry,) = AuditLog(engine).search()
    assert (entry.actor, entry.action, entry.object_type, entry.object_key) == (
        "cli",
        "create",
        "users",
        "admin",
    )
    assert entry.after["role"] == "full-admin" and "password" not in str(entry.after)
    assert PASSWORD not in str(entry.after)


def test_user_add_options_and_list(config: Path, engine: Engine) -> None:
    r = invoke(
        config,
        "user",
        "add",
        "carol",
        "--role",
        "user",
        "--display",
        "Carol White",
        "--device",
        "carol",
        "--device",
        "SEP001122334455",
        stdin=PASSWORD,  # no newline at the end: fine too
    )
    assert r.exit_code == 0, r.output
    carol = store(engine).get("carol")
    assert carol is not None
    assert (carol.display, carol.devices) == ("Carol White", ("carol", "SEP001122334455"))
    r = invoke(config, "user", "list")
    assert (
        r.exit_code == 0 and "carol\tuser 'Carol White' devices: carol, SEP001122334455" in r.stdout
    )
    r = invoke(config, "user", "list", "--json")
    assert [u["name"] for u in yaml.safe_load(r.stdout)] == ["carol"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("user", "add", "x", "--role", "root"), PASSWORD, "not a role"),
        (("user", "add", "bad name", "--role", "user"), PASSWORD, "not a user name"),
        (("user", "add", "x", "--role", "user"), "short\n", "8 to"),
        (("user", "add", "x", "--role", "user"), "", "no password on stdin"),
        (("user", "add", "x", "--role", "user"), "\n", "no password on stdin"),
    ],
)
def test_user_add_refused(
    config: Path, engine: Engine, args: tuple[str, ...], stdin: str, message: str
) -> None:
    r = invoke(config, *args, stdin=stdin)
    assert r.exit_code != 0
    assert message in r.output
    if "web_users" in inspect(engine).get_table_names():
        assert store(engine).list() == []


def test_password_prompted_twice_on_a_terminal(
    config: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_users, "_interactive", lambda: True)
    r = invoke(config, "user", "add", "dan", "--role", "user", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    assert r.output.count("Password") == 1 and "Repeat for confirmation" in r.output
    assert PASSWORD not in r.output  # hidden
    assert store(engine).verify("dan", PASSWORD) is not None
    # Two different entries: asked again; no more input: nothing is changed.
    r = invoke(config, "user", "passwd", "dan", stdin=f"{PASSWORD}\nother-Password-3\n")
    assert r.exit_code != 0 and "do not match" in r.output
    assert store(engine).verify("dan", PASSWORD) is not None


def test_user_exists(config: Path) -> None:
    assert invoke(config, "user", "add", "a", "--role", "user", stdin=PASSWORD).exit_code == 0
    r = invoke(config, "user", "add", "a", "--role", "read-only", stdin=PASSWORD)
    assert r.exit_code == 1 and "exists already" in r.output


def test_passwd_and_delete(config: Path, engine: Engine) -> None:
    invoke(config, "user", "add", "bob", "--role", "read-only", stdin=PASSWORD)
    r = invoke(config, "user", "passwd", "bob", stdin="second-Password-2\n")
    assert r.exit_code == 0, r.output
    assert store(engine).verify("bob", "second-Password-2") is not None
    assert store(engine).verify("bob", PASSWORD) is None
    r = invoke(config, "user", "passwd", "nobody", stdin="second-Password-2\n")
    assert r.exit_code == 1 and "no user 'nobody'" in r.output
    r = invoke(config, "user", "delete", "bob")
    assert r.exit_code == 0 and store(engine).get("bob") is None
    r = invoke(config, "user", "delete", "bob")
    assert r.exit_code == 1 and "no user 'bob'" in r.output
    actions = [(e.action, e.object_key) for e in AuditLog(engine).search()]
    assert actions == [("delete", "bob"), ("password", "bob"), ("create", "bob")]


def test_delete_keeps_the_last_full_admin(config: Path, engine: Engine) -> None:
    invoke(config, "user", "add", "admin", "--role", "full-admin", stdin=PASSWORD)
    r = invoke(config, "user", "delete", "admin")
    assert r.exit_code == 1
    assert "'admin' is the last enabled full-admin (make another first)" in r.output
    assert store(engine).get("admin") is not None
    invoke(config, "user", "add", "admin2", "--role", "full-admin", stdin=PASSWORD)
    assert invoke(config, "user", "delete", "admin").exit_code == 0
    assert [u.name for u in store(engine).list()] == ["admin2"]
    assert [e.action for e in AuditLog(engine).search()] == ["delete", "create", "create"]


def test_token_create_prints_it_once(config: Path, engine: Engine) -> None:
    invoke(config, "user", "add", "script", "--role", "phone-admin", stdin=PASSWORD)
    r = runner.invoke(
        app, ["token", "create", "--user", "script", "--label", "nightly", "--config", str(config)]
    )
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    assert token.startswith("ofh_") and "\n" not in token
    assert "shown once" in r.stderr and token not in r.stderr
    users = store(engine)
    user = users.user_for_token(token)
    assert user is not None and user.name == "script"
    with engine.connect() as conn:
        (stored,) = conn.execute(text("SELECT token_hash, prefix FROM api_tokens")).all()
    assert stored == (hashlib.sha256(token.encode()).hexdigest(), token[:8])
    r = invoke(config, "token", "list")
    assert r.exit_code == 0
    assert token not in r.stdout and f"{token[:8]}..." in r.stdout and "nightly" in r.stdout
    (listed,) = yaml.safe_load(invoke(config, "token", "list", "--json").stdout)
    assert listed["user"] == "script" and listed["revoked_at"] is None
    audit = AuditLog(engine).search(object_type="tokens")
    assert [(e.action, e.after["prefix"]) for e in audit] == [("create", token[:8])]
    assert token not in str(audit)


def test_token_revoke(config: Path, engine: Engine) -> None:
    invoke(config, "user", "add", "script", "--role", "read-only", stdin=PASSWORD)
    token = invoke(config, "token", "create", "--user", "script").stdout.strip()
    (record,) = store(engine).tokens()
    r = invoke(config, "token", "revoke", str(record.id))
    assert r.exit_code == 0 and f"token {record.id} revoked" in r.stdout
    assert store(engine).user_for_token(token) is None
    r = invoke(config, "token", "revoke", str(record.id))
    assert r.exit_code == 1 and "no active token" in r.output
    r = invoke(config, "token", "revoke", "not-a-number")
    assert r.exit_code == 2
    assert "revoked" in invoke(config, "token", "list").stdout


def test_token_for_unknown_user(config: Path) -> None:
    r = invoke(config, "token", "create", "--user", "nobody")
    assert r.exit_code == 1 and "no user 'nobody'" in r.output and "ofh_" not in r.stdout


def test_export(config: Path, engine: Engine, tmp_path: Path) -> None:
    load_plan(DEMO_PLAN, engine, "offhook")
    r = invoke(config, "export")
    assert r.exit_code == 0, r.output
    data = yaml.safe_load(r.stdout)
    assert [d["name"] for d in data["devices"]] == ["alice", "bob", "carol"]
    assert "Secret" not in r.stdout  # no password
    out = tmp_path / "plan-export.yaml"
    r = invoke(config, "export", str(out))
    assert r.exit_code == 0 and out.read_text() == invoke(config, "export").stdout
    # The export loads back with the stored passwords kept: nothing changes.
    assert not load_plan(out, engine, "offhook", keep_passwords=True).changed
    r = invoke(config, "load", str(out))
    assert r.exit_code == 1 and "a sip device needs a password" in r.output
    r = invoke(config, "load", "--keep-passwords", str(out))
    assert r.exit_code == 0, r.output
    assert "0 created, 0 updated, 3 unchanged, 0 deleted" in r.stdout
