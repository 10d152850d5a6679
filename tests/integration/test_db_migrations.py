"""Alembic migrations on SQLite and PostgreSQL: upgrade, idempotency, models in step."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from offhook.db.engine import create_engine_for, current_revision, head_revision, upgrade
from offhook.db.models import Base
from offhook.db.snapshot import plan_version

DIALPLAN_TABLES = (
    "partitions",
    "calling_search_spaces",
    "css_members",
    "trunks",
    "route_groups",
    "route_group_members",
    "route_lists",
    "route_list_members",
    "route_patterns",
    "translation_patterns",
)


def test_upgrade_creates_schema(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        assert current_revision(engine) is None
        assert plan_version(engine) == 0  # no schema yet: 0, not an error
        upgrade(db_url)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert {"devices", "lines", "cdrs", "plan_meta", "alembic_version"} <= tables
        assert set(DIALPLAN_TABLES) <= tables
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("cdrs")}
        assert {"ix_cdrs_start", "ix_cdrs_call_id"} <= indexes
        assert plan_version(engine) == 0
        upgrade(engine)  # again: a no-op
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_models_match_migrations(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_foreign_key_cascade(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO devices (name, protocol) VALUES (:n, :p)"),
                {"n": "x", "p": "sip"},
            )
            dev_id = conn.execute(text("SELECT id FROM devices WHERE name = 'x'")).scalar_one()
            conn.execute(
                text("INSERT INTO lines (device_id, position, dn) VALUES (:d, 0, '1')"),
                {"d": dev_id},
            )
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM devices WHERE id = :d"), {"d": dev_id})
            assert conn.execute(text("SELECT count(*) FROM lines")).scalar_one() == 0
    finally:
        engine.dispose()


def test_downgrade_0001_and_upgrade_again(db_url: str) -> None:
    from alembic import command

    from offhook.db.engine import alembic_config

    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        assert current_revision(engine) == "0001"
        tables = set(inspect(engine).get_table_names())
        assert not set(DIALPLAN_TABLES) & tables and "devices" in tables
        assert "auto_registrations" not in tables
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0004"
        assert "auto_registrations" in set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
