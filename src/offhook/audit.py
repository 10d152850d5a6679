"""``offhook audit``: what a configuration exposes, and the router ACL to fence it.

Theory of operation. The Cisco advisory behind offhook (cisco-sa-20050712-ccm)
had one workaround for every hole: router access lists in front of every
CallManager port, so that the CTI manager (TCP 2748), the database layer
(TCP 8001), the admin web pages (TCP 80) and the other services do not face
the whole network, and the phones' port (TCP 2000) is reached only from the
voice VLANs. offhook has a source allow-list on every listener; this module
reads the node settings and reports, without touching the network:

1. :func:`listeners`: every listener the configuration opens (SIP UDP and
   TCP, SCCP TCP, TFTP UDP, provisioning HTTP TCP, the node's control
   endpoint ``[admin]`` TCP, the web administration ``[web]`` TCP (the web
   process ``offhook serve`` runs when enabled), the CTI JSON-lines
   listener when ``[cti] port`` is set) and the database server
   when the database URL names a network host: address, port, transport,
   allow-list and limits (the per-listener defence keys, read with
   ``getattr`` so a section without one still audits). A ``listen`` list
   gives one entry per address, each with the IP versions its socket
   serves (``net.listen.bind_plan``): ``"::"`` alone is dual-stack (4 and
   6), ``["0.0.0.0", "::"]`` is one IPv4 and one IPv6-only socket.
2. :func:`findings`: a ``WARN`` for each service the advisory says must not
   face the whole network (CTI, database, the control endpoint, the web
   administration, provisioning) that is open to everything (an allow-list
   holding ``0.0.0.0/0`` or ``::/0`` while listening on a non-loopback
   address), with the reason; an ``INFO`` for the web administration
   reachable beyond loopback without TLS (passwords and session cookies in
   clear), for
   SIP and SCCP open to everything (phones need them, but restrict them to
   the phone subnets), for a database whose allow-list offhook cannot see,
   and for listeners that no source may reach or whose port is chosen at
   start.
3. :func:`acl_lines`: Cisco IOS access-list lines that restrict each port to
   its allowed networks, as in the advisory's workaround: for every port a
   ``permit`` per allowed network (wildcard masks: ``10.1.0.0 0.0.255.255``;
   ``host`` for a /32, ``any`` for a /0), then the ``deny`` for the port,
   and a final ``permit ip any any`` so that the entries sit beside the
   router's other traffic. IPv6 networks go into a named ``ipv6
   access-list`` the same way (``permit udp 2001:db8::/64 any eq 5060``;
   ``permit ipv6 any any`` last), for every listener that serves IPv6.
   Loopback listeners get no entries (the router never sees their traffic).

:func:`audit` puts the three into an :class:`AuditReport`, which renders as
text (:meth:`AuditReport.text`) or JSON (:meth:`AuditReport.to_json`); its
``status`` is 1 when any ``WARN`` was found, so ``offhook audit`` can gate a
deployment. Pure functions of the settings: nothing is resolved, bound or
connected.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from offhook.config import Settings
from offhook.net.listen import bind_plan, listen_list

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_ACL_NUMBER = 101
LIMIT_KEYS = (
    "max_message",
    "idle_timeout",
    "handshake_timeout",
    "max_connections",
    "max_connections_per_source",
    "rate_per_source",
    "rate_burst",
)
"""The defence keys every listener section has (shown when the section has them)."""
EXTRA_LIMITS: dict[str, tuple[str, ...]] = {
    "sccp": ("keepalive", "register_timeout"),
    "tftp": ("max_transfers", "max_transfers_per_source", "timeout", "retries"),
    "web": ("max_sessions", "session_idle", "session_absolute", "max_concurrent_hashes"),
}
DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}

# Why a service must not face the whole network (the advisory's items).
SENSITIVE: dict[str, str] = {
    "cti": (
        "CTI open to every network: the advisory's CSCee00116 (a crafted packet made the "
        "CTI manager on TCP 2748 allocate over 1 GB); allow only the CTI application servers"
    ),
    "database": (
        "the database open to every network: the advisory's CSCsa75554 (a crafted packet "
        "overflowed a buffer in the database layer on TCP 8001); allow only the offhook nodes"
    ),
    "admin": (
        "the node's control endpoint open to every network: it shows live state and takes live "
        "commands (call forwarding, do not disturb) without a login; the advisory's answer for "
        "every admin service was to let only trusted addresses reach it; set [admin] allow to "
        "the hosts of the web process and monitoring"
    ),
    "web": (
        "the web administration open to every network: the advisory's CSCef47060 (failed admin "
        "logins leaked memory; the workaround was to let only trusted addresses reach TCP 80); "
        "set [web] allow to the management networks (and the users' subnets for self-care)"
    ),
    "tftp": (
        "phone provisioning (TFTP) open to every network: it serves every phone's configuration "
        "(device names, numbers, the call manager's address) to anyone who asks; set [tftp] "
        "allow to the phone subnets (voice VLANs)"
    ),
    "tftp-http": (
        "phone provisioning (HTTP) open to every network: it serves every phone's configuration "
        "(device names, numbers, the call manager's address) to anyone who asks; set [tftp] "
        "allow to the phone subnets (voice VLANs)"
    ),
}
PHONE_FACING: dict[str, str] = {
    "sip": (
        "SIP open to every network: phones and trunks need it, but restrict [sip] allow to the "
        "phone subnets and the trunks' addresses"
    ),
    "sccp": (
        "SCCP open to every network: phones need it, but restrict [sccp] allow to the phone "
        "subnets (the advisory permits TCP 2000 only from the voice VLAN)"
    ),
}

Level = Literal["WARN", "INFO"]


@dataclass(frozen=True, slots=True)
class Listener:
    """One port the configuration opens (or, for the database, connects to)."""

    service: str
    """``sip``, ``sccp``, ``tftp``, ``tftp-http``, ``admin``, ``web``, ``cti`` or ``database``."""
    section: str
    """The settings section it comes from (``sip`` for ``[sip]``)."""
    transport: Literal["tcp", "udp"]
    address: str
    port: int
    allow: tuple[str, ...] | None
    """Allowed source networks; None when offhook does not control them (database)."""
    limits: dict[str, float | int] = field(default_factory=dict)
    families: tuple[int, ...] = ()
    """IP versions its socket serves (4, 6); empty: from the address (``::`` dual-stack)."""
    tls: bool | None = None
    """Whether it speaks TLS (None: not a setting of this listener)."""

    @property
    def label(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.service} {self.transport} {host}:{self.port}"

    @property
    def loopback(self) -> bool:
        """Listening (or, for the database, reached) on a loopback address only."""
        return is_loopback(self.address)

    @property
    def open_to_all(self) -> bool:
        """An allow-list holding 0.0.0.0/0 or ::/0 (of a family it serves), not on loopback."""
        if self.loopback or self.allow is None:
            return False
        versions = self.ip_versions
        return any(
            net.prefixlen == 0 and net.version in versions for net in map(_network, self.allow)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "section": self.section,
            "transport": self.transport,
            "address": self.address,
            "port": self.port,
            "allow": list(self.allow) if self.allow is not None else None,
            "families": list(self.ip_versions),
            "loopback": self.loopback,
            "open_to_all": self.open_to_all,
            "limits": dict(self.limits),
            "tls": self.tls,
        }

    @property
    def ip_versions(self) -> tuple[int, ...]:
        """The IP versions this listener accepts."""
        return self.families or _families(self.address)


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    listener: Listener
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "service": self.listener.service,
            "listener": self.listener.label,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class AuditReport:
    listeners: tuple[Listener, ...]
    findings: tuple[Finding, ...]
    acl_number: int
    acl_ipv4: tuple[str, ...]
    acl_ipv6: tuple[str, ...]
    database: str
    """A word on the database: ``sqlite file``, ``postgresql on a network host``, ..."""

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.level == "WARN")

    @property
    def status(self) -> int:
        """The exit status of ``offhook audit``: 1 when anything was flagged WARN."""
        return 1 if self.warnings else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "listeners": [x.to_json() for x in self.listeners],
            "database": self.database,
            "findings": [f.to_json() for f in self.findings],
            "acl": {
                "number": self.acl_number,
                "ipv4": list(self.acl_ipv4),
                "ipv6_name": ipv6_acl_name(self.acl_number),
                "ipv6": list(self.acl_ipv6),
            },
            "warnings": self.warnings,
            "status": self.status,
        }

    def text(self) -> str:
        out = ["Listeners:"]
        width = max((len(x.label) for x in self.listeners), default=0)
        for x in self.listeners:
            allow = "not set by offhook" if x.allow is None else ", ".join(x.allow) or "nobody"
            limits = " ".join(f"{k}={_num(v)}" for k, v in x.limits.items())
            out.append(f"  {x.label:<{width}}  allow: {allow}" + (f"  {limits}" if limits else ""))
        out.append(f"  database: {self.database}")
        out.append("")
        out.append("Findings:" if self.findings else "Findings: none")
        out.extend(f"  {f.level} {f.listener.label}: {f.message}" for f in self.findings)
        out.append("")
        out.append(
            "Router access list (Cisco IOS) restricting each port to its allowed networks;"
            " apply it inbound on the router interfaces facing the rest of the network:"
        )
        out.extend(self.acl_ipv4)
        if self.acl_ipv6:
            out.extend(self.acl_ipv6)
        out.append("")
        out.append(
            f"{self.warnings} warning(s): exit status {self.status}"
            if self.warnings
            else "no warnings: exit status 0"
        )
        return "\n".join(out) + "\n"


def _num(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _network(text: str) -> IPNetwork:
    return ipaddress.ip_network(text.strip(), strict=False)


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` or ``localhost``; a wildcard or other name is not."""
    if host.strip().lower() == "localhost":
        return True
    addr = _address(host)
    return addr is not None and addr.is_loopback


