"""The ``offhook`` command.

``--config FILE`` is optional everywhere: without it ``offhook.toml`` in the
current directory is used if it exists, else the built-in defaults (plus any
``OFFHOOK_*`` environment overrides, see :mod:`offhook.config`).

- ``offhook serve``: upgrade the schema; on a database that never had a plan,
  load the packaged demo plan (alice 1001, bob 1002, carol 1003, shared 1010;
  ``--no-demo`` to skip); then run the node (``offhook.app.serve``).
- ``offhook db upgrade``: create/upgrade the schema.
- ``offhook load PLAN.yaml [--no-prune]``: import a plan (exit 1 if invalid).
- ``offhook cdr [--since ISO] [--until ISO] [--limit N] [--json]``: call records as CSV.
- ``offhook dna --from DEVICE DIGITS [--json]``: the dialed number analyzer:
  what the dial plan in the database does with DIGITS dialed from DEVICE
  (no running node needed).
- ``offhook status [--json]``: registrations and calls of the running node
  (asked over its control endpoint, ``[admin]``); with ``--devices PATTERN``,
  ``--protocol``, ``--status``, ``--address`` or ``--limit``, only the devices
  the real-time information query selects (``ris.status_view.print_devices``).
- ``offhook audit [--json] [--acl-number N] [--host ADDR]``: the listeners the
  settings open, services exposed to every network, and the router access
  list that fences each port (exit 1 when anything is flagged WARN).
- ``offhook media [--control ADDR]``: run a media server standalone (``offhook
  serve`` runs its own): music on hold, tones, conference bridges, driven over
  the control address (``[media] control``).
- ``offhook web``: run the web process standalone (REST API, admin pages,
  self-care portal on ``[web]``; ``offhook serve`` runs its own as a child
  when ``[web] enabled``).
- ``offhook user ...``, ``offhook token ...``, ``offhook export [FILE]``:
  web users and API tokens, the plan as YAML (``offhook.cli_users``).
- ``offhook demo-config``: print a sample settings file.

Argument handling only: the node itself lives in ``offhook.app``.
"""

from __future__ import annotations

import csv
import importlib
import ipaddress
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from offhook.cli_users import export, token_app, user_app
from offhook.config import SAMPLE_TOML, ConfigError, Settings, default_config_path, load_settings

app = typer.Typer(
    name="offhook",
    help="offhook: an open-source call manager.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.command()(export)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings TOML file (default: ./offhook.toml if present, else defaults).",
        dir_okay=False,
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config if config is not None else default_config_path())
    except ConfigError as exc:
        raise _fail(f"offhook: {exc}", 2) from None


def _app_module() -> Any:
    return importlib.import_module("offhook.app")


def _db_error(exc: Exception) -> typer.Exit:
    return _fail(f"offhook: database error: {exc}")


