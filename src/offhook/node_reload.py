"""SIGHUP: ``offhook serve`` re-reads its settings file and applies what can change live.

Theory of operation. ``NodeReload`` keeps the settings the node runs with
(``running``). On SIGHUP (``install`` registers the handler on the loop)
``reload()`` reads the file again (``config.load_settings``, the same
``OFFHOOK_*`` environment over it); a file that cannot be read or is not
valid is logged and nothing changes. Otherwise every key whose value
differs from the running one is either applied at once or reported as
needing a restart, one log line each:

- ``[log] level, format``: the process's logging is set up again;
- ``[sip]``, ``[sccp]``, ``[admin]``, ``[tftp]``: every listener key
  (``allow``, ``max_message``, ``idle_timeout``, ``handshake_timeout``,
  ``max_connections``, ``max_connections_per_source``, ``rate_per_source``,
  ``rate_burst``), plus ``[sccp] keepalive`` and ``register_timeout`` and
  ``[tftp] max_transfers``, ``max_transfers_per_source``, ``timeout`` and
  ``retries``: the listener's ``net.guard.ListenerGuard`` (or the TFTP
  servers) take them from the next connection, datagram or message on.
  An allow-list that no longer admits a source also closes the SIP (TCP)
  and SCCP connections open from it; other limits leave open connections
  alone (a lowered cap refuses new ones until enough have closed);
- ``[auth]`` thresholds (not ``secret``): the failed-login guard's policy;
- ``[overload]`` (not ``test_control``): the thresholds from the next
  window on; ``enabled`` off stops sampling and shedding at once, on starts
  them (``node_overload.NodeOverload.update``);
- ``[web]`` listener keys and ``[log]``, when the web process runs as this
  node's child: SIGHUP is passed on to it, and it applies them itself
  (``web.reload``); the node's liveness probe of the child follows the new
  ``[web] allow`` (a list that refuses the probe's own address leaves only
  the child's exit watched, as at start);
- anything else (ports, listen addresses, the database URL, the node name,
  ``[media]``, ``[features]``, ...): a warning that it needs a restart.
  The running value stays, so the next SIGHUP reports it again.

Values of secret keys (``secret``, ``url``, ``tls_key``, ``password``) are
never logged. Applied keys become the running settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from offhook.children import ChildSupervisor, http_probe
from offhook.common import logsetup
from offhook.config import ConfigError, Settings, load_settings
from offhook.config_base import ListenerSettings
from offhook.config_overload import OverloadSettings
from offhook.config_reload import changed_keys, shown
from offhook.net.acl import AllowList
from offhook.net.authguard import AuthGuard
from offhook.net.guard import ListenerLimits
from offhook.node_overload import NodeOverload
from offhook.node_web import probe_address
from offhook.ris.control import ControlServer
from offhook.sccp.aio import SccpLimits, SccpListener
from offhook.sip.aio import SipTransport
from offhook.tftp.provision import Provisioning

__all__ = ["LIVE_KEYS", "NodeReload", "Report"]

log = logging.getLogger("offhook.reload")

LISTENER_KEYS = frozenset(ListenerSettings.model_fields)
LIVE_KEYS: dict[str, frozenset[str]] = {
    "log": frozenset({"level", "format"}),
    "sip": LISTENER_KEYS,
    "sccp": LISTENER_KEYS | {"keepalive", "register_timeout"},
    "admin": LISTENER_KEYS,
    "tftp": LISTENER_KEYS | {"max_transfers", "max_transfers_per_source", "timeout", "retries"},
    "auth": frozenset(
        {
            "fail_window",
            "throttle_after",
            "throttle_delay",
            "max_delay",
            "block_after",
            "block_for",
            "account_alert_after",
            "max_tracked_sources",
            "max_tracked_accounts",
            "max_delayed",
        }
    ),
    "overload": frozenset(OverloadSettings.model_fields) - {"test_control"},
}
"""Keys the node applies itself, by section."""
WEB_KEYS = LISTENER_KEYS
"""``[web]`` keys the web process applies on the SIGHUP the node passes on."""


async def _exit_only() -> bool:
    """A liveness probe that always answers (only the child's exit is watched)."""
    return True


@dataclass
class Report:
    """What one reload did: ``applied``, ``passed_on`` (to the web process) and
    ``restart`` (keys that need one), as ``section.key``; ``error`` when the
    file could not be used."""

    applied: list[str] = field(default_factory=list)
    passed_on: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)
    error: str = ""


