"""offhook.audit: listeners, findings and router access-list lines from the settings."""

from __future__ import annotations

import json
from types import SimpleNamespace

from offhook.audit import acl_lines, audit, findings, listeners, valid_acl_number
from offhook.config import Settings, load_settings

LOOPBACK_ONLY = {
    "OFFHOOK_SIP__LISTEN": "127.0.0.1",
    "OFFHOOK_SCCP__LISTEN": "127.0.0.1",
    "OFFHOOK_TFTP__LISTEN": "127.0.0.1",
}


def settings(**env: str) -> Settings:
    return load_settings(None, env=env)


def loopback(**env: str) -> Settings:
    """Every listener on 127.0.0.1 except those ``env`` moves."""
    return load_settings(None, env={**LOOPBACK_ONLY, **env})


def test_loopback_only_defaults_produce_no_warnings() -> None:
    report = audit(loopback())
    assert report.warnings == 0 and report.status == 0
    assert [f for f in report.findings if f.level == "WARN"] == []
    # Nothing to filter in the router, only the final permit.
    assert report.acl_ipv4[-1] == "access-list 101 permit ip any any"
    assert not [line for line in report.acl_ipv4 if " deny " in line]
    assert report.acl_ipv6 == ()


def test_every_listener_is_listed_with_its_limits() -> None:
    items = {(x.service, x.transport): x for x in listeners(settings())}
    assert set(items) == {
        ("sip", "udp"),
        ("sip", "tcp"),
        ("sccp", "tcp"),
        ("tftp", "udp"),
        ("tftp-http", "tcp"),
        ("admin", "tcp"),
        ("web", "tcp"),
    }
    sccp = items[("sccp", "tcp")]
    assert (sccp.address, sccp.port, sccp.allow) == ("0.0.0.0", 2000, ("0.0.0.0/0", "::/0"))
    assert sccp.limits["max_message"] == 4096
    assert sccp.limits["max_connections_per_source"] == 64
    assert "keepalive" in sccp.limits
    admin = items[("admin", "tcp")]
    assert admin.loopback and not admin.open_to_all
    web = items[("web", "tcp")]
    assert (web.address, web.port, web.loopback, web.tls) == ("127.0.0.1", 8080, True, False)
    assert web.limits["max_sessions"] == 10_000 and "max_concurrent_hashes" in web.limits
    # Disabled listeners are not listed.
    off = listeners(
        settings(
            OFFHOOK_SCCP__ENABLED="false",
            OFFHOOK_TFTP__HTTP="false",
            OFFHOOK_ADMIN__ENABLED="false",
            OFFHOOK_WEB__ENABLED="false",
            OFFHOOK_SIP__UDP="false",
        )
    )
    assert [(x.service, x.transport) for x in off] == [("sip", "tcp"), ("tftp", "udp")]


def test_admin_open_to_everything_warns() -> None:
    report = audit(
        loopback(
            OFFHOOK_ADMIN__LISTEN="0.0.0.0",
            OFFHOOK_ADMIN__ALLOW='["0.0.0.0/0"]',
        )
    )
    warns = [f for f in report.findings if f.level == "WARN"]
    assert [f.listener.service for f in warns] == ["admin"]
    assert "control endpoint" in warns[0].message and "[admin] allow" in warns[0].message
    assert report.status == 1
    assert "WARN admin tcp 0.0.0.0:5099:" in report.text()


def test_the_cti_listener_is_listed_when_it_has_a_port_and_warns_open_to_all() -> None:
    assert "cti" not in {x.service for x in listeners(loopback())}  # port 0: no listener
    quiet = {x.service: x for x in listeners(loopback(OFFHOOK_CTI__PORT="2748"))}
    cti = quiet["cti"]
    assert (cti.address, cti.port, cti.transport) == ("127.0.0.1", 2748, "tcp")
    assert cti.limits["max_message"] == 4096 and cti.limits["idle_timeout"] == 120.0
    report = audit(
        loopback(
            OFFHOOK_CTI__PORT="2748",
            OFFHOOK_CTI__LISTEN="0.0.0.0",
            OFFHOOK_CTI__ALLOW='["0.0.0.0/0"]',
        )
    )
    warns = [f for f in report.findings if f.level == "WARN"]
    assert [f.listener.service for f in warns] == ["cti"]
    assert "CSCee00116" in warns[0].message


