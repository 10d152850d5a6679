"""Settings: TOML file, OFFHOOK_* environment overrides, validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from offhook.config import (
    SAMPLE_TOML,
    ConfigError,
    default_config_path,
    default_external_host,
    load_settings,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "offhook.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    s = load_settings(None, env={})
    assert s.sip.port == 5060
    assert s.sip.listen == ["0.0.0.0"]
    assert "0.0.0.0/0" in s.sip.allow
    assert s.sip.udp and s.sip.tcp
    assert s.sip.realm == "offhook"
    assert s.admin.port == 5099 and s.admin.listen == ["127.0.0.1"]
    assert s.log.level == "info" and s.log.format == "text"
    assert s.node.name
    assert s.database.url.startswith("sqlite:///")
    assert s.database.url.endswith("offhook.db")


def test_toml_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[node]
name = "cm1"
[database]
url = "sqlite:////var/lib/offhook/x.db"
[sip]
listen = "127.0.0.1"
port = 5070
allow = ["127.0.0.0/8", "10.1.2.3"]
realm = "example.com"
t1 = 0.25
[log]
level = "DEBUG"
format = "json"
""",
    )
    s = load_settings(path, env={})
    assert s.node.name == "cm1"
    assert s.database.url == "sqlite:////var/lib/offhook/x.db"
    assert s.sip.port == 5070
    assert s.sip.allow == ["127.0.0.0/8", "10.1.2.3/32"]
    assert s.sip.realm == "example.com"
    assert s.sip.t1 == 0.25
    assert s.sip.advertised_host == "127.0.0.1"
    assert s.log.level == "debug" and s.log.format == "json"
    assert s.source == path


def test_relative_sqlite_is_relative_to_config_dir(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    path = sub / "offhook.toml"
    path.write_text('[database]\nurl = "sqlite:///data/offhook.db"\n')
    s = load_settings(path, env={})
    assert s.database.url == f"sqlite:///{(sub / 'data' / 'offhook.db').resolve()}"


def test_memory_and_postgres_urls_untouched(tmp_path: Path) -> None:
    env = {"OFFHOOK_DATABASE__URL": "sqlite://"}
    assert load_settings(None, env=env).database.url == "sqlite://"
    pg = "postgresql+psycopg://u:p%40ss@db:5432/offhook"
    assert load_settings(None, env={"OFFHOOK_DATABASE__URL": pg}).database.url == pg


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[sip]\nport = 5070\nudp = true\n")
    env = {
        "OFFHOOK_SIP__PORT": "5080",
        "OFFHOOK_SIP__UDP": "false",
        "OFFHOOK_SIP__ALLOW": '["127.0.0.1/32", "::1/128"]',
        "OFFHOOK_ADMIN__ALLOW": "127.0.0.1/32, 10.0.0.0/8",
        "OFFHOOK_NODE__NAME": "0042",
        "OFFHOOK_LOG__LEVEL": "warning",
        "OFFHOOK_TEST_PG_URL": "ignored: not a section__key variable",
        "PATH": "/bin",
    }
    s = load_settings(path, env=env)
    assert s.sip.port == 5080
    assert s.sip.udp is False
    assert s.sip.allow == ["127.0.0.1/32", "::1/128"]
    assert s.admin.allow == ["127.0.0.1/32", "10.0.0.0/8"]
    assert s.node.name == "0042"  # string fields are taken verbatim
    assert s.log.level == "warning"


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("[sip]\nprot = 5060\n", {}, "[sip] prot: unknown key"),
        ("[sipp]\nport = 5060\n", {}, "[sipp]: unknown section"),
        ('[sip]\nallow = ["10.0.0.0/33"]\n', {}, "[sip] allow"),
        ('[admin]\nallow = ["not-a-net"]\n', {}, "[admin] allow"),
        ("[sip]\nport = 70000\n", {}, "[sip] port"),
        ("[sip]\nport = \n", {}, "invalid TOML"),
        ('[log]\nlevel = "loud"\n', {}, "[log] level"),
        ("[sip]\nmin_expires = 600\nmax_expires = 60\n", {}, "[sip] max_expires"),
        ("", {"OFFHOOK_SIP__PORT": "abc"}, "(from OFFHOOK_SIP__PORT)"),
        ("", {"OFFHOOK_SIP__NOPE": "1"}, "OFFHOOK_SIP__NOPE: unknown key"),
        ("", {"OFFHOOK_NOPE__PORT": "1"}, "OFFHOOK_NOPE__PORT: unknown settings section"),
        ("", {"OFFHOOK_SIP__ALLOW": "[oops"}, "OFFHOOK_SIP__ALLOW: invalid JSON"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict[str, str], needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env)
    message = str(info.value)
    assert needle in message
    if not env:
        assert str(path) in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml", env={})


def test_sample_toml_is_valid_and_complete(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, SAMPLE_TOML), env={})
    assert s.sip.port == 5060
    for section in type(s).model_fields:
        if section == "source":
            continue
        assert f"[{section}]" in SAMPLE_TOML
        sub = getattr(s, section)
        for key in type(sub).model_fields:
            assert f"{key} =" in SAMPLE_TOML, (section, key)


def test_default_config_path(tmp_path: Path) -> None:
    assert default_config_path(tmp_path) is None
    path = write(tmp_path, "")
    assert default_config_path(tmp_path) == path


def test_external_host() -> None:
    assert default_external_host("127.0.0.5") == "127.0.0.5"
    assert default_external_host("0.0.0.0") not in {"", "0.0.0.0"}
    s = load_settings(None, env={"OFFHOOK_SIP__EXTERNAL_HOST": "pbx.example.com"})
    assert s.sip.advertised_host == "pbx.example.com"


def test_auth_secret() -> None:
    a = load_settings(None, env={})
    b = load_settings(None, env={})
    assert a.auth.key and a.auth.key == a.auth.key
    assert a.auth.key != b.auth.key  # random per process/settings when unset
    c = load_settings(None, env={"OFFHOOK_AUTH__SECRET": "cluster-wide-secret-1"})
    assert c.auth.key == b"cluster-wide-secret-1"


def test_short_auth_secret_refused() -> None:
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        load_settings(None, env={"OFFHOOK_AUTH__SECRET": "short"})
