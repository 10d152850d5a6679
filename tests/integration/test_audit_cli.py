"""``offhook audit --config FILE``: the real command on real settings files.

The CLI runs as a subprocess (as an operator or a deployment pipeline runs
it): text and JSON output, and the exit status that gates a deployment
(0 when nothing is flagged WARN, 1 otherwise, 2 for a settings error).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from support.server import CLI, SRC

SAFE = """\
[database]
url = "sqlite:///offhook.db"

[sip]
listen = "192.0.2.10"
allow = ["10.1.0.0/16", "2001:db8:1::/64"]

[sccp]
listen = "::"
allow = ["10.1.0.0/16", "10.2.3.4/32", "2001:db8:1::/64"]

[tftp]
listen = "192.0.2.10"
allow = ["10.1.0.0/16"]

[admin]
listen = "127.0.0.1"
allow = ["127.0.0.1/32"]

[web]
listen = "192.0.2.10"
port = 8443
allow = ["10.9.0.0/24"]
tls_cert = "/etc/offhook/web.pem"
tls_key = "/etc/offhook/web.key"
"""

EXPOSED = """\
[database]
url = "postgresql+psycopg://offhook:pw-Secret-9@10.0.0.5:5433/offhook"

[sip]
listen = "127.0.0.1"

[sccp]
listen = "127.0.0.1"

[tftp]
listen = "127.0.0.1"

[admin]
listen = "0.0.0.0"
allow = ["0.0.0.0/0", "::/0"]
"""


def audit(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFHOOK_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [*CLI, "audit", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_restricted_configuration_passes_and_prints_the_acl(tmp_path: Path) -> None:
    config = tmp_path / "offhook.toml"
    config.write_text(SAFE)
    r = audit(config, "--host", "2001:db8::10", "--acl-number", "120")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert "WARN" not in r.stdout
    for expected in (
        "access-list 120 permit udp 10.1.0.0 0.0.255.255 host 192.0.2.10 eq 5060",
        "access-list 120 deny udp any host 192.0.2.10 eq 5060",
        "access-list 120 permit tcp 10.1.0.0 0.0.255.255 host 192.0.2.10 eq 5060",
        "access-list 120 permit tcp host 10.2.3.4 any eq 2000",
        "access-list 120 deny tcp any any eq 2000",
        "access-list 120 permit udp 10.1.0.0 0.0.255.255 host 192.0.2.10 eq 69",
        "access-list 120 permit tcp 10.1.0.0 0.0.255.255 host 192.0.2.10 eq 6970",
        "access-list 120 permit tcp 10.9.0.0 0.0.0.255 host 192.0.2.10 eq 8443",
        "access-list 120 deny tcp any host 192.0.2.10 eq 8443",
        "access-list 120 permit ip any any",
        "ipv6 access-list offhook-120",
        " permit tcp 2001:db8:1::/64 host 2001:db8::10 eq 2000",
        " deny tcp any host 2001:db8::10 eq 2000",
        " permit ipv6 any any",
    ):
        assert expected in lines, f"{expected!r} missing from:\n{r.stdout}"
    # The final permit comes after every port's entries.
    assert lines.index("access-list 120 permit ip any any") > lines.index(
        "access-list 120 deny tcp any any eq 2000"
    )
    assert "no warnings: exit status 0" in r.stdout
    assert "  web tcp 192.0.2.10:8443 " in r.stdout


def test_exposed_web_fails_the_audit(tmp_path: Path) -> None:
    config = tmp_path / "offhook.toml"
    config.write_text(SAFE.replace('allow = ["10.9.0.0/24"]', 'allow = ["0.0.0.0/0"]'))
    r = audit(config)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "WARN web tcp 192.0.2.10:8443: the web administration open to every network" in r.stdout
    tls = 'tls_cert = "/etc/offhook/web.pem"\ntls_key = "/etc/offhook/web.key"\n'
    plain = SAFE.replace(tls, "")
    assert plain != SAFE
    config.write_text(plain)
    r = audit(config)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "INFO web tcp 192.0.2.10:8443: the web administration without TLS" in r.stdout


def test_exposed_admin_fails_the_audit(tmp_path: Path) -> None:
    config = tmp_path / "offhook.toml"
    config.write_text(EXPOSED)
    r = audit(config)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "WARN admin tcp 0.0.0.0:5099:" in r.stdout
    assert "database tcp 10.0.0.5:5433" in r.stdout
    assert "pw-Secret-9" not in r.stdout

    j = audit(config, "--json")
    assert j.returncode == 1
    data = json.loads(j.stdout)
    assert data["status"] == 1 and data["warnings"] == 1
    assert [f["service"] for f in data["findings"] if f["level"] == "WARN"] == ["admin"]
    services = {(x["service"], x["transport"]): x for x in data["listeners"]}
    assert services[("admin", "tcp")]["open_to_all"] is True
    assert services[("database", "tcp")]["port"] == 5433
    assert services[("database", "tcp")]["allow"] is None
    assert "access-list 101 deny tcp any any eq 5099" in data["acl"]["ipv4"]
    assert data["acl"]["ipv6"] == []  # admin listens on 0.0.0.0: IPv4 only


def test_bad_settings_and_options(tmp_path: Path) -> None:
    config = tmp_path / "offhook.toml"
    config.write_text('[admin]\nallow = ["not-a-network"]\n')
    r = audit(config)
    assert r.returncode == 2 and "not an IP network" in r.stderr
    config.write_text(SAFE)
    assert audit(config, "--acl-number", "99").returncode == 2
    assert audit(config, "--host", "node.example").returncode == 2


LISTS = """\
[database]
url = "sqlite:///offhook.db"