class NodeReload:
    """Applies a re-read settings file to the running node (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        path: Path | None,
        *,
        sip: SipTransport | None = None,
        sccp: SccpListener | None = None,
        admin: ControlServer | None = None,
        provisioning: Provisioning | None = None,
        auth: AuthGuard | None = None,
        overload: NodeOverload | None = None,
        web: Callable[[], ChildSupervisor | None] = lambda: None,
        load: Callable[[Path], Settings] = load_settings,
    ) -> None:
        self.running = settings
        self.path = path
        self.sip, self.sccp, self.admin = sip, sccp, admin
        self.provisioning, self.auth, self.web = provisioning, auth, web
        self.overload = overload
        self._load = load
        self.reloads = 0

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Reload on SIGHUP (where the platform has it)."""
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)

    def reload(self) -> Report:
        """Re-read the settings file; apply, pass on or report every changed key."""
        self.reloads += 1
        report = Report()
        if self.path is None:
            report.error = "no settings file to re-read (started without one)"
            log.warning("SIGHUP: %s", report.error)
            return report
        try:
            new = self._load(self.path)
        except ConfigError as exc:
            report.error = str(exc)
            log.error("SIGHUP: settings not reloaded, the node goes on as it was: %s", exc)
            return report
        changes = changed_keys(self.running, new)
        if not changes:
            log.info("SIGHUP: %s re-read, nothing changed", self.path)
            return report
        by_section: dict[str, list[str]] = {}
        for section, key in changes:
            by_section.setdefault(section, []).append(key)
        web_up = self.web() is not None
        updates: dict[str, dict[str, Any]] = {}
        for section, keys in by_section.items():
            live = [k for k in keys if k in LIVE_KEYS.get(section, ())]
            if live and self._apply(section, new):
                updates[section] = {k: getattr(getattr(new, section), k) for k in live}
                for key in live:
                    old_value = getattr(getattr(self.running, section), key)
                    new_value = getattr(getattr(new, section), key)
                    report.applied.append(f"{section}.{key}")
                    log.info(
                        "SIGHUP: [%s] %s applied: %s -> %s",
                        section,
                        key,
                        shown(key, old_value),
                        shown(key, new_value),
                    )
                keys = [k for k in keys if k not in live]
            for key in keys:
                if web_up and section == "web" and key in WEB_KEYS:
                    report.passed_on.append(f"{section}.{key}")
                    updates.setdefault(section, {})[key] = getattr(new.web, key)
                    continue
                report.restart.append(f"{section}.{key}")
                log.warning(
                    "SIGHUP: [%s] %s changed (%s -> %s): needs a restart to take effect",
                    section,
                    key,
                    shown(key, getattr(getattr(self.running, section), key)),
                    shown(key, getattr(getattr(new, section), key)),
                )
        if web_up and "log" in updates:
            report.passed_on += [f"log.{key}" for key in updates["log"]]
        self.running = self.running.model_copy(
            update={
                name: getattr(self.running, name).model_copy(update=values)
                for name, values in updates.items()
            }
        )
        if report.passed_on:
            self._pass_on(report)
        return report

    # --- applying ------------------------------------------------------------------

    def _apply(self, section: str, new: Settings) -> bool:
        """Apply ``[section]`` of ``new``; False (logged) when it could not be."""
        try:
            apply = getattr(self, f"_apply_{section}")
            apply(new)
        except (ValueError, TypeError) as exc:
            log.error("SIGHUP: [%s] not applied: %s", section, exc)
            return False
        return True

    def _apply_log(self, new: Settings) -> None:
        logsetup.setup_logging(new.log.level, new.log.format)

    def _apply_auth(self, new: Settings) -> None:
        if self.auth is not None:
            self.auth.update_policy(new.auth.policy())

    def _apply_overload(self, new: Settings) -> None:
        if self.overload is not None:
            self.overload.update(new.overload)

    def _apply_sip(self, new: Settings) -> None:
        sip = self.sip
        if sip is None:
            return
        allow = AllowList(new.sip.allow)
        limits = ListenerLimits.of(new.sip)
        sip.guard.update(limits, allow.allows)
        sip.limits = limits
        sip.allow = allow.allows
        for conn in list(sip.connections.values()):
            if not conn.outbound and conn.transport is not None and not allow.allows(conn.peer[0]):
                sip.reject("acl", conn.peer)
                conn.transport.close()

    def _apply_sccp(self, new: Settings) -> None:
        sccp = self.sccp
        if sccp is None:
            return
        allow = AllowList(new.sccp.allow)
        limits = SccpLimits(**{f.name: getattr(new.sccp, f.name) for f in fields(SccpLimits)})
        sccp.guard.update(limits.listener(), allow.allows)
        sccp.limits = limits
        sccp.allow = allow.allows
        for conn in list(sccp.connections):
            if not allow.allows(conn.peer[0]):
                sccp.reject("acl", conn.peer)
                conn.close("acl")

    def _apply_admin(self, new: Settings) -> None:
        admin = self.admin
        if admin is None:
            return
        limits = ListenerLimits.of(new.admin)
        admin.guard.update(limits, AllowList(new.admin.allow).allows)
        admin.limits = limits

    def _apply_tftp(self, new: Settings) -> None:
        if self.provisioning is not None:
            self.provisioning.reconfigure(new.tftp)

    def _pass_on(self, report: Report) -> None:
        web = self.web()
        pid = web.pid if web is not None else None
        if web is None or pid is None:
            return
        if "web.allow" in report.passed_on:
            # The node's liveness probe of its web child comes from the probe address:
            # a list that refuses it leaves only the child's exit watched (as at start).
            host, port = probe_address(self.running)
            if AllowList(self.running.web.allow).allows(host):
                web.alive = http_probe(host, port, tls=self.running.web.tls)
            else:
                web.alive = _exit_only
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError as exc:
            log.warning("SIGHUP: not passed on to the web process (pid %d): %s", pid, exc)
            return
        log.info(
            "SIGHUP: passed on to the web process (pid %d) for %s",
            pid,
            ", ".join(report.passed_on),
        )
