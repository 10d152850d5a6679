"""The node's provisioning service: TFTP and HTTP serving the files of the current plan.

What a phone fetches, and where it comes from:

- ``SEP<MAC>.cnf.xml`` for every SCCP device of the plan snapshot, generated
  (``offhook.tftp.cnf``) with this node as the call manager group's member
  (its address and ``[sccp].port``), the device pool, date/time, locale and
  ``[tftp].load_information``. The node's address is the one of the IP
  family the phone fetched the file over (``CnfSettings.node_host``): a
  phone asking over IPv6 is told the node's IPv6 address, one asking over
  IPv4 its IPv4 address; when the SCCP listener serves IPv6, the file also
  carries Unified CM's IP addressing mode elements (``cnf`` docstring).
  The files are derived from the snapshot the node holds at request time and
  cached until the snapshot is replaced, so an ``offhook load`` shows in the
  next fetch without a restart.
- ``XMLDefault.cnf.xml``: the same call manager group for phones not in the
  plan (auto-registration, ``[sccp].auto_register``).
- ``RingList.xml`` (and ``DistinctiveRingList.xml``, which later firmware
  asks for): the CallManager ring list naming the ``*.raw`` ring files that
  exist in ``[tftp].root`` (none: an empty list; phones keep their built-in
  rings).
- Anything else (firmware loads, ring files, backgrounds) from
  ``[tftp].root`` through the safe ``FileSource`` (no name outside the root).

Precedence, as on CallManager: generated configuration files win over a file
of the same name in the root (the database is the truth; a stale
``SEP<MAC>.cnf.xml`` left in the folder never shadows it). A ``cnf.xml`` for
a device that is not in the plan is served from the root if it is there.
Ring lists are the exception: a ``RingList.xml`` the administrator put in
the root is served as is (CallManager ships it as an editable file).

Binding: TFTP's well-known port 69 needs root (or CAP_NET_BIND_SERVICE). A
listener that cannot bind is logged with the setting to change and left
off; the node keeps running (SIP, SCCP and the other listener are
unaffected). Both listeners check ``[tftp].allow`` before a byte is parsed
and apply the ``[tftp]`` listener limits (see ``config.TftpSettings``: the
rate bucket per source, the request size, the HTTP connection caps and
timeouts, the TFTP transfer caps and idle timeout); rejections are counted
in the node's rejection counters (``tftp`` and ``tftp-http``) under the
reasons every listener uses (``acl``, ``too-large``, ``rate-limit``, ...).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from offhook.common.addr import family, is_wildcard
from offhook.config import Settings, TftpSettings, default_external_host
from offhook.core.directory import PlanSnapshot
from offhook.net.acl import AllowList
from offhook.net.bindings import describe
from offhook.net.counters import RejectionCounters
from offhook.tftp.aio import TftpLimits, TftpServer
from offhook.tftp.cnf import (
    DEFAULT_FILENAME,
    IPV4_AND_IPV6,
    IPV6_ONLY,
    CallManagerNode,
    DefaultConfig,
    DeviceConfig,
    default_cnf,
    device_cnf,
)
from offhook.tftp.files import FileError, FileSource, check_name
from offhook.tftp.http import HttpFileServer, HttpLimits
from offhook.tftp.protocol import SessionSettings

log = logging.getLogger("offhook.tftp")

CNF_SUFFIX = ".cnf.xml"
RING_LISTS = ("RingList.xml", "DistinctiveRingList.xml")
MAX_RINGS = 50  # CallManager's ring list holds at most 50 entries
RING_SUFFIX = ".raw"

# The display names CallManager gives its own ring files.
_RING_NAMES = {
    "Analog1.raw": "Analog Synth 1",
    "Analog2.raw": "Analog Synth 2",
    "AreYouThere.raw": "Are You There",
    "AreYouThereF.raw": "Are You There Female",
    "Bass.raw": "Bass",
    "CallBack.raw": "Call Back",
    "Chime.raw": "Chime",
    "Chirp1.raw": "Chirp 1",
    "Chirp2.raw": "Chirp 2",
    "ClockShop.raw": "Clock Shop",
    "Analog3.raw": "Analog Synth 3",
    "Jamaica.raw": "Jamaica",
    "Piano1.raw": "Piano 1",
    "Piano2.raw": "Piano 2",
    "Pop.raw": "Pop",
    "Pulse1.raw": "Pulse 1",
    "Sax1.raw": "Sax 1",
    "Sax2.raw": "Sax 2",
    "Vibe.raw": "Vibe",
}

# Cisco locale names are Language_Country ("English_United_States"); the
# phone's language code and network locale (tones) follow from them.
_LANG_CODES = {
    "Chinese": "zh",
    "Czech": "cs",
    "Danish": "da",
    "Dutch": "nl",
    "English": "en",
    "Finnish": "fi",
    "French": "fr",
    "German": "de",
    "Greek": "el",
    "Hungarian": "hu",
    "Italian": "it",
    "Japanese": "ja",
    "Korean": "ko",
    "Norwegian": "no",
    "Polish": "pl",
    "Portuguese": "pt",
    "Russian": "ru",
    "Spanish": "es",
    "Swedish": "sv",
    "Turkish": "tr",
}
_UTC_NAMES = {"", "utc", "gmt", "etc/utc", "etc/gmt", "z", "zulu"}
GMT_ZONE = "Greenwich Standard Time"  # CallManager's name for UTC+0


@dataclass(frozen=True, slots=True)
class CnfSettings:
    """What every generated cnf.xml of this node says.

    ``host`` names the node to IPv4 phones, ``host6`` to IPv6 phones ("":
    the SCCP listener serves no IPv6, and every phone is told ``host``).
    ``families`` are the IP versions the SCCP listener serves: (4,) keeps the
    CallManager 4.1 layout; with 6 the IP addressing mode elements are written.
    """

    host: str
    sccp_port: int = 2000
    load: str = ""
    device_pool: str = "Default"
    locale: str = "English_United_States"
    time_zone: str = GMT_ZONE
    host6: str = ""
    families: tuple[int, ...] = (4,)

    def node_host(self, version: int) -> str:
        """The node's address for a phone that fetched its file over IP ``version``."""
        if version == 6 and self.host6:
            return self.host6
        return self.host or self.host6

    @property
    def ip_mode(self) -> int | None:
        """``<ipAddressMode>`` (None: an IPv4-only node, CallManager 4.1 layout)."""
        if 6 not in self.families:
            return None
        return IPV4_AND_IPV6 if 4 in self.families else IPV6_ONLY

    def prefers_ipv6(self, version: int) -> bool:
        """Whether a phone fetching over IP ``version`` is told to signal over IPv6."""
        return 6 in self.families and (version == 6 or 4 not in self.families)

    @property
    def lang_code(self) -> str:
        return _LANG_CODES.get(self.locale.split("_", 1)[0], "en")

    @property
    def network_locale(self) -> str:
        _, sep, country = self.locale.partition("_")
        return country if sep and country else "United_States"

    @classmethod
    def from_settings(cls, settings: Settings, sccp_port: int | None = None) -> CnfSettings:
        """This node as phones reach it, per IP version the SCCP listener serves.

        For each version: ``[sip].external_host`` of that family (or its host
        name) when set (the address the administrator declared for the
        node), else a specific ``[sccp].listen`` address of that family, else
        ``[sip]``'s advertised address of that family, else (SIP does not
        serve it) the outward interface (``config.default_external_host``).
        """
        families = tuple(sorted(settings.sccp.families))
        hosts = {v: _node_host(settings, v) for v in families}
        tftp = settings.tftp
        zone = tftp.time_zone.strip()
        return cls(
            host=hosts.get(4) or hosts.get(6, ""),
            sccp_port=sccp_port or settings.sccp.port,
            load=tftp.load_information,
            device_pool=tftp.device_pool,
            locale=tftp.locale,
            time_zone=GMT_ZONE if zone.lower() in _UTC_NAMES else zone,
            host6=hosts.get(6, ""),
            families=families,
        )


