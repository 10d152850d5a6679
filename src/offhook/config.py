"""Node settings: one TOML file, every key overridable by an environment variable.

``load_settings(path)`` reads the TOML file (``tomllib``), merges
``OFFHOOK_<SECTION>__<KEY>`` environment variables over it and validates the
result with pydantic. For example::

    OFFHOOK_SIP__PORT=5070
    OFFHOOK_SIP__ALLOW='["127.0.0.1/32", "10.0.0.0/8"]'   # lists are JSON
    OFFHOOK_DATABASE__URL=postgresql+psycopg://offhook@db/offhook

Rules:

- Unknown sections or keys (in the file or in an ``OFFHOOK_X__Y`` variable)
  are refused with a :class:`ConfigError` naming them: a typo never silently
  falls back to a default.
- Environment values for list fields are JSON (a plain comma-separated list is
  accepted too); numbers and booleans are parsed by pydantic (``5070``,
  ``true``/``false``/``1``/``0``); string fields take the value verbatim.
- Every ``allow`` entry must be an IP network (``ipaddress.ip_network``).
- Every listener section (``[sip]``, ``[sccp]``, ``[tftp]``, ``[admin]``, and
  every later one) has the same defence keys, from :class:`ListenerSettings`:
  ``allow``, ``max_message``, ``idle_timeout``, ``handshake_timeout``,
  ``max_connections``, ``max_connections_per_source``, ``rate_per_source``
  and ``rate_burst``; each section sets defaults that fit its protocol (see
  the section classes for the values and why).
- A relative SQLite path in ``[database] url`` (``sqlite:///offhook.db``) is
  resolved against the directory of the config file (the current directory
  when no file is used), so a node finds its database wherever it is started.
- ``[auth] secret`` keys the stateless digest nonces. When empty, a random
  secret is generated per process: fine for one node, but nonces then do not
  survive a restart, and every node of a cluster must be given the same
  secret.

``python -m offhook.cli demo-config`` (``offhook demo-config``) prints a
sample file with every key and its default.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from offhook.common.addr import canonical, family, is_wildcard
from offhook.config_base import LOOPBACK
from offhook.config_base import ConfigError as ConfigError
from offhook.config_base import ListenerSettings as ListenerSettings
from offhook.config_base import Section as _Section
from offhook.config_cti import CtiSettings as CtiSettings
from offhook.config_features import FeaturesSettings as FeaturesSettings
from offhook.config_media import MediaSettings as MediaSettings
from offhook.config_overload import OverloadSettings as OverloadSettings
from offhook.config_web import WebSettings as WebSettings
from offhook.net.authguard import AuthPolicy
from offhook.net.listen import bind_plan

ENV_PREFIX = "OFFHOOK_"
DEFAULT_CONFIG_NAME = "offhook.toml"


_LOOPBACK_OF = {4: "127.0.0.1", 6: "::1"}


def outward_address(version: int) -> str:
    """The address of the interface that routes outwards, for IP ``version`` 4 or 6.

    A UDP ``connect`` to a documentation address picks it (no packet is
    sent); a machine without such a route gets the loopback address.
    """
    family, probe = (
        (socket.AF_INET6, "2001:db8::1") if version == 6 else (socket.AF_INET, "192.0.2.1")
    )
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))
            addr = str(s.getsockname()[0])
    except OSError:
        return _LOOPBACK_OF[version]
    if is_wildcard(addr) or addr.startswith("fe80:"):
        return _LOOPBACK_OF[version]
    return canonical(addr, allow_zone=True).split("%", 1)[0]


def default_external_host(listen: str | list[str], version: int | None = None) -> str:
    """The address to advertise in Via/Contact when ``external_host`` is empty.

    ``version`` picks the family (4 or 6; default: the first listen
    address's). A specific listen address of that family is advertised as
    is; for a wildcard listener that serves the family, the outward
    interface's address (see :func:`outward_address`). A family the
    listener does not serve gets "".
    """
    specs = bind_plan(listen)
    if version is None:
        version = 6 if specs[0].family == socket.AF_INET6 else 4
    for spec in specs:
        if version not in spec.families:
            continue
        if not is_wildcard(spec.host) and family(spec.host) == version:
            return spec.host.split("%", 1)[0]
        if is_wildcard(spec.host):
            return outward_address(version)
    return ""


class NodeSettings(_Section):
    """[node] this process's identity in CDRs, logs and (later) the cluster."""

    name: str = Field(default_factory=socket.gethostname, min_length=1, max_length=64)
    # Worker processes sharing the node's SIP UDP port (docs/workers.md); 1: one process.
    workers: int = Field(default=1, ge=1, le=64)


class DatabaseSettings(_Section):
    """[database] the SQLAlchemy URL (SQLite by default, PostgreSQL for a cluster)."""

    url: str = "sqlite:///offhook.db"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a SQLAlchemy URL: {exc}") from None
        return value


class SipSettings(ListenerSettings):
    """[sip] the SIP listener (UDP and TCP on the same port) and its limits.

    Defence defaults: ``allow`` everyone (phones are everywhere; restrict it
    to your phone and trunk networks); ``max_message`` 65535 bytes (the
    largest UDP datagram; RFC 3261 messages are far smaller);
    ``idle_timeout`` 60 s for TCP (RFC 5626 keep-alives or re-registrations
    keep a phone's connection open); ``handshake_timeout`` 10 s (a UA sends
    its request as soon as it connects); 4096 TCP connections, 64 from one
    address (phones behind one NAT); 200 messages a second per source with a
    burst of 400 (a NAT full of phones re-registering, a busy trunk; raise it
    for a trunk carrying more than ~20 call attempts a second). UDP
    datagrams over the rate are dropped (the sender retransmits).
    """

    listen: list[str] = Field(default_factory=lambda: ["0.0.0.0"])
    port: int = Field(default=5060, ge=0, le=65535)
    realm: str = Field(default="offhook", min_length=1)
    # What Via/Contact/SDP name this node by: at most one address per family,
    # or one host name for both; empty: see advertised_host.
    external_host: list[str] = Field(default_factory=list)
    max_message: int = Field(default=65535, ge=1024, le=1 << 20)
    tcp: bool = True
    udp: bool = True
    min_expires: int = Field(default=60, ge=1)
    max_expires: int = Field(default=3600, ge=1)
    # SUBSCRIBE (busy lamps, message waiting): at most this many per device, and in all.
    max_subscriptions_per_device: int = Field(default=100, ge=1, le=10_000)
    max_subscriptions: int = Field(default=10_000, ge=1, le=1_000_000)
    t1: float = Field(default=0.5, gt=0)  # RFC 3261 §17.1.1.1 T1, seconds
    # RFC 4028 session timers: the interval offered and the least accepted (422 below),
    # seconds; a call whose refreshes stop is hung up (cause 102). 0 turns them off.
    min_se: int = Field(default=90, ge=90, le=86400)
    session_expires: int = Field(default=1800, ge=0, le=86400)
    # Digest algorithms challenged with, in this order (RFC 8760 §2.4: most
    # preferred first, e.g. ["SHA-256", "MD5"]). Only MD5 by default: deployed
    # UAs such as baresip 1.0 (libre) fail outright when any challenge names an
    # algorithm they do not know, instead of skipping it.
    digest_algorithms: list[Literal["MD5", "SHA-256"]] = Field(
        default_factory=lambda: ["MD5"],  # type: ignore[arg-type]
        min_length=1,
    )

    @field_validator("session_expires")
    @classmethod
    def _session_expires(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_se", 90)
        if value and value < low:
            raise ValueError(f"must be 0 (off) or >= min_se ({low})")
        return value

    @field_validator("max_expires")
    @classmethod
    def _expires(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_expires")
        if low is not None and value < low:
            raise ValueError(f"must be >= min_expires ({low})")
        return value

    @field_validator("external_host", mode="before")
    @classmethod
    def _external(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value] if value.strip() else []
        if not isinstance(value, list):
            return value
        out: list[str] = []
        seen: set[int | None] = set()
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"external_host entry {item!r} is not an address or name")
            text = item.strip()
            version = family(text)
            if version is not None:
                text = canonical(text)
            if version in seen or (None in seen) or (version is None and seen):
                raise ValueError(
                    "external_host takes at most one address per family (IPv4, IPv6) "
                    "or a single host name"
                )
            seen.add(version)
            out.append(text)
        return out

    def advertised(self, version: int) -> str:
        """The host this node gives peers of IP ``version`` (4 or 6) in Via/Contact/SDP.

        ``external_host`` of that family (or its host name), else the listen
        address of the family, else the outward interface for a wildcard
        listener (:func:`default_external_host`); "" when the node does not
        serve the family.
        """
        for host in self.external_host:
            if family(host) in (version, None):
                return host
        return default_external_host(self.listen, version)

    @property
    def advertised_host(self) -> str:
        """The advertised host of the first listen address's family."""
        first = 6 if ":" in self.listen[0] else 4
        return self.advertised(first) or self.advertised(10 - first)


class AdminSettings(ListenerSettings):
    """[admin] the node's local control endpoint (``offhook status``, the web process).

    JSON lines over TCP (``ris.control``). Defence defaults: ``allow``
    loopback only (the advisory's lesson: an admin service never faces the
    network by default); ``max_message`` 65536 bytes of one request line;
    ``handshake_timeout`` 5 s to send the first request, ``idle_timeout``
    10 s for each later one and to take an answer; 32 connections, 8 from
    one address; 50 requests a second per source, burst 100 (a person, a
    monitoring scraper and the web process with its dashboards, not a
    flood; a source over it is read more slowly).
    """

    enabled: bool = True
    listen: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    port: int = Field(default=5099, ge=0, le=65535)
    allow: list[str] = Field(default_factory=lambda: list(LOOPBACK))
    max_message: int = Field(default=65536, ge=256, le=1 << 20)
    idle_timeout: float = Field(default=10.0, gt=0, le=3600)
    handshake_timeout: float = Field(default=5.0, gt=0, le=3600)
    max_connections: int = Field(default=32, ge=1, le=100_000)
    max_connections_per_source: int = Field(default=8, ge=1, le=100_000)
    rate_per_source: float = Field(default=50.0, gt=0)
    rate_burst: float = Field(default=100.0, ge=1)


class SccpSettings(ListenerSettings):
    """[sccp] the Skinny listener for Cisco IP phones (TCP) and its limits.

    Defence defaults: ``allow`` everyone (restrict it to the voice VLANs, as
    the advisory's ACL for port 2000 does); ``max_message`` 4096 bytes
    (CallManager's messages are < 3 kB; CSCee00118 was a phone-supplied
    length allocated as is); ``handshake_timeout`` 10 s to the first frame
    (a phone sends StationRegister at once) and ``register_timeout`` 30 s to
    be registered; ``idle_timeout`` 90 s without a frame (registered phones
    send a keepalive every ``keepalive`` seconds and are also dropped after
    two missed ones; it must stay above two keepalives); 20000 connections,
    64 from one address (phones behind one NAT); 100 messages a second per
    source with a burst of 1000 (64 phones registering at once, ~15
    messages each); a stream over the rate is paused, not dropped.
    """

    enabled: bool = True
    listen: list[str] = Field(default_factory=lambda: ["0.0.0.0"])
    port: int = Field(default=2000, ge=0, le=65535)
    keepalive: int = Field(default=30, ge=5, le=3600)
    max_message: int = Field(default=4096, ge=256, le=65536)
    idle_timeout: float = Field(default=90.0, gt=0, le=86400)
    max_connections: int = Field(default=20000, ge=1, le=1_000_000)
    max_connections_per_source: int = Field(default=64, ge=1, le=1_000_000)
    rate_per_source: float = Field(default=100.0, gt=0)
    rate_burst: float = Field(default=1000.0, ge=1)
    # A connection that has not registered within this many seconds is closed.
    register_timeout: float = Field(default=30.0, gt=0)
    # Auto-registration: an unknown phone gets the next free DN of this range
    # ("2000-2099"); empty disables it and unknown phones are rejected.
    auto_register: str = ""
    auto_register_css: str = ""
    auto_register_partition: str = ""

    @model_validator(mode="after")
    def _idle(self) -> SccpSettings:
        if self.idle_timeout <= 2 * self.keepalive:
            raise ValueError(
                f"idle_timeout ({self.idle_timeout:g} s) must be above two keepalive "
                f"intervals ({2 * self.keepalive} s)"
            )
        return self

    @field_validator("auto_register")
    @classmethod
    def _range(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        low, sep, high = value.partition("-")
        if not sep or not low.isdigit() or not high.isdigit() or len(low) != len(high):
            raise ValueError('must be a DN range such as "2000-2099"')
        if int(low) > int(high):
            raise ValueError("range start is above its end")
        return value


class TftpSettings(ListenerSettings):
    """[tftp] phone provisioning: TFTP (UDP) and the same files over HTTP.

    The defence keys cover both listeners, which serve the same files to the
    same phones: ``allow`` (both; everyone by default, restrict it to the
    voice VLANs), ``rate_per_source`` / ``rate_burst`` (TFTP requests and
    HTTP connections of one source together: 20 a second, burst 100, enough
    for a NAT full of phones booting after a power cut; a TFTP request over
    it is dropped and the phone retries). ``max_message`` (8192 bytes) bounds
    the HTTP request head; TFTP requests are held to RFC 2347's 512 octets
    (or ``max_message`` if smaller). ``handshake_timeout`` (10 s) is the
    time to send the HTTP request; ``idle_timeout`` (60 s) is the time to
    take an HTTP answer and the longest a TFTP transfer may go without an
    acknowledgement (whatever timeout option the client asked for).
    ``max_connections`` (256) and ``max_connections_per_source`` (8) are the
    HTTP side's connections; the TFTP side has its own caps on concurrent
    transfers, ``max_transfers`` (256) and ``max_transfers_per_source`` (8),
    each transfer holding one UDP socket.
    """

    enabled: bool = True
    listen: list[str] = Field(default_factory=lambda: ["0.0.0.0"])
    port: int = Field(default=69, ge=0, le=65535)
    http_port: int = Field(default=6970, ge=0, le=65535)
    http: bool = True
    root: str = "tftproot"
    max_message: int = Field(default=8192, ge=512, le=65536)
    idle_timeout: float = Field(default=60.0, gt=0, le=3600)
    max_connections: int = Field(default=256, ge=1, le=100_000)
    max_connections_per_source: int = Field(default=8, ge=1, le=100_000)
    rate_per_source: float = Field(default=20.0, gt=0)
    rate_burst: float = Field(default=100.0, ge=1)
    max_transfers: int = Field(default=256, ge=1)
    max_transfers_per_source: int = Field(default=8, ge=1)
    timeout: float = Field(default=1.0, gt=0, le=60)
    retries: int = Field(default=5, ge=0, le=50)
    # Firmware load name put in SEP<MAC>.cnf.xml (empty: the phone keeps its own).
    load_information: str = ""
    device_pool: str = "Default"
    locale: str = "English_United_States"
    time_zone: str = "UTC"


class LogSettings(_Section):
    """[log] level and format (``text`` for people, ``json`` for collectors)."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["text", "json"] = "text"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class AuthSettings(_Section):
    """[auth] the digest nonce key, and what failed logins cost (``net.authguard``).

    Per source (an IPv4 address or an IPv6 /64), failed logins are counted in
    a window of ``fail_window`` seconds; from ``throttle_after`` failures the
    source's requests are held back ``throttle_delay`` seconds, doubling with
    each further failure up to ``max_delay`` (one held request per source,
    at most ``max_delayed`` at once; the rest are dropped); at
    ``block_after`` failures (0: never) it gets no answer at all for
    ``block_for`` seconds. Accounts are only counted (``account_alert_after``
    failures: a warning, and failures against it count double for their
    sources), never locked.
    """

    secret: str = ""
    fail_window: float = Field(default=300.0, gt=0)
    throttle_after: int = Field(default=10, ge=1)
    throttle_delay: float = Field(default=0.25, ge=0, le=60)
    max_delay: float = Field(default=8.0, ge=0, le=60)
    block_after: int = Field(default=20, ge=0)
    block_for: float = Field(default=600.0, ge=0)
    account_alert_after: int = Field(default=50, ge=1)
    max_tracked_sources: int = Field(default=10_000, ge=1, le=10_000_000)
    max_tracked_accounts: int = Field(default=10_000, ge=1, le=10_000_000)
    max_delayed: int = Field(default=1_000, ge=1, le=1_000_000)
    _generated: str = PrivateAttr(default_factory=lambda: secrets.token_hex(32))

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if value and len(value.encode()) < 16:
            raise ValueError("must be empty (random per process) or at least 16 bytes")
        return value

    @property
    def key(self) -> bytes:
        """The nonce HMAC key: ``secret``, or this process's random one."""
        return (self.secret or self._generated).encode()

    def policy(self) -> AuthPolicy:
        """The failed-login policy every listener that authenticates applies."""
        return AuthPolicy(
            fail_window=self.fail_window,
            throttle_after=self.throttle_after,
            throttle_delay=self.throttle_delay,
            max_delay=self.max_delay,
            block_after=self.block_after,
            block_for=self.block_for,
            account_alert_after=self.account_alert_after,
            max_tracked_sources=self.max_tracked_sources,
            max_tracked_accounts=self.max_tracked_accounts,
            max_delayed=self.max_delayed,
        )


class DialPlanSettings(_Section):
    """[dialplan] digit analysis settings."""

    # ITU-T Q.931 T302: inter-digit timeout of overlap dialing, seconds.
    t302: float = Field(default=15.0, gt=0, le=300)


class Settings(_Section):
    """All node settings; build with :func:`load_settings`."""

    node: NodeSettings = Field(default_factory=NodeSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    sip: SipSettings = Field(default_factory=SipSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    dialplan: DialPlanSettings = Field(default_factory=DialPlanSettings)
    sccp: SccpSettings = Field(default_factory=SccpSettings)
    tftp: TftpSettings = Field(default_factory=TftpSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    features: FeaturesSettings = Field(default_factory=FeaturesSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    cti: CtiSettings = Field(default_factory=CtiSettings)
    overload: OverloadSettings = Field(default_factory=OverloadSettings)

    # Where the settings came from (None: defaults + environment only).
    source: Path | None = None


def _sections() -> dict[str, type[_Section]]:
    out: dict[str, type[_Section]] = {}
    for name, info in Settings.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, _Section):
            out[name] = ann
    return out


def _is_str_field(section: type[_Section], key: str) -> bool:
    info = section.model_fields.get(key)
    return info is not None and info.annotation is str


def _is_list_field(section: type[_Section], key: str) -> bool:
    info = section.model_fields.get(key)
    return info is not None and getattr(info.annotation, "__origin__", None) is list


def _env_overrides(
    env: Mapping[str, str], data: dict[str, Any]
) -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    """Merge ``OFFHOOK_<SECTION>__<KEY>`` variables into ``data``."""
    sections = _sections()
    origin: dict[tuple[str, str], str] = {}
    for var, raw in sorted(env.items()):
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        section_name, _, key = var[len(ENV_PREFIX) :].lower().partition("__")
        section = sections.get(section_name)
        if section is None:
            raise ConfigError(f"{var}: unknown settings section [{section_name}]")
        if key not in section.model_fields:
            raise ConfigError(f"{var}: unknown key {key!r} in [{section_name}]")
        value: Any = raw
        if _is_list_field(section, key):
            text = raw.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{var}: invalid JSON list ({exc})") from None
                except RecursionError:
                    raise ConfigError(f"{var}: invalid JSON list (nested too deeply)") from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        elif not _is_str_field(section, key):
            value = raw.strip()
        sect = data.setdefault(section_name, {})
        if not isinstance(sect, dict):
            raise ConfigError(f"[{section_name}] must be a table")
        sect[key] = value
        origin[(section_name, key)] = var
    return data, origin


def _resolve_sqlite(url: str, base: Path) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    db = parsed.database
    if not parsed.drivername.startswith("sqlite") or not db or db == ":memory:":
        return url
    if db.startswith("file:") or Path(db).is_absolute():
        return url
    return parsed.set(database=str((base / db).resolve())).render_as_string(hide_password=False)


def _format_errors(
    exc: ValidationError, where: str, origin: dict[tuple[str, str], str]
) -> ConfigError:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if len(loc) >= 2:
            name = f"[{loc[0]}] {'.'.join(loc[1:])}"
            var = origin.get((loc[0], loc[1]))
        else:
            name = f"[{loc[0]}]" if loc else "settings"
            var = None
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key" if len(loc) >= 2 else "unknown section"
        suffix = f" (from {var})" if var else ""
        lines.append(f"{where}: {name}: {msg}{suffix}")
    return ConfigError("\n".join(lines))


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (TOML; None: defaults only), apply env overrides, validate.

    Raises :class:`ConfigError` with a message naming the file and key.
    """
    environ = os.environ if env is None else env
    data: dict[str, Any] = {}
    where = "settings"
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        where = str(path)
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: not UTF-8 ({exc.reason})") from None
        except ValueError as exc:
            # tomllib lets int()'s 4300-digit limit (CVE-2020-10735) out as ValueError.
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        except RecursionError:
            # tomllib parses nested arrays and inline tables recursively.
            raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
        base = path.resolve().parent
    if "source" in data:
        raise ConfigError(f"{where}: [source]: unknown section")
    data, origin = _env_overrides(environ, data)
    try:
        settings = Settings.model_validate({**data, "source": path})
    except ValidationError as exc:
        raise _format_errors(exc, where, origin) from None
    url = _resolve_sqlite(settings.database.url, base)
    if url != settings.database.url:
        database = settings.database.model_copy(update={"url": url})
        settings = settings.model_copy(update={"database": database})
    return settings


def default_config_path(cwd: Path | None = None) -> Path | None:
    """``offhook.toml`` in ``cwd`` if it exists, else None (defaults)."""
    candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    return candidate if candidate.is_file() else None


# A sample file with every key and its default (``offhook demo-config``).
SAMPLE_TOML = (Path(__file__).parent / "demo" / "offhook.toml").read_text(encoding="utf-8")
