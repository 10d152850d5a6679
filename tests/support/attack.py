"""Attack traffic for the security suite: a fast failed-digest flood, process probes.

:class:`DigestFlood` plays a password cracker spread over many loopback
source addresses (one UDP socket bound to each ``127.x.y.z``): every source
first sends a REGISTER without credentials and takes the challenge it gets,
then answers challenges with wrong passwords, one REGISTER per guess, as
fast as ``rate`` allows, each guess for one of ``accounts`` (existing and
made-up names alike). A 401 carries a fresh nonce, which the source uses for
its next guesses; a source that gets no answer (throttled or blocked) keeps
guessing with the nonce it has, which is valid for the node's nonce
lifetime. Answers are read without blocking (``selectors``) between sends,
so the sender never waits for the node. Everything is bounded: the number of
attempts, and ``drain`` seconds after the last one.

Loopback only: the sources are ``127.0.0.0/8`` addresses, which Linux
accepts on ``lo`` without configuration.

:class:`Probe` sends one request at a time from a chosen loopback source
(``127.x.y.z``, or ``::1`` to an IPv6 or dual-stack listener) and returns the
final answer parsed (enumeration checks, a legitimate registration from an
address that does not attack). :func:`rss_kib` and
:func:`fd_count` read ``/proc`` for a process's resident memory and open
descriptors.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import selectors
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from offhook.common.addr import host_port, uri_host
from offhook.sip.auth import digest_response, ha1, parse_digest
from offhook.sip.codec import parse_message
from offhook.sip.message import SipResponse

_NONCE = re.compile(rb'nonce="([^"]+)"')
_OPAQUE = re.compile(rb'opaque="([^"]+)"')


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def fd_count(pid: int) -> int:
    """Open file descriptors of ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def loopback_sources(count: int, second_octet: int) -> list[str]:
    """``count`` distinct addresses ``127.<second_octet>.y.z`` (z in 1..250)."""
    if not 1 <= second_octet <= 254 or count > 254 * 250:
        raise ValueError("bad source range")
    return [f"127.{second_octet}.{i // 250}.{i % 250 + 1}" for i in range(count)]


@dataclass
class _Source:
    addr: str
    sock: socket.socket
    port: int
    nonce: str = ""
    opaque: str = ""
    nc: int = 0


@dataclass
class FloodResult:
    """What the cracker saw."""

    sources: int
    attempts: int  # guesses sent (each one a REGISTER with a wrong password)
    challenged: int  # sources that got their first challenge
    seconds: float  # from the first guess to the last
    answers: Counter[int] = field(default_factory=Counter)  # status -> count

    @property
    def rate(self) -> float:
        return self.attempts / self.seconds if self.seconds > 0 else 0.0

    @property
    def silent(self) -> int:
        """Guesses that got no answer at all (dropped: throttled or blocked)."""
        return max(0, self.attempts - sum(self.answers.values()))


