"""[media] settings of the media server: listen, advertise, control address, allow-lists."""

from __future__ import annotations

import pytest

from offhook.config import ConfigError, MediaSettings, load_settings
from offhook.media.control import ControlAddress, parse_control_address


def media(**env: str) -> MediaSettings:
    return load_settings(None, env={f"OFFHOOK_MEDIA__{k.upper()}": v for k, v in env.items()}).media


def test_defaults() -> None:
    m = media()
    assert m.embedded and m.bridge
    assert m.listen == ["0.0.0.0"] and m.advertise == [] and m.control == ""
    assert m.allow == ["0.0.0.0/0", "::/0"]
    assert m.control_allow == ["127.0.0.1/32", "::1/128"]
    assert m.rtp_timeout == 60 and m.port_range == (16384, 32767)


def test_values_written_canonical() -> None:
    m = media(
        listen='["127.0.0.1", "::1"]',
        advertise='["192.0.2.7", "2001:DB8::7"]',
        control="[::1]:2429",
        rtp_timeout="0",
    )
    assert m.listen == ["127.0.0.1", "::1"]
    assert m.advertise == ["192.0.2.7", "2001:db8::7"]
    assert m.control == "[::1]:2429"
    assert media(control="unix:/run/offhook/media.sock").control == "unix:/run/offhook/media.sock"


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("advertise", '["192.0.2.1", "192.0.2.2"]', "one address per family"),
        ("advertise", "0.0.0.0", "not a specific IP"),
        ("advertise", "media.example.com", "not a specific IP"),
        ("control", "localhost:2429", "must be an IP address"),
        ("control", "127.0.0.1", "expected unix:PATH"),
        ("control", "::1:2429", "brackets"),
        ("control", "127.0.0.1:70000", "expected unix:PATH"),
        ("control", "unix:", "Unix socket path"),
        ("control", "unix:/" + "x" * 200, "Unix socket path"),
        ("control_allow", "loopback", "not an IP network"),
        ("listen", '["0.0.0.0", "127.0.0.1"]', "cannot share a port"),
        ("rtp_timeout", "-1", "rtp_timeout"),
    ],
)
def test_refused(key: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        media(**{key: value})
    assert needle in str(info.value)


def test_control_address_round_trip() -> None:
    for text in ("unix:/tmp/m.sock", "127.0.0.1:2429", "[::1]:9"):
        assert str(parse_control_address(text)) == text
    assert parse_control_address(" [0:0::1]:5 ") == ControlAddress(host="::1", port=5)
    assert parse_control_address("unix:rel.sock").unix