@app.command()
def serve(
    config: ConfigOpt = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo/--no-demo",
            help="Load the demo plan into a database that never had a plan.",
        ),
    ] = True,
) -> None:
    """Run the node: upgrade the schema, bootstrap the demo plan on first run, serve."""
    from sqlalchemy.exc import SQLAlchemyError

    from offhook.db.engine import upgrade
    from offhook.db.plan import PlanError, ensure_demo_plan

    settings = _settings(config)
    try:
        upgrade(settings.database.url)
        if demo and ensure_demo_plan(settings):
            typer.echo(
                "offhook: new database: loaded the demo plan (alice 1001, bob 1002, carol 1003)",
                err=True,
            )
    except SQLAlchemyError as exc:
        raise _db_error(exc) from None
    except PlanError as exc:
        raise _fail(f"offhook: demo plan: {exc}") from None
    rc = _app_module().serve(settings, config if config is not None else default_config_path())
    if isinstance(rc, int) and rc:
        raise typer.Exit(rc)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Create the schema or upgrade it to the newest revision."""
    from sqlalchemy.exc import SQLAlchemyError

    from offhook.db.engine import create_engine_for, current_revision, upgrade

    settings = _settings(config)
    engine = create_engine_for(settings.database.url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    except SQLAlchemyError as exc:
        raise _db_error(exc) from None
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"schema is up to date (revision {after})")
    else:
        typer.echo(f"schema upgraded from {before or 'empty'} to {after}")


@app.command()
def load(
    plan: Annotated[Path, typer.Argument(help="Plan YAML file.", dir_okay=False)],
    config: ConfigOpt = None,
    prune: Annotated[
        bool,
        typer.Option("--prune/--no-prune", help="Delete devices absent from the plan."),
    ] = True,
    keep_passwords: Annotated[
        bool,
        typer.Option(
            "--keep-passwords",
            help="A sip device or trunk without a password keeps its stored one "
            "(a plan from offhook export).",
        ),
    ] = False,
) -> None:
    """Import a telephony plan (idempotent; the plan is the whole truth)."""
    from sqlalchemy.exc import SQLAlchemyError

    from offhook.db.plan import PlanError, load_plan

    settings = _settings(config)
    try:
        report = load_plan(
            plan,
            settings.database.url,
            settings.sip.realm,
            prune=prune,
            keep_passwords=keep_passwords,
        )
    except PlanError as exc:
        raise _fail(f"invalid plan:\n{exc}") from None
    except SQLAlchemyError as exc:
        raise _db_error(exc) from None
    typer.echo(f"{plan}: {report}")


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint=option) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True) if value else ""
    return str(value)


@app.command()
def cdr(
    config: ConfigOpt = None,
    since: Annotated[str | None, typer.Option(help="Only calls started at/after (ISO).")] = None,
    until: Annotated[str | None, typer.Option(help="Only calls started before (ISO).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N rows.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array instead of CSV.")] = False,
) -> None:
    """Print call records (CSV with a header row, oldest first; times in UTC)."""
    from sqlalchemy.exc import SQLAlchemyError

    from offhook.db.cdr import CDR_FIELDS, CdrRepository
    from offhook.db.engine import create_engine_for

    settings = _settings(config)
    t0 = _parse_time(since, "--since")
    t1 = _parse_time(until, "--until")
    engine = create_engine_for(settings.database.url)
    try:
        rows = CdrRepository(engine).query(since=t0, until=t1, limit=limit)
    except SQLAlchemyError as exc:
        raise _fail(
            f"offhook: cannot read call records ({type(exc).__name__}); "
            "is the schema created? run `offhook db upgrade`"
        ) from None
    finally:
        engine.dispose()
    if as_json:
        out = [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.as_dict().items()}
            for r in rows
        ]
        typer.echo(json.dumps(out, indent=2))
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CDR_FIELDS)
    for r in rows:
        writer.writerow([_cell(v) for v in r.as_dict().values()])
    sys.stdout.flush()


@app.command()
def dna(
    digits: Annotated[str, typer.Argument(help="The digits dialed.")],
    from_device: Annotated[
        str, typer.Option("--from", help="The calling device (its CSS and first line).")
    ],
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Dialed number analyzer: what the dial plan does with DIGITS dialed from a device.

    Reads the plan from the database (no running node needed; phones
    auto-registered so far are in it with their DNs) and prints
    each translation, the matched pattern and partition, the
    transformations, the route list and its trunks in order, or why the
    number is blocked, incomplete or unknown (with the Q.850 cause).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from offhook.core.dialplan.router import DialPlanError
    from offhook.db.analyzer import UnknownDevice, analysis_snapshot, analyze
    from offhook.db.engine import create_engine_for

    settings = _settings(config)
    engine = create_engine_for(settings.database.url)
    try:
        snapshot = analysis_snapshot(engine, settings)
    except SQLAlchemyError as exc:
        raise _fail(
            f"offhook: cannot read the plan ({type(exc).__name__}); "
            "is the schema created? run `offhook db upgrade`"
        ) from None
    except DialPlanError as exc:
        raise _fail(f"offhook: the dial plan in the database is invalid: {exc}") from None
    finally:
        engine.dispose()
    try:
        result = analyze(snapshot, from_device, digits, settings.features.codes())
    except UnknownDevice as exc:
        raise _fail(f"offhook: {exc}") from None
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=None if result.decision is None else 2))
    else:
        typer.echo(result.as_text())


@app.command()
def status(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    devices: Annotated[
        str | None,
        typer.Option("--devices", help="Only devices whose name matches (* any, ? one)."),
    ] = None,
    protocol: Annotated[
        str | None, typer.Option("--protocol", help="Only sip, sccp or cti devices.")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option("--status", help="Only registered, unregistered or rejected devices."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option("--address", help="Only devices at an address, network or its start."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many.")] = None,
) -> None:
    """Show registered devices and active calls of the running node (or the devices
    the filters select)."""
    settings = _settings(config)
    query = {
        "name": devices,
        "protocol": protocol,
        "status": state,
        "address": address,
        "limit": limit,
    }
    if any(v is not None for v in query.values()):
        from offhook.ris.status_view import print_devices

        rc = print_devices(settings, as_json, **query)
    else:
        rc = _app_module().print_status(settings, as_json)
        if not rc and not as_json and settings.node.workers > 1:
            from offhook.workers.status import print_workers

            print_workers(settings)  # one line per worker (offhook.workers.status)
    if isinstance(rc, int) and rc:
        raise typer.Exit(rc)


@app.command()
def audit(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    acl_number: Annotated[
        int, typer.Option("--acl-number", help="IOS extended access list (100-199, 2000-2699).")
    ] = 101,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="The node's address (repeat for IPv4 and IPv6): the ACL destination for "
            "wildcard listeners (default: the SIP external_host when it is one, else any).",
        ),
    ] = None,
) -> None:
    """Audit the listeners: exposure, limits, and router access-list lines for each port.

    Exit status 0, or 1 when a service that must not face the whole network
    (admin, provisioning, database, CTI) is open to everything.
    """
    from offhook.audit import audit as run_audit
    from offhook.audit import valid_acl_number

    if not valid_acl_number(acl_number):
        raise typer.BadParameter(
            "IOS extended access lists are numbered 100-199 or 2000-2699",
            param_hint="--acl-number",
        )
    hosts = host or []
    for h in hosts:
        try:
            ipaddress.ip_address(h)
        except ValueError:
            raise typer.BadParameter(f"not an IP address: {h!r}", param_hint="--host") from None
    settings = _settings(config)
    report = run_audit(settings, acl_number, hosts)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(report.text(), nl=False)
    if report.status:
        raise typer.Exit(report.status)


@app.command()
def media(
    config: ConfigOpt = None,
    control: Annotated[
        str | None,
        typer.Option(
            "--control",
            help="Control address (unix:PATH, HOST:PORT or IPv6 in brackets:PORT); "
            "default: the media.control setting.",
        ),
    ] = None,
    exit_on_stdin_eof: Annotated[
        bool, typer.Option("--exit-on-stdin-eof", hidden=True, help="Stop when stdin closes.")
    ] = False,
) -> None:
    """Run a media server (music on hold, tones, conference bridges) standalone.

    offhook serve runs one itself (setting media.embedded); this runs one on
    its own, driven by nodes over the control address.
    """
    settings = _settings(config)
    address = control if control is not None else settings.media.control
    if not address.strip():
        raise _fail("offhook: media: no control address: set [media] control or pass --control", 2)
    from offhook.media.process import main as media_main

    rc = media_main(settings, address, exit_on_stdin_eof=exit_on_stdin_eof)
    if rc:
        raise typer.Exit(rc)


@app.command()
def web(
    config: ConfigOpt = None,
    exit_on_stdin_eof: Annotated[
        bool, typer.Option("--exit-on-stdin-eof", hidden=True, help="Stop when stdin closes.")
    ] = False,
) -> None:
    """Run the web process (REST API, admin pages, self-care portal) standalone.

    offhook serve runs one itself as its child when the web section has
    enabled = true; this runs it on its own (it reads the database and asks
    the node's control endpoint, the admin section, for live state).
    """
    from offhook.common.logsetup import setup_logging

    settings = _settings(config)
    setup_logging(settings.log.level, settings.log.format)
    from offhook.web.server import serve_web

    rc = serve_web(settings, exit_on_stdin_eof=exit_on_stdin_eof)
    if rc:
        raise typer.Exit(rc)


@app.command(hidden=True)
def worker(
    index: Annotated[int, typer.Option("--index")],
    workers: Annotated[int, typer.Option("--workers")],
    port: Annotated[int, typer.Option("--port")],
    bus: Annotated[str, typer.Option("--bus")],
    fds: Annotated[str, typer.Option("--fds")],
    tcp_fds: Annotated[str, typer.Option("--tcp-fds")] = "",
    sccp_fds: Annotated[str, typer.Option("--sccp-fds")] = "",
    sccp_port: Annotated[int, typer.Option("--sccp-port")] = 0,
    config: ConfigOpt = None,
) -> None:
    """One worker of offhook serve with [node] workers > 1 (offhook.workers.worker)."""
    from offhook.workers.worker import main as worker_main

    settings = _settings(config)
    fd_list = [int(fd) for fd in fds.split(",") if fd]
    rc = worker_main(
        settings,
        config if config is not None else default_config_path(),
        index=index,
        workers=workers,
        port=port,
        bus_dir=bus,
        fds=fd_list,
        tcp_fds=[int(fd) for fd in tcp_fds.split(",") if fd],
        sccp_fds=[int(fd) for fd in sccp_fds.split(",") if fd],
        sccp_port=sccp_port,
    )
    if rc:
        raise typer.Exit(rc)


@app.command("demo-config")
def demo_config() -> None:
    """Print a sample settings file with every key and its default."""
    typer.echo(SAMPLE_TOML, nl=False)


def main() -> None:
    """Console-script entry point (``offhook = offhook.cli:main``)."""
    app()


if __name__ == "__main__":
    main()