class DigestFlood:
    """Failed digest attempts against ``server`` (see the module docstring)."""

    def __init__(
        self,
        server: tuple[str, int],
        realm: str,
        sources: Sequence[str],
        accounts: Sequence[str],
    ) -> None:
        self.server = server
        self.realm = realm
        self.accounts = list(accounts)
        self.uri = f"sip:{server[0]}:{server[1]}"
        self.selector = selectors.DefaultSelector()
        self.sources: list[_Source] = []
        for addr in sources:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind((addr, 0))
            src = _Source(addr, sock, sock.getsockname()[1])
            self.sources.append(src)
            self.selector.register(sock, selectors.EVENT_READ, src)
        self.answers: Counter[int] = Counter()

    def close(self) -> None:
        for src in self.sources:
            with contextlib.suppress(Exception):
                self.selector.unregister(src.sock)
            src.sock.close()
        self.selector.close()

    def __enter__(self) -> DigestFlood:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- wire -------------------------------------------------------------------
    def _register(self, src: _Source, account: str, n: int, auth: str | None) -> bytes:
        host = self.server[0]
        branch = f"z9hG4bK{n:x}{secrets.token_hex(4)}"
        lines = [
            f"REGISTER {self.uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {src.addr}:{src.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{account}@{host}>;tag={n:x}",
            f"To: <sip:{account}@{host}>",
            f"Call-ID: flood{n:x}-{src.port}@{src.addr}",
            f"CSeq: {2 if auth else 1} REGISTER",
            f"Contact: <sip:{account}@{src.addr}:{src.port}>",
            "Expires: 300",
            "User-Agent: friendly-scanner",
        ]
        if auth:
            lines.append(f"Authorization: {auth}")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _guess(self, src: _Source, account: str, n: int) -> bytes:
        src.nc += 1
        nc = f"{src.nc:08x}"
        cnonce = secrets.token_hex(4)
        password = f"guess-{n}"
        response = digest_response(
            "MD5",
            ha1(account, self.realm, password),
            "REGISTER",
            self.uri,
            src.nonce,
            qop="auth",
            nc=nc,
            cnonce=cnonce,
        )
        auth = (
            f'Digest username="{account}", realm="{self.realm}", nonce="{src.nonce}", '
            f'uri="{self.uri}", response="{response}", algorithm=MD5, '
            f'opaque="{src.opaque}", qop=auth, nc={nc}, cnonce="{cnonce}"'
        )
        return self._register(src, account, n, auth)

    def _drain(self, timeout: float = 0.0) -> None:
        for key, _ in self.selector.select(timeout):
            src: _Source = key.data
            while True:
                try:
                    data = src.sock.recv(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if not data.startswith(b"SIP/2.0 "):
                    continue
                try:
                    status = int(data[8:11])
                except ValueError:
                    continue
                self.answers[status] += 1
                if status in (401, 407):
                    nonce = _NONCE.search(data)
                    opaque = _OPAQUE.search(data)
                    if nonce is not None:
                        src.nonce = nonce.group(1).decode()
                        src.nc = 0
                    if opaque is not None:
                        src.opaque = opaque.group(1).decode()

    # --- the attack ---------------------------------------------------------------
    def challenge(self, timeout: float = 10.0) -> int:
        """Each source asks for a challenge (again every second, as a UA
        retransmits, until it has one); returns how many got one."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = [s for s in self.sources if not s.nonce]
            if not waiting or time.monotonic() >= deadline:
                break
            for i, src in enumerate(waiting):
                account = self.accounts[i % len(self.accounts)]
                with contextlib.suppress(BlockingIOError):
                    src.sock.sendto(self._register(src, account, i, None), self.server)
                if i % 64 == 63:
                    self._drain(0.005)
            until = min(deadline, time.monotonic() + 1.0)
            while time.monotonic() < until and any(not s.nonce for s in waiting):
                self._drain(0.05)
        return sum(1 for s in self.sources if s.nonce)

    def run(self, attempts: int, rate: float, drain: float = 2.0) -> FloodResult:
        """``challenge`` then ``attempts`` wrong guesses at about ``rate`` a second."""
        challenged = self.challenge()
        armed = [s for s in self.sources if s.nonce]
        if not armed:
            raise RuntimeError("no source got a challenge: is the node up?")
        self.answers.clear()
        start = time.monotonic()
        n_acc = len(self.accounts)
        for n in range(attempts):
            src = armed[n % len(armed)]
            account = self.accounts[(n // len(armed) + n * 7) % n_acc]
            with contextlib.suppress(BlockingIOError):
                src.sock.sendto(self._guess(src, account, n), self.server)
            if n % 32 == 31:
                self._drain()
                ahead = (n + 1) / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        seconds = time.monotonic() - start
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            self._drain(0.05)
        return FloodResult(len(self.sources), attempts, challenged, seconds, Counter(self.answers))


class Probe:
    """One SIP request at a time from one loopback source (blocking UDP, bounded waits).

    For the enumeration checks: ask the node anything as anyone, with or
    without an answer to a challenge, and get the final response parsed.
    An IPv6 ``source`` (``::1``) talks to an IPv6 ``server`` address; hosts
    are bracketed in URIs and Via (RFC 3261 §25.1, RFC 5118).
    """

    def __init__(self, server: tuple[str, int], realm: str, source: str = "127.0.0.1") -> None:
        self.server = server
        self.realm = realm
        family = socket.AF_INET6 if ":" in source else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.source = source
        self.port = self.sock.getsockname()[1]
        self.n = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def uri(self, method: str, user: str) -> str:
        target = host_port(*self.server)
        return f"sip:{target}" if method == "REGISTER" else f"sip:{user}@{target}"

    def ask(
        self,
        method: str,
        user: str,
        *,
        password: str | None = None,
        challenge: str | None = None,
        timeout: float = 5.0,
    ) -> SipResponse:
        """Send ``method`` as ``user``; with ``challenge`` (a WWW-/Proxy-Authenticate
        value) answer it with ``password``. Returns the final response."""
        self.n += 1
        host = uri_host(self.server[0])
        uri = self.uri(method, user)
        call_id = f"probe{self.n}-{secrets.token_hex(4)}@{self.source}"
        branch = f"z9hG4bK{secrets.token_hex(6)}"
        local = host_port(self.source, self.port)
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {local};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{host}>;tag={secrets.token_hex(4)}",
            f"To: <sip:{user}@{host}>",
            f"Call-ID: {call_id}",
            f"CSeq: 1 {method}",
            f"Contact: <sip:{user}@{local}>",
        ]
        if method == "REGISTER":
            lines.append("Expires: 60")
        if challenge is not None:
            _, params = parse_digest(challenge)
            cnonce = secrets.token_hex(4)
            response = digest_response(
                params.get("algorithm", "MD5"),
                ha1(user, params["realm"], password or "", params.get("algorithm", "MD5")),
                method,
                uri,
                params["nonce"],
                qop="auth",
                nc="00000001",
                cnonce=cnonce,
            )
            name = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
            lines.append(
                f'{name}: Digest username="{user}", realm="{params["realm"]}",'
                f' nonce="{params["nonce"]}", uri="{uri}", response="{response}",'
                f' algorithm={params.get("algorithm", "MD5")}, opaque="{params.get("opaque", "")}",'
                f' qop=auth, nc=00000001, cnonce="{cnonce}"'
            )
        lines.append("Content-Length: 0")
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), self.server)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no final answer to {method} as {user} from {self.source}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            msg = parse_message(data)
            if isinstance(msg, SipResponse) and msg.call_id == call_id and msg.status >= 200:
                return msg

    def register(self, user: str, password: str, timeout: float = 10.0) -> SipResponse:
        """REGISTER, answer the 401, return the final response."""
        first = self.ask("REGISTER", user, timeout=timeout)
        if first.status != 401:
            return first
        challenge = first.headers.get("WWW-Authenticate") or ""
        return self.ask("REGISTER", user, password=password, challenge=challenge, timeout=timeout)
