"""Alembic migrations on SQLite and PostgreSQL: upgrade, idempotency, models in step."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from offhook.db.engine import create_engine_for, current_revision, head_revision, upgrade
from offhook.db.models import Base
from offhook.db.snapshot import load_snapshot, plan_version

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
MEDIA_TABLES = (
    "moh_sources",
    "meetme_numbers",
    "media_resource_groups",
    "media_resource_group_members",
    "media_resource_lists",
    "media_resource_list_members",
)
COVERAGE_TABLES = (
    "line_groups",
    "line_group_members",
    "hunt_lists",
    "hunt_list_members",
    "hunt_pilots",
    "pickup_groups",
    "call_park",
    "feature_settings",
)
WEB_TABLES = ("web_users", "api_tokens", "audit_log")


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
        assert set(MEDIA_TABLES) <= tables
        assert set(COVERAGE_TABLES) <= tables
        assert set(WEB_TABLES) <= tables
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
        assert not set(MEDIA_TABLES) & tables
        assert not set(COVERAGE_TABLES) & tables
        assert not set(WEB_TABLES) & tables
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0009"
        tables = set(inspect(engine).get_table_names())
        assert "auto_registrations" in tables
        assert set(MEDIA_TABLES) <= tables
        assert set(COVERAGE_TABLES) <= tables
    finally:
        engine.dispose()


def test_upgrade_0004_database_to_the_media_plane(db_url: str, tmp_path: Path) -> None:
    """A database of revision 0004 with a plan in it: upgraded in place, rows kept.

    The new columns read "" (no music on hold source, no media resource list),
    the old plan loads again unchanged, and the media plane can then be loaded.
    """
    from offhook.db.plan import load_plan

    upgrade(db_url, "0004")
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO devices (name, protocol, css, max_calls, model) "
                    "VALUES ('alice', 'sip', '', 4, '')"
                )
            )
            dev_id = conn.execute(text("SELECT id FROM devices WHERE name = 'alice'")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO lines (device_id, position, dn, partition, display) "
                    "VALUES (:d, 0, '1001', '', 'Alice')"
                ),
                {"d": dev_id},
            )
        assert current_revision(engine) == "0004"
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert conn.execute(
                text("SELECT name, moh_source, media_resource_list FROM devices")
            ).all() == [("alice", "", "")]
            assert conn.execute(text("SELECT dn, display, moh_source FROM lines")).all() == [
                ("1001", "Alice", "")
            ]
            for table in MEDIA_TABLES:
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
        snap = load_snapshot(engine)
        assert snap.devices["alice"].lines[0].dn == "1001"
        assert snap.moh_source_for("alice", "1001") == "default"
        assert snap.media_servers_for("alice") == ("embedded",)
        assert dict(snap.moh_sources) == {} and snap.dialplan_spec.meetme == ()

        old = tmp_path / "old.yaml"
        old.write_text(
            "devices:\n"
            "  - {name: alice, protocol: sip, password: a-Secret-1,\n"
            "     lines: [{dn: '1001', display: Alice}]}\n"
        )
        load_plan(old, engine, "realm")
        again = load_plan(old, engine, "realm")
        assert not again.changed
        (tmp_path / "hold.wav").write_bytes(b"RIFF....WAVE")
        media = tmp_path / "media.yaml"
        media.write_text(
            old.read_text()
            + "moh_sources: [{name: default, file: hold.wav}]\n"
            + "meetme: [{number: '5000'}]\n"
        )
        report = load_plan(media, engine, "realm")
        assert report.changed and report.dialplan[0] == 2
        snap = load_snapshot(engine)
        assert snap.moh_sources == {"default": str(tmp_path / "hold.wav")}
        assert snap.dialplan.route("", "5000").meetme is not None
    finally:
        engine.dispose()


def test_downgrade_0005_keeps_devices_and_lines(db_url: str) -> None:
    """Dropping the media plane's columns must not cascade to the devices' children."""
    from alembic import command

    from offhook.db.engine import alembic_config

    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO devices (name, protocol) VALUES ('a', 'sip')"))
            dev_id = conn.execute(text("SELECT id FROM devices")).scalar_one()
            conn.execute(
                text("INSERT INTO lines (device_id, position, dn) VALUES (:d, 0, '1001')"),
                {"d": dev_id},
            )
            conn.execute(
                text("INSERT INTO speed_dials (device_id, position, number) VALUES (:d, 0, '1')"),
                {"d": dev_id},
            )
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
        assert current_revision(engine) == "0004"
        assert not set(MEDIA_TABLES) & set(inspect(engine).get_table_names())
        assert "moh_source" not in {c["name"] for c in inspect(engine).get_columns("lines")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT dn FROM lines")).scalars().all() == ["1001"]
            assert conn.execute(text("SELECT count(*) FROM speed_dials")).scalar_one() == 1
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_0005_database_to_call_coverage(db_url: str, tmp_path: Path) -> None:
    """A database of revision 0005 with a plan and a CDR in it: upgraded in place.

    The new columns read what a plan without coverage keys means (no forwards,
    the node's no-answer timer, ringer-off do not disturb, a CDR never
    redirected), the old plan loads again unchanged, then coverage loads.
    """
    from offhook.db.cdr import CdrRepository
    from offhook.db.plan import load_plan

    upgrade(db_url, "0005")
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO devices (name, protocol, css, max_calls, model) "
                    "VALUES ('alice', 'sip', '', 4, '')"
                )
            )
            dev_id = conn.execute(text("SELECT id FROM devices WHERE name = 'alice'")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO lines (device_id, position, dn, partition, display) "
                    "VALUES (:d, 0, '1001', '', 'Alice')"
                ),
                {"d": dev_id},
            )
            conn.execute(
                text(
                    "INSERT INTO cdrs (call_id, calling, called, original_called, "
                    'calling_device, called_device, start, "end", duration, cause, '
                    "cause_text, node) VALUES ('c1', '1001', '1002', '1002', 'alice', 'bob', "
                    "'2024-01-02 03:04:05', '2024-01-02 03:04:09', 4, 16, 'ok', 'n')"
                )
            )
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0009"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name, dnd_option, privacy FROM devices")).all() == [
                ("alice", "ringer-off", False)
            ]
            assert conn.execute(
                text(
                    "SELECT dn, forward_all, forward_all_css, forward_busy, forward_no_answer, "
                    "forward_unregistered_css, cfna_timer, voicemail, pickup_group FROM lines"
                )
            ).all() == [("1001", "", "", "", "", "", None, "", "")]
            assert conn.execute(
                text(
                    "SELECT forward_busy_external, forward_busy_external_css, "
                    "forward_no_answer_external, forward_no_answer_external_css, "
                    "forward_unregistered_external, forward_unregistered_external_css, "
                    "intercom FROM lines"
                )
            ).all() == [("", "", "", "", "", "", False)]
            for table in COVERAGE_TABLES:
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
        (cdr,) = CdrRepository(engine).query()
        assert (cdr.call_id, cdr.last_redirecting, cdr.redirect_reason) == ("c1", "", "")
        snap = load_snapshot(engine)
        line = snap.devices["alice"].lines[0]
        assert (line.dn, line.forward_all, line.forward_busy, line.cfna_timer) == (
            "1001",
            None,
            None,
            None,
        )
        assert snap.devices["alice"].dnd_option == "ringer-off"
        assert snap.devices["alice"].privacy is False
        assert (
            line.forward_busy_external,
            line.forward_no_answer_external,
            line.forward_unregistered_external,
            line.intercom,
        ) == (None, None, None, False)
        assert dict(snap.line_groups) == {} and dict(snap.hunt_lists) == {}
        assert snap.dialplan_spec.hunt_pilots == () and snap.dialplan_spec.call_park == ()

        old = tmp_path / "old.yaml"
        old.write_text(
            "devices:\n"
            "  - {name: alice, protocol: sip, password: a-Secret-1,\n"
            "     lines: [{dn: '1001', display: Alice}]}\n"
        )
        load_plan(old, engine, "realm")
        assert not load_plan(old, engine, "realm").changed
        coverage = tmp_path / "coverage.yaml"
        coverage.write_text(
            "devices:\n"
            "  - {name: alice, protocol: sip, password: a-Secret-1, dnd_option: reject,\n"
            "     privacy: true,\n"
            "     lines: [{dn: '1001', display: Alice, voicemail: '8000',\n"
            "              forward_busy: {destination: '8000'},\n"
            "              forward_busy_external: {destination: '8001'}},\n"
            "             {dn: '1091', intercom: true}]}\n"
            "line_groups: [{name: desk, members: ['1001']}]\n"
            "hunt_lists: [{name: desk, line_groups: [desk]}]\n"
            "hunt_pilots: [{pattern: '1500', hunt_list: desk}]\n"
            "call_park: [{range: '7000-7001'}]\n"
        )
        report = load_plan(coverage, engine, "realm")
        assert report.changed and report.updated == 1 and report.dialplan[0] == 4
        snap = load_snapshot(engine)
        assert snap.devices["alice"].dnd_option == "reject"
        assert snap.devices["alice"].privacy is True
        assert snap.line("1001") is not None and snap.line("1001").voicemail == "8000"
        assert snap.line("1001").forward_busy_external is not None
        assert snap.line("1001").forward_busy_external.destination == "8001"
        assert snap.line("1091") is not None and snap.line("1091").intercom is True
        assert snap.dialplan.route("", "1500").hunt is not None
        assert snap.dialplan.route("", "7001").park is not None
    finally:
        engine.dispose()


def test_downgrade_0006_keeps_devices_lines_and_cdrs(db_url: str) -> None:
    """Dropping call coverage's columns must not cascade to the devices' children."""
    from alembic import command

    from offhook.db.engine import alembic_config

    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO devices (name, protocol) VALUES ('a', 'sip')"))
            dev_id = conn.execute(text("SELECT id FROM devices")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO lines (device_id, position, dn, forward_all) "
                    "VALUES (:d, 0, '1001', '1002')"
                ),
                {"d": dev_id},
            )
            conn.execute(
                text("INSERT INTO speed_dials (device_id, position, number) VALUES (:d, 0, '1')"),
                {"d": dev_id},
            )
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        assert current_revision(engine) == "0005"
        assert not set(COVERAGE_TABLES) & set(inspect(engine).get_table_names())
        assert "forward_all" not in {c["name"] for c in inspect(engine).get_columns("lines")}
        line_columns = {c["name"] for c in inspect(engine).get_columns("lines")}
        assert not {"forward_busy_external_css", "intercom"} & line_columns
        assert not {"dnd_option", "privacy"} & {
            c["name"] for c in inspect(engine).get_columns("devices")
        }
        with engine.connect() as conn:
            assert conn.execute(text("SELECT dn FROM lines")).scalars().all() == ["1001"]
            assert conn.execute(text("SELECT count(*) FROM speed_dials")).scalar_one() == 1
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_0006_database_to_web_admin(db_url: str) -> None:
    """A database of revision 0006 with a plan and a CDR: upgraded in place, the
    web admin's tables empty and usable (JSON columns on both backends)."""
    from offhook.db.audit import AuditLog
    from offhook.db.users import UserStore, password_hasher

    upgrade(db_url, "0006")
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO devices (name, protocol) VALUES ('alice', 'sip')"))
            dev_id = conn.execute(text("SELECT id FROM devices")).scalar_one()
            conn.execute(
                text("INSERT INTO lines (device_id, position, dn) VALUES (:d, 0, '1001')"),
                {"d": dev_id},
            )
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0009"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT dn FROM lines")).scalars().all() == ["1001"]
            for table in WEB_TABLES:
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("audit_log")}
        assert {"ix_audit_log_at", "ix_audit_log_object"} <= indexes
        users = UserStore(engine, password_hasher(1, 8, 1))
        users.add("alice", "user", "alice-Password-1", devices=["alice"])
        _, token = users.create_token("alice")
        alice = users.get("alice")
        assert alice is not None and alice.devices == ("alice",)
        audit = AuditLog(engine)
        audit.record("cli", "cli", "create", "users", "alice", None, {"devices": ["alice"]})
        assert audit.search()[0].after == {"devices": ["alice"]}
        with engine.begin() as conn:
            # Tokens go with their user (ON DELETE CASCADE).
            conn.execute(text("DELETE FROM web_users"))
            assert conn.execute(text("SELECT count(*) FROM api_tokens")).scalar_one() == 0
        assert users.user_for_token(token) is None
    finally:
        engine.dispose()


def test_downgrade_0007_keeps_the_plan(db_url: str) -> None:
    from alembic import command

    from offhook.db.engine import alembic_config

    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO devices (name, protocol) VALUES ('a', 'sip')"))
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0006")
        assert current_revision(engine) == "0006"
        assert not set(WEB_TABLES) & set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM devices")).scalars().all() == ["a"]
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
