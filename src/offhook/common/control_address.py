"""A control listener's address: a Unix socket path or a TCP host and port.

Written ``unix:/run/x.sock``, ``127.0.0.1:2429`` or ``[::1]:2429``: the media
server's control address (``[media] control``, ``[media] servers``). Here,
not in ``media``, so that settings validate it without importing the media
server.
"""

from __future__ import annotations

from dataclasses import dataclass

from offhook.common.addr import canonical

MAX_UNIX_PATH = 107
"""Bytes of a Unix socket path (Linux ``sun_path`` is 108 with its NUL)."""


@dataclass(frozen=True, slots=True)
class ControlAddress:
    """Where a media server's control listener is: a Unix socket path or TCP host and port."""

    path: str = ""
    host: str = ""
    port: int = 0

    @property
    def unix(self) -> bool:
        return bool(self.path)

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_control_address(text: str) -> ControlAddress:
    """``unix:/path/to.sock``, ``127.0.0.1:2429`` or ``[::1]:2429``; ValueError otherwise."""
    value = text.strip()
    if value.startswith("unix:"):
        path = value[5:]
        if not path or "\0" in path or len(path.encode()) > MAX_UNIX_PATH:
            raise ValueError(
                f"{text!r}: a Unix socket path must be 1-{MAX_UNIX_PATH} bytes (unix:/run/x.sock)"
            )
        return ControlAddress(path=path)
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: expected unix:PATH, HOST:PORT or [IPv6]:PORT")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ValueError(f"{text!r}: an IPv6 host is written in brackets ([::1]:2429)")
    try:
        address = canonical(host)
    except ValueError:
        raise ValueError(f"{text!r}: the host must be an IP address") from None
    return ControlAddress(host=address, port=int(port))