[sip]
listen = ["0.0.0.0", "::"]
allow = ["10.1.0.0/16", "2001:db8:1::/64"]
external_host = ["192.0.2.10", "2001:db8::10"]

[sccp]
listen = ["192.0.2.10", "2001:db8::10"]
allow = ["10.1.0.0/16", "2001:db8:1::/64"]

[tftp]
enabled = false

[admin]
listen = ["127.0.0.1", "::1"]
"""


def test_listen_lists_and_ipv6_access_list(tmp_path: Path) -> None:
    """One entry per listen address, and the IPv6 lines next to the IPv4 ones."""
    config = tmp_path / "offhook.toml"
    config.write_text(LISTS)
    r = audit(config)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    for expected in (
        "access-list 101 permit udp 10.1.0.0 0.0.255.255 host 192.0.2.10 eq 5060",
        "access-list 101 permit tcp 10.1.0.0 0.0.255.255 host 192.0.2.10 eq 2000",
        "ipv6 access-list offhook-101",
        " permit udp 2001:db8:1::/64 host 2001:db8::10 eq 5060",
        " deny udp any host 2001:db8::10 eq 5060",
        " permit tcp 2001:db8:1::/64 host 2001:db8::10 eq 2000",
        " permit ipv6 any any",
    ):
        assert expected in lines, f"{expected!r} missing from:\n{r.stdout}"
    for label in ("sip udp 0.0.0.0:5060", "sip udp [::]:5060", "sccp tcp [2001:db8::10]:2000"):
        assert f"  {label} " in r.stdout, r.stdout
    data = json.loads(audit(config, "--json").stdout)
    admin = [x for x in data["listeners"] if x["service"] == "admin"]
    assert [(x["address"], x["families"], x["loopback"]) for x in admin] == [
        ("127.0.0.1", [4], True),
        ("::1", [6], True),
    ]
    sip = [(x["address"], x["families"]) for x in data["listeners"] if x["service"] == "sip"]
    assert sip == [("0.0.0.0", [4]), ("::", [6])] * 2  # UDP, then TCP
