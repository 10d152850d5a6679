"""The ``offhook user``, ``offhook token`` and ``offhook export`` commands.

``offhook.cli`` mounts :data:`user_app` as ``offhook user`` and
:data:`token_app` as ``offhook token``, and :func:`export` as ``offhook
export``. They work on the database of ``--config`` (its schema upgraded
first, so the first administrator can be made on a fresh install) and
record what they change in the audit log (actor ``cli``).

- ``offhook user add NAME --role ROLE [--display TEXT] [--device D]...``: the
  password is read from stdin (one line) when stdin is not a terminal, else
  prompted for twice.
- ``offhook user list [--json]``, ``offhook user passwd NAME``,
  ``offhook user delete NAME`` (never the last enabled ``full-admin``).
- ``offhook token create --user NAME [--label TEXT]``: prints the new token
  on stdout, once (only its SHA-256 is stored); ``offhook token revoke ID``;
  ``offhook token list [--user NAME] [--json]``.
- ``offhook export [FILE]``: the plan as YAML (``offhook load`` format,
  without passwords), to FILE or stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from offhook.config import ConfigError, Settings, default_config_path, load_settings

if TYPE_CHECKING:
    from offhook.db.audit import AuditLog
    from offhook.db.users import UserRecord, UserStore

ACTOR = "cli"

user_app = typer.Typer(
    help="Web admin and self-care users (roles: full-admin, read-only, phone-admin, "
    "dialplan-admin, user, cti-app).",
    no_args_is_help=True,
)
token_app = typer.Typer(help="API tokens (Authorization: Bearer TOKEN).", no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings TOML file (default: ./offhook.toml if present, else defaults).",
        dir_okay=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config if config is not None else default_config_path())
    except ConfigError as exc:
        raise _fail(f"offhook: {exc}", 2) from None


@contextmanager
def _stores(config: Path | None) -> Iterator[tuple[UserStore, AuditLog]]:
    """The user store and audit log of ``--config``'s database (schema upgraded)."""
    from sqlalchemy.exc import SQLAlchemyError

    from offhook.db.audit import AuditLog
    from offhook.db.engine import create_engine_for, upgrade
    from offhook.db.users import UserStore, password_hasher

    settings = _settings(config)
    web = settings.web
    engine = create_engine_for(settings.database.url)
    try:
        upgrade(engine)
        hasher = password_hasher(
            web.argon2_time_cost, web.argon2_memory_kib, web.argon2_parallelism
        )
        yield UserStore(engine, hasher), AuditLog(engine)
    except SQLAlchemyError as exc:
        raise _fail(f"offhook: database error: {exc}") from None
    finally:
        engine.dispose()


def _interactive() -> bool:
    return sys.stdin.isatty()


def _read_password(confirm: bool = True) -> str:
    """One line of stdin when it is not a terminal, else a hidden prompt (twice)."""
    if not _interactive():
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise _fail("offhook: no password on stdin (give it as one line)")
        return password
    prompt: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return prompt


def user_view(user: UserRecord) -> dict[str, Any]:
    """A user as JSON data (what the audit log records; never a password)."""
    data = asdict(user)
    data["devices"] = list(user.devices)
    for key in ("created_at", "updated_at"):
        data[key] = getattr(user, key).isoformat()
    return data