def test_web_open_to_everything_warns_and_without_tls_is_noted() -> None:
    report = audit(loopback(OFFHOOK_WEB__LISTEN="0.0.0.0", OFFHOOK_WEB__ALLOW='["0.0.0.0/0"]'))
    web = [f for f in report.findings if f.listener.service == "web"]
    assert [f.level for f in web] == ["WARN", "INFO"]
    assert "CSCef47060" in web[0].message and "[web] allow" in web[0].message
    assert "tls_cert" in web[1].message
    assert report.status == 1
    assert "WARN web tcp 0.0.0.0:8080:" in report.text()
    assert "access-list 101 permit tcp any any eq 8080" in report.acl_ipv4
    # Restricted to a management network: no warning, the clear-text note stays.
    managed = audit(loopback(OFFHOOK_WEB__LISTEN="0.0.0.0", OFFHOOK_WEB__ALLOW='["10.9.0.0/24"]'))
    assert managed.status == 0
    assert [f.level for f in managed.findings if f.listener.service == "web"] == ["INFO"]
    assert "access-list 101 permit tcp 10.9.0.0 0.0.0.255 any eq 8080" in managed.acl_ipv4
    assert "access-list 101 deny tcp any any eq 8080" in managed.acl_ipv4
    # With TLS: nothing to note; on loopback (the default): nothing either.
    tls = loopback(
        OFFHOOK_WEB__LISTEN="0.0.0.0",
        OFFHOOK_WEB__ALLOW='["10.9.0.0/24"]',
        OFFHOOK_WEB__TLS_CERT="/etc/offhook/web.pem",
        OFFHOOK_WEB__TLS_KEY="/etc/offhook/web.key",
    )
    assert [f for f in audit(tls).findings if f.listener.service == "web"] == []
    assert [f for f in audit(loopback()).findings if f.listener.service == "web"] == []


def test_admin_open_on_loopback_or_restricted_does_not_warn() -> None:
    on_loopback = audit(loopback(OFFHOOK_ADMIN__ALLOW='["0.0.0.0/0"]'))
    assert on_loopback.status == 0
    restricted = audit(
        loopback(
            OFFHOOK_ADMIN__LISTEN="0.0.0.0",
            OFFHOOK_ADMIN__ALLOW='["10.9.0.0/24"]',
        )
    )
    assert restricted.status == 0


def test_provisioning_open_warns_phones_get_a_notice() -> None:
    report = audit(settings())  # the shipped defaults: everything but admin on 0.0.0.0
    levels = {(f.listener.service, f.listener.transport): f.level for f in report.findings}
    assert levels == {
        ("sip", "udp"): "INFO",
        ("sip", "tcp"): "INFO",
        ("sccp", "tcp"): "INFO",
        ("tftp", "udp"): "WARN",
        ("tftp-http", "tcp"): "WARN",
    }
    sccp = next(f for f in report.findings if f.listener.service == "sccp")
    assert "phone subnets" in sccp.message


def test_ipv6_wildcard_open_to_all_warns() -> None:
    report = audit(loopback(OFFHOOK_ADMIN__LISTEN="::", OFFHOOK_ADMIN__ALLOW='["::/0"]'))
    assert report.status == 1