def _node_host(settings: Settings, version: int) -> str:
    """The node's address for phones of IP ``version`` (see ``CnfSettings.from_settings``)."""
    for host in settings.sip.external_host:
        if family(host) in (version, None):
            return host
    for host in settings.sccp.listen:
        if not is_wildcard(host) and family(host) == version:
            return host.split("%", 1)[0]
    return settings.sip.advertised(version) or default_external_host(settings.sccp.listen, version)


def ring_list(names: list[str]) -> bytes:
    """A CallManager ``RingList.xml`` naming ``names`` (ring files in the root)."""
    root = ET.Element("CiscoIPPhoneRingList")
    for name in names[:MAX_RINGS]:
        ring = ET.SubElement(root, "Ring")
        ET.SubElement(ring, "DisplayName").text = _RING_NAMES.get(name, name[: -len(RING_SUFFIX)])
        ET.SubElement(ring, "FileName").text = name
    ET.indent(root, space="  ")
    data: bytes = ET.tostring(root, encoding="utf-8")  # CM's file has no XML declaration
    return data + b"\n"


def tftp_limits(tftp: TftpSettings) -> TftpLimits:
    """The TFTP listener's limits of ``[tftp]``."""
    return TftpLimits(
        max_transfers=tftp.max_transfers,
        max_per_source=tftp.max_transfers_per_source,
        session=SessionSettings(timeout=tftp.timeout, max_retries=tftp.retries),
        max_request=tftp.max_message,
        idle_timeout=tftp.idle_timeout,
        rate_per_source=tftp.rate_per_source,
        rate_burst=tftp.rate_burst,
    )


