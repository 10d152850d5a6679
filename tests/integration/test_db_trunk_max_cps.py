"""Migration 0009 (``trunks.max_cps``) and the field through plan, snapshot and export.

A database of revision 0008 with a trunk in it is upgraded in place: the
trunk keeps its row and gets the default call rate, 100 a second (README
"Trunks and rate limits"); a downgrade takes the column away again. A plan
naming ``max_cps`` stores it, the node's snapshot reads it back, and the
export writes it only when it differs from the default.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from offhook.db.engine import alembic_config, create_engine_for, current_revision, upgrade
from offhook.db.snapshot import load_snapshot

PLAN = """
partitions: [pstn]
calling_search_spaces: [{name: inbound, partitions: [pstn]}]
trunks:
  - {name: carrier, protocol: sip, host: 192.0.2.10, port: 5060, css: inbound,
     max_calls: 30, max_cps: 5}
  - {name: backup, protocol: sip, host: 192.0.2.11, css: inbound}
"""


def test_upgrade_0008_trunk_gets_the_default_rate(db_url: str) -> None:
    upgrade(db_url, "0008")
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO trunks (name, protocol, host, port, transport, css, max_calls,"
                    " username, password, register, options_ping, inbound_addresses) VALUES"
                    " ('carrier', 'sip', '192.0.2.10', 5060, 'udp', '', 10, '', '', false,"
                    " 30.0, '[]')"
                )
            )
        upgrade(engine)
        assert current_revision(engine) == "0009"
        with engine.connect() as conn:
            row = conn.execute(text("SELECT name, max_calls, max_cps FROM trunks")).one()
        assert tuple(row) == ("carrier", 10, 100)
        (trunk,) = load_snapshot(engine).dialplan_spec.trunks
        assert (trunk.name, trunk.max_calls, trunk.max_cps) == ("carrier", 10, 100)
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0008")
        columns = {c["name"] for c in inspect(engine).get_columns("trunks")}
        assert "max_cps" not in columns and "max_calls" in columns
    finally:
        engine.dispose()


def test_max_cps_through_plan_snapshot_and_export(db_url: str, tmp_path: Path) -> None:
    from offhook.db.plan import load_plan
    from offhook.db.plan_export import export_plan

    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    upgrade(db_url)
    engine = create_engine_for(db_url)
    try:
        load_plan(plan, engine, "offhook")
        trunks = {t.name: t for t in load_snapshot(engine).dialplan_spec.trunks}
        assert (trunks["carrier"].max_calls, trunks["carrier"].max_cps) == (30, 5)
        assert (trunks["backup"].max_calls, trunks["backup"].max_cps) == (0, 100)
        exported = {t["name"]: t for t in export_plan(engine)["trunks"]}
        assert exported["carrier"]["max_cps"] == 5
        assert "max_cps" not in exported["backup"]  # the default is left out
    finally:
        engine.dispose()
