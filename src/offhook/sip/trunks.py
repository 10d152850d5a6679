"""SIP trunk supervision: OPTIONS ping state, registration state, client digest.

Theory of operation
-------------------
``TrunkMonitor`` is sans-IO. The composition root tells it which trunks
exist (``configure``: name, address, ping interval, whether to register),
whenever the plan changes; the SIP endpoint asks it what is due
(``due_pings(now)``, ``due_registrations(now)``), sends those requests
through the transaction layer, and reports what came back
(``ping_result``, ``register_result``). ``next_timer()`` says when to ask
again. The call engine asks ``is_up(name)`` before offering a call to a
trunk, so a dead trunk is skipped without waiting for Timer B.

Ping states (RFC 3261 §11, OPTIONS as a keep-alive)::

    UNMONITORED   options_ping = 0: never pinged, always considered up
    UNKNOWN  --any final response except 503-->  UP
             --503, Timer F, transport error-->  DOWN
    UP  <------------------------------------->  DOWN   (same inputs)

Any final response means the far end is alive, including 401/407 (it
challenges OPTIONS) and 404/405; 503 means it says it cannot take traffic
(RFC 3261 §21.5.4). UNKNOWN counts as up: a trunk is used until a ping
proves it dead. The first ping goes ``options_ping`` seconds after the trunk
appears (node start, plan change); one ping is outstanding per trunk at a
time; the next is sent ``options_ping`` seconds after the previous one was
sent (or at once when the previous one took longer than that).

Registration (``register: true``): a REGISTER is sent at once, then again at
half the granted expiry (``expires/2``); after a failure it is retried after
``retry`` seconds. The digest answer toward the carrier
(``digest_authorization``) is shared with outbound INVITEs (RFC 3261 §22.2).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from offhook.common.errors import ParseError
from offhook.sip.auth import ALGORITHMS, digest_response, ha1
from offhook.sip.headers import parse_auth_params

__all__ = [
    "PingState",
    "RegState",
    "TrunkMonitor",
    "TrunkTarget",
    "digest_authorization",
]

log = logging.getLogger("offhook.sip.trunks")

SERVICE_UNAVAILABLE = 503
DEFAULT_EXPIRES = 3600
REGISTER_RETRY = 30.0


class PingState(StrEnum):
    UNMONITORED = "unmonitored"
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class RegState(StrEnum):
    OFF = "off"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TrunkTarget:
    """What the monitor needs to know about one trunk (from the plan)."""

    name: str
    host: str
    port: int
    transport: str = "udp"
    options_ping: float = 0.0  # seconds between pings; 0 = off
    register: bool = False
    username: str = ""
    password: str = ""
    expires: int = DEFAULT_EXPIRES


class _Trunk:
    __slots__ = (
        "last_change",
        "last_result",
        "next_ping",
        "next_register",
        "pinging",
        "reg_expires",
        "reg_state",
        "registering",
        "state",
        "target",
    )

    def __init__(self, target: TrunkTarget, now: float) -> None:
        self.target = target
        self.state = PingState.UNKNOWN if target.options_ping > 0 else PingState.UNMONITORED
        self.last_change: float | None = None
        self.last_result = ""
        # The first ping goes one interval after the trunk appears (not at once:
        # a node starting up is not flooded, and a new trunk is used meanwhile).
        self.next_ping: float | None = (
            now + target.options_ping if target.options_ping > 0 else None
        )
        self.pinging = False
        self.reg_state = RegState.REGISTERING if target.register else RegState.OFF
        self.next_register: float | None = now if target.register else None
        self.registering = False
        self.reg_expires = 0


@dataclass(frozen=True, slots=True)
class StateChange:
    name: str
    old: PingState
    new: PingState


class TrunkMonitor:
    """Per-trunk up/down (OPTIONS) and registration state. See the module doc."""

    def __init__(self, *, register_retry: float = REGISTER_RETRY) -> None:
        self.register_retry = register_retry
        self._trunks: dict[str, _Trunk] = {}

    # --- configuration ------------------------------------------------------
    def configure(self, targets: Iterable[TrunkTarget], now: float) -> None:
        """Adopt the plan's trunks; unchanged trunks keep their state."""
        fresh: dict[str, _Trunk] = {}
        for target in targets:
            old = self._trunks.get(target.name)
            if old is not None and old.target == target:
                fresh[target.name] = old
            else:
                fresh[target.name] = _Trunk(target, now)
        self._trunks = fresh

    def target(self, name: str) -> TrunkTarget | None:
        trunk = self._trunks.get(name)
        return trunk.target if trunk is not None else None

    # --- queries ------------------------------------------------------------
    def is_up(self, name: str) -> bool:
        """False only for a monitored trunk whose last ping failed."""
        trunk = self._trunks.get(name)
        return trunk is None or trunk.state is not PingState.DOWN

    def state(self, name: str) -> PingState | None:
        trunk = self._trunks.get(name)
        return trunk.state if trunk is not None else None

    def registration(self, name: str) -> RegState | None:
        trunk = self._trunks.get(name)
        return trunk.reg_state if trunk is not None else None

    def next_timer(self) -> float | None:
        """When ``due_pings``/``due_registrations`` next have something, or None."""
        times: list[float] = []
        for trunk in self._trunks.values():
            if trunk.next_ping is not None and not trunk.pinging:
                times.append(trunk.next_ping)
            if trunk.next_register is not None and not trunk.registering:
                times.append(trunk.next_register)
        return min(times) if times else None

    def status(self, now: float, wall: float) -> list[dict[str, Any]]:
        """JSON-ready rows; ``last_change`` in wall-clock seconds (None: never changed)."""
        rows = []
        for name in sorted(self._trunks):
            trunk = self._trunks[name]
            t = trunk.target
            rows.append(
                {
                    "name": name,
                    "host": t.host,
                    "port": t.port,
                    "transport": t.transport,
                    "state": trunk.state.value,
                    "last_change": (
                        None if trunk.last_change is None else wall - (now - trunk.last_change)
                    ),
                    "last_result": trunk.last_result,
                    "options_ping": t.options_ping,
                    "registration": trunk.reg_state.value,
                }
            )
        return rows

    # --- OPTIONS pings (RFC 3261 §11) ---------------------------------------
    def due_pings(self, now: float) -> list[TrunkTarget]:
        """Trunks to ping now; each is marked outstanding until ``ping_result``."""
        out = []
        for trunk in self._trunks.values():
            if trunk.next_ping is None or trunk.pinging or trunk.next_ping > now:
                continue
            trunk.pinging = True
            trunk.next_ping = now + trunk.target.options_ping
            out.append(trunk.target)
        return out

    def ping_result(self, name: str, status: int | None, now: float) -> StateChange | None:
        """A ping's final response (``status``), or None for Timer F / transport error."""
        trunk = self._trunks.get(name)
        if trunk is None or not trunk.pinging:
            return None  # the trunk was removed or changed meanwhile
        trunk.pinging = False
        trunk.last_result = "timeout" if status is None else str(status)
        alive = status is not None and status != SERVICE_UNAVAILABLE
        new = PingState.UP if alive else PingState.DOWN
        if trunk.next_ping is not None and trunk.next_ping < now:
            trunk.next_ping = now  # the ping took longer than the interval
        if new is trunk.state:
            return None
        change = StateChange(name, trunk.state, new)
        trunk.state = new
        trunk.last_change = now
        log.log(
            logging.WARNING if new is PingState.DOWN else logging.INFO,
            "trunk %s is %s (OPTIONS: %s; was %s)",
            name,
            new.value,
            trunk.last_result,
            change.old.value,
        )
        return change

    # --- registration (RFC 3261 §10.2) --------------------------------------
    def due_registrations(self, now: float) -> list[TrunkTarget]:
        out = []
        for trunk in self._trunks.values():
            if trunk.next_register is None or trunk.registering or trunk.next_register > now:
                continue
            trunk.registering = True
            out.append(trunk.target)
        return out

    def register_result(self, name: str, expires: int | None, now: float) -> None:
        """The REGISTER's outcome: the granted expiry, or None when it failed."""
        trunk = self._trunks.get(name)
        if trunk is None or not trunk.registering:
            return
        trunk.registering = False
        old = trunk.reg_state
        if expires is None or expires <= 0:
            trunk.reg_state = RegState.FAILED
            trunk.next_register = now + self.register_retry
        else:
            trunk.reg_state = RegState.REGISTERED
            trunk.reg_expires = expires
            trunk.next_register = now + max(1.0, expires / 2)  # refresh at half time
        if trunk.reg_state is not old:
            log.info("trunk %s registration: %s", name, trunk.reg_state.value)


