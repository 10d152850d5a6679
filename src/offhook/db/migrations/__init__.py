"""Alembic migrations of the offhook schema (run by ``offhook.db.engine.upgrade``)."""
