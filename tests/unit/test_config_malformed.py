"""Malformed settings are ConfigErrors, never other exceptions (what fuzz/fuzz_config.py found)."""

from __future__ import annotations

from pathlib import Path

import pytest

from offhook.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (b"a = " + b"[" * 3000 + b"]" * 3000, "nested too deeply"),  # RecursionError in tomllib
        (b"a = " + b"{b = " * 3000 + b"1" + b"}" * 3000, "nested too deeply"),
        (b'[node]\nname = "\xff"\n', "not UTF-8"),  # UnicodeDecodeError
        (b"[sip]\nport = 1" + b"0" * 5000 + b"\n", "4300 digits"),  # ValueError from int()
        (b"[sip]\nt1 = inf\n", "finite"),  # an infinite timer
        (b"[sip]\nt1 = nan\n", "finite"),
    ],
    ids=["deep-array", "deep-table", "not-utf8", "huge-int", "inf", "nan"],
)
def test_malformed_file(tmp_path: Path, text: bytes, expect: str) -> None:
    path = tmp_path / "offhook.toml"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value).startswith(str(path))
    assert expect in str(info.value)


def test_deeply_nested_env_list() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"OFFHOOK_SIP__ALLOW": "[" * 5000})
    assert "OFFHOOK_SIP__ALLOW" in str(info.value)
