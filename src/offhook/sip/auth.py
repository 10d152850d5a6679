"""SIP digest authentication, server side (RFC 3261 §22, RFC 7616, RFC 8760).

Theory of operation
-------------------
``DigestAuthenticator`` issues challenges and checks credentials. It keeps no
per-nonce memory: a nonce is ``base64url(timestamp | random | mac)`` where
``mac = HMAC-SHA256(secret, realm | timestamp | random)``, so any node that
shares ``secret`` can validate it, and a flood of challenges cannot grow
memory. A nonce older than ``nonce_ttl`` (or from the "future", after a
monotonic clock reset) is *stale*: a correct response to it is answered with
a fresh challenge carrying ``stale=true`` so the UA retries without asking its
user (RFC 7616 §3.3).

The only state kept is an optional, bounded LRU of the highest ``nc`` seen per
nonce (RFC 7616 §3.4: a server may detect replays); a replayed or
non-increasing ``nc`` is treated as stale, which costs a legitimate client one
extra round trip and gives an attacker nothing.

``verify`` answers OK, MISSING, STALE or FAILED. Every kind of failure (unknown
user, wrong password, wrong realm, bad or tampered nonce, digest-uri mismatch,
malformed header) is FAILED, and the caller answers them all with the same
challenge. An unknown user costs the same work as a known one: a dummy HA1 is
derived from the secret and the response is still computed and compared with
``hmac.compare_digest``.

Credentials are looked up through the small ``CredentialLookup`` protocol so
that this module does not depend on ``offhook.core``; the composition root
adapts the plan snapshot to it. HA1 values are stored, never passwords.

Header parameter parsing is done by a private helper (``parse_digest``) that
could be swapped for ``sip.headers.parse_auth_params`` later.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from offhook.common.errors import ParseError
from offhook.sip.message import SipRequest

__all__ = [
    "ALGORITHMS",
    "AuthResult",
    "AuthStatus",
    "CredentialLookup",
    "Credentials",
    "DigestAuthenticator",
    "UriParts",
    "digest_response",
    "ha1",
    "parse_digest",
    "split_uri",
    "uri_matches",
]

# RFC 7616 §3.2 / RFC 8760 §2: algorithm name -> hash function.
ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}


def _hash(algorithm: str, data: str) -> str:
    try:
        fn = ALGORITHMS[algorithm.upper()]
    except KeyError:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}") from None
    return fn(data.encode("utf-8"))


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username ":" realm ":" password), lowercase hex (RFC 7616 §3.4.2)."""
    return _hash(algorithm, f"{username}:{realm}:{password}")


