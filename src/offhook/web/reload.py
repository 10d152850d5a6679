"""SIGHUP in the web process: ``[log]`` and the ``[web]`` listener keys, live.

``offhook serve`` passes its SIGHUP on to its web child (``node_reload``);
``offhook web`` run on its own takes one directly. ``WebReload.reload``
re-reads the settings file the process was started with and applies:

- ``[log] level, format`` (the process's logging set up again);
- the ``[web]`` listener keys (``allow``, ``max_message``,
  ``idle_timeout``, ``handshake_timeout``, ``max_connections``,
  ``max_connections_per_source``, ``rate_per_source``, ``rate_burst``) to
  the listener's ``ListenerGuard``, from the next connection on
  (uvicorn's own keep-alive timeout and concurrency bound stay as they
  started).

Other ``[web]`` keys are logged as needing a restart of the web process;
other sections are the node's business (it logs them). A file that cannot
be used is logged and nothing changes. The handler only schedules the
reload on the event loop (``schedule``): nothing runs inside the signal
handler itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from offhook.common import logsetup
from offhook.config import ConfigError, Settings, load_settings
from offhook.config_base import ListenerSettings
from offhook.config_reload import changed_keys, shown
from offhook.net.acl import AllowList
from offhook.net.guard import ListenerGuard, ListenerLimits

__all__ = ["WebReload"]

log = logging.getLogger("offhook.web.reload")

LISTENER_KEYS = frozenset(ListenerSettings.model_fields)


class WebReload:
    """Applies a re-read settings file to the web process (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        guard: ListenerGuard,
        load: Callable[[Path], Settings] = load_settings,
    ) -> None:
        self.running = settings
        self.guard = guard
        self._load = load

    def schedule(self, loop: asyncio.AbstractEventLoop) -> Callable[..., None]:
        """A signal handler (``signal.signal``) that runs ``reload`` on ``loop``."""

        def handler(*_: object) -> None:
            loop.call_soon_threadsafe(self.reload)

        return handler

    def reload(self) -> list[str]:
        """Re-read and apply; the ``section.key`` names applied."""
        path = self.running.source
        if path is None:
            log.warning("SIGHUP: the web process has no settings file to re-read")
            return []
        try:
            new = self._load(path)
        except ConfigError as exc:
            log.error("SIGHUP: web settings not reloaded: %s", exc)
            return []
        applied: list[str] = []
        log_keys = []
        web_keys = []
        for section, key in changed_keys(self.running, new):
            if section == "log":
                log_keys.append(key)
            elif section == "web" and key in LISTENER_KEYS:
                web_keys.append(key)
            elif section == "web":
                log.warning("SIGHUP: [web] %s changed: needs a restart of the web process", key)
        updates: dict[str, object] = {}
        if log_keys:
            logsetup.setup_logging(new.log.level, new.log.format)
            updates["log"] = new.log
        if web_keys:
            try:
                allow = AllowList(new.web.allow)
                self.guard.update(ListenerLimits.of(new.web), allow.allows)
            except ValueError as exc:
                log.error("SIGHUP: [web] not applied: %s", exc)
                web_keys = []
            else:
                current = self.running.web.model_copy(
                    update={key: getattr(new.web, key) for key in web_keys}
                )
                updates["web"] = current
        for section, keys in (("log", log_keys), ("web", web_keys)):
            for key in keys:
                applied.append(f"{section}.{key}")
                log.info(
                    "SIGHUP: web process: [%s] %s applied: %s -> %s",
                    section,
                    key,
                    shown(key, getattr(getattr(self.running, section), key)),
                    shown(key, getattr(getattr(new, section), key)),
                )
        if updates:
            self.running = self.running.model_copy(update=updates)
        return applied
