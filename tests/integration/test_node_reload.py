"""``NodeReload`` over real listeners in this process: the settings file re-read, what can
change live applied, the rest reported as needing a restart. ``offhook serve`` itself on
SIGHUP: ``tests/interop/test_metrics_live.py``."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from offhook.config import Settings, load_settings
from offhook.config_reload import changed_keys
from offhook.core.directory import PlanSnapshot
from offhook.net.acl import AllowList
from offhook.net.authguard import AuthGuard
from offhook.net.counters import RejectionCounters
from offhook.net.guard import ListenerLimits
from offhook.node_overload import NodeOverload
from offhook.node_reload import NodeReload
from offhook.ris.control import ControlServer
from offhook.sip.aio import SipTransport
from offhook.tftp.provision import Provisioning
from support.ports import HOST
from support.server import dump_toml


def write(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    path.write_text(dump_toml(sections))


BASE: dict[str, dict[str, Any]] = {
    "sip": {"listen": HOST, "port": 5080, "allow": ["127.0.0.0/8"], "rate_per_source": 200.0},
    "admin": {"allow": ["127.0.0.0/8"]},
    "auth": {"block_after": 20},
    "tftp": {"listen": HOST, "port": 0, "http_port": 0, "allow": ["127.0.0.0/8"]},
    "database": {"url": "sqlite:///first.db"},
}


def test_changed_keys(tmp_path: Path) -> None:
    path = tmp_path / "offhook.toml"
    write(path, BASE)
    old = load_settings(path, env={})
    changed = {**BASE, "sip": {**BASE["sip"], "port": 5090, "allow": ["10.0.0.0/8"]}}
    write(path, changed)
    assert changed_keys(old, load_settings(path, env={})) == [("sip", "allow"), ("sip", "port")]
    assert changed_keys(old, old) == []


def tftp_answers(port: int) -> bool:
    """A read request from this host is answered (DATA or ERROR) within a second."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        s.sendto(b"\x00\x01no-such-file\x00octet\x00", (HOST, port))
        try:
            s.recvfrom(1024)
        except TimeoutError:
            return False
        return True


async def start_parts(settings: Settings) -> tuple[SipTransport, ControlServer, Provisioning]:
    sip = SipTransport(
        on_message=lambda msg, addr, transport: None,
        allow=AllowList(settings.sip.allow).allows,
        limits=ListenerLimits.of(settings.sip),
    )
    await sip.start(HOST, 0, udp=True, tcp=True)
    admin = ControlServer(
        {"ping": lambda args: {}},
        allow=AllowList(settings.admin.allow).allows,
        limits=ListenerLimits.of(settings.admin),
    )
    await admin.start(HOST, 0)
    provisioning = Provisioning(settings, PlanSnapshot, RejectionCounters())
    await provisioning.start()
    return sip, admin, provisioning


