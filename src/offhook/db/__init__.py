"""offhook.db: the database, and the only place SQL lives.

It holds the telephony configuration (devices, lines, digest HA1 secrets,
and the dial plan: partitions, calling search spaces, trunks, route groups
and lists, route and translation patterns)
and the call records, in SQLite by default or PostgreSQL for a cluster,
through SQLAlchemy 2 with Alembic migrations. The running node never queries
it per message: it reads an in-memory snapshot built here and reloaded when
the plan version changes. It imports ``offhook.core`` for the snapshot's
types, never a protocol package.

- ``models``: SQLAlchemy 2 models (devices, lines, cdrs, plan_meta, the dial plan tables).
- ``engine``: ``create_engine_for(url)``, ``upgrade(url)`` (Alembic, packaged migrations).
- ``plan``: ``load_plan(path, url, realm)``, the idempotent YAML plan import.
- ``snapshot``: ``load_snapshot(engine)`` / ``plan_version(engine)`` for the running node
  (devices, DNs and the dial plan with its analyzer).
- ``cdr``: ``CdrRow`` and ``CdrRepository``.
"""
