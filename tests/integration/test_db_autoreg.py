"""Stored auto-registrations on SQLite and PostgreSQL: upsert, unique DNs, forget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from offhook.db.autoreg import (
    AutoRegistrationWriter,
    drop_auto_registrations,
    load_auto_registrations,
    save_auto_registration,
)
from offhook.db.engine import create_engine_for, upgrade

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def test_save_load_and_drop(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        save_auto_registration(engine, "SEP0000000000A1", "2000", "7940", T0)
        save_auto_registration(engine, "SEP0000000000A2", "2001", "7960", T0 + timedelta(1))
        # The same phone again: its row is updated, first_seen kept.
        save_auto_registration(engine, "SEP0000000000A1", "2000", "7941", T0 + timedelta(2))
        rows = load_auto_registrations(engine)
        assert [(r.name, r.dn, r.model) for r in rows] == [
            ("SEP0000000000A1", "2000", "7941"),
            ("SEP0000000000A2", "2001", "7960"),
        ]
        assert rows[0].first_seen == T0 and rows[0].last_seen == T0 + timedelta(2)
        # A DN given to another phone leaves its former holder's row.
        save_auto_registration(engine, "SEP0000000000A3", "2001", "7970", T0 + timedelta(3))
        assert {(r.name, r.dn) for r in load_auto_registrations(engine)} == {
            ("SEP0000000000A1", "2000"),
            ("SEP0000000000A3", "2001"),
        }
        assert drop_auto_registrations(engine, []) == 0
        assert drop_auto_registrations(engine, ["SEP0000000000A1", "nobody"]) == 1
        assert drop_auto_registrations(engine) == 1
        assert load_auto_registrations(engine) == []
    finally:
        engine.dispose()


def test_writer_keeps_the_order_of_changes(db_url: str) -> None:
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        writer = AutoRegistrationWriter(engine)
        for n in range(20):
            writer.save("SEP0000000000B1", f"{3000 + n}", "7960")
        writer.save("SEP0000000000B2", "3100", "7960")
        writer.drop(["SEP0000000000B2"])
        writer.close()
        rows = load_auto_registrations(engine)
        assert [(r.name, r.dn) for r in rows] == [("SEP0000000000B1", "3019")]
    finally:
        engine.dispose()
