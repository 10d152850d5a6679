"""The node's provisioning files: cnf.xml per plan snapshot, XMLDefault, ring lists, settings."""

from __future__ import annotations

import asyncio
import logging
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from offhook.config import load_settings
from offhook.core.directory import DeviceInfo, LineInfo, PlanSnapshot
from offhook.net.counters import RejectionCounters
from offhook.tftp.cnf import DEFAULT_FILENAME
from offhook.tftp.files import FileRefused, FileSource
from offhook.tftp.provision import (
    GMT_ZONE,
    CnfSettings,
    Provisioning,
    ProvisioningFiles,
    ring_list,
    tftp_root,
)

SEP = "SEP001122334455"
CNF = CnfSettings(host="192.0.2.10", sccp_port=2001, load="P00308000500", device_pool="Lab")


def snapshot(*names: str, version: int = 1) -> PlanSnapshot:
    devices = [DeviceInfo(n, "sccp", (LineInfo("1003"),), model="7960") for n in names]
    devices.append(DeviceInfo("alice", "sip", (LineInfo("1001"),)))
    return PlanSnapshot.build(devices, version)


class Holder:
    def __init__(self, snap: PlanSnapshot) -> None:
        self.snap = snap
        self.cnf = CNF
        self.calls = 0

    def snapshot(self) -> PlanSnapshot:
        self.calls += 1
        return self.snap


def files(holder: Holder, root: Path | None = None) -> ProvisioningFiles:
    return ProvisioningFiles(holder.snapshot, lambda: holder.cnf, root)


def test_device_cnf_from_snapshot() -> None:
    gen = files(Holder(snapshot(SEP)))
    data = gen(f"{SEP}.cnf.xml")
    assert data is not None
    root = ET.fromstring(data)
    assert root.findtext("devicePool/name") == "Lab"
    member = root.find("devicePool/callManagerGroup/members/member")
    assert member is not None and member.get("priority") == "0"
    assert member.findtext("callManager/processNodeName") == "192.0.2.10"
    assert member.findtext("callManager/ports/ethernetPhonePort") == "2001"
    assert root.findtext("loadInformation") == "P00308000500"
    assert root.findtext("devicePool/dateTimeSetting/timeZone") == GMT_ZONE
    assert root.findtext("userLocale/name") == "English_United_States"
    assert root.findtext("userLocale/langCode") == "en"
    assert root.findtext("networkLocale") == "United_States"
    assert gen(f"{SEP.lower()}.cnf.xml") == data  # the MAC in either case


def test_only_sccp_devices_of_the_plan() -> None:
    gen = files(Holder(snapshot(SEP)))
    assert gen("SEP00AABBCCDDEE.cnf.xml") is None
    assert gen("alice.cnf.xml") is None  # a SIP device has no SCCP config
    assert gen("firmware.bin") is None


def test_cached_per_snapshot_and_regenerated_on_change() -> None:
    holder = Holder(snapshot(SEP))
    gen = files(holder)
    first = gen(f"{SEP}.cnf.xml")
    assert first is not None and gen(f"{SEP}.cnf.xml") is first  # cached
    holder.snap = snapshot(version=2)  # the phone was removed from the plan
    assert gen(f"{SEP}.cnf.xml") is None
    holder.snap = snapshot(SEP, "SEP00AABBCCDDEE", version=3)
    again = gen(f"{SEP}.cnf.xml")
    assert again == first and again is not first
    assert gen("SEP00AABBCCDDEE.cnf.xml") is not None
    holder.cnf = CnfSettings(host="192.0.2.11")  # node settings changed too
    changed = gen(f"{SEP}.cnf.xml")
    assert changed is not None and b"192.0.2.11" in changed


def test_xml_default() -> None:
    data = files(Holder(snapshot()))(DEFAULT_FILENAME)
    assert data is not None
    root = ET.fromstring(data)
    assert (
        root.findtext("devicePool/callManagerGroup/members/member/callManager/processNodeName")
        == "192.0.2.10"
    )
    assert root.findtext("loadInformation") == "P00308000500"


def test_generated_wins_over_root_and_root_serves_the_rest(tmp_path: Path) -> None:
    (tmp_path / f"{SEP}.cnf.xml").write_bytes(b"stale")
    (tmp_path / "SEP00AABBCCDDEE.cnf.xml").write_bytes(b"static phone")
    (tmp_path / "P00308000500.bin").write_bytes(b"firmware")
    (tmp_path.parent / "secret").write_bytes(b"secret")
    source = FileSource(tmp_path, files(Holder(snapshot(SEP)), tmp_path))
    assert source.read(f"{SEP}.cnf.xml").startswith(b"<?xml")
    assert source.read("SEP00AABBCCDDEE.cnf.xml") == b"static phone"
    assert source.read("P00308000500.bin") == b"firmware"
    with pytest.raises(FileRefused):
        source.read("../secret")


