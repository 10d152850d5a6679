"""[web] settings: the web process (REST API, admin pages, self-care portal).

The web process is one ASGI application served by uvicorn on its own
listener, with the defence keys every listener has (``ListenerSettings``):
``allow`` loopback by default (the advisory's lesson: administration never
faces the whole network unless an operator says so), connection caps, a
bounded request head and body, idle and handshake timeouts.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from offhook.config_base import LOOPBACK, ListenerSettings

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


class WebSettings(ListenerSettings):
    """[web] ``enabled`` (``offhook serve`` runs the web process), ``listen``,
    ``port`` (8080), ``allow`` (loopback), ``tls_cert``/``tls_key`` (PEM files:
    HTTPS; both or neither), the listener defence keys (``max_message``: the
    largest request body, a whole-plan YAML import included; the request head
    is bounded by uvicorn's h11 limit).

    ``hosts``: the host names people reach it by (the Host header), besides
    IP addresses, ``localhost`` and this machine's own name; any other name
    is refused (421), which stops DNS rebinding; ``["*"]`` accepts every name
    (behind a reverse proxy that checks it).

    Sessions: ``session_idle`` seconds without a request and
    ``session_absolute`` seconds after login end a session; at most
    ``max_sessions`` live at once (the oldest goes first).
    ``secure_cookies``: ``auto`` marks the session cookie Secure when TLS is
    on; ``always``/``never`` force it (``never`` only for plain HTTP on
    loopback). Passwords are hashed with argon2id at ``argon2_time_cost``
    passes over ``argon2_memory_kib`` KiB with ``argon2_parallelism`` lanes
    (RFC 9106's second recommended option by default: 3 passes, 64 MiB, 4
    lanes); at most ``max_concurrent_hashes`` run at once, so logins can
    never take more than that many times the memory of one hash.

    ``nice``: the web process's CPU priority below call processing (a Unix
    nice value, 0-19; default 10). On a machine short of CPU the node's
    calls come first and the web process (pages, the API, the CTI fan-out)
    slows down; a CTI client that then falls behind is disconnected as any
    slow client is. 0 leaves it at the node's priority.
    """

    enabled: bool = True
    listen: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    port: int = Field(default=8080, ge=0, le=65535)
    allow: list[str] = Field(default_factory=lambda: list(LOOPBACK))
    tls_cert: str = ""
    tls_key: str = ""
    hosts: list[str] = Field(default_factory=list, max_length=256)
    max_message: int = Field(default=4 << 20, ge=4096, le=64 << 20)
    idle_timeout: float = Field(default=30.0, gt=0, le=3600)
    handshake_timeout: float = Field(default=10.0, gt=0, le=3600)
    max_connections: int = Field(default=256, ge=1, le=100_000)
    max_connections_per_source: int = Field(default=32, ge=1, le=100_000)
    rate_per_source: float = Field(default=50.0, gt=0)
    rate_burst: float = Field(default=100.0, ge=1)
    session_idle: float = Field(default=1800.0, gt=0, le=86_400)
    session_absolute: float = Field(default=28_800.0, gt=0, le=7 * 86_400)
    max_sessions: int = Field(default=10_000, ge=1, le=1_000_000)
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    argon2_time_cost: int = Field(default=3, ge=1, le=16)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8, le=1024 * 1024)
    max_concurrent_hashes: int = Field(default=2, ge=1, le=64)
    argon2_parallelism: int = Field(default=4, ge=1, le=64)
    nice: int = Field(default=10, ge=0, le=19)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        out = []
        for item in value:
            name = item.strip().lower().rstrip(".")
            if name != "*" and not _HOST_NAME.fullmatch(name):
                raise ValueError(f"{item!r} is not a host name")
            out.append(name)
        return out

    @model_validator(mode="after")
    def _tls_pair(self) -> WebSettings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        return self

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)
