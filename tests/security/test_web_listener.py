"""The web listener's defences, on a live ``serve_web`` (real sockets, real uvicorn).

- An address outside ``[web] allow`` is reset before a byte is read: a
  client bound to 127.0.0.2 connecting with ``allow = 127.0.0.1/32`` gets
  no HTTP answer at all, while 127.0.0.1 is served; the refusal is counted
  under ``acl``.
- A request head over 16 KiB is refused and the connection closed; a body
  over ``max_message`` gets 413 before the app sees it (declared or sent
  chunked without a length).
- A request head trickled byte by byte is cut off at ``handshake_timeout``
  (trickling does not extend it).
- A request body trickled just under the idle timeout is cut off once it
  is slower than ``MIN_BODY_RATE`` over the whole body.
- A client that sends requests and never reads the answers is cut off
  once its answers have waited ``idle_timeout`` in a full send buffer, and
  its connection slot is released.
- With ``tls_cert``/``tls_key`` the listener speaks HTTPS and the session
  cookie is Secure.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from offhook.config import Settings
from offhook.db.engine import create_engine_for, upgrade
from offhook.db.users import UserStore, password_hasher
from web.rig import PASSWORD, live_server, make_settings


def _settings(tmp_path: Path, **web: Any) -> Settings:
    url = f"sqlite:///{tmp_path / 'web.db'}"
    settings = make_settings(url, listen=["127.0.0.1"], port=0, **web)
    engine = create_engine_for(url)
    upgrade(engine)
    UserStore(engine, password_hasher(1, 8, 1)).add("admin", "full-admin", PASSWORD)
    engine.dispose()
    return settings


def _raw(port: int, data: bytes, source: str = "127.0.0.1", wait: float = 10.0) -> bytes:
    """Send ``data`` from ``source`` and read until the server closes (or ``wait`` passes)."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=wait, source_address=(source, 0)
    ) as s:
        try:
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        except ConnectionResetError:
            return b"<reset>"


def test_outsider_is_reset_insider_served(tmp_path: Path) -> None:
    settings = _settings(tmp_path, allow=["127.0.0.1/32"])
    with live_server(settings) as server:
        request = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        inside = _raw(server.port, request)
        assert inside.startswith(b"HTTP/1.1 200"), inside[:200]
        outside = _raw(server.port, request, source="127.0.0.2")
        assert outside in (b"", b"<reset>")  # no HTTP answer
        assert server.context.rejections.get("web", "acl") == 1
        assert (
            server.guard.status()["connections"] == 0
            or server.guard.status()["connection_sources"] <= 1
        )


def test_connections_per_source_capped(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, allow=["127.0.0.0/8"], max_connections_per_source=2, idle_timeout=30
    )
    with live_server(settings) as server:
        held = [
            socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.5", 0))
            for _ in range(2)
        ]
        try:
            request = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            third = _raw(server.port, request, source="127.0.0.5")
            assert third in (b"", b"<reset>")
            other = _raw(server.port, request, source="127.0.0.6")
            assert other.startswith(b"HTTP/1.1 200")
            assert server.context.rejections.get("web", "max-connections-per-source") == 1
        finally:
            for s in held:
                s.close()


def test_head_and_body_bounds(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_message=8192)
    with live_server(settings) as server:
        big_head = (
            b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: "
            + b"a" * (40 * 1024)
            + b"\r\n\r\n"
        )
        answer = _raw(server.port, big_head)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
        assert server.context.rejections.get("web", "too-large") == 1
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base) as client:
            login = {"username": "admin", "password": PASSWORD}
            token_answer = client.post("/api/v1/login", json=login)
            assert token_answer.status_code == 200
            declared = client.post("/api/v1/login", content=b"{" + b" " * 9000 + b"}")
            assert declared.status_code == 413

            def chunks() -> object:
                for _ in range(20):
                    yield b" " * 1000

            streamed = client.post(
                "/api/v1/login",
                content=chunks(),  # type: ignore[arg-type]
                headers={"content-type": "application/json"},
            )
            assert streamed.status_code == 413