def _families(address: str) -> tuple[int, ...]:
    """The IP versions a listener on ``address`` accepts (``::`` is dual-stack)."""
    text = address.strip().strip("[]")
    if text == "":
        return (4, 6)
    addr = _address(text)
    if addr is None:
        return (4, 6)  # a host name: could be either
    if addr.version == 6 and addr.is_unspecified:
        return (4, 6)
    return (addr.version,)


def _limits(section: object, service: str) -> dict[str, float | int]:
    keys = LIMIT_KEYS + EXTRA_LIMITS.get(service, ())
    out: dict[str, float | int] = {}
    for key in keys:
        value = getattr(section, key, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = value
    return out


def _allow(section: object) -> tuple[str, ...]:
    return tuple(str(n) for n in getattr(section, "allow", ()) or ())


def _listener(
    section_name: str, section: object, service: str, transport: Literal["tcp", "udp"], port: int
) -> list[Listener]:
    """One entry per address of the section's ``listen`` (a string or a list)."""
    listen = getattr(section, "listen", "")
    try:
        specs = [(spec.host, tuple(sorted(spec.families))) for spec in bind_plan(listen)]
    except (ValueError, TypeError):  # not addresses (a section audited as is)
        specs = [(str(host), ()) for host in listen_list(listen or "")]
    return [
        Listener(
            service=service,
            section=section_name,
            transport=transport,
            address=host,
            port=port,
            allow=_allow(section),
            limits=_limits(section, service),
            families=families,
            tls=getattr(section, "tls", None) if service == "web" else None,
        )
        for host, families in specs
    ]


def database_listener(url: str) -> tuple[Listener | None, str]:
    """The database server a URL names, when on a network host, and a word about it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None, "unreadable URL"
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return None, "sqlite file (no network port)"
    host = parsed.host or ""
    query_host = parsed.query.get("host")
    if not host and isinstance(query_host, str):
        host = query_host
    if not host or host.startswith("/"):
        return None, f"{backend} over a local socket (no network port)"
    port = parsed.port or DATABASE_PORTS.get(backend, 0)
    where = "on this machine" if is_loopback(host) else "on a network host"
    listener = Listener(
        service="database",
        section="database",
        transport="tcp",
        address=host,
        port=port,
        allow=None,
    )
    shown = f"[{host}]" if ":" in host else host
    return listener, f"{backend} {where} ({shown}:{port})"


def listeners(settings: Settings) -> list[Listener]:
    """Every listener the settings open, and the database server when it is on the network."""
    out: list[Listener] = []
    sip = settings.sip
    if getattr(sip, "enabled", True):
        if sip.udp:
            out += _listener("sip", sip, "sip", "udp", sip.port)
        if sip.tcp:
            out += _listener("sip", sip, "sip", "tcp", sip.port)
    sccp = settings.sccp
    if sccp.enabled:
        out += _listener("sccp", sccp, "sccp", "tcp", sccp.port)
    tftp = settings.tftp
    if tftp.enabled:
        out += _listener("tftp", tftp, "tftp", "udp", tftp.port)
        if tftp.http:
            out += _listener("tftp", tftp, "tftp-http", "tcp", tftp.http_port)
    admin = settings.admin
    if admin.enabled:
        out += _listener("admin", admin, "admin", "tcp", admin.port)
    web = getattr(settings, "web", None)
    if web is not None and web.enabled:
        out += _listener("web", web, "web", "tcp", web.port)
    cti = getattr(settings, "cti", None)  # the JSON-lines CTI listener, when it has a port
    if cti is not None and getattr(cti, "enabled", True) and getattr(cti, "port", 0):
        out += _listener("cti", cti, "cti", "tcp", int(cti.port))
    db, _ = database_listener(settings.database.url)
    if db is not None:
        allow = getattr(settings.database, "allow", None)
        if allow is not None:
            db = Listener(db.service, db.section, db.transport, db.address, db.port, tuple(allow))
        out.append(db)
    return out


def findings(items: Iterable[Listener]) -> list[Finding]:
    """WARN for sensitive services open to everything; INFO notes for the rest."""
    out: list[Finding] = []
    for x in items:
        if x.open_to_all and x.service in SENSITIVE:
            out.append(Finding("WARN", x, SENSITIVE[x.service]))
        elif x.open_to_all and x.service in PHONE_FACING:
            out.append(Finding("INFO", x, PHONE_FACING[x.service]))
        elif x.service == "database" and x.allow is None and not x.loopback:
            out.append(
                Finding(
                    "INFO",
                    x,
                    "the database server is reached over the network and offhook cannot see "
                    "who else may reach it (CSCsa75554): allow only the offhook nodes there "
                    "(pg_hba.conf, listen_addresses) and in the router (access list below)",
                )
            )
        elif x.allow is not None and not x.allow and not x.loopback:
            out.append(Finding("INFO", x, f"[{x.section}] allow is empty: no source may reach it"))
        if x.tls is False and not x.loopback and (x.allow is None or x.allow):
            out.append(
                Finding(
                    "INFO",
                    x,
                    "the web administration without TLS beyond loopback: passwords, API tokens "
                    "and session cookies cross the network in clear; set [web] tls_cert and "
                    "tls_key",
                )
            )
        if x.port == 0 and x.service != "database":
            out.append(
                Finding("INFO", x, "port 0: a free port is chosen at start; no ACL can name it")
            )
    return out


def ipv6_acl_name(number: int) -> str:
    """The name of the IPv6 access list (IOS names IPv6 lists; numbers are IPv4's)."""
    return f"offhook-{number}"


def _remark(lead: str, text: str) -> str:
    """An ACL remark line; IOS keeps at most 100 characters of remark."""
    return f"{lead.rstrip()} remark {text[:100]}" if lead.strip() else f" remark {text[:100]}"


def _v4(net: ipaddress.IPv4Network) -> str:
    if net.prefixlen == 0:
        return "any"
    if net.prefixlen == 32:
        return f"host {net.network_address}"
    return f"{net.network_address} {net.hostmask}"


def _v6(net: ipaddress.IPv6Network) -> str:
    if net.prefixlen == 0:
        return "any"
    if net.prefixlen == 128:
        return f"host {net.network_address}"
    return net.compressed


def _destination(x: Listener, version: int, hosts: Sequence[str]) -> str | None:
    """``host A`` for the node's address of that IP version, ``any`` when unknown.

    None when the listener does not accept that version at all.
    """
    if version not in x.ip_versions:
        return None
    addr = _address(x.address)
    if addr is not None and not addr.is_unspecified:
        return f"host {addr}"
    for host in hosts:
        given = _address(host)
        if given is not None and given.version == version and not given.is_unspecified:
            return f"host {given}"
    return "any"


def _sources(x: Listener, version: int, node_hosts: Sequence[str]) -> list[IPNetwork] | None:
    if x.allow is not None:
        return [n for n in map(_network, x.allow) if n.version == version]
    # The database: only the node itself, when its address is known.
    nets: list[IPNetwork] = []
    for host in node_hosts:
        addr = _address(host)
        if addr is not None and addr.version == version and not addr.is_unspecified:
            nets.append(ipaddress.ip_network(addr))
    return nets or None


def acl_lines(
    items: Iterable[Listener],
    number: int = DEFAULT_ACL_NUMBER,
    hosts: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """IOS extended access-list lines (IPv4) and ``ipv6 access-list`` lines.

    ``hosts`` are the node's own addresses: the destination of the entries
    for a listener on a wildcard address (``any`` when none is given for that
    IP version), and the only sources permitted to reach the database.
    """
    prefix = f"access-list {number}"
    v4: list[str] = []
    v6: list[str] = []
    for x in items:
        what = f"offhook {x.service} {x.transport} port {x.port}"
        if x.loopback:
            v4.append(_remark(prefix, f"{what}: loopback only, nothing to filter"))
            continue
        if x.port == 0:
            v4.append(_remark(prefix, f"{what}: chosen at start, cannot be filtered here"))
            continue
        if x.service == "database" and _address(x.address) is None:
            v4.append(_remark(prefix, f"{what}: {x.address} is a name, filter its address"))
            continue
        for version, out in ((4, v4), (6, v6)):
            dest = _destination(x, version, hosts)
            if dest is None:
                continue
            port = f"eq {x.port}"
            sources = _sources(x, version, hosts)
            lead = f"{prefix} " if version == 4 else " "
            out.append(_remark(lead, what))
            if sources is None:
                out.append(_remark(lead, "  permit the offhook nodes here (audit --host ADDR)"))
                out.append(_remark(lead, f"  then: deny {x.transport} any {dest} {port}"))
                continue
            for net in sources:
                src = _v4(net) if isinstance(net, ipaddress.IPv4Network) else _v6(net)
                out.append(f"{lead}permit {x.transport} {src} {dest} {port}")
            out.append(f"{lead}deny {x.transport} any {dest} {port}")
    v4.append(_remark(prefix, "everything else passes, as before (add your own entries above)"))
    v4.append(f"{prefix} permit ip any any")
    if v6:
        v6.insert(0, f"ipv6 access-list {ipv6_acl_name(number)}")
        v6.append(" permit ipv6 any any")
    return v4, v6


def audit(
    settings: Settings,
    acl_number: int = DEFAULT_ACL_NUMBER,
    hosts: Sequence[str] = (),
) -> AuditReport:
    """The whole audit of ``settings`` (see the module docstring).

    ``hosts`` default to the IP addresses of ``[sip] external_host`` (one per family).
    """
    items = listeners(settings)
    if not hosts:
        hosts = tuple(h for h in listen_list(settings.sip.external_host) if _address(h))
    v4, v6 = acl_lines(items, acl_number, hosts)
    _, database = database_listener(settings.database.url)
    return AuditReport(
        listeners=tuple(items),
        findings=tuple(findings(items)),
        acl_number=acl_number,
        acl_ipv4=tuple(v4),
        acl_ipv6=tuple(v6),
        database=database,
    )


def valid_acl_number(number: int) -> bool:
    """IOS extended IP access lists are numbered 100-199 and 2000-2699."""
    return 100 <= number <= 199 or 2000 <= number <= 2699
