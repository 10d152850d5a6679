"""SIGHUP in the web process: the [web] listener keys and [log] applied live (web.reload).

The whole path (``offhook serve`` passing its SIGHUP on to its web child, a
source refused afterwards) is in ``tests/interop/test_metrics_live.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from offhook.config import load_settings
from offhook.net.acl import AllowList
from offhook.net.guard import ListenerGuard, ListenerLimits
from offhook.web.reload import WebReload
from support.server import dump_toml


def test_listener_keys_and_log_applied(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "offhook.toml"
    path.write_text(dump_toml({"web": {"allow": ["127.0.0.0/8"], "port": 8080}}))
    settings = load_settings(path, env={})
    guard = ListenerGuard(ListenerLimits.of(settings.web), AllowList(settings.web.allow).allows)
    reload = WebReload(settings, guard, load=lambda p: load_settings(p, env={}))
    sections = {
        "web": {"allow": ["10.0.0.0/8"], "rate_per_source": 3.0, "port": 8081},
        "sip": {"port": 5070},  # the node's business: not the web process's to report
    }
    path.write_text(dump_toml(sections))
    with caplog.at_level(logging.INFO, logger="offhook.web.reload"):
        assert reload.reload() == ["web.allow", "web.rate_per_source"]
    assert not guard.allowed("127.0.0.1") and guard.allowed("10.9.8.7")
    assert guard.limits.rate_per_source == 3.0
    assert "[web] port changed: needs a restart of the web process" in caplog.text
    assert "5070" not in caplog.text
    assert reload.reload() == []  # nothing new

    path.write_text("[web]\nallow = 'not a list'\n")
    assert reload.reload() == []
    assert guard.allowed("10.9.8.7")
    assert "web settings not reloaded" in caplog.text


def test_log_applied(tmp_path: Path) -> None:
    path = tmp_path / "offhook.toml"
    path.write_text(dump_toml({"log": {"level": "info"}}))
    settings = load_settings(path, env={})
    guard = ListenerGuard(ListenerLimits())
    reload = WebReload(settings, guard, load=lambda p: load_settings(p, env={}))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        path.write_text(dump_toml({"log": {"level": "error"}}))
        assert reload.reload() == ["log.level"]
        assert root.level == logging.ERROR
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_the_signal_handler_runs_the_reload_on_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "offhook.toml"
    path.write_text(dump_toml({"web": {"allow": ["127.0.0.0/8"]}}))
    settings = load_settings(path, env={})
    guard = ListenerGuard(ListenerLimits(), AllowList(settings.web.allow).allows)
    reload = WebReload(settings, guard, load=lambda p: load_settings(p, env={}))
    path.write_text(dump_toml({"web": {"allow": ["192.0.2.0/24"]}}))

    async def main() -> None:
        previous = signal.signal(signal.SIGHUP, reload.schedule(asyncio.get_running_loop()))
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(100):  # a few loop iterations: the handler only schedules
                if guard.allowed("192.0.2.1"):
                    return
                await asyncio.sleep(0.01)
        finally:
            signal.signal(signal.SIGHUP, previous)

    asyncio.run(main())
    assert guard.allowed("192.0.2.1") and not guard.allowed("127.0.0.1")
