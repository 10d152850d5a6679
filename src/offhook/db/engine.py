"""Engines and schema upgrades.

``create_engine_for(url)`` makes an engine with the settings offhook needs on
each backend (SQLite: foreign keys on, WAL, a busy timeout, the parent
directory created; PostgreSQL: ``postgresql://`` means psycopg 3, pre-ping).
``upgrade(url)`` brings the schema to the newest Alembic revision; the
migrations ship inside the package and the Alembic ``Config`` is built in
code, so no ``alembic.ini`` is needed on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another (the node vs offhook load)
# Any constant works: it only has to be the same in every offhook process.
_PG_MIGRATION_LOCK = 0x0FF400C


def normalize_url(url: str | URL) -> URL:
    """``postgresql://`` and ``postgres://`` select psycopg 3 (psycopg2 is not a dependency)."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
    finally:
        cur.close()


def create_engine_for(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url`` configured for offhook (see module doc)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT)
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def alembic_config(url: str | URL | None = None) -> Any:
    """The Alembic ``Config`` for the packaged migrations (built in code)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


def upgrade(url: str | URL | Engine, revision: str = "head") -> None:
    """Create or upgrade the schema at ``url`` to ``revision`` (default: newest).

    On PostgreSQL a transaction-level advisory lock serialises nodes that
    start at the same time.
    """
    from alembic import command

    engine = url if isinstance(url, Engine) else create_engine_for(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The schema's Alembic revision, or None for an empty database."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    return None if rev is None else str(rev)


def head_revision() -> str:
    """The newest revision shipped with this offhook."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return str(head)
