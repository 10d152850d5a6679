"""cnf.xml generation: well-formed XML in the CallManager 4.1 layout."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from offhook.tftp.cnf import (
    DEFAULT_FILENAME,
    IPV4_AND_IPV6,
    IPV6_ONLY,
    CallManagerNode,
    DefaultConfig,
    DeviceConfig,
    default_cnf,
    device_cnf,
    generator,
)

VECTORS = Path(__file__).resolve().parents[4] / "shared" / "vectors" / "sccp"
NODE = CallManagerNode("10.102.172.11")


def paths(el: ET.Element, prefix: str = "") -> set[str]:
    out = set()
    for child in el:
        p = f"{prefix}/{child.tag}"
        out.add(p)
        out |= paths(child, p)
    return out


def test_device_cnf_fields() -> None:
    cfg = DeviceConfig(
        "SEP001380AD9E5F",
        nodes=(NODE, CallManagerNode("10.0.0.2", 2001)),
        load="P00308000500",
        timezone="Central Standard/Daylight Time",
    )
    root = ET.fromstring(device_cnf(cfg))
    assert root.tag == "device"
    assert root.findtext("devicePool/name") == "Default"
    assert root.findtext("devicePool/dateTimeSetting/timeZone") == "Central Standard/Daylight Time"
    assert root.findtext("devicePool/dateTimeSetting/dateTemplate") == "M/D/Y"
    members = root.findall("devicePool/callManagerGroup/members/member")
    assert [m.get("priority") for m in members] == ["0", "1"]
    assert members[0].findtext("callManager/processNodeName") == "10.102.172.11"
    assert members[0].findtext("callManager/ports/ethernetPhonePort") == "2000"
    assert members[1].findtext("callManager/ports/ethernetPhonePort") == "2001"
    assert root.findtext("loadInformation") == "P00308000500"
    assert root.findtext("userLocale/name") == "English_United_States"
    assert root.findtext("userLocale/langCode") == "en"
    assert root.findtext("networkLocale") == "United_States"
    assert cfg.filename == "SEP001380AD9E5F.cnf.xml"


def test_device_cnf_paths_are_in_cm41_vector() -> None:
    vector = VECTORS / "SEP001380AD9E5F.cnf.xml"
    if not vector.exists():
        pytest.skip(f"missing {vector}")
    # CM 4.1 writes an xsi:type attribute with no namespace declaration: drop it.
    raw = re.sub(rb'\s[a-z]+:[a-z]+="[^"]*"', b"", vector.read_bytes())
    theirs = paths(ET.fromstring(raw))
    ours = paths(ET.fromstring(device_cnf(DeviceConfig("SEP001380AD9E5F", nodes=(NODE,)))))
    # Every element we write is one CM 4.1 wrote too (deviceProtocol comes from XMLDefault).
    assert ours - theirs == {"/deviceProtocol"}


def test_default_cnf_matches_vector_layout() -> None:
    vector = VECTORS / "XMLDefault.cnf.xml"
    if not vector.exists():
        pytest.skip(f"missing {vector}")
    theirs = ET.fromstring(vector.read_bytes())
    ours = ET.fromstring(default_cnf(DefaultConfig(nodes=(NODE,))))
    assert paths(ours) == paths(theirs)
    for p in ("deviceProtocol", "fullConfig", "userLocale/name", "networkLocale"):
        assert ours.findtext(p) == theirs.findtext(p)
    node = "devicePool/callManagerGroup/members/member/callManager/processNodeName"
    assert ours.findtext(node) == theirs.findtext(node)


def test_text_is_escaped() -> None:
    cfg = DeviceConfig("SEP001122334455", nodes=(NODE,), device_pool="R&D <lab>")
    assert ET.fromstring(device_cnf(cfg)).findtext("devicePool/name") == "R&D <lab>"


def test_no_load_writes_empty_element() -> None:
    root = ET.fromstring(device_cnf(DeviceConfig("SEP001122334455", nodes=(NODE,))))
    assert root.findtext("loadInformation") == ""


@pytest.mark.parametrize("name", ["SEP0011", "sep001122334455", "SEP00112233445G", "../x"])
def test_bad_device_name(name: str) -> None:
    with pytest.raises(ValueError):
        DeviceConfig(name, nodes=(NODE,))


def test_needs_node_and_valid_port() -> None:
    with pytest.raises(ValueError):
        DeviceConfig("SEP001122334455")
    with pytest.raises(ValueError):
        DeviceConfig("SEP001122334455", nodes=(CallManagerNode("h", 0),))
    with pytest.raises(ValueError):
        DefaultConfig(nodes=())


def test_generator() -> None:
    devices = {"SEP001122334455": DeviceConfig("SEP001122334455", nodes=(NODE,))}
    gen = generator(devices, DefaultConfig(nodes=(NODE,)))
    assert gen("SEP001122334455.cnf.xml") == device_cnf(devices["SEP001122334455"])
    assert gen(DEFAULT_FILENAME) is not None
    assert gen("SEP999999999999.cnf.xml") is None
    assert gen("firmware.bin") is None
    assert generator(devices)(DEFAULT_FILENAME) is None


def test_ipv6_node_writes_the_ip_addressing_elements() -> None:
    """Unified CM's layout for an IPv6-capable node; an IPv6 processNodeName is bare."""
    node6 = CallManagerNode("2001:db8::10", 2000)
    cfg = DeviceConfig("SEP001122334455", nodes=(node6,), ip_mode=IPV4_AND_IPV6, prefer_ipv6=True)
    root = ET.fromstring(device_cnf(cfg))
    assert [child.tag for child in root][:4] == [
        "deviceProtocol",
        "ipAddressMode",
        "allowAutoConfig",
        "ipPreferenceModeControl",
    ]
    assert root.findtext("ipAddressMode") == "2"
    assert root.findtext("allowAutoConfig") == "true"
    assert root.findtext("ipPreferenceModeControl") == "1"
    member = "devicePool/callManagerGroup/members/member/callManager/processNodeName"
    assert root.findtext(member) == "2001:db8::10"
    v4_phone = DeviceConfig("SEP001122334455", nodes=(NODE,), ip_mode=IPV4_AND_IPV6)
    assert ET.fromstring(device_cnf(v4_phone)).findtext("ipPreferenceModeControl") == "0"
    default = ET.fromstring(default_cnf(DefaultConfig(nodes=(node6,), ip_mode=IPV6_ONLY)))
    assert [child.tag for child in default][:3] == ["deviceProtocol", "fullConfig", "ipAddressMode"]
    assert default.findtext("ipAddressMode") == "1"


def test_ipv4_only_node_keeps_the_cm41_layout() -> None:
    root = ET.fromstring(device_cnf(DeviceConfig("SEP001122334455", nodes=(NODE,))))
    for tag in ("ipAddressMode", "allowAutoConfig", "ipPreferenceModeControl"):
        assert root.find(tag) is None
    with pytest.raises(ValueError):
        DeviceConfig("SEP001122334455", nodes=(NODE,), ip_mode=3)
    with pytest.raises(ValueError):
        DefaultConfig(nodes=(NODE,), ip_mode=-1)
