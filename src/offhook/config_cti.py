"""[cti] settings: the CTI event stream and commands of the web process.

Applications watch calls on the WebSocket ``/cti/v1/events`` of the ``[web]``
listener and control them with the REST commands under ``/api/v1/cti``
(docs/cti.md). The WebSocket connections are ``[web]`` connections first
(its allow-list, connection caps and rates hold for them); these keys bound
what each costs once it is a CTI client.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from offhook.config_base import LOOPBACK, ListenerSettings


class CtiSettings(ListenerSettings):
    """[cti] ``enabled``: the CTI WebSocket and commands are served (off: refused with 503).

    - ``replay``: events the web process keeps for clients that reconnect
      and resume from the last id they saw (a client that asks for an older
      id gets a resync with a snapshot instead);
    - ``client_queue``: events queued for one client at most; a client that
      falls that far behind is sent ``{"type": "overflow"}`` and disconnected
      (nobody else waits for it); events come from the node in bursts (up to
      a few dozen at once), so keep it well above that;
    - ``max_clients``: CTI WebSocket clients at once; ``max_clients_per_user``: of
      them, with one user's tokens;
    - ``max_message``: bytes of one message from a client (a larger one
      closes the connection, 1009);
    - ``recheck``: seconds between checks of a client's token (and the
      devices its user may see); it is checked on every client message too;
    - ``ping_interval`` / ``ping_timeout``: WebSocket pings (seconds); a client
      that does not answer in time is disconnected;
    - ``rate``: client messages a second one connection may send (above it the
      connection is read more slowly);
    - ``coalesce``: seconds a client's writer waits after an event for more
      before it sends (one write for all of them: with many clients the
      fan-out costs far less a busy second; 0 sends each burst at once). A
      client with a full write's worth of events waiting is written at
      once, so the wait never limits how many events a second it gets.

    The same stream as JSON lines on TCP (``web.cti_tcp``), for applications
    that do not speak WebSocket: ``port`` (0: off; 2748 is where CallManager's
    CTI Manager listened) on ``listen`` (loopback), with the defence keys of
    every listener: ``allow`` (loopback), ``max_connections`` and
    ``max_connections_per_source`` (connections, authenticated or not: the
    client caps above count the authenticated ones with the WebSocket's),
    ``rate_per_source``/``rate_burst`` (new connections a second),
    ``handshake_timeout`` (to send the ``auth`` line), ``idle_timeout`` (a
    client that sends nothing for that long is closed: send ``ping``), a line
    bounded by ``max_message``.
    """

    enabled: bool = True
    replay: int = Field(default=10_000, ge=0, le=1_000_000)
    client_queue: int = Field(default=1_000, ge=8, le=100_000)
    max_clients: int = Field(default=64, ge=1, le=100_000)
    max_clients_per_user: int = Field(default=16, ge=1, le=100_000)
    max_message: int = Field(default=4096, ge=256, le=1 << 20)
    recheck: float = Field(default=5.0, gt=0, le=300)
    ping_interval: float = Field(default=20.0, gt=0, le=3600)
    ping_timeout: float = Field(default=20.0, gt=0, le=3600)
    rate: float = Field(default=20.0, gt=0, le=10_000)
    coalesce: float = Field(default=0.02, ge=0, le=1.0)
    listen: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    port: int = Field(default=0, ge=0, le=65535)
    allow: list[str] = Field(default_factory=lambda: list(LOOPBACK))
    idle_timeout: float = Field(default=120.0, gt=0, le=3600)
    handshake_timeout: float = Field(default=10.0, gt=0, le=3600)
    max_connections: int = Field(default=128, ge=1, le=100_000)
    max_connections_per_source: int = Field(default=32, ge=1, le=100_000)
    rate_per_source: float = Field(default=10.0, gt=0)
    rate_burst: float = Field(default=40.0, ge=1)

    @model_validator(mode="after")
    def _caps(self) -> CtiSettings:
        if self.max_clients_per_user > self.max_clients:
            raise ValueError(
                f"max_clients_per_user ({self.max_clients_per_user}) "
                f"must be <= max_clients ({self.max_clients})"
            )
        return self
