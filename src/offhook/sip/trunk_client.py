"""SIP trunk client side: OPTIONS pings and registration towards a trunk's far end.

``PingOwner`` reports an OPTIONS ping's outcome to the ``TrunkMonitor``
(RFC 3261 §11: any final answer but 503 means the far end is alive);
``TrunkRegistration`` registers a trunk's account at its far end (RFC 3261
§10.2: one Call-ID for every refresh, digest on a challenge, the granted
expiry read from our Contact or Expires). Requests name this node in the
trunk's IP family and go where the trunk's host (or name) resolves. The
``SipEndpoint`` decides when (``TrunkMonitor.due_*``) and sends them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from offhook.common.errors import ParseError
from offhook.sip.headers import parse_name_addr
from offhook.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
)
from offhook.sip.trunks import (
    TrunkMonitor,
    TrunkTarget,
    digest_authorization,
    pick_challenge,
)

log = logging.getLogger("offhook.sip")

if TYPE_CHECKING:
    from offhook.sip.endpoint import SipEndpoint


def trunk_uri(target: TrunkTarget, user: str = "") -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    suffix = f";transport={target.transport}" if target.transport != "udp" else ""
    return f"sip:{user + '@' if user else ''}{host}:{target.port}{suffix}"


class PingOwner:
    """Receives the outcome of one OPTIONS ping to a trunk (RFC 3261 §11)."""

    def __init__(self, ep: SipEndpoint, monitor: TrunkMonitor, name: str) -> None:
        self.ep = ep
        self.monitor = monitor
        self.name = name

    def on_response(self, req: SipRequest, resp: SipResponse) -> None:
        if resp.status >= 200:
            # any final answer (even 401/407/404) proves the far end alive; 503 does not
            self.monitor.ping_result(self.name, resp.status, self.ep.loop.time())

    def on_timeout(self, req: SipRequest) -> None:  # Timer F or a transport error
        self.monitor.ping_result(self.name, None, self.ep.loop.time())


class TrunkRegistration:
    """Registers one trunk's account at its far end (RFC 3261 §10.2), with digest."""

    def __init__(self, ep: SipEndpoint, monitor: TrunkMonitor, target: TrunkTarget) -> None:
        self.ep = ep
        self.monitor = monitor
        self.target = target
        # One Call-ID for every refresh (§10.2.4), naming us in the trunk's family.
        self.call_id = ep.ids.call_id(ep.host_for(target.host))
        self.tag = ep.ids.tag()
        self.cseq = 0
        self.auth_sent = False

    def send(self, auth: tuple[str, str] | None = None) -> None:
        t = self.target
        ep = self.ep
        self.cseq += 1
        aor = trunk_uri(t, t.username).split(";", 1)[0]
        suffix = f";transport={t.transport}" if t.transport != "udp" else ""
        items = [
            ("Via", ep.via(t.transport, t.host)),
            ("Max-Forwards", "70"),
            ("From", f"<{aor}>;tag={self.tag}"),
            ("To", f"<{aor}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
            ("Contact", f"<sip:{t.username}@{ep.host_port_for(t.host)}{suffix}>"),
            ("Expires", str(t.expires)),
            *ep.common_headers(),
        ]
        if auth is not None:
            items.append(auth)
        uri = trunk_uri(t)
        req = SipRequest(method="REGISTER", uri=uri, headers=Headers(items), body=b"")
        if not ep.request(req, ep.trunk_dest(t.host, t.port), t.transport, self):
            self.monitor.register_result(t.name, None, ep.loop.time())

    def on_response(self, req: SipRequest, resp: SipResponse) -> None:
        status = resp.status
        if status < 200:
            return
        now = self.ep.loop.time()
        if status in (401, 407) and not self.auth_sent:
            proxy = status == 407
            challenge = pick_challenge(
                resp.headers.get_raw("Proxy-Authenticate" if proxy else "WWW-Authenticate")
            )
            value = (
                digest_authorization(
                    challenge, "REGISTER", req.uri, self.target.username, self.target.password
                )
                if challenge is not None
                else None
            )
            if value is not None:
                self.auth_sent = True
                self.send(("Proxy-Authorization" if proxy else "Authorization", value))
                return
        self.auth_sent = False
        if 200 <= status < 300:
            self.monitor.register_result(self.target.name, self._granted(resp), now)
        else:
            log.warning("trunk %s: REGISTER answered %d", self.target.name, status)
            self.monitor.register_result(self.target.name, None, now)

    def on_timeout(self, req: SipRequest) -> None:
        self.auth_sent = False
        log.warning("trunk %s: REGISTER timed out", self.target.name)
        self.monitor.register_result(self.target.name, None, self.ep.loop.time())

    def _granted(self, resp: SipResponse) -> int:
        """The expiry the registrar granted our contact (Contact param, then Expires)."""
        ours = f"{self.target.username}@{self.ep.host_port_for(self.target.host)}".lower()
        for value in resp.headers.get_all("Contact"):
            try:
                contact = parse_name_addr(value)
            except ParseError:
                continue
            expires = contact.params.get("expires")
            if ours in str(contact.uri).lower() and expires and expires.isdigit():
                return int(expires)
        header = (resp.headers.get("Expires") or "").strip()
        return int(header) if header.isdigit() else self.target.expires