def http_limits(tftp: TftpSettings) -> HttpLimits:
    """The provisioning HTTP listener's limits of ``[tftp]``."""
    return HttpLimits(
        max_head=tftp.max_message,
        request_timeout=tftp.handshake_timeout,
        send_timeout=tftp.idle_timeout,
        max_connections=tftp.max_connections,
        max_per_source=tftp.max_connections_per_source,
        rate_per_source=tftp.rate_per_source,
        rate_burst=tftp.rate_burst,
    )


class ProvisioningFiles:
    """The ``FileSource`` generator of a node: cnf files of the current snapshot, ring lists.

    Called from worker threads (``FileSource.read`` runs in one): the caches
    are swapped under a lock. The cnf cache belongs to one snapshot object and
    is dropped when the node holds another; it holds at most one entry per
    SCCP device of the plan and IP version (the files differ by the family
    the phone asked over).
    """

    def __init__(
        self,
        snapshot: Callable[[], PlanSnapshot],
        cnf: Callable[[], CnfSettings],
        root: Path | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._cnf = cnf
        self._root = root
        self._lock = threading.Lock()
        self._for: tuple[PlanSnapshot, CnfSettings] | None = None
        self._files: dict[tuple[str, int], bytes] = {}
        self._rings: tuple[tuple[int, int], bytes] | None = None

    def __call__(self, name: str, version: int = 4) -> bytes | None:
        """The generated file ``name`` for a phone asking over IP ``version``; None: not ours."""
        if name == DEFAULT_FILENAME or name.endswith(CNF_SUFFIX):
            return self._cnf_file(name, 6 if version == 6 else 4)
        if name in RING_LISTS:
            return self._ring_list(name)
        return None

    # -- configuration files

    def _cnf_file(self, name: str, version: int) -> bytes | None:
        snap, cnf = self._snapshot(), self._cnf()
        key = (name, version)
        with self._lock:
            if self._for is None or self._for[0] is not snap or self._for[1] != cnf:
                self._for, self._files = (snap, cnf), {}
            cached = self._files.get(key)
        if cached is not None:
            return cached
        data = self._generate(name, snap, cnf, version)
        if data is not None:
            with self._lock:
                if self._for is not None and self._for[0] is snap and self._for[1] == cnf:
                    self._files[key] = data
        return data

    @staticmethod
    def _generate(name: str, snap: PlanSnapshot, cnf: CnfSettings, version: int) -> bytes | None:
        if not 0 < cnf.sccp_port < 65536:
            return None  # [sccp] port 0 and no bound port known: nothing true to say
        host = cnf.node_host(version)
        if not host:
            return None  # no address of the node to tell phones
        nodes = (CallManagerNode(host, cnf.sccp_port),)
        load = cnf.load or None
        mode, prefer = cnf.ip_mode, cnf.prefers_ipv6(version)
        if name == DEFAULT_FILENAME:
            return default_cnf(
                DefaultConfig(
                    nodes=nodes,
                    load=load,
                    locale=cnf.locale,
                    lang_code=cnf.lang_code,
                    network_locale=cnf.network_locale,
                    ip_mode=mode,
                    prefer_ipv6=prefer,
                )
            )
        device = snap.device(name[: -len(CNF_SUFFIX)].upper())
        if device is None or device.protocol != "sccp":
            return None
        try:
            config = DeviceConfig(
                device_name=device.name,
                model=device.model or "7960",
                nodes=nodes,
                load=load,
                locale=cnf.locale,
                lang_code=cnf.lang_code,
                network_locale=cnf.network_locale,
                timezone=cnf.time_zone,
                device_pool=cnf.device_pool,
                ip_mode=mode,
                prefer_ipv6=prefer,
            )
        except ValueError as exc:  # a name loaded before SEP names were enforced
            log.warning("no cnf.xml for %s: %s", device.name, exc)
            return None
        return device_cnf(config)

    # -- ring lists

    def _ring_list(self, name: str) -> bytes | None:
        root = self._root
        if root is None:
            return ring_list([])
        try:
            info = os.stat(root)
        except OSError:
            return ring_list([])
        if (root / name).is_file():
            return None  # the administrator's own list, served from the root
        key = (info.st_ino, info.st_mtime_ns)
        with self._lock:
            if self._rings is not None and self._rings[0] == key:
                return self._rings[1]
        data = ring_list(self._ring_files(root))
        with self._lock:
            self._rings = (key, data)
        return data

    @staticmethod
    def _ring_files(root: Path) -> list[str]:
        names: list[str] = []
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except OSError:
            return names
        for entry in entries:
            if not entry.name.endswith(RING_SUFFIX):
                continue
            try:
                check_name(entry.name)
                if not stat.S_ISREG(entry.stat().st_mode):  # follows symlinks
                    continue
            except (FileError, OSError):
                continue
            names.append(entry.name)
            if len(names) >= MAX_RINGS:
                break
        return names


# The servers' own refusal names -> the reasons every listener counts under.
_REASONS = {
    "tftp": {
        "not-allowed": "acl",
        "oversize": "too-large",
        "busy": "max-transfers",
        "busy-source": "max-transfers-per-source",
    },
    "tftp-http": {
        "not-allowed": "acl",
        "oversize": "too-large",
        "busy": "max-connections",
        "busy-source": "max-connections-per-source",
        "timeout": "handshake-timeout",
    },
}


def tftp_root(settings: Settings) -> Path:
    """``[tftp].root``; a relative path is relative to the settings file's folder
    (like the SQLite path), or to the working directory without one."""
    root = Path(settings.tftp.root).expanduser()
    if not root.is_absolute():
        base = settings.source.resolve().parent if settings.source is not None else Path.cwd()
        root = base / root
    return root


class Provisioning:
    """The TFTP and HTTP file servers of a node (``[tftp]``), started by ``app.run``."""

    def __init__(
        self,
        settings: Settings,
        snapshot: Callable[[], PlanSnapshot],
        counters: RejectionCounters,
        sccp_port: Callable[[], int] | None = None,
    ) -> None:
        self.settings = settings
        tftp = settings.tftp
        self.root = tftp_root(settings)
        base = CnfSettings.from_settings(settings)

        def cnf() -> CnfSettings:
            # The SCCP listener's bound port when it knows one (port 0 in tests).
            port = sccp_port() if sccp_port is not None else 0
            return replace(base, sccp_port=port) if port and port != base.sccp_port else base

        self.cnf = cnf
        self.files = ProvisioningFiles(snapshot, cnf, self.root)
        self.source = FileSource(self.root, self.files)
        # One allow-list for both listeners, updated in place by reconfigure().
        self.allow = AllowList(tftp.allow)
        allow = self.allow.allows
        self._counters = counters
        self.tftp = TftpServer(
            self.source,
            tftp.listen,
            tftp.port,
            limits=tftp_limits(tftp),
            allow=allow,
            on_reject=lambda reason, host: self._reject("tftp", reason),
        )
        self.http: HttpFileServer | None = None
        if tftp.http:
            self.http = HttpFileServer(
                self.source,
                tftp.listen,
                tftp.http_port,
                limits=http_limits(tftp),
                allow=allow,
                on_reject=lambda reason, host: self._reject("tftp-http", reason),
            )
        self.tftp_port: int | None = None
        self.http_port: int | None = None

    def reconfigure(self, tftp: TftpSettings) -> None:
        """``[tftp]`` allow-list and limits changed (a settings reload): both
        listeners apply them from the next request or connection on."""
        self.allow.update(tftp.allow)
        self.tftp.update(tftp_limits(tftp))
        if self.http is not None:
            self.http.update(http_limits(tftp))

    def _reject(self, listener: str, reason: str) -> None:
        self._counters.increment(listener, _REASONS[listener].get(reason, reason))

    async def start(self) -> None:
        """Start both listeners; one that cannot bind is logged and left off (never raises)."""
        tftp = self.settings.tftp
        if not self.root.is_dir():
            log.warning(
                "[tftp] root %s is not a folder: serving generated files only "
                "(no firmware or ring files)",
                self.root,
            )
        try:
            await self.tftp.start()
            self.tftp_port = self.tftp.port
            log.info(
                "TFTP listening on %s/udp (root %s)",
                describe(tftp.listen, self.tftp_port),
                self.root,
            )
        except OSError as exc:
            log.warning(
                "TFTP cannot listen on %s/udp (%s): phones cannot fetch their configuration "
                "over TFTP. Set [tftp] port (OFFHOOK_TFTP__PORT) to a free port, grant "
                "CAP_NET_BIND_SERVICE for port 69, or set [tftp] enabled = false",
                describe(tftp.listen, tftp.port),
                exc.strerror or exc,
            )
        if self.http is None:
            return
        try:
            await self.http.start()
            self.http_port = self.http.port
            log.info("provisioning HTTP on %s", describe(tftp.listen, self.http_port))
        except OSError as exc:
            self.http = None
            log.warning(
                "provisioning HTTP cannot listen on %s/tcp (%s). Set [tftp] http_port "
                "(OFFHOOK_TFTP__HTTP_PORT) to a free port, or [tftp] http = false",
                describe(tftp.listen, tftp.http_port),
                exc.strerror or exc,
            )

    async def close(self) -> None:
        await self.tftp.close()
        if self.http is not None:
            await self.http.close()

    def listeners(self) -> dict[str, dict[str, int]]:
        """Open transfers/connections and per-source entries, by rejection-counter name."""
        out = {
            "tftp": {
                "connections": self.tftp.active_transfers,
                "rate_sources": self.tftp.rate_sources,
            }
        }
        if self.http is not None:
            out["tftp-http"] = {
                "connections": self.http.connections,
                "rate_sources": self.http.rate_sources,
            }
        return out

    def status(self) -> dict[str, Any]:
        cnf = self.cnf()
        return {
            "listen": self.settings.tftp.listen,
            "port": self.tftp_port,
            "http_port": self.http_port,
            "root": str(self.root),
            # What phones are told, per IP version they ask over.
            "call_manager": describe(
                list(dict.fromkeys(h for v in cnf.families if (h := cnf.node_host(v)))),
                cnf.sccp_port,
            ),
            "active_transfers": self.tftp.active_transfers,
            "completed": self.tftp.completed,
            "failed": self.tftp.failed,
            "http_served": self.http.served if self.http is not None else 0,
            "http_connections": self.http.connections if self.http is not None else 0,
            "rate_sources": self.tftp.rate_sources,
            "http_rate_sources": self.http.rate_sources if self.http is not None else 0,
        }