def test_ring_list_names_the_ring_files_in_root(tmp_path: Path) -> None:
    gen = files(Holder(snapshot()), tmp_path)
    empty = gen("RingList.xml")
    assert empty is not None and ET.fromstring(empty).tag == "CiscoIPPhoneRingList"
    assert not ET.fromstring(empty).findall("Ring")
    (tmp_path / "Chirp1.raw").write_bytes(b"\x00" * 10)
    (tmp_path / "Analog1.raw").write_bytes(b"\x00" * 10)
    (tmp_path / "Custom.raw").write_bytes(b"\x00" * 10)
    (tmp_path / "dir.raw").mkdir()
    data = gen("RingList.xml")
    assert data is not None and not data.startswith(b"<?xml")  # as CallManager's file
    rings = [
        (r.findtext("DisplayName"), r.findtext("FileName"))
        for r in ET.fromstring(data).findall("Ring")
    ]
    assert rings == [
        ("Analog Synth 1", "Analog1.raw"),
        ("Chirp 1", "Chirp1.raw"),
        ("Custom", "Custom.raw"),
    ]
    assert gen("DistinctiveRingList.xml") == data
    # The administrator's own list wins.
    (tmp_path / "RingList.xml").write_bytes(b"<CiscoIPPhoneRingList/>")
    assert gen("RingList.xml") is None
    source = FileSource(tmp_path, gen)
    assert source.read("RingList.xml") == b"<CiscoIPPhoneRingList/>"


def test_ring_list_is_bounded() -> None:
    data = ring_list([f"r{i}.raw" for i in range(80)])
    assert len(ET.fromstring(data).findall("Ring")) == 50


def test_cnf_settings_from_settings(tmp_path: Path) -> None:
    config = tmp_path / "offhook.toml"
    config.write_text(
        '[sip]\nlisten = "127.0.0.1"\n[sccp]\nport = 2100\n'
        '[tftp]\nload_information = "SCCP41.8-5-2S"\ndevice_pool = "HQ"\n'
        'locale = "French_France"\ntime_zone = "Central Europe Standard/Daylight Time"\n'
        'root = "files"\n'
    )
    settings = load_settings(config, env={})
    cnf = CnfSettings.from_settings(settings)
    assert (cnf.host, cnf.sccp_port, cnf.load, cnf.device_pool) == (
        "127.0.0.1",  # SCCP on every interface: SIP's advertised address
        2100,
        "SCCP41.8-5-2S",
        "HQ",
    )
    assert (cnf.lang_code, cnf.network_locale) == ("fr", "France")
    assert cnf.time_zone == "Central Europe Standard/Daylight Time"
    assert tftp_root(settings) == tmp_path / "files"  # relative to the settings file
    env = {
        "OFFHOOK_SCCP__LISTEN": "127.0.0.5",
        "OFFHOOK_TFTP__TIME_ZONE": "UTC",
    }
    cnf = CnfSettings.from_settings(load_settings(config, env=env))
    assert cnf.host == "127.0.0.5" and cnf.time_zone == GMT_ZONE
    env["OFFHOOK_SIP__EXTERNAL_HOST"] = "cm1.example.net"
    assert CnfSettings.from_settings(load_settings(config, env=env)).host == "cm1.example.net"


def test_ports_in_use_are_warnings_not_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A TFTP/HTTP port that cannot be bound leaves that listener off; nothing raises."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind(("127.0.0.1", 0))
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        env = {
            "OFFHOOK_TFTP__LISTEN": "127.0.0.1",
            "OFFHOOK_TFTP__PORT": str(udp.getsockname()[1]),
            "OFFHOOK_TFTP__HTTP_PORT": str(tcp.getsockname()[1]),
            "OFFHOOK_TFTP__ROOT": str(tmp_path),
        }
        prov = Provisioning(load_settings(None, env=env), snapshot, RejectionCounters())

        async def main() -> None:
            await prov.start()
            await prov.close()

        with caplog.at_level(logging.WARNING, logger="offhook.tftp"):
            asyncio.run(main())
    finally:
        udp.close()
        tcp.close()
    assert prov.tftp_port is None and prov.http_port is None
    text = caplog.text
    assert "[tftp] port (OFFHOOK_TFTP__PORT)" in text
    assert "[tftp] http_port (OFFHOOK_TFTP__HTTP_PORT)" in text
    status = prov.status()
    assert status["port"] is None and status["active_transfers"] == 0


def test_cnf_names_the_bound_sccp_port(tmp_path: Path) -> None:
    """With [sccp] port 0 the listener's real port, once known, is what phones are told."""
    env = {"OFFHOOK_SCCP__PORT": "0", "OFFHOOK_TFTP__ROOT": str(tmp_path)}
    bound = [0]
    prov = Provisioning(
        load_settings(None, env=env), snapshot, RejectionCounters(), sccp_port=lambda: bound[0]
    )
    assert prov.cnf().sccp_port == 0
    assert prov.files(DEFAULT_FILENAME) is None  # no port to tell phones yet: no file
    bound[0] = 2345
    assert prov.cnf().sccp_port == 2345
    data = prov.files(DEFAULT_FILENAME)
    assert data is not None and b"<ethernetPhonePort>2345<" in data


