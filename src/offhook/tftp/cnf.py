"""Generate the XML configuration files Cisco SCCP phones fetch over TFTP/HTTP.

``SEP<MAC>.cnf.xml`` (one per device) and ``XMLDefault.cnf.xml`` (for
auto-registration), in the element layout of CallManager 4.1 (see
``../shared/vectors/sccp/``): a device pool holding the date/time setting and
the call manager group whose members name this node and its SCCP port, then
load information (when configured), user and network locale.

IPv6. CallManager 4.1 knew only IPv4; later Unified CM releases, which run
phones over IPv6, write three more elements right after
``<deviceProtocol>`` (``<fullConfig>`` in XMLDefault): ``<ipAddressMode>``
(the device's "IP Addressing Mode": 0 IPv4 only, 1 IPv6 only, 2 IPv4 and
IPv6), ``<allowAutoConfig>`` (stateless address autoconfiguration allowed)
and ``<ipPreferenceModeControl>`` ("IP Addressing Mode Preference for
Signaling": 0 IPv4, 1 IPv6). ``processNodeName`` then names the node by
the address of the family the phone signals over. A config with
``ip_mode`` None (an IPv4-only node) is written in the 4.1 layout, without
them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_DEVICE_NAME = re.compile(r"SEP[0-9A-F]{12}")
# <ipAddressMode>: Unified CM's "IP Addressing Mode" of a device.
IPV4_ONLY, IPV6_ONLY, IPV4_AND_IPV6 = 0, 1, 2
_VERSION_STAMP = "{Jan 01 2002 00:00:00}"


@dataclass(frozen=True, slots=True)
class CallManagerNode:
    """One member of the call manager group (the node phones register to)."""

    host: str
    sccp_port: int = 2000
    tls_port: int = 2443  # SCCP over TLS: validated, not written (CM 4.1 files carry no element)


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """What one SCCP phone's cnf.xml says."""

    device_name: str  # SEP + 12 upper-case hex digits
    model: str = "7960"
    nodes: tuple[CallManagerNode, ...] = ()
    load: str | None = None
    locale: str = "English_United_States"
    lang_code: str = "en"
    network_locale: str = "United_States"
    timezone: str = "Greenwich Standard Time"
    date_template: str = "M/D/Y"
    device_pool: str = "Default"
    ip_mode: int | None = None  # IPV4_ONLY, IPV6_ONLY, IPV4_AND_IPV6; None: 4.1 layout
    prefer_ipv6: bool = False  # <ipPreferenceModeControl>: signal over IPv6

    def __post_init__(self) -> None:
        _check_mode(self.ip_mode)
        if not _DEVICE_NAME.fullmatch(self.device_name):
            raise ValueError(f"not an SCCP device name: {self.device_name!r}")
        if not self.nodes:
            raise ValueError("a device needs at least one call manager node")
        for node in self.nodes:
            for port in (node.sccp_port, node.tls_port):
                if not 0 < port < 65536:
                    raise ValueError(f"bad port {port}")

    @property
    def filename(self) -> str:
        return f"{self.device_name}.cnf.xml"


@dataclass(frozen=True, slots=True)
class DefaultConfig:
    """What XMLDefault.cnf.xml says (phones not configured yet, auto-registration)."""

    nodes: tuple[CallManagerNode, ...]
    load: str | None = None
    locale: str = "English_United_States"
    lang_code: str = "en"
    network_locale: str = "United_States"
    ip_mode: int | None = None
    prefer_ipv6: bool = False

    def __post_init__(self) -> None:
        _check_mode(self.ip_mode)
        if not self.nodes:
            raise ValueError("XMLDefault needs at least one call manager node")


DEFAULT_FILENAME = "XMLDefault.cnf.xml"


def _check_mode(mode: int | None) -> None:
    if mode not in (None, IPV4_ONLY, IPV6_ONLY, IPV4_AND_IPV6):
        raise ValueError(f"bad IP addressing mode {mode!r}")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _cm_group(parent: ET.Element, nodes: tuple[CallManagerNode, ...]) -> None:
    members = _sub(_sub(parent, "callManagerGroup"), "members")
    for priority, node in enumerate(nodes):
        member = _sub(members, "member", priority=str(priority))
        cm = _sub(member, "callManager")
        ports = _sub(cm, "ports")
        _sub(ports, "ethernetPhonePort", str(node.sccp_port))
        _sub(cm, "processNodeName", node.host)


def _ip_addressing(root: ET.Element, mode: int | None, prefer_ipv6: bool) -> None:
    """Unified CM's IPv6 elements (nothing for an IPv4-only node: the 4.1 layout)."""
    if mode is None:
        return
    _sub(root, "ipAddressMode", str(mode))
    _sub(root, "allowAutoConfig", "true")
    _sub(root, "ipPreferenceModeControl", "1" if prefer_ipv6 else "0")


def _locale(root: ET.Element, name: str, lang: str, network: str) -> None:
    user = _sub(root, "userLocale")
    _sub(user, "name", name)
    _sub(user, "langCode", lang)
    _sub(root, "networkLocale", network)


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    data: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return data + b"\n"


def device_cnf(cfg: DeviceConfig) -> bytes:
    """The bytes of SEP<MAC>.cnf.xml for one device."""
    root = ET.Element("device")
    _sub(root, "deviceProtocol", "SCCP")
    _ip_addressing(root, cfg.ip_mode, cfg.prefer_ipv6)
    pool = _sub(root, "devicePool")
    _sub(pool, "name", cfg.device_pool)
    dts = _sub(pool, "dateTimeSetting")
    _sub(dts, "name", "CMLocal")
    _sub(dts, "dateTemplate", cfg.date_template)
    _sub(dts, "timeZone", cfg.timezone)
    _cm_group(pool, cfg.nodes)
    _sub(root, "loadInformation", cfg.load or "")
    _sub(root, "versionStamp", _VERSION_STAMP)
    _locale(root, cfg.locale, cfg.lang_code, cfg.network_locale)
    return _serialise(root)


def default_cnf(cfg: DefaultConfig) -> bytes:
    """The bytes of XMLDefault.cnf.xml."""
    root = ET.Element("device")
    _sub(root, "deviceProtocol", "SCCP")
    _sub(root, "fullConfig", "true")
    _ip_addressing(root, cfg.ip_mode, cfg.prefer_ipv6)
    pool = _sub(root, "devicePool")
    _cm_group(pool, cfg.nodes)
    _sub(root, "loadInformation", cfg.load or "")
    _sub(root, "versionStamp", _VERSION_STAMP)
    _locale(root, cfg.locale, cfg.lang_code, cfg.network_locale)
    return _serialise(root)


def generator(
    devices: Mapping[str, DeviceConfig], default: DefaultConfig | None = None
) -> Callable[[str], bytes | None]:
    """A ``FileSource`` generator serving the devices' cnf.xml files and XMLDefault.

    ``devices`` maps device name to its config; it is read at request time, so
    a dict the caller updates keeps the generated files current. The files are
    the same whatever IP ``version`` the client used (see ``provision`` for
    the node's own files, which differ).
    """

    def generate(name: str, version: int = 4) -> bytes | None:
        if default is not None and name == DEFAULT_FILENAME:
            return default_cnf(default)
        if not name.endswith(".cnf.xml"):
            return None
        cfg = devices.get(name[: -len(".cnf.xml")].upper())
        return device_cnf(cfg) if cfg is not None else None

    return generate
