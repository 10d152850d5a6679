"""DNS rebinding: a page whose host name was re-pointed at the administration.

Its requests come from an allowed source with a matching Origin, but their
Host header names the attacker's domain: refused (421) before any route,
login included. IP addresses, localhost, this machine's name and the names
in ``[web] hosts`` are served; ``["*"]`` turns the check off.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.db.engine import upgrade
from offhook.web.app import create_app
from offhook.web.hosts import host_name
from web.rig import anyio_backend, make_settings

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend"]


def _client(tmp_path: Path, hosts: list[str]) -> httpx.AsyncClient:
    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    app = create_app(make_settings(url, hosts=hosts))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://127.0.0.1")


async def _login_status(client: httpx.AsyncClient, host: str) -> int:
    answer = await client.post(
        "/api/v1/login",
        json={"username": "admin", "password": "not-the-password"},
        headers={"Host": host, "Origin": f"http://{host}"},
    )
    return answer.status_code


async def test_a_rebound_name_is_refused_before_any_route(tmp_path: Path) -> None:
    async with _client(tmp_path, ["pbx.example.com"]) as client:
        for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example"):
            assert await _login_status(client, host) == 421
            health = await client.get("/api/v1/health", headers={"Host": host})
            assert health.status_code == 421
            assert "[web] hosts" in health.json()["detail"]
        for host in (
            "127.0.0.1:8080",
            "[::1]:8080",
            "localhost:8080",
            "PBX.example.com",
            "pbx.example.com.:443",
            socket.gethostname(),
        ):
            assert await _login_status(client, host) == 401, host


async def test_a_star_accepts_every_name(tmp_path: Path) -> None:
    async with _client(tmp_path, ["*"]) as client:
        assert await _login_status(client, "evil.example") == 401


def test_host_name_parsing() -> None:
    assert host_name("Example.COM:8080") == "example.com"
    assert host_name("[2001:db8::1]:443") == "2001:db8::1"
    assert host_name("[2001:db8::1") == "[2001:db8::1"
    assert host_name("2001:db8::1") == "2001:db8::1"
    assert host_name("") == ""


@given(st.text(max_size=300))
def test_host_name_takes_any_header(value: str) -> None:
    name = host_name(value)
    assert isinstance(name, str)
    assert ":" not in name or "[" in value or value.count(":") != 1


@given(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.integers(1, 65535),
)
def test_host_name_drops_the_port(name: str, port: int) -> None:
    assert host_name(f"{name.upper()}:{port}") == name
