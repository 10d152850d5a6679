"""The Host names the web administration answers to (a DNS rebinding defence).

A page on an attacker's site can have its own host name re-pointed at
127.0.0.1 (DNS rebinding) and then talk to a loopback-only administration
from the victim's browser as a "same-origin" page: the source address is
allowed, the Origin matches the Host. What gives it away is the Host header,
which still names the attacker's domain. So every request must name this
service by an IP address, ``localhost``, this machine's own name, or a name
listed in ``[web] hosts`` (``"*"`` there turns the check off, for a reverse
proxy that does it). Anything else gets 421 Misdirected Request before any
route runs. A request without a Host header (HTTP/1.0) is let through: no
browser sends one.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["KnownHost", "host_name", "known_names"]


def known_names(configured: Iterable[str]) -> frozenset[str] | None:
    """The accepted names (lower case); None when ``"*"`` accepts any."""
    names = {name.strip().lower().rstrip(".") for name in configured}
    if "*" in names:
        return None
    names |= {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(n for n in names if n)


def host_name(header: str) -> str:
    """The host part of a Host header value (no port; an IPv6 literal without brackets)."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class KnownHost:
    """421 for an HTTP request whose Host header names an unknown host."""

    def __init__(self, app: ASGIApp, names: frozenset[str] | None) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.names is not None:
            raw = next((v for k, v in scope.get("headers", ()) if k == b"host"), None)
            if raw is not None:
                name = host_name(raw.decode("latin-1")).rstrip(".")
                if not _is_address(name) and name not in self.names:
                    response = JSONResponse(
                        {"detail": "unknown host name: add it to [web] hosts"}, status_code=421
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