def test_trickled_head_is_cut_off(tmp_path: Path) -> None:
    settings = _settings(tmp_path, handshake_timeout=0.5, idle_timeout=30)
    with live_server(settings) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
            head = b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200
            closed = False
            for byte in head:
                try:
                    s.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.05)  # 200+ bytes: several times the deadline
            if not closed:
                try:
                    closed = s.recv(100) == b""
                except ConnectionResetError:
                    closed = True
            assert closed
        assert server.context.rejections.get("web", "handshake-timeout") >= 1


def test_trickled_body_is_cut_off(tmp_path: Path) -> None:
    # Budget: idle 0.6 s + 4096 bytes at MIN_BODY_RATE (0.5 s) = 1.1 s for the body;
    # a byte every 0.1 s keeps under the idle timeout and would need 400 s.
    settings = _settings(tmp_path, max_message=4096, idle_timeout=0.6, handshake_timeout=10)
    with live_server(settings) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
            s.sendall(
                b"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
            )
            closed = False
            for _ in range(4000):  # at most 400 s: the server must cut it off long before
                try:
                    s.sendall(b" ")
                except OSError:
                    closed = True
                    break
                time.sleep(0.1)
                if _peer_closed(s):
                    closed = True
                    break
            assert closed
        refused = server.context.rejections.snapshot().get("web", {})
        assert refused.get("idle-timeout", 0) >= 1, refused


def test_a_client_that_never_reads_is_cut_off(tmp_path: Path) -> None:
    settings = _settings(tmp_path, allow=["127.0.0.0/8"], idle_timeout=1.0, handshake_timeout=10)
    request = b"GET /static/htmx.min.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with live_server(settings) as server:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.bind(("127.0.0.7", 0))
            s.connect(("127.0.0.1", server.port))
            s.settimeout(20)
            # About 10 MB of answers asked for, none read: far more than the socket buffers.
            s.sendall(request * 200)
            assert _eventually(lambda: server.guard.status()["connections"] == 1)
            assert _eventually(lambda: server.guard.status()["connections"] == 0, within=60)
            refused = server.context.rejections.snapshot().get("web", {})
            assert refused.get("idle-timeout", 0) >= 1, refused
            served = _raw(
                server.port, request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
            )
            assert served.startswith(b"HTTP/1.1 200"), served[:100]
        finally:
            s.close()


def _peer_closed(s: socket.socket) -> bool:
    """Whether the server has closed or reset ``s`` (without waiting)."""
    s.setblocking(False)
    try:
        return s.recv(100) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)
        s.settimeout(20)


def _eventually(check: Callable[[], bool], within: float = 20.0) -> bool:
    """Whether ``check`` holds within ``within`` seconds (the server thread counts late)."""
    end = time.monotonic() + within
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def test_tls_listener_and_secure_cookie(tmp_path: Path) -> None:
    if subprocess.run(["which", "openssl"], capture_output=True).returncode != 0:
        pytest.skip("openssl is not installed")
    cert, key = _self_signed(tmp_path)
    settings = _settings(
        tmp_path, tls_cert=cert, tls_key=key, secure_cookies="auto", handshake_timeout=0.5
    )
    with live_server(settings) as server:
        base = f"https://127.0.0.1:{server.port}"
        with httpx.Client(base_url=base, verify=False) as client:
            assert client.get("/api/v1/health").json() == {"status": "ok"}
            answer = client.post("/api/v1/login", json={"username": "admin", "password": PASSWORD})
            assert answer.status_code == 200
            cookie = answer.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        plain = _raw(server.port, b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert not plain.startswith(b"HTTP/1.1 200")
        # A connection that never starts its handshake is closed at handshake_timeout.
        rejections = server.context.rejections
        assert _eventually(lambda: rejections.get("web", "handshake-timeout") == 1)
        silent = _raw(server.port, b"", wait=20)
        assert silent in (b"", b"<reset>")
        assert _eventually(lambda: rejections.get("web", "handshake-timeout") == 2)
