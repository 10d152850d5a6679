"""offhook.db: the database, and the only place SQL lives.

It holds the telephony configuration (devices, lines, digest HA1 secrets,
and the dial plan: partitions, calling search spaces, trunks, route groups
and lists, route and translation patterns), the call records, and the web
administration's users, API tokens and audit log, in SQLite by default or
PostgreSQL for a cluster, through SQLAlchemy 2 with Alembic migrations. The
running node never queries it per message: it reads an in-memory snapshot
built here and reloaded when the plan version changes. It imports
``offhook.core`` for the snapshot's types, never a protocol package.

- ``models``: SQLAlchemy 2 models (devices, lines, cdrs, plan_meta, the dial plan tables).
- ``engine``: ``create_engine_for(url)``, ``upgrade(url)`` (Alembic, packaged migrations).
- ``plan``: ``load_plan(path, url, realm)``, the idempotent YAML plan import.
- ``snapshot``: ``load_snapshot(engine)`` / ``plan_version(engine)`` for the running node
  (devices, DNs and the dial plan with its analyzer).
- ``cdr``: ``CdrRow`` and ``CdrRepository`` (written by the node; searched by the web admin).
- ``plan_export``: ``export_plan(engine)``, the plan back as ``offhook load`` YAML data
  (no passwords; applied back with ``apply_plan(..., keep_passwords=True)``, a no-op).
- ``users``: the web admin's users (roles, argon2id passwords) and API tokens (``UserStore``).
- ``audit``: the audit log of administrative changes (``AuditLog``).
"""
