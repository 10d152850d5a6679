"""Shared fixtures.

``pg_url`` (session): a PostgreSQL SQLAlchemy URL. ``OFFHOOK_TEST_PG_URL``
if set (it must be a throwaway database: tests drop and recreate its
``public`` schema), else a temporary cluster started here (``tests/pg.py``)
and stopped at the end of the session. Missing PostgreSQL binaries skip the
PostgreSQL tests with the reason, except under ``CI=true``, where they fail:
CI never goes green by skipping the database it must test.

Hypothesis runs without a deadline (profile ``offhook``).

``db_url`` (function): an empty database, once for SQLite and once for
PostgreSQL (marked ``postgres``; ``-m "not postgres"`` runs SQLite only).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# No hypothesis deadline: how long one example takes says nothing about its
# correctness, and on a shared, loaded machine the default 200 ms made property
# tests fail now and then (a timed assertion in disguise).
hypothesis_settings.register_profile("offhook", deadline=None)
hypothesis_settings.load_profile("offhook")

_TESTS = Path(__file__).resolve().parent
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

import pg  # noqa: E402

# The longest test files first: pytest-xdist hands whole files (--dist loadfile) to
# the workers in collection order, and a long file taken last leaves the other
# worker idle while it runs (the longest-first rule).
LONG_FILES_FIRST = (
    "web/test_schemathesis_writes.py",
    "web/test_schemathesis.py",
    "security/test_web_CSCef47060.py",
    "security/test_soak.py",
    "interop/test_trunk_early_media.py",
    "interop/test_pickup_park.py",
    "interop/test_cti_transfer_conference.py",
    "integration/test_provisioning_node.py",
    "security/test_sipvicious.py",
    "security/test_CSCef47060.py",
    "interop/",
    "security/",
    "integration/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        where = Path(str(item.path)).relative_to(_TESTS).as_posix()
        for n, prefix in enumerate(LONG_FILES_FIRST):
            if where.startswith(prefix):
                return n
        return len(LONG_FILES_FIRST)

    items.sort(key=rank)  # stable: the order within a file and among equals stays


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    external = os.environ.get("OFFHOOK_TEST_PG_URL", "").strip()
    if external:
        yield external
        return
    try:
        cluster = pg.start_cluster()
    except pg.PgUnavailable as exc:
        if _in_ci():
            pytest.fail(f"CI=true: PostgreSQL is required: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    try:
        pg.create_database(cluster.url(), "offhook_test")
        yield cluster.url("offhook_test")
    finally:
        cluster.stop()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'offhook.db'}"
    url = str(request.getfixturevalue("pg_url"))
    pg.reset_schema(url)
    return url