def digest_response(
    algorithm: str,
    ha1_hex: str,
    method: str,
    uri: str,
    nonce: str,
    *,
    qop: str | None = None,
    nc: str = "",
    cnonce: str = "",
) -> str:
    """The ``response`` value (RFC 7616 §3.4.1; RFC 2069 form when ``qop`` is None).

    Only qop=auth is supported: HA2 = H(method ":" digest-uri).
    """
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{ha1_hex}:{nonce}:{ha2}")
    return _hash(algorithm, f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --------------------------------------------------------------------------
# Credentials lookup (implemented by the composition root over PlanSnapshot)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the authenticator and registrar need to know about one account.

    ``device`` is the device the username belongs to; ``dns`` are the
    directory numbers on that device (the AORs it may register besides its
    own name). ``realm`` is the realm the HA1 values were computed for ("" =
    the authenticator's realm).
    """

    username: str
    device: str
    realm: str = ""
    ha1_md5: str = ""
    ha1_sha256: str = ""
    dns: tuple[str, ...] = ()

    def ha1_for(self, algorithm: str) -> str:
        alg = algorithm.upper()
        if alg == "SHA-256":
            return self.ha1_sha256
        if alg == "MD5":
            return self.ha1_md5
        return ""


class CredentialLookup(Protocol):
    def credentials(self, username: str) -> Credentials | None: ...


# --------------------------------------------------------------------------
# Results


class AuthStatus(enum.Enum):
    OK = "ok"
    MISSING = "missing"  # no credentials for us: challenge
    STALE = "stale"  # right password, old nonce: challenge with stale=true
    FAILED = "failed"  # unusable credentials (malformed, not our nonce): challenge, count
    # A well-formed answer to one of our challenges that does not match (wrong
    # password or unknown user, told apart by nobody): answer 403, count. A new
    # challenge would be answered the same way, and some UAs (libre's sipreg)
    # loop on every fresh nonce until the failure guard throttles them.
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Outcome of :meth:`DigestAuthenticator.verify`.

    ``username`` is the claimed username (also on failure, for counting);
    ``credentials`` is set only when ``status`` is OK. ``reason`` is for logs
    and metrics only and must never be sent to the peer. An OK result also
    carries the ``nonce`` and its count ``nc`` (None without qop), for
    :meth:`DigestAuthenticator.record`.
    """

    status: AuthStatus
    username: str = ""
    credentials: Credentials | None = None
    algorithm: str = ""
    reason: str = ""
    nonce: str = ""
    nc: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is AuthStatus.OK


# --------------------------------------------------------------------------
# Private parsing helpers (swappable for sip.headers later)

_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
# Unquoted parameter values: be lenient (some UAs send uri= unquoted) but only
# visible ASCII without quote, comma, or backslash.
_BARE_VALUE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('",\\')
_WS = " \t\r\n"
MAX_AUTH_HEADER = 4096
# Failures that say something about the account: answered alike (REJECTED).
_ACCOUNT_REASONS = frozenset({"", "unknown user", "no ha1", "realm"})
MAX_AUTH_PARAMS = 32


_TOKEN_CLASS = r"A-Za-z0-9\-.!%*_+`'~"
_WSC = r"[ \t\r\n]"
# One auth-param: its name, then a quoted string (raw, escapes still in: no bare
# CR, LF or NUL) or a bare value (_BARE_VALUE_CHARS).
_PARAM = (
    rf"""([{_TOKEN_CLASS}]+){_WSC}*={_WSC}*"""
    r"""(?:"([^"\\\r\n\x00]*(?:\\[\s\S][^"\\\r\n\x00]*)*)"|([\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]+))"""
)
_PARAM_RE = re.compile(_PARAM)
_PARAM_NC = re.sub(r"\((?!\?)", "(?:", _PARAM)  # the same without capturing groups
# A whole header: scheme, then auth-params separated by commas (a trailing comma
# after the last one is tolerated), whitespace around everything.
_DIGEST_RE = re.compile(
    rf"{_WSC}*([{_TOKEN_CLASS}]+)(?:(?={_WSC}){_WSC}*{_PARAM_NC}"
    rf"(?:{_WSC}*,{_WSC}*{_PARAM_NC})*(?:{_WSC}*,)?)?{_WSC}*\Z"
)
_ESCAPE_RE = re.compile(r"\\([\s\S])")


def parse_digest(value: str) -> tuple[str, dict[str, str]]:
    """Parse ``scheme auth-param *("," auth-param)`` (RFC 3261 §25.1).

    Returns (scheme, params) with lowercase parameter names and unquoted,
    unescaped values. Raises :class:`ParseError` on anything malformed,
    duplicated or oversized.

    A well-formed header is recognised by one regular expression and its
    parameters picked out by another; anything else (or a duplicated or a 33rd
    parameter) goes through ``_parse_digest_slowly``, which says what is wrong.
    Both read a well-formed header the same way (a hypothesis test compares them).
    """
    if len(value) > MAX_AUTH_HEADER:
        raise ParseError("authorization header too long", 400)
    m = _DIGEST_RE.match(value)
    if m is None:
        return _parse_digest_slowly(value)
    pairs = _PARAM_RE.findall(value, m.end(1))
    params = {
        name.lower(): bare
        if not quoted
        else _ESCAPE_RE.sub(r"\1", quoted)
        if "\\" in quoted
        else quoted
        for name, quoted, bare in pairs
    }
    if len(params) != len(pairs) or len(params) > MAX_AUTH_PARAMS:
        return _parse_digest_slowly(value)
    return m.group(1), params


def _parse_digest_slowly(value: str) -> tuple[str, dict[str, str]]:
    """``parse_digest`` one character at a time: the reference, and the error messages."""
    n = len(value)
    i = 0
    while i < n and value[i] in _WS:
        i += 1
    start = i
    while i < n and value[i] in _TOKEN_CHARS:
        i += 1
    scheme = value[start:i]
    if not scheme:
        raise ParseError("missing auth scheme")
    if i < n and value[i] not in _WS:
        raise ParseError("bad auth scheme")
    params: dict[str, str] = {}
    first = True
    while True:
        while i < n and value[i] in _WS:
            i += 1
        if i >= n:
            break
        if not first:
            if value[i] != ",":
                raise ParseError("expected ',' between auth params")
            i += 1
            while i < n and value[i] in _WS:
                i += 1
            if i >= n:
                break  # tolerate a trailing comma
        first = False
        start = i
        while i < n and value[i] in _TOKEN_CHARS:
            i += 1
        name = value[start:i].lower()
        if not name:
            raise ParseError("bad auth param name")
        while i < n and value[i] in _WS:
            i += 1
        if i >= n or value[i] != "=":
            raise ParseError("expected '=' in auth param")
        i += 1
        while i < n and value[i] in _WS:
            i += 1
        if i < n and value[i] == '"':
            i += 1
            buf: list[str] = []
            while True:
                if i >= n:
                    raise ParseError("unterminated quoted string")
                ch = value[i]
                if ch == "\\":
                    if i + 1 >= n:
                        raise ParseError("dangling escape")
                    buf.append(value[i + 1])
                    i += 2
                    continue
                if ch == '"':
                    i += 1
                    break
                if ch in "\r\n" or ch == "\x00":
                    raise ParseError("control character in quoted string")
                buf.append(ch)
                i += 1
            val = "".join(buf)
        else:
            start = i
            while i < n and value[i] in _BARE_VALUE_CHARS:
                i += 1
            val = value[start:i]
            if not val:
                raise ParseError("empty auth param value")
        if name in params:
            raise ParseError(f"duplicate auth param {name}")
        if len(params) >= MAX_AUTH_PARAMS:
            raise ParseError("too many auth params")
        params[name] = val
    return scheme, params


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_URI_RE = re.compile(
    r"""^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):
        (?:(?P<user>[^@;?]*)@)?
        (?P<host>\[[^\]]*\]|[^:;?]*)
        (?::(?P<port>[0-9]{1,5}))?
        (?P<params>(?:;[^?]*)?)
        (?:\?(?P<headers>.*))?$""",
    re.VERBOSE | re.DOTALL,
)

# RFC 3261 §19.1.4: these URI parameters must match when present in either URI.
_STRICT_URI_PARAMS = frozenset({"transport", "user", "ttl", "method", "maddr"})


class UriParts(NamedTuple):
    """A loosely split SIP URI; ``scheme`` and ``host`` lowercased, params lowercased."""

    scheme: str
    user: str
    host: str
    port: str
    params: dict[str, str]
    headers: str


def split_uri(uri: str) -> UriParts | None:
    """Split ``scheme:[user@]host[:port][;params][?headers]``; None if it does not fit."""
    if len(uri) > 2048:
        return None
    m = _URI_RE.match(uri.strip())
    if m is None:
        return None
    params: dict[str, str] = {}
    for part in m.group("params").split(";")[1:]:
        if not part:
            continue
        k, _, v = part.partition("=")
        params[k.strip().lower()] = v.strip().lower()
    return UriParts(
        m.group("scheme").lower(),
        m.group("user") or "",
        m.group("host").lower(),
        m.group("port") or "",
        params,
        m.group("headers") or "",
    )


def uri_matches(a: str, b: str) -> bool:
    """Loose SIP URI equivalence (a simplified RFC 3261 §19.1.4).

    Same string, or same scheme/user/host/port with compatible parameters
    (parameters present in both must agree; transport, user, ttl, method,
    maddr must agree whenever present in either) and the same headers.
    """
    if a == b:
        return True
    ka, kb = split_uri(a), split_uri(b)
    if ka is None or kb is None:
        return False
    if ka._replace(params={}) != kb._replace(params={}):
        return False
    pa, pb = ka.params, kb.params
    for k in pa.keys() | pb.keys():
        if k in pa and k in pb:
            if pa[k] != pb[k]:
                return False
        elif k in _STRICT_URI_PARAMS:
            return False
    return True


# --------------------------------------------------------------------------
# The authenticator

_NONCE_STRUCT = struct.Struct(">q8s")  # timestamp in ms, 8 random bytes
_MAC_LEN = 16
_NONCE_RAW_LEN = _NONCE_STRUCT.size + _MAC_LEN
_NC_RE = re.compile(r"^[0-9a-fA-F]{8}$")
_NONCE_CHARS = (_NONCE_RAW_LEN * 8 + 5) // 6  # unpadded base64url length
_NONCE_RE = re.compile(rf"^[A-Za-z0-9_-]{{{_NONCE_CHARS}}}$")


class DigestAuthenticator:
    """Challenges and verifies digest credentials for one realm.

    ``secret`` keys the nonce MAC (share it between the nodes of a cluster);
    ``algorithms`` are offered in that order (RFC 8760 §2.4: most preferred
    first). ``replay_cache`` bounds the nonce-count LRU (0 disables replay
    detection). ``random`` is injectable for deterministic tests.

    ``now`` (in ``challenge`` and ``verify``) is seconds on any clock, as long
    as every node sharing ``secret`` uses the same one: pass wall time when
    nonces must stay valid across a cluster (the registrar does).
    """

    def __init__(
        self,
        secret: bytes,
        realm: str,
        nonce_ttl: float = 300.0,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        *,
        replay_cache: int = 4096,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("digest secret must be at least 16 bytes")
        algs = tuple(a.upper() for a in algorithms)
        if not algs or any(a not in ALGORITHMS for a in algs):
            raise ValueError(f"unsupported algorithms {algorithms!r}")
        self.realm = realm
        self.nonce_ttl = nonce_ttl
        self.algorithms = algs
        self._secret = secret
        self._random = random
        self._opaque = hmac.new(secret, b"opaque|" + realm.encode(), hashlib.sha256).hexdigest()[
            :16
        ]
        self._replay_max = replay_cache
        self._nc_seen: OrderedDict[str, int] = OrderedDict()
        # Keyed HMAC states, copied per use (the key schedule is done once).
        self._nonce_hmac = hmac.new(secret, b"nonce|" + realm.encode() + b"|", hashlib.sha256)
        self._dummy_hmac = hmac.new(secret, digestmod=hashlib.sha256)
        self._opaque_bytes = self._opaque.encode()
        self._challenge_parts = {s: self._parts_of_challenges(s) for s in (False, True)}

    # --- nonces ------------------------------------------------------------
    def _mac(self, head: bytes) -> bytes:
        """HMAC-SHA256(secret, "nonce|" realm "|" head), cut to ``_MAC_LEN`` bytes."""
        h = self._nonce_hmac.copy()
        h.update(head)
        return h.digest()[:_MAC_LEN]

    def make_nonce(self, now: float) -> str:
        head = _NONCE_STRUCT.pack(int(now * 1000), self._random(8))
        return base64.urlsafe_b64encode(head + self._mac(head)).decode("ascii").rstrip("=")

    def _check_nonce(self, nonce: str, now: float) -> tuple[bool, bool]:
        """(authentic, fresh) for a nonce string."""
        if not _NONCE_RE.match(nonce):
            return False, False
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return False, False
        if len(raw) != _NONCE_RAW_LEN:
            return False, False
        head, mac = raw[: _NONCE_STRUCT.size], raw[_NONCE_STRUCT.size :]
        if not hmac.compare_digest(mac, self._mac(head)):
            return False, False
        ts_ms, _ = _NONCE_STRUCT.unpack(head)
        age = now - ts_ms / 1000.0
        # A nonce from the future (clock reset) is authentic but not fresh.
        return True, -1.0 <= age <= self.nonce_ttl

    # --- challenge -----------------------------------------------------------
    def challenge(
        self, now: float, stale: bool = False, proxy: bool = False
    ) -> list[tuple[str, str]]:
        """One WWW-/Proxy-Authenticate header per algorithm, preferred first.

        RFC 3261 §22.1/§22.3, RFC 7616 §3.3, RFC 8760 §2.4. All headers share
        one nonce.
        """
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        nonce = self.make_nonce(now)  # base64url: nothing in it to quote
        return [(name, f'{head}"{nonce}"{tail}') for head, tail in self._challenge_parts[stale]]

    def _parts_of_challenges(self, stale: bool) -> list[tuple[str, str]]:
        """(before the nonce, after it) of each algorithm's challenge (see ``challenge``)."""
        out = []
        for alg in self.algorithms:
            tail = [f"opaque={_quote(self._opaque)}", f"algorithm={alg}", 'qop="auth"']
            if stale:
                tail.append("stale=true")
            out.append((f"Digest realm={_quote(self.realm)}, nonce=", ", " + ", ".join(tail)))
        return out

    # --- verification ----------------------------------------------------------
    def _pick(self, request: SipRequest, proxy: bool) -> tuple[dict[str, str] | None, str]:
        """Credentials addressed to our realm: (params or None, failure reason).

        RFC 3261 §22.3: a proxy ignores Proxy-Authorization for other realms
        (they belong to another hop) -> MISSING. A wrong realm in Authorization
        (we are the UAS) is a failure.
        """
        header = "Proxy-Authorization" if proxy else "Authorization"
        values = request.headers.get_raw(header)
        if not values:
            return None, "missing"
        bad = False
        other_realm = False
        for raw in values[:8]:
            try:
                scheme, params = parse_digest(raw)
            except ParseError:
                bad = True
                continue
            if scheme.lower() != "digest":
                continue
            if params.get("realm") == self.realm:
                return params, ""
            other_realm = True
        if bad:
            return None, "malformed"
        if other_realm and not proxy:
            return None, "wrong realm"
        return None, "missing"

    def _dummy_ha1(self, algorithm: str, username: str) -> str:
        h = self._dummy_hmac.copy()  # HMAC-SHA256(secret, username)
        h.update(username.encode())
        return _hash(algorithm, "dummy|" + h.hexdigest())

    def verify(
        self,
        request: SipRequest,
        creds_lookup: CredentialLookup,
        now: float,
        proxy: bool = False,
        *,
        record: bool = True,
    ) -> AuthResult:
        """Check the request's digest credentials (RFC 3261 §22.2/§22.3).

        ``record=False`` checks without remembering the nonce count (a replay
        is still STALE): for a screening pass before the request is handled,
        so that the handling pass (``record=True``) does not see a replay.
        Never raises on peer input.
        """
        params, why = self._pick(request, proxy)
        if params is None:
            if why == "missing":
                return AuthResult(AuthStatus.MISSING, reason=why)
            return AuthResult(AuthStatus.FAILED, reason=why)
        username = params.get("username", "")
        fail_reason = ""

        algorithm = params.get("algorithm", "MD5").upper()
        if algorithm not in self.algorithms:
            fail_reason = "algorithm"
            algorithm = self.algorithms[-1]  # keep the work uniform
        nonce = params.get("nonce", "")
        digest_uri = params.get("uri", "")
        response = params.get("response", "")
        if not username or not nonce or not digest_uri or not response:
            fail_reason = fail_reason or "incomplete"
        if params.get("userhash", "false").lower() == "true":
            fail_reason = fail_reason or "userhash"  # never offered (RFC 7616 §3.4.4)
        opaque = params.get("opaque")
        # Bytes: compare_digest refuses str with non-ASCII characters (TypeError).
        opaque_bytes = None if opaque is None else opaque.encode("utf-8", "replace")
        if opaque_bytes is not None and not hmac.compare_digest(opaque_bytes, self._opaque_bytes):
            fail_reason = fail_reason or "opaque"

        qop_raw = params.get("qop")
        qop: str | None = None
        nc = cnonce = ""
        if qop_raw is not None:
            qop = qop_raw.lower()
            nc = params.get("nc", "")
            cnonce = params.get("cnonce", "")
            if qop != "auth":
                fail_reason = fail_reason or "qop"
            elif not _NC_RE.match(nc) or not cnonce:
                fail_reason = fail_reason or "nc/cnonce"

        # Digest-uri must be the Request-URI (RFC 3261 §22.4 item 3 / RFC 7616 §3.4.6).
        if digest_uri and not uri_matches(digest_uri, request.uri):
            fail_reason = fail_reason or "uri mismatch"

        authentic, fresh = self._check_nonce(nonce, now)
        if not authentic:
            fail_reason = fail_reason or "bad nonce"

        # Same work for unknown users as for known ones (no enumeration by
        # timing): the dummy HA1 is derived either way, one response computed.
        creds = creds_lookup.credentials(username) if username else None
        dummy_ha1 = self._dummy_ha1(algorithm, username)
        secret_ha1 = ""
        if creds is not None:
            if creds.realm and creds.realm != self.realm:
                fail_reason = fail_reason or "realm"
            secret_ha1 = creds.ha1_for(algorithm)
        if not secret_ha1:
            fail_reason = fail_reason or ("unknown user" if creds is None else "no ha1")
            secret_ha1 = dummy_ha1
        expected = digest_response(
            algorithm, secret_ha1.lower(), request.method, digest_uri, nonce,
            qop=qop, nc=nc, cnonce=cnonce,
        )  # fmt: skip
        matched = hmac.compare_digest(
            expected.encode(), response.lower().encode("utf-8", "replace")
        )
        if fail_reason or not matched:
            # Every reason that depends on the account must give the same status.
            status = AuthStatus.REJECTED if fail_reason in _ACCOUNT_REASONS else AuthStatus.FAILED
            return AuthResult(status, username=username, reason=fail_reason or "response")
        assert creds is not None
        if not fresh:
            return AuthResult(AuthStatus.STALE, username=username, reason="stale nonce")
        count = int(nc, 16) if qop is not None else None
        if count is not None and self._replayed(nonce, count, record):
            return AuthResult(AuthStatus.STALE, username=username, reason="nc replay")
        return AuthResult(
            AuthStatus.OK,
            username=username,
            credentials=creds,
            algorithm=algorithm,
            nonce=nonce,
            nc=count,
        )

    def record(self, result: AuthResult) -> AuthResult:
        """Remember the nonce count of an OK result of ``verify(record=False)``.

        What ``verify(record=True)`` would have done after its checks, without
        computing the digest again: the count is checked against the replay
        cache once more (another request may have used it since) and recorded;
        a replay gives STALE. Anything but an OK result is returned as it is.
        """
        if result.status is not AuthStatus.OK or result.nc is None:
            return result
        if self._replayed(result.nonce, result.nc, True):
            return AuthResult(AuthStatus.STALE, username=result.username, reason="nc replay")
        return result

    def _replayed(self, nonce: str, nc: int, record: bool = True) -> bool:
        """RFC 7616 §3.4: nc must increase for each use of a nonce (bounded LRU)."""
        if self._replay_max <= 0:
            return False
        last = self._nc_seen.get(nonce)
        if last is not None and nc <= last:
            return True
        if not record:
            return False
        self._nc_seen[nonce] = nc
        self._nc_seen.move_to_end(nonce)
        while len(self._nc_seen) > self._replay_max:
            self._nc_seen.popitem(last=False)
        return False