# --- client digest (RFC 3261 §22.2, RFC 7616 §3.4) ----------------------------


def digest_authorization(
    challenge: str,
    method: str,
    uri: str,
    username: str,
    password: str,
    *,
    cnonce: str | None = None,
    nc: int = 1,
) -> str | None:
    """The credentials answering one WWW-/Proxy-Authenticate value, or None.

    None when the challenge is not Digest, malformed, or asks for an
    algorithm or qop we do not do. qop=auth is used when offered; otherwise
    the RFC 2069 form. ``opaque`` is echoed.
    """
    try:
        scheme, params = parse_auth_params(challenge)
    except ParseError:
        return None
    if scheme.lower() != "digest":
        return None
    realm = params.get("realm")
    nonce = params.get("nonce")
    if realm is None or not nonce:
        return None
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() not in ALGORITHMS:
        return None
    qop: str | None = None
    if "qop" in params:
        offered = [q.strip().lower() for q in params["qop"].split(",")]
        if "auth" not in offered:
            return None
        qop = "auth"
    nc_hex = f"{nc:08x}"
    cnonce = cnonce or secrets.token_hex(8)
    response = digest_response(
        algorithm,
        ha1(username, realm, password, algorithm),
        method,
        uri,
        nonce,
        qop=qop,
        nc=nc_hex if qop else "",
        cnonce=cnonce if qop else "",
    )
    parts = [
        f'username="{_q(username)}"',
        f'realm="{_q(realm)}"',
        f'nonce="{_q(nonce)}"',
        f'uri="{_q(uri)}"',
        f'response="{response}"',
        f"algorithm={algorithm}",
    ]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_hex}", f'cnonce="{cnonce}"']
    if "opaque" in params:
        parts.append(f'opaque="{_q(params["opaque"])}"')
    return "Digest " + ", ".join(parts)


def pick_challenge(values: Iterable[str]) -> str | None:
    """The first challenge we can answer (servers list their preferred first)."""
    for value in values:
        if digest_authorization(value, "X", "sip:x", "u", "p", cnonce="0") is not None:
            return value
    return None


def _q(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
