"""offhook.db: the only place SQL lives.

- ``models``: SQLAlchemy 2 models (devices, lines, cdrs, plan_meta).
- ``engine``: ``create_engine_for(url)``, ``upgrade(url)`` (Alembic, packaged migrations).
- ``plan``: ``load_plan(path, url, realm)``, the idempotent YAML plan import.
- ``snapshot``: ``load_snapshot(engine)`` / ``plan_version(engine)`` for the running node.
- ``cdr``: ``CdrRow`` and ``CdrRepository``.
"""