def test_database_on_a_network_host() -> None:
    url = "postgresql+psycopg://offhook:s3cret@10.0.0.5/offhook"
    report = audit(loopback(OFFHOOK_DATABASE__URL=url), hosts=["192.0.2.10"])
    db = next(x for x in report.listeners if x.service == "database")
    assert (db.address, db.port, db.transport, db.allow) == ("10.0.0.5", 5432, "tcp", None)
    assert any(f.listener is db and f.level == "INFO" for f in report.findings)
    assert "access-list 101 permit tcp host 192.0.2.10 host 10.0.0.5 eq 5432" in report.acl_ipv4
    assert "access-list 101 deny tcp any host 10.0.0.5 eq 5432" in report.acl_ipv4
    assert "s3cret" not in report.text() and "s3cret" not in json.dumps(report.to_json())
    # A local database has no network port; SQLite neither.
    local = audit(settings(OFFHOOK_DATABASE__URL="postgresql+psycopg://u@/offhook"))
    assert not [x for x in local.listeners if x.service == "database"]
    assert audit(settings()).database == "sqlite file (no network port)"
    on_loopback = audit(settings(OFFHOOK_DATABASE__URL="postgresql://u@127.0.0.1:5433/o"))
    db = next(x for x in on_loopback.listeners if x.service == "database")
    assert db.loopback and db.port == 5433


def test_database_with_an_allow_list_open_to_all_warns() -> None:
    # A [database] allow (or a CTI section) is honoured when the settings have one.
    base = loopback(OFFHOOK_DATABASE__URL="postgresql://u@db.example.net/offhook")
    fake = SimpleNamespace(
        **{name: getattr(base, name) for name in ("sip", "sccp", "tftp", "admin")},
        database=SimpleNamespace(url=base.database.url, allow=["0.0.0.0/0"]),
        cti=SimpleNamespace(listen="0.0.0.0", port=2748, allow=["0.0.0.0/0", "::/0"]),
    )
    items = listeners(fake)  # type: ignore[arg-type]
    found = {f.listener.service: f for f in findings(items)}
    assert found["database"].level == "WARN" and "CSCsa75554" in found["database"].message
    assert found["cti"].level == "WARN" and "CSCee00116" in found["cti"].message
    v4, _ = acl_lines(items)
    assert any("db.example.net is a name" in line for line in v4)
    assert "access-list 101 permit tcp any any eq 2748" in v4


def test_acl_lines_for_a_16_a_32_and_an_ipv6_64() -> None:
    s = loopback(
        OFFHOOK_SCCP__LISTEN="::",
        OFFHOOK_SCCP__ALLOW='["10.1.0.0/16", "10.2.3.4/32", "2001:db8:1::/64"]',
    )
    report = audit(s, acl_number=150, hosts=["192.0.2.10", "2001:db8::10"])
    assert report.acl_ipv4 == (
        "access-list 150 remark offhook sip udp port 5060: loopback only, nothing to filter",
        "access-list 150 remark offhook sip tcp port 5060: loopback only, nothing to filter",
        "access-list 150 remark offhook sccp tcp port 2000",
        "access-list 150 permit tcp 10.1.0.0 0.0.255.255 host 192.0.2.10 eq 2000",
        "access-list 150 permit tcp host 10.2.3.4 host 192.0.2.10 eq 2000",
        "access-list 150 deny tcp any host 192.0.2.10 eq 2000",
        "access-list 150 remark offhook tftp udp port 69: loopback only, nothing to filter",
        "access-list 150 remark offhook tftp-http tcp port 6970: loopback only, nothing to filter",
        "access-list 150 remark offhook admin tcp port 5099: loopback only, nothing to filter",
        "access-list 150 remark offhook web tcp port 8080: loopback only, nothing to filter",
        "access-list 150 remark everything else passes, as before (add your own entries above)",
        "access-list 150 permit ip any any",
    )
    assert report.acl_ipv6 == (
        "ipv6 access-list offhook-150",
        " remark offhook sccp tcp port 2000",
        " permit tcp 2001:db8:1::/64 host 2001:db8::10 eq 2000",
        " deny tcp any host 2001:db8::10 eq 2000",
        " permit ipv6 any any",
    )