def _when(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The login name.")],
    role: Annotated[str, typer.Option("--role", help="The user's role.")],
    display: Annotated[str, typer.Option("--display", help="Full name.")] = "",
    device: Annotated[
        list[str] | None,
        typer.Option("--device", help="A device of theirs (self-care); repeatable."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Add a user (the password from stdin, or prompted for)."""
    from offhook.db.users import check_name, check_role

    try:
        check_name(name)
        check_role(role)
    except ValueError as exc:
        raise _fail(f"offhook: {exc}", 2) from None
    password = _read_password()
    with _stores(config) as (users, audit):
        try:
            user = users.add(name, role, password, display=display, devices=device or ())
        except ValueError as exc:
            raise _fail(f"offhook: {exc}") from None
        audit.record(ACTOR, ACTOR, "create", "users", name, None, user_view(user))
    typer.echo(f"user {user.name} added ({user.role})")


@user_app.command("list")
def user_list(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List the users."""
    with _stores(config) as (users, _):
        found = users.list()
    if as_json:
        typer.echo(json.dumps([user_view(u) for u in found], indent=2))
        return
    for u in found:
        state = "" if u.enabled else " (disabled)"
        devices = f" devices: {', '.join(u.devices)}" if u.devices else ""
        display = f" {u.display!r}" if u.display else ""
        typer.echo(f"{u.name}\t{u.role}{state}{display}{devices}")


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str, typer.Argument(help="The user.")],
    config: ConfigOpt = None,
) -> None:
    """Set a user's password (from stdin, or prompted for)."""
    from offhook.db.users import UnknownUser

    password = _read_password()
    with _stores(config) as (users, audit):
        try:
            users.set_password(name, password)
        except UnknownUser:
            raise _fail(f"offhook: no user {name!r}") from None
        except ValueError as exc:
            raise _fail(f"offhook: {exc}") from None
        audit.record(ACTOR, ACTOR, "password", "users", name)
    typer.echo(f"password of {name} changed")


@user_app.command("delete")
def user_delete(
    name: Annotated[str, typer.Argument(help="The user.")],
    config: ConfigOpt = None,
) -> None:
    """Delete a user and their API tokens (never the last enabled full-admin)."""
    from offhook.db.users import LastAdmin

    with _stores(config) as (users, audit):
        before = users.get(name)
        try:
            deleted = before is not None and users.delete(name)
        except LastAdmin as exc:
            raise _fail(f"offhook: {exc}") from None
        if before is None or not deleted:
            raise _fail(f"offhook: no user {name!r}")
        audit.record(ACTOR, ACTOR, "delete", "users", name, user_view(before), None)
    typer.echo(f"user {name} deleted")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="Whose token (it acts with their role).")],
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "",
    config: ConfigOpt = None,
) -> None:
    """Create an API token and print it (once: only its hash is stored)."""
    from offhook.db.users import UnknownUser

    with _stores(config) as (users, audit):
        try:
            record, plaintext = users.create_token(user, label)
        except UnknownUser:
            raise _fail(f"offhook: no user {user!r}") from None
        except ValueError as exc:
            raise _fail(f"offhook: {exc}") from None
        audit.record(
            ACTOR,
            ACTOR,
            "create",
            "tokens",
            str(record.id),
            None,
            {"id": record.id, "user": user, "label": label, "prefix": record.prefix},
        )
    typer.echo(plaintext)
    typer.echo(
        f"token {record.id} for {user}: shown once, store it now "
        f"(revoke with `offhook token revoke {record.id}`)",
        err=True,
    )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (token list).")],
    config: ConfigOpt = None,
) -> None:
    """Revoke an API token."""
    with _stores(config) as (users, audit):
        if not users.revoke_token(token_id):
            raise _fail(f"offhook: no active token {token_id}")
        audit.record(ACTOR, ACTOR, "revoke", "tokens", str(token_id))
    typer.echo(f"token {token_id} revoked")


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's.")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List API tokens (never the tokens themselves)."""
    with _stores(config) as (users, _):
        found = users.tokens(user)
    if as_json:
        rows = [
            {
                "id": t.id,
                "user": t.user,
                "label": t.label,
                "prefix": t.prefix,
                "created_at": _when(t.created_at),
                "last_used_at": _when(t.last_used_at) or None,
                "revoked_at": _when(t.revoked_at) or None,
            }
            for t in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for t in found:
        state = f"revoked {_when(t.revoked_at)}" if t.revoked_at else "active"
        used = f" last used {_when(t.last_used_at)}" if t.last_used_at else ""
        typer.echo(f"{t.id}\t{t.user}\t{t.prefix}...\t{state}{used}\t{t.label}")


def export(
    file: Annotated[
        Path | None, typer.Argument(help="Write here (default: stdout).", dir_okay=False)
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Export the plan as YAML (the `offhook load` format, without passwords)."""
    from sqlalchemy.exc import SQLAlchemyError

    from offhook.db.engine import create_engine_for, upgrade
    from offhook.db.plan_export import dump_plan_yaml, export_plan

    settings = _settings(config)
    engine = create_engine_for(settings.database.url)
    try:
        upgrade(engine)
        text = dump_plan_yaml(export_plan(engine))
    except SQLAlchemyError as exc:
        raise _fail(f"offhook: database error: {exc}") from None
    finally:
        engine.dispose()
    if file is None:
        typer.echo(text, nl=False)
        return
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"offhook: cannot write {file} ({exc.strerror})") from None
    typer.echo(f"plan exported to {file}", err=True)
