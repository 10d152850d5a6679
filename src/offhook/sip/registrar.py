"""The SIP registrar (RFC 3261 §10.3), sans-IO.

Theory of operation
-------------------
``Registrar.handle`` takes one REGISTER (already past the transaction layer,
so retransmissions never reach it) and returns the final response. It follows
the steps of RFC 3261 §10.3:

1. the Request-URI must name a domain we serve (optional ``domain_check``);
2. ``Require`` options are refused with 420 (we support no extensions here);
3. the UA is authenticated by digest (``DigestAuthenticator``): a missing,
   unusable or stale credential gets a 401 with a fresh challenge; a
   well-formed answer to our challenge that does not match gets 403 (a new
   challenge would only make the UA loop). Failures for an unknown user and
   for a wrong password produce the same response; the
   ``on_auth_failure(source, username)`` hook lets the security layer count
   them per source and per account;
   ``screen`` runs steps 1-3 alone and stores nothing, so that the endpoint
   can answer refused and unauthenticated REGISTERs without a transaction;
4./5. the address-of-record (user part of the To URI) must be the
   authenticated device's name or one of its directory numbers, else 403;
6. ``Contact: *`` (only with ``Expires: 0``) removes every binding;
7. each contact's interval is its ``expires`` parameter, else the Expires
   header, else ``default_expires``; 0 removes, 0 < e < ``min_expires`` is
   answered 423 with Min-Expires, longer than ``max_expires`` is shortened.
   An existing binding with the same Call-ID and a CSeq not lower than the
   request's aborts the whole request (500: §10.3 step 7 "the update MUST be
   aborted and the request fails"; §10.3 "if any one of them fails ... 500").
   Updates are computed first and committed only if all succeed;
8. the 200 lists every current binding with its remaining ``expires`` (and
   ``q``), plus a Date header.

Contact limit: at most ``max_contacts_per_device`` bindings per device. A
single REGISTER carrying more contacts than that is refused with 403. When
new contacts would push the device over the limit, the least recently
(re)registered bindings not refreshed by this request are dropped: a phone
that rebooted behind a NAT with a new port replaces its stale binding
instead of being locked out until it expires.

Bindings live in a ``LocationStore`` (keyed by device, then contact URI).
``Binding`` has no q field yet, so the registrar keeps q values in a small
map keyed by (device, contact), pruned whenever it touches the device and in
``expire`` (bounded by devices x max contacts).

Contact and To values are parsed by private helpers (``parse_contact``) that
could later be swapped for ``sip.headers.parse_contact_list``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import unquote

from offhook.common.addr import host_port
from offhook.common.errors import ParseError
from offhook.common.location import Binding, LocationStore
from offhook.sip.auth import (
    AuthResult,
    AuthStatus,
    CredentialLookup,
    Credentials,
    DigestAuthenticator,
    UriParts,
    split_uri,
    uri_matches,
)
from offhook.sip.message import SipRequest, SipResponse, derived_tag, make_response

__all__ = ["ContactSpec", "Registrar", "parse_contact", "parse_delta_seconds"]

log = logging.getLogger("offhook.sip.registrar")


def _log_changes(
    device: str,
    source: tuple[str, int],
    added: list[Binding],
    removed: list[Binding],
    before: list[Binding],
) -> None:
    """One INFO line per new contact and per contact removed (a refresh logs nothing),
    with the device and the source address in fields of their own (JSON logs)."""
    if not log.isEnabledFor(logging.INFO):
        return
    known = {b.contact for b in before}
    where = host_port(*source)
    context = {"device": device, "source": where}
    for b in added:
        if b.contact not in known:
            log.info("SIP %s registered %s from %s", device, b.contact, where, extra=context)
    for b in removed:
        log.info("SIP %s unregistered %s (from %s)", device, b.contact, where, extra=context)


MAX_DELTA = 2**32 - 1  # RFC 3261 §10.2.1.1
MAX_CONTACT_LEN = 2048
_SIP_SCHEMES = ("sip", "sips")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_PARAM_VALUE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")  # token / host / IPv6
_Q_RE = re.compile(r"^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$")  # RFC 3261 §20.10 qvalue
_BAD_DISPLAY_CHARS = re.compile('[">\r\n\x00]')
_BAD_URI_CHARS = re.compile('[ \t\r\n<>"]')


# --------------------------------------------------------------------------
# Private parsing helpers


@dataclass(frozen=True, slots=True)
class ContactSpec:
    """One parsed Contact (or To) value: the URI and its header parameters.

    ``star`` is True for ``Contact: *``; parameter names are lowercased and a
    parameter without value maps to "".
    """

    uri: str
    params: dict[str, str]
    star: bool = False

    @property
    def expires(self) -> int | None:
        v = self.params.get("expires")
        return None if v is None else parse_delta_seconds(v)

    @property
    def q(self) -> float | None:
        v = self.params.get("q")
        if v is None:
            return None
        if not _Q_RE.match(v):
            raise ParseError("bad q value")
        return float(v)


def parse_delta_seconds(value: str) -> int:
    """delta-seconds (RFC 3261 §20.19, §10.2.1.1: larger than 2**32-1 means 2**32-1)."""
    v = value.strip()
    if not v or not v.isascii() or not v.isdigit():
        raise ParseError("bad delta-seconds")
    if len(v) > 10:
        return MAX_DELTA
    return min(int(v), MAX_DELTA)


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t":
        i += 1
    return i


def _parse_params(s: str, i: int) -> dict[str, str]:
    """``*( SEMI name [EQUAL (token / host / quoted-string)] )`` from s[i:]."""
    params: dict[str, str] = {}
    n = len(s)
    while True:
        i = _skip_ws(s, i)
        if i >= n:
            return params
        if s[i] != ";":
            raise ParseError("expected ';' before header parameter")
        i = _skip_ws(s, i + 1)
        m = _TOKEN.match(s, i)
        if m is None:
            raise ParseError("bad header parameter name")
        name = m.group().lower()
        i = _skip_ws(s, m.end())
        val = ""
        if i < n and s[i] == "=":
            i = _skip_ws(s, i + 1)
            if i < n and s[i] == '"':
                i += 1
                buf: list[str] = []
                while True:
                    if i >= n:
                        raise ParseError("unterminated quoted string")
                    ch = s[i]
                    if ch == "\\":
                        if i + 1 >= n:
                            raise ParseError("dangling escape")
                        buf.append(s[i + 1])
                        i += 2
                        continue
                    i += 1
                    if ch == '"':
                        break
                    buf.append(ch)
                val = "".join(buf)
            else:
                # token, host or IPv6 reference
                m = _PARAM_VALUE.match(s, i)
                if m is None:
                    raise ParseError("bad header parameter value")
                val = m.group()
                i = m.end()
        if name in params:
            raise ParseError(f"duplicate header parameter {name}")
        if len(params) >= 32:
            raise ParseError("too many header parameters")
        params[name] = val


def parse_contact(value: str) -> ContactSpec:
    """Parse one Contact/To/From value (RFC 3261 §20.10, §25.1 name-addr / addr-spec).

    Requires a sip: or sips: URI. Raises ParseError on anything else.
    """
    return _parse_contact(value)[0]


def _parse_contact(value: str) -> tuple[ContactSpec, UriParts | None]:
    """``parse_contact``, and the split URI (None for ``*``)."""
    s = value.strip()
    if len(s) > MAX_CONTACT_LEN:
        raise ParseError("contact too long")
    if s == "*":
        return ContactSpec("*", {}, star=True), None
    if not s:
        raise ParseError("empty contact")
    if s[0] == '"':
        # quoted display-name, then <uri>
        i = 1
        while True:
            if i >= len(s):
                raise ParseError("unterminated display name")
            if s[i] == "\\":
                i += 2
                continue
            if s[i] == '"':
                break
            i += 1
        lt = _skip_ws(s, i + 1)
        if lt >= len(s) or s[lt] != "<":
            raise ParseError("expected '<' after display name")
    else:
        # a token display-name cannot contain ';', so a '<' after one belongs
        # to a parameter of an addr-spec
        lt = s.find("<")
        semi = s.find(";")
        if lt >= 0 and 0 <= semi < lt:
            lt = -1
        if lt > 0 and _BAD_DISPLAY_CHARS.search(s, 0, lt) is not None:
            raise ParseError("bad display name")
    if lt >= 0:
        gt = s.find(">", lt)
        if gt < 0:
            raise ParseError("unterminated <uri>")
        uri = s[lt + 1 : gt].strip()
        params = _parse_params(s, gt + 1)
    else:
        # addr-spec: no ';', ',' or '?' belong to the URI (RFC 3261 §20.10)
        semi = s.find(";")
        uri = (s if semi < 0 else s[:semi]).strip()
        params = _parse_params(s, semi) if semi >= 0 else {}
    parts = split_uri(uri)
    if parts is None or parts.scheme not in _SIP_SCHEMES or not parts.host:
        raise ParseError("not a SIP URI", 416 if parts is not None else 400)
    if _BAD_URI_CHARS.search(uri) is not None:
        raise ParseError("bad character in URI")
    return ContactSpec(uri, params), parts


# --------------------------------------------------------------------------
# The registrar


@dataclass(frozen=True, slots=True)
class _Update:
    spec: ContactSpec
    expires: int
    q: float | None
    existing: Binding | None


class Registrar:
    """RFC 3261 §10.3 registrar over a LocationStore. See the module docstring."""

    def __init__(
        self,
        auth: DigestAuthenticator,
        creds: CredentialLookup,
        store: LocationStore,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_contacts_per_device: int = 10,
        domain_check: Callable[[str], bool] | None = None,
        on_auth_failure: Callable[[tuple[str, int], str], None] | None = None,
        on_change: Callable[[str, list[Binding], list[Binding]], None] | None = None,
        on_refused: Callable[[tuple[str, int], str, str], None] | None = None,
        node: str = "",
    ) -> None:
        if not 0 < min_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= max_expires")
        if max_contacts_per_device < 1:
            raise ValueError("max_contacts_per_device must be >= 1")
        self.auth = auth
        self.creds = creds
        self.store = store
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = max(min(default_expires, max_expires), min_expires)
        self.max_contacts = max_contacts_per_device
        self.domain_check = domain_check
        self.on_auth_failure = on_auth_failure
        self.on_change = on_change
        self.on_refused = on_refused  # (source, device, reason): an authenticated device refused
        self.node = node
        self._q: dict[str, dict[str, float]] = {}  # device -> contact -> q
        # The last request ``screen`` passed and its digest result: ``handle`` of that
        # same request object then only records the nonce count (see ``_screen``).
        self._screened: tuple[SipRequest, AuthResult] | None = None
        self._date: tuple[int, str] = (-1, "")  # (second, its Date header value)
        self._ruri: tuple[str, UriParts | None] | None = None  # the last Request-URI, split

    # --- public --------------------------------------------------------------
    def expire(self, now: float) -> list[Binding]:
        """Drop expired bindings from the store and return them (for events/logs)."""
        gone = self.store.expire(now)
        for b in gone:
            qs = self._q.get(b.device)
            if qs is not None:
                qs.pop(b.contact, None)
                if not qs:
                    del self._q[b.device]
        return gone

    def handle(
        self,
        request: SipRequest,
        source: tuple[str, int],
        transport: str,
        now: float,
        wall: float,
    ) -> SipResponse:
        """Process one REGISTER and return its final response (never raises on peer input)."""
        try:
            return self._handle(request, source, transport, now, wall)
        except ParseError as exc:
            # A fixed reason phrase: the peer's bytes are never echoed.
            return self._reply(request, exc.status_hint or 400)

    def screen(
        self, request: SipRequest, source: tuple[str, int], wall: float
    ) -> SipResponse | None:
        """Steps 1-3 alone, storing nothing: the final answer, or None when authenticated.

        For answering refused and unauthenticated REGISTERs without a
        transaction (the endpoint sends the answer statelessly, so a flood of
        them leaves no state behind). A failed check is counted here through
        ``on_auth_failure``; None means the credentials check out and
        ``handle`` will do the rest (it checks them again, recording the
        nonce count). Never raises on peer input.
        """
        try:
            resp, _ = self._screen(request, source, wall, record=False)
        except ParseError as exc:
            return self._reply(request, exc.status_hint or 400)
        return resp

    # --- steps -----------------------------------------------------------------
    def _screen(
        self, request: SipRequest, source: tuple[str, int], wall: float, *, record: bool
    ) -> tuple[SipResponse | None, Credentials | None]:
        """§10.3 steps 1-3: (the final answer, None) or (None, the authenticated account).

        ``screen`` (``record=False``) keeps the request and its digest result when
        they pass; ``handle`` (``record=True``) of that very request object (the
        endpoint screens a REGISTER and hands it to the transaction layer in one go)
        does not compute the digest again: steps 1-3 depend on the request alone,
        and ``DigestAuthenticator.record`` still checks the nonce count against the
        replay cache and records it, as ``verify(record=True)`` would. Any other
        request is checked in full.
        """
        screened, self._screened = self._screened, None
        if record and screened is not None and screened[0] is request:
            result = self.auth.record(screened[1])
            if result.status is AuthStatus.OK and result.credentials is not None:
                return None, result.credentials
            return self._auth_refused(request, source, wall, result), None
        if request.method != "REGISTER":
            resp = self._reply(request, 405)
            resp.headers.add("Allow", "REGISTER")
            return resp, None

        # §10.3 step 1: the Request-URI names a domain we are responsible for.
        ruri = self._split_ruri(request.uri)
        if ruri is None or ruri.scheme not in _SIP_SCHEMES:
            return self._reply(request, 416 if ruri is not None else 400), None
        if self.domain_check is not None and not self.domain_check(ruri.host):
            return self._reply(request, 404, reason="Domain Not Served"), None

        # §10.3 step 2: Require.
        required = [r for v in request.headers.get_all("Require") for r in v.split(",") if r]
        if required:
            resp = self._reply(request, 420)
            resp.headers.add("Unsupported", ", ".join(r.strip() for r in required[:16]))
            return resp, None

        # §10.3 step 3: authenticate (RFC 3261 §22.2).
        # Nonces are timed on the wall clock so that every node sharing the
        # secret (a phone failing over) can check them.
        result = self.auth.verify(request, self.creds, wall, record=record)
        if result.status is not AuthStatus.OK or result.credentials is None:
            return self._auth_refused(request, source, wall, result), None
        if not record:
            self._screened = (request, result)
        return None, result.credentials

    def _auth_refused(
        self, request: SipRequest, source: tuple[str, int], wall: float, result: AuthResult
    ) -> SipResponse:
        """The answer to credentials that did not check out (counted when they failed)."""
        failed = result.status in (AuthStatus.FAILED, AuthStatus.REJECTED)
        if failed and self.on_auth_failure is not None:
            self.on_auth_failure(source, result.username)
        if result.status is AuthStatus.REJECTED:
            return self._reply(request, 403)
        resp = self._reply(request, 401)
        stale = result.status is AuthStatus.STALE
        for name, value in self.auth.challenge(wall, stale=stale):
            resp.headers.add(name, value)
        return resp

    def _split_ruri(self, uri: str) -> UriParts | None:
        """``split_uri`` of a Request-URI, the last one remembered (phones register
        to the same one: the registrar's address)."""
        last = self._ruri
        if last is not None and last[0] == uri:
            return last[1]
        parts = split_uri(uri)
        self._ruri = (uri, parts)
        return parts

    def _refused(self, source: tuple[str, int], device: str, reason: str) -> None:
        if self.on_refused is not None:
            self.on_refused(source, device, reason)

    def _handle(
        self,
        request: SipRequest,
        source: tuple[str, int],
        transport: str,
        now: float,
        wall: float,
    ) -> SipResponse:
        refused, creds = self._screen(request, source, wall, record=True)
        if refused is not None or creds is None:
            assert refused is not None
            return refused
        call_id = request.call_id
        cseq, _ = request.cseq
        device = creds.device

        # §10.3 steps 4 and 5: the authenticated device may register only its own AORs.
        to_value = request.headers.get("To")
        if to_value is None:
            raise ParseError("missing To")
        _, to_parts = _parse_contact(to_value)
        if to_parts is None:
            raise ParseError("To is '*'")
        aor_user = unquote(to_parts.user)
        if not aor_user or aor_user not in {device, *creds.dns}:
            self._refused(source, device, "not-its-address")
            return self._reply(request, 403)
        aor = f"{to_parts.scheme}:{aor_user}@{to_parts.host}"

        values = request.headers.get_all("Contact")
        if len(values) > self.max_contacts:
            self._refused(source, device, "too-many-contacts")
            return self._reply(request, 403, reason="Too Many Contacts")
        expires_hdr = request.headers.get("Expires")
        header_expires = None if expires_hdr is None else parse_delta_seconds(expires_hdr)
        specs = [parse_contact(v) for v in values]
        current = [b for b in self.store.bindings(device, now) if b.protocol == "sip"]

        # §10.3 step 6: Contact "*".
        if any(s.star for s in specs):
            if len(specs) != 1 or header_expires != 0:
                raise ParseError("'*' needs Expires: 0 and no other contact")
            for b in current:
                if b.call_id == call_id and cseq <= b.cseq:
                    return self._reply(request, 500, reason="Out Of Order CSeq")
            for b in current:
                self.store.remove(device, b.contact)
            self._prune_q(device, [])
            _log_changes(device, source, [], current, current)
            if current and self.on_change is not None:
                self.on_change(device, [], current)
            return self._ok(request, device, now, wall)

        # §10.3 step 7: compute every update first, commit only if all succeed.
        updates: dict[str, _Update] = {}
        too_brief = False
        for spec in specs:
            exp = spec.expires
            if exp is None:
                exp = header_expires if header_expires is not None else self.default_expires
            if 0 < exp < self.min_expires and exp < 3600:
                too_brief = True  # §10.3 step 7 / §10.2.8: 423 Interval Too Brief
            exp = min(exp, self.max_expires)
            q = spec.q  # validates the q value (ParseError -> 400)
            existing = next((b for b in current if uri_matches(b.contact, spec.uri)), None)
            if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
                return self._reply(request, 500, reason="Out Of Order CSeq")
            key = existing.contact if existing is not None else spec.uri
            updates.pop(key, None)  # a repeated contact: the last one wins
            updates[key] = _Update(spec, exp, q, existing)
        if too_brief:
            resp = self._reply(request, 423)
            resp.headers.add("Min-Expires", str(self.min_expires))
            return resp

        removed: list[Binding] = []
        added: list[Binding] = []
        touched = set(updates)
        for key, up in updates.items():
            if up.expires == 0:
                if up.existing is not None:
                    self.store.remove(device, key)
                    removed.append(up.existing)
                continue
            if up.existing is not None and up.existing.contact != up.spec.uri:
                self.store.remove(device, up.existing.contact)
            binding = Binding(
                device=device,
                protocol="sip",
                contact=up.spec.uri,
                expires_at=now + up.expires,
                source=source,
                transport=transport,
                aor=aor,
                call_id=call_id,
                cseq=cseq,
                user_agent=(request.headers.get("User-Agent") or "")[:256],
                registered_at=wall,
                node=self.node,
            )
            self.store.put(binding)
            added.append(binding)
            qs = self._q.setdefault(device, {})
            if up.q is None:
                qs.pop(binding.contact, None)
            else:
                qs[binding.contact] = up.q

        # Contact limit: drop the least recently registered bindings not in this request.
        after = self.store.bindings(device, now)
        excess = len(after) - self.max_contacts
        if excess > 0:
            touched.update(a.contact for a in added)
            others = [b for b in after if b.contact not in touched]
            others.sort(key=lambda b: (b.registered_at, b.expires_at))
            for b in others[:excess]:
                self.store.remove(device, b.contact)
                removed.append(b)
        self._prune_q(device, self.store.bindings(device, now))
        _log_changes(device, source, added, removed, current)
        if (added or removed) and self.on_change is not None:
            self.on_change(device, added, removed)
        return self._ok(request, device, now, wall)

    # --- responses -----------------------------------------------------------------
    def _ok(self, request: SipRequest, device: str, now: float, wall: float) -> SipResponse:
        """§10.3 step 8: 200 listing all current bindings, with Date."""
        resp = self._reply(request, 200)
        for b in sorted(self.store.bindings(device, now), key=lambda b: b.contact):
            remaining = max(1, int(b.expires_at - now + 0.5))
            value = f"<{b.contact}>;expires={remaining}"
            q = self._q.get(device, {}).get(b.contact)
            if q is not None:
                value += f";q={q:.3f}".rstrip("0").rstrip(".")
            resp.headers.add("Contact", value)
        second = int(wall)
        if self._date[0] != second:
            self._date = (second, formatdate(second, usegmt=True))
        resp.headers.add("Date", self._date[1])
        return resp

    def _reply(self, request: SipRequest, status: int, reason: str | None = None) -> SipResponse:
        return make_response(request, status, reason, to_tag=derived_tag(request))

    def _prune_q(self, device: str, keep: list[Binding]) -> None:
        qs = self._q.get(device)
        if qs is None:
            return
        live = {b.contact for b in keep}
        for contact in [c for c in qs if c not in live]:
            del qs[contact]
        if not qs:
            del self._q[device]