def test_acl_destination_and_families() -> None:
    # A specific listen address is the destination; an IPv4 listener has no IPv6 entries.
    s = loopback(
        OFFHOOK_SCCP__LISTEN="192.0.2.20",
        OFFHOOK_SCCP__ALLOW='["10.0.0.0/8", "2001:db8::/32"]',
    )
    report = audit(s)
    assert "access-list 101 permit tcp 10.0.0.0 0.255.255.255 host 192.0.2.20 eq 2000" in (
        report.acl_ipv4
    )
    assert report.acl_ipv6 == ()
    # A wildcard listener without a known node address: "any"; external_host is used when set.
    wild = audit(loopback(OFFHOOK_SCCP__LISTEN="0.0.0.0"))
    assert "access-list 101 permit tcp any any eq 2000" in wild.acl_ipv4
    assert "access-list 101 deny tcp any any eq 2000" in wild.acl_ipv4
    ext = audit(loopback(OFFHOOK_SCCP__LISTEN="0.0.0.0", OFFHOOK_SIP__EXTERNAL_HOST="192.0.2.9"))
    assert "access-list 101 deny tcp any host 192.0.2.9 eq 2000" in ext.acl_ipv4
    # UDP listeners get udp entries.
    tftp = audit(
        loopback(
            OFFHOOK_TFTP__LISTEN="192.0.2.20",
            OFFHOOK_TFTP__ALLOW='["10.20.0.0/22"]',
        )
    )
    assert "access-list 101 permit udp 10.20.0.0 0.0.3.255 host 192.0.2.20 eq 69" in (tftp.acl_ipv4)
    assert "access-list 101 permit tcp 10.20.0.0 0.0.3.255 host 192.0.2.20 eq 6970" in (
        tftp.acl_ipv4
    )
    assert tftp.status == 0


def test_json_shape() -> None:
    report = audit(loopback(OFFHOOK_ADMIN__LISTEN="0.0.0.0"))
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == {"listeners", "database", "findings", "acl", "warnings", "status"}
    assert (data["warnings"], data["status"]) == (0, 0)  # admin allow is loopback
    first = data["listeners"][0]
    assert set(first) == {
        "service",
        "section",
        "transport",
        "address",
        "port",
        "allow",
        "families",
        "loopback",
        "open_to_all",
        "limits",
        "tls",
    }
    assert first["service"] == "sip" and first["transport"] == "udp"
    assert first["families"] == [4]
    assert isinstance(first["limits"], dict) and first["limits"]["max_message"] == 65535
    assert set(data["acl"]) == {"number", "ipv4", "ipv6_name", "ipv6"}
    assert data["acl"]["number"] == 101 and data["acl"]["ipv6_name"] == "offhook-101"
    open_admin = audit(
        loopback(OFFHOOK_ADMIN__LISTEN="0.0.0.0", OFFHOOK_ADMIN__ALLOW="0.0.0.0/0")
    ).to_json()
    assert open_admin["status"] == 1 and open_admin["warnings"] == 1
    finding = open_admin["findings"][0]
    assert set(finding) == {"level", "service", "listener", "message"}
    assert (finding["level"], finding["service"]) == ("WARN", "admin")
    assert finding["listener"] == "admin tcp 0.0.0.0:5099"


def test_acl_numbers_and_port_zero() -> None:
    assert valid_acl_number(101) and valid_acl_number(2699)
    assert not valid_acl_number(99) and not valid_acl_number(1300)
    report = audit(loopback(OFFHOOK_SCCP__LISTEN="0.0.0.0", OFFHOOK_SCCP__PORT="0"))
    assert any("port 0" in f.message for f in report.findings)
    assert not [line for line in report.acl_ipv4 if "eq 0" in line]