def test_reload_applies_live_keys_and_reports_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "offhook.toml"
    write(path, {**BASE, "tftp": {**BASE["tftp"], "root": str(tmp_path)}})
    settings = load_settings(path, env={})

    async def main() -> None:
        sip, admin, provisioning = await start_parts(settings)
        guard = AuthGuard(settings.auth.policy())
        overload = NodeOverload(settings.overload, asyncio.get_running_loop())
        overload.start()
        reload = NodeReload(
            settings,
            path,
            sip=sip,
            admin=admin,
            provisioning=provisioning,
            auth=guard,
            overload=overload,
            load=lambda p: load_settings(p, env={}),
        )
        try:
            # A TCP connection from 127.0.0.1 is open when the allow-list drops it.
            reader, writer = await asyncio.open_connection(HOST, sip.local[1])
            assert provisioning.tftp_port is not None
            assert await asyncio.to_thread(tftp_answers, provisioning.tftp_port)

            sections = tomllib.loads(path.read_text())
            sections["sip"].update(allow=["10.0.0.0/8"], rate_per_source=5.0, port=5081)
            sections["admin"]["allow"] = ["10.0.0.0/8", "127.0.0.1/32"]
            sections["auth"]["block_after"] = 3
            sections["auth"]["secret"] = "a-new-secret-of-many-bytes"
            sections["tftp"]["allow"] = ["192.0.2.0/24"]
            sections["tftp"]["max_transfers"] = 7
            sections["database"]["url"] = "sqlite:///second.db"
            sections["overload"] = {"enabled": False, "cpu_high": 0.8, "test_control": True}
            write(path, sections)
            report = reload.reload()
            assert sorted(report.applied) == [
                "admin.allow",
                "auth.block_after",
                "overload.cpu_high",
                "overload.enabled",
                "sip.allow",
                "sip.rate_per_source",
                "tftp.allow",
                "tftp.max_transfers",
            ]
            assert sorted(report.restart) == [
                "auth.secret",
                "database.url",
                "overload.test_control",
                "sip.port",
            ]
            assert report.passed_on == [] and report.error == ""

            assert not sip.guard.allowed("127.0.0.1")
            assert sip.guard.limits.rate_per_source == 5.0 and sip.limits.rate_per_source == 5.0
            assert await reader.read() == b""  # the dropped source's connection was closed
            writer.close()
            assert admin.guard.allowed("10.1.2.3") and not admin.guard.allowed("127.0.0.2")
            assert guard.policy.block_after == 3
            assert provisioning.tftp.limits.max_transfers == 7
            assert not overload.enabled and overload.control.policy.thresholds["cpu"].high == 0.8
            assert set(overload.ops()) == {"overload"}  # test_control needs a restart
            assert not await asyncio.to_thread(tftp_answers, provisioning.tftp_port)

            # Again: nothing new is applied; what needs a restart is said again.
            again = reload.reload()
            assert again.applied == [] and sorted(again.restart) == sorted(report.restart)

            # A file that is not valid changes nothing.
            path.write_text("[sip]\nport = 'many'\n")
            broken = reload.reload()
            assert "port" in broken.error and broken.applied == []
            assert not sip.guard.allowed("127.0.0.1")
        finally:
            await overload.stop()
            await sip.close()
            await admin.close()
            await provisioning.close()

    with caplog.at_level(logging.INFO, logger="offhook.reload"):
        asyncio.run(main())
    text = caplog.text
    assert "[sip] allow applied: ['127.0.0.0/8'] -> ['10.0.0.0/8']" in text
    assert "[sip] port changed (5080 -> 5081): needs a restart" in text
    assert "a-new-secret" not in text and "second.db" not in text  # secrets never logged
    assert "[auth] secret changed ((not shown) -> (not shown))" in text
    assert "settings not reloaded" in text


def test_log_level_and_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "offhook.toml"
    write(path, {"log": {"level": "info", "format": "text"}})
    settings = load_settings(path, env={})
    reload = NodeReload(settings, path, load=lambda p: load_settings(p, env={}))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        write(path, {"log": {"level": "debug", "format": "json"}})
        report = reload.reload()
        assert sorted(report.applied) == ["log.format", "log.level"]
        logging.getLogger("offhook.test").debug("now in JSON", extra={"device": "alice"})
        lines = capsys.readouterr().err.splitlines()
        last = json.loads(lines[-1])
        assert last["msg"] == "now in JSON" and last["device"] == "alice"
        assert root.level == logging.DEBUG
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_without_a_file_nothing_is_reloaded() -> None:
    report = NodeReload(load_settings(None, env={}), None).reload()
    assert report.error.startswith("no settings file")


def test_a_web_child_gets_the_sighup(tmp_path: Path) -> None:
    """[web] listener keys and [log] are passed on to the web process (its pid signalled)."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "signal.signal(signal.SIGHUP, lambda *a: (print('hup', flush=True), sys.exit(0)))\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"

        class Web:  # what NodeReload uses of the web child's supervisor
            pid = child.pid
            alive: object = None

        web = Web()

        path = tmp_path / "offhook.toml"
        write(path, {"web": {"allow": ["127.0.0.0/8"], "port": 8080}})
        settings = load_settings(path, env={})
        write(path, {"web": {"allow": ["10.0.0.0/8"], "port": 8081}})
        reload = NodeReload(
            settings,
            path,
            web=lambda: web,  # type: ignore[arg-type,return-value]
            load=lambda p: load_settings(p, env={}),
        )
        report = reload.reload()
        assert report.passed_on == ["web.allow"] and report.restart == ["web.port"]
        # The new list refuses the node's own probe address: only the exit is watched.
        assert web.alive is not None and asyncio.run(web.alive())  # type: ignore[operator]
        assert child.stdout.readline() == "hup\n"
        assert child.wait(10) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
