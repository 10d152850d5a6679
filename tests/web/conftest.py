"""tests/web: the fixtures of ``web.rig``; every coroutine test runs under anyio (asyncio)."""

from __future__ import annotations

import inspect

import pytest

from web.rig import (  # noqa: F401  (fixtures)
    anyio_backend,
    client,
    tokens,
    web_app,
    web_ctx,
    web_engine,
    web_settings,
    web_users,
)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> None:
    if collector.istestfunction(obj, name) and inspect.iscoroutinefunction(obj):
        pytest.mark.usefixtures("anyio_backend")(pytest.mark.anyio(obj))