def test_listen_lists_give_one_entry_per_socket() -> None:
    """["0.0.0.0", "::"]: an IPv4 and an IPv6-only socket; "::" alone: one dual-stack socket."""
    both = listeners(
        loopback(
            OFFHOOK_SCCP__LISTEN='["0.0.0.0", "::"]',
            OFFHOOK_TFTP__LISTEN='["192.0.2.20", "2001:db8::20"]',
        )
    )
    sccp = [(x.address, x.ip_versions) for x in both if x.service == "sccp"]
    assert sccp == [("0.0.0.0", (4,)), ("::", (6,))]
    tftp = [(x.label, x.ip_versions) for x in both if x.service == "tftp"]
    assert tftp == [("tftp udp 192.0.2.20:69", (4,)), ("tftp udp [2001:db8::20]:69", (6,))]
    dual = listeners(loopback(OFFHOOK_SCCP__LISTEN="::"))
    assert [(x.label, x.ip_versions) for x in dual if x.service == "sccp"] == [
        ("sccp tcp [::]:2000", (4, 6))
    ]
    v6_loopback = listeners(loopback(OFFHOOK_ADMIN__LISTEN='["::1", "127.0.0.1"]'))
    admin = [x for x in v6_loopback if x.service == "admin"]
    assert [x.address for x in admin] == ["::1", "127.0.0.1"] and all(x.loopback for x in admin)


def test_ipv6_access_list_beside_the_ipv4_one() -> None:
    s = loopback(
        OFFHOOK_SIP__LISTEN='["0.0.0.0", "::"]',
        OFFHOOK_SIP__ALLOW='["10.1.0.0/16", "2001:db8:1::/64", "2001:db8:2::7"]',
        OFFHOOK_SIP__EXTERNAL_HOST='["192.0.2.10", "2001:db8::10"]',
        OFFHOOK_SIP__TCP="false",
    )
    report = audit(s)  # the node's addresses: external_host, one per family
    assert report.acl_ipv4[:4] == (
        "access-list 101 remark offhook sip udp port 5060",
        "access-list 101 permit udp 10.1.0.0 0.0.255.255 host 192.0.2.10 eq 5060",
        "access-list 101 deny udp any host 192.0.2.10 eq 5060",
        "access-list 101 remark offhook sccp tcp port 2000: loopback only, nothing to filter",
    )
    assert report.acl_ipv6 == (
        "ipv6 access-list offhook-101",
        " remark offhook sip udp port 5060",
        " permit udp 2001:db8:1::/64 host 2001:db8::10 eq 5060",
        " permit udp host 2001:db8:2::7 host 2001:db8::10 eq 5060",
        " deny udp any host 2001:db8::10 eq 5060",
        " permit ipv6 any any",
    )
    text = report.text()
    assert "ipv6 access-list offhook-101\n" in text
    assert "sip udp [::]:5060" in text and "sip udp 0.0.0.0:5060" in text


def test_dual_stack_listener_gets_entries_for_both_families() -> None:
    report = audit(
        loopback(
            OFFHOOK_SCCP__LISTEN="::",
            OFFHOOK_SCCP__ALLOW='["10.0.0.0/8", "fd00:1::/48"]',
        )
    )
    assert "access-list 101 permit tcp 10.0.0.0 0.255.255.255 any eq 2000" in report.acl_ipv4
    assert " permit tcp fd00:1::/48 any eq 2000" in report.acl_ipv6
    assert " deny tcp any any eq 2000" in report.acl_ipv6
    # IPv4 entries only on a dual-stack listener: every IPv6 source is denied.
    v4_only = audit(loopback(OFFHOOK_SCCP__LISTEN="::", OFFHOOK_SCCP__ALLOW='["10.0.0.0/8"]'))
    assert v4_only.acl_ipv6 == (
        "ipv6 access-list offhook-101",
        " remark offhook sccp tcp port 2000",
        " deny tcp any any eq 2000",
        " permit ipv6 any any",
    )


def test_open_to_all_counts_only_the_families_served() -> None:
    # ::/0 opens nothing on an IPv4 socket; it does on the IPv6 one of the same list.
    narrow = audit(loopback(OFFHOOK_ADMIN__LISTEN="0.0.0.0", OFFHOOK_ADMIN__ALLOW='["::/0"]'))
    assert narrow.status == 0
    wide = audit(
        loopback(OFFHOOK_ADMIN__LISTEN='["0.0.0.0", "::"]', OFFHOOK_ADMIN__ALLOW='["::/0"]')
    )
    warns = [f.listener.label for f in wide.findings if f.level == "WARN"]
    assert warns == ["admin tcp [::]:5099"]