def test_a_device_name_that_is_not_sep_gets_no_file() -> None:
    """Rows loaded before SEP names were enforced: no file, no exception."""
    snap = PlanSnapshot.build([DeviceInfo("SEPXYZ.OLD", "sccp", model="7960")], 1)
    assert files(Holder(snap))("SEPXYZ.OLD.cnf.xml") is None


NODE_PATH = "devicePool/callManagerGroup/members/member/callManager/processNodeName"


def node_of(data: bytes | None) -> tuple[str | None, str | None, str | None]:
    assert data is not None
    root = ET.fromstring(data)
    return (
        root.findtext(NODE_PATH),
        root.findtext("ipAddressMode"),
        root.findtext("ipPreferenceModeControl"),
    )


def test_the_node_is_named_by_the_family_the_phone_used() -> None:
    holder = Holder(snapshot(SEP))
    holder.cnf = CnfSettings(host="192.0.2.10", host6="2001:db8::10", families=(4, 6))
    gen = files(holder)
    over4, over6 = gen(f"{SEP}.cnf.xml", 4), gen(f"{SEP}.cnf.xml", 6)
    assert node_of(over4) == ("192.0.2.10", "2", "0")
    assert node_of(over6) == ("2001:db8::10", "2", "1")
    assert gen(f"{SEP}.cnf.xml", 6) is over6  # cached per IP version
    assert node_of(gen(DEFAULT_FILENAME, 6))[0] == "2001:db8::10"
    # An IPv4-only node: every phone gets the IPv4 address, in the CM 4.1 layout.
    holder.cnf = CnfSettings(host="192.0.2.10")
    assert node_of(gen(f"{SEP}.cnf.xml", 6)) == ("192.0.2.10", None, None)
    # An IPv6-only node: every phone gets the IPv6 address and signals over IPv6.
    holder.cnf = CnfSettings(host="2001:db8::10", host6="2001:db8::10", families=(6,))
    assert node_of(gen(f"{SEP}.cnf.xml", 4)) == ("2001:db8::10", "1", "1")


def cnf_of(**env: str) -> CnfSettings:
    return CnfSettings.from_settings(load_settings(None, env={"OFFHOOK_SIP__LISTEN": "::", **env}))


def test_cnf_settings_per_family() -> None:
    # external_host, one address per family: each family's phones get theirs.
    cnf = cnf_of(
        OFFHOOK_SCCP__LISTEN="::",
        OFFHOOK_SIP__EXTERNAL_HOST='["198.51.100.10", "2001:db8::10"]',
    )
    assert (cnf.host, cnf.host6, cnf.families) == ("198.51.100.10", "2001:db8::10", (4, 6))
    assert cnf.ip_mode == 2
    # Specific SCCP addresses of each family (written canonical).
    cnf = cnf_of(OFFHOOK_SCCP__LISTEN='["127.0.0.5", "::1"]')
    assert (cnf.host, cnf.host6) == ("127.0.0.5", "::1")
    # IPv6 only.
    cnf = cnf_of(OFFHOOK_SCCP__LISTEN="::1")
    assert (cnf.host, cnf.host6, cnf.families, cnf.ip_mode) == ("::1", "::1", (6,), 1)
    assert cnf.node_host(4) == "::1"
    # IPv4 only, the shipped default: no IPv6 address, the 4.1 layout.
    cnf = cnf_of(OFFHOOK_SIP__LISTEN="127.0.0.1", OFFHOOK_SCCP__LISTEN="0.0.0.0")
    assert (cnf.host, cnf.host6, cnf.families, cnf.ip_mode) == ("127.0.0.1", "", (4,), None)
    assert cnf.node_host(6) == "127.0.0.1"
    # A host name names the node to both families.
    cnf = cnf_of(OFFHOOK_SCCP__LISTEN="::", OFFHOOK_SIP__EXTERNAL_HOST="cm1.example.net")
    assert (cnf.host, cnf.host6) == ("cm1.example.net", "cm1.example.net")


def test_status_names_the_call_manager_per_family(tmp_path: Path) -> None:
    env = {
        "OFFHOOK_SCCP__LISTEN": '["127.0.0.5", "::1"]',
        "OFFHOOK_TFTP__LISTEN": '["127.0.0.1", "::1"]',
        "OFFHOOK_TFTP__ROOT": str(tmp_path),
    }
    prov = Provisioning(load_settings(None, env=env), snapshot, RejectionCounters())
    status = prov.status()
    assert status["listen"] == ["127.0.0.1", "::1"]
    assert status["call_manager"] == "127.0.0.5:2000, [::1]:2000"
