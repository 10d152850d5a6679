"""A minimal, test-only SIP user agent over real UDP/TCP loopback sockets.

It exists to drive an in-process offhook node from integration tests and to
let them assert on the real wire messages. It builds raw request text by
hand, answers digest challenges with ``offhook.sip.auth.digest_response`` and
parses everything it receives with ``offhook.sip.codec.parse_message`` (TCP
bytes are framed here, independently of the server's framer). It is not a
UA implementation: it keeps no transaction state, does not retransmit, and
only knows enough dialog state (``Dialog``) to send ACK/BYE/re-INVITE.

Every wait is bounded: ``recv`` raises ``TimeoutError`` after ``timeout``
seconds; ``expect_nothing`` returns what arrived (normally nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from offhook.sip.auth import digest_response, ha1, parse_digest
from offhook.sip.codec import parse_message
from offhook.sip.message import SipMessage, SipRequest, SipResponse

HOST = "127.0.0.1"
Addr = tuple[str, int]
Match = Callable[[SipMessage], bool]


def tag() -> str:
    return secrets.token_hex(5)


def branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def sdp(
    port: int,
    direction: str | None = None,
    session: int = 1,
    version: int = 1,
    host: str = HOST,
) -> bytes:
    """A small audio offer/answer on ``host``:``port`` (PCMU + telephone-event)."""
    kind = "IP6" if ":" in host else "IP4"
    lines = [
        "v=0",
        f"o=test {session} {version} IN {kind} {host}",
        "s=-",
        f"c=IN {kind} {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
    ]
    if direction:
        lines.append(f"a={direction}")
    return ("\r\n".join(lines) + "\r\n").encode()


def header_param(value: str, name: str) -> str | None:
    """A ``;name=value`` parameter of a header value (case-insensitive name)."""
    for part in value.split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


def angle_uri(value: str) -> str:
    """The URI inside ``<...>`` of a name-addr (or the value up to ``;``)."""
    if "<" in value:
        return value[value.index("<") + 1 : value.index(">")]
    return value.split(";", 1)[0].strip()


def is_request(method: str) -> Match:
    return lambda m: isinstance(m, SipRequest) and m.method == method


def is_response(method: str | None = None, final: bool = False, status: int | None = None) -> Match:
    def match(m: SipMessage) -> bool:
        if not isinstance(m, SipResponse):
            return False
        if method is not None and m.cseq[1] != method:
            return False
        if status is not None and m.status != status:
            return False
        return not final or m.status >= 200

    return match


def frame(buffer: bytearray) -> bytes | None:
    """Take one whole message off a TCP byte buffer (RFC 3261 §18.3), or None."""
    while buffer[:2] == b"\r\n":
        del buffer[:2]
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    length = 0
    for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            length = int(value.strip())
    total = end + 4 + length
    if len(buffer) < total:
        return None
    data = bytes(buffer[:total])
    del buffer[:total]
    return data


@dataclass
class Dialog:
    """What one side needs to send in-dialog requests (RFC 3261 §12)."""

    call_id: str
    local: str  # our From value, with our tag
    remote: str  # their To value, with their tag
    target: str  # remote target (their Contact URI)
    cseq: int = 1

    def next_cseq(self) -> int:
        self.cseq += 1
        return self.cseq


@dataclass
class SipClient:
    """One test UA: a user with a password, bound to a loopback UDP or TCP socket."""

    server: Addr
    user: str
    password: str = ""
    realm: str = "offhook.test"
    transport: str = "udp"
    display: str | None = None
    inbox: list[SipMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    port: int = 0
    closed: bool = False
    pongs: int = 0
    local: str = HOST  # the address the UA binds and writes (IPv4 or IPv6 loopback)

    def __post_init__(self) -> None:
        self._arrived = asyncio.Event()
        self._udp: asyncio.DatagramTransport | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._cseq = 0
        self.call_id = f"{secrets.token_hex(8)}@{HOST}"  # the REGISTER Call-ID
        self.nonce_count = 0

    # --- sockets ----------------------------------------------------------
    async def start(self) -> SipClient:
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            owner = self

            class _Proto(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: Any) -> None:
                    owner._received(data)

            self._udp, _ = await loop.create_datagram_endpoint(_Proto, local_addr=(self.local, 0))
            self.port = self._udp.get_extra_info("sockname")[1]
        else:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.server), 5.0)
            self._reader, self._writer = reader, writer
            self.port = writer.get_extra_info("sockname")[1]
            self._task = asyncio.create_task(self._read_tcp())
        return self

    async def _read_tcp(self) -> None:
        assert self._reader is not None
        buffer = bytearray()
        while True:
            try:
                chunk = await self._reader.read(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                self._arrived.set()
                return
            buffer += chunk
            while buffer[:2] == b"\r\n":  # RFC 5626 §4.4.1 pong(s)
                del buffer[:2]
                self.pongs += 1
                self._arrived.set()
            while (data := frame(buffer)) is not None:
                self._received(data)

    def _received(self, data: bytes) -> None:
        self.raw.append(data)
        if data.strip(b"\r\n") == b"":
            return
        self.inbox.append(parse_message(data))
        self._arrived.set()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    def half_close(self) -> None:
        """TCP only: shut our sending side down (FIN), keep reading."""
        assert self._writer is not None
        self._writer.write_eof()

    async def wait_closed(self, timeout: float = 3.0) -> bool:
        """TCP only: True once the server closed the connection, False after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.closed:
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        return True

    def send_bytes(self, data: bytes) -> None:
        if self._udp is not None:
            self._udp.sendto(data, self.server)
        else:
            assert self._writer is not None
            self._writer.write(data)

    async def recv(self, match: Match | None = None, timeout: float = 3.0) -> SipMessage:
        """The first received message ``match`` accepts (removed from the inbox)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, msg in enumerate(self.inbox):
                if match is None or match(msg):
                    return self.inbox.pop(i)
            left = deadline - loop.time()
            if left <= 0:
                got = [_summary(m) for m in self.inbox]
                raise TimeoutError(f"{self.user}: nothing matching in {timeout} s; inbox {got}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    async def recv_response(
        self, method: str | None = None, final: bool = True, timeout: float = 3.0
    ) -> SipResponse:
        msg = await self.recv(is_response(method, final), timeout)
        assert isinstance(msg, SipResponse)
        return msg

    async def recv_request(self, method: str, timeout: float = 3.0) -> SipRequest:
        msg = await self.recv(is_request(method), timeout)
        assert isinstance(msg, SipRequest)
        return msg

    async def expect_nothing(
        self, match: Match | None = None, wait: float = 0.5
    ) -> list[SipMessage]:
        """Wait ``wait`` seconds; return every matching message that arrived (expect [])."""
        await asyncio.sleep(wait)
        return [m for m in self.inbox if match is None or match(m)]

    # --- message building ---------------------------------------------------
    @property
    def host_port(self) -> str:
        return f"[{self.local}]:{self.port}" if ":" in self.local else f"{self.local}:{self.port}"

    @property
    def server_host(self) -> str:
        host = self.server[0]
        return f"[{host}]" if ":" in host else host

    @property
    def server_uri(self) -> str:
        return f"sip:{self.server_host}:{self.server[1]}"

    @property
    def contact_uri(self) -> str:
        suffix = ";transport=tcp" if self.transport == "tcp" else ""
        return f"sip:{self.user}@{self.host_port}{suffix}"

    def from_value(self, user: str | None = None, tag_: str | None = None) -> str:
        disp = f'"{self.display}" ' if self.display else ""
        return f"{disp}<sip:{user or self.user}@{self.server_host}>;tag={tag_ or tag()}"

    def via(self, branch_: str | None = None) -> str:
        return (
            f"SIP/2.0/{self.transport.upper()} {self.host_port};branch={branch_ or branch()};rport"
        )

    def build(
        self,
        method: str,
        uri: str,
        *,
        from_: str,
        to: str,
        call_id: str,
        cseq: int,
        via: str | None = None,
        contact: str | None = "",
        body: bytes = b"",
        extra: list[tuple[str, str]] | None = None,
        cseq_method: str | None = None,
        content_type: str = "application/sdp",
    ) -> bytes:
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: {via or self.via()}",
            "Max-Forwards: 70",
            f"From: {from_}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {cseq_method or method}",
        ]
        if contact == "":
            contact = f"<{self.contact_uri}>"
        if contact is not None:
            lines.append(f"Contact: {contact}")
        lines.extend(f"{n}: {v}" for n, v in extra or [])
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def authorization(self, challenge: str, method: str, uri: str, user: str | None = None) -> str:
        """A Digest credential answering ``challenge`` (RFC 7616 §3.4, qop=auth)."""
        _, params = parse_digest(challenge)
        algorithm = params.get("algorithm", "MD5")
        username = user or self.user
        self.nonce_count += 1
        nc = f"{self.nonce_count:08x}"
        cnonce = secrets.token_hex(8)
        qop = "auth" if "qop" in params else None
        key = ha1(username, params["realm"], self.password, algorithm)
        response = digest_response(
            algorithm, key, method, uri, params["nonce"], qop=qop, nc=nc, cnonce=cnonce
        )
        parts = [
            f'username="{username}"',
            f'realm="{params["realm"]}"',
            f'nonce="{params["nonce"]}"',
            f'uri="{uri}"',
            f'response="{response}"',
            f"algorithm={algorithm}",
        ]
        if qop:
            parts += [f"qop={qop}", f"nc={nc}", f'cnonce="{cnonce}"']
        if "opaque" in params:
            parts.append(f'opaque="{params["opaque"]}"')
        return "Digest " + ", ".join(parts)

    # --- REGISTER -----------------------------------------------------------
    def register_request(
        self,
        *,
        expires: int | None = 300,
        contact: str | None = "",
        aor: str | None = None,
        auth: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> bytes:
        self._cseq += 1
        aor_user = aor or self.user
        headers = list(extra or [])
        if expires is not None:
            headers.append(("Expires", str(expires)))
        if auth is not None:
            headers.append(("Authorization", auth))
        return self.build(
            "REGISTER",
            f"sip:{self.server_host}",
            from_=f"<sip:{aor_user}@{self.server_host}>;tag={tag()}",
            to=f"<sip:{aor_user}@{self.server_host}>",
            call_id=self.call_id,
            cseq=self._cseq,
            contact=contact,
            extra=headers,
        )

    async def register(
        self,
        *,
        expires: int | None = 300,
        contact: str | None = "",
        aor: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> tuple[SipResponse, SipResponse]:
        """REGISTER, answer the 401, return (challenge, final response)."""
        self.send_bytes(
            self.register_request(expires=expires, contact=contact, aor=aor, extra=extra)
        )
        first = await self.recv_response("REGISTER")
        if first.status != 401:
            return first, first
        challenge = first.headers.get("WWW-Authenticate") or ""
        auth = self.authorization(challenge, "REGISTER", f"sip:{self.server_host}")
        self.send_bytes(
            self.register_request(expires=expires, contact=contact, aor=aor, auth=auth, extra=extra)
        )
        return first, await self.recv_response("REGISTER")

    # --- calls as the caller ------------------------------------------------
    def invite_request(
        self,
        called: str,
        *,
        call_id: str,
        from_tag: str,
        cseq: int,
        body: bytes = b"",
        auth: str | None = None,
        branch_: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> bytes:
        extra = [("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"), *(headers or [])]
        if auth is not None:
            extra.append(("Proxy-Authorization", auth))
        return self.build(
            "INVITE",
            f"sip:{called}@{self.server_host}:{self.server[1]}",
            from_=self.from_value(tag_=from_tag),
            to=f"<sip:{called}@{self.server_host}>",
            call_id=call_id,
            cseq=cseq,
            via=self.via(branch_),
            body=body,
            extra=extra,
        )

    async def call(
        self,
        called: str,
        body: bytes = b"",
        authenticate: bool = True,
        headers: list[tuple[str, str]] | None = None,
    ) -> Call:
        """Send an INVITE (with extra ``headers``), answer the 407 (with its ACK),
        return the Call in progress."""
        call = Call(self, called, f"{secrets.token_hex(8)}@{HOST}", tag(), body)
        call.headers = list(headers or [])
        self.send_bytes(call.invite_bytes())
        if not authenticate:
            return call
        challenge = await self.recv_response("INVITE")
        assert challenge.status == 407, _summary(challenge)
        call.ack_failure(challenge)
        uri = f"sip:{called}@{self.server_host}:{self.server[1]}"
        value = challenge.headers.get("Proxy-Authenticate") or ""
        call.cseq += 1
        call.branch = branch()
        call.auth = self.authorization(value, "INVITE", uri)
        self.send_bytes(call.invite_bytes())
        return call

    # --- calls as the callee ------------------------------------------------
    def answer(
        self,
        invite: SipRequest,
        status: int,
        *,
        to_tag: str,
        body: bytes = b"",
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "application/sdp",
    ) -> None:
        """Send a response to ``invite`` (or any request) from this UA, with extra ``headers``."""
        reasons = {
            100: "Trying",
            180: "Ringing",
            183: "Session Progress",
            200: "OK",
            486: "Busy Here",
            487: "Request Terminated",
            491: "Request Pending",
        }
        lines = [f"SIP/2.0 {status} {reason or reasons.get(status, 'Status')}"]
        for value in invite.headers.get_all("Via"):
            lines.append(f"Via: {value}")
        to = invite.headers.get("To") or ""
        if status > 100 and header_param(to, "tag") is None:
            to = f"{to};tag={to_tag}"
        lines += [
            f"From: {invite.headers.get('From')}",
            f"To: {to}",
            f"Call-ID: {invite.call_id}",
            f"CSeq: {invite.headers.get('CSeq')}",
        ]
        if 100 < status < 300 and invite.method in ("INVITE", "UPDATE"):
            lines.append(f"Contact: <{self.contact_uri}>")
        lines.extend(f"{n}: {v}" for n, v in headers or [])
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        self.send_bytes(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def uas_dialog(self, invite: SipRequest, to_tag: str) -> Dialog:
        """Our dialog as the callee of ``invite`` after answering it with ``to_tag``."""
        return Dialog(
            call_id=invite.call_id,
            local=f"{invite.headers.get('To')};tag={to_tag}",
            remote=invite.headers.get("From") or "",
            target=angle_uri(invite.headers.get("Contact") or ""),
            cseq=0,
        )

    def in_dialog(
        self,
        dialog: Dialog,
        method: str,
        body: bytes = b"",
        cseq: int | None = None,
        branch_: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "application/sdp",
    ) -> bytes:
        """An in-dialog request (BYE, re-INVITE, UPDATE, INFO, REFER, PRACK, ACK with ``cseq``)."""
        num = cseq if cseq is not None else dialog.next_cseq()
        return self.build(
            method,
            dialog.target,
            from_=dialog.local,
            to=dialog.remote,
            call_id=dialog.call_id,
            cseq=num,
            via=self.via(branch_),
            contact="" if method in ("INVITE", "UPDATE") else None,
            body=body,
            extra=headers,
            content_type=content_type,
        )


@dataclass
class Call:
    """The caller's side of one INVITE: its identifiers and, once answered, its dialog."""

    ua: SipClient
    called: str
    call_id: str
    from_tag: str
    body: bytes
    cseq: int = 1
    branch: str = field(default_factory=branch)
    auth: str | None = None
    dialog: Dialog | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)  # extra INVITE headers

    def invite_bytes(self) -> bytes:
        return self.ua.invite_request(
            self.called,
            call_id=self.call_id,
            from_tag=self.from_tag,
            cseq=self.cseq,
            body=self.body,
            auth=self.auth,
            branch_=self.branch,
            headers=self.headers,
        )

    def ack_failure(self, resp: SipResponse) -> None:
        """ACK a non-2xx final: same branch, To from the response (RFC 3261 §17.1.1.3)."""
        self.ua.send_bytes(
            self.ua.build(
                "ACK",
                f"sip:{self.called}@{self.ua.server_host}:{self.ua.server[1]}",
                from_=self.ua.from_value(tag_=self.from_tag),
                to=resp.headers.get("To") or "",
                call_id=self.call_id,
                cseq=self.cseq,
                via=self.ua.via(self.branch),
                contact=None,
            )
        )

    def cancel(self) -> None:
        """CANCEL the pending INVITE (RFC 3261 §9.1: same branch, Request-URI, CSeq)."""
        self.ua.send_bytes(
            self.ua.build(
                "CANCEL",
                f"sip:{self.called}@{self.ua.server_host}:{self.ua.server[1]}",
                from_=self.ua.from_value(tag_=self.from_tag),
                to=f"<sip:{self.called}@{self.ua.server_host}>",
                call_id=self.call_id,
                cseq=self.cseq,
                via=self.ua.via(self.branch),
                contact=None,
            )
        )

    def matches(self, msg: SipMessage) -> bool:
        return msg.call_id == self.call_id

    async def final(self, timeout: float = 3.0) -> SipResponse:
        """The next final response to the INVITE of this call."""

        def match(m: SipMessage) -> bool:
            return (
                isinstance(m, SipResponse)
                and m.call_id == self.call_id
                and m.cseq == (self.cseq, "INVITE")
                and m.status >= 200
            )

        msg = await self.ua.recv(match, timeout)
        assert isinstance(msg, SipResponse)
        return msg

    async def provisional(self, status: int, timeout: float = 3.0) -> SipResponse:
        def match(m: SipMessage) -> bool:
            return isinstance(m, SipResponse) and m.call_id == self.call_id and m.status == status

        msg = await self.ua.recv(match, timeout)
        assert isinstance(msg, SipResponse)
        return msg

    def established(self, ok: SipResponse) -> Dialog:
        """The dialog a 2xx creates (RFC 3261 §12.1.2)."""
        self.dialog = Dialog(
            call_id=self.call_id,
            local=self.ua.from_value(tag_=self.from_tag),
            remote=ok.headers.get("To") or "",
            target=angle_uri(ok.headers.get("Contact") or ""),
            cseq=self.cseq,
        )
        return self.dialog

    def ack(self, ok: SipResponse, body: bytes = b"", cseq: int | None = None) -> None:
        """ACK a 2xx: a new transaction to the remote target (RFC 3261 §13.2.2.4)."""
        dialog = self.dialog or self.established(ok)
        self.ua.send_bytes(
            self.ua.in_dialog(
                dialog, "ACK", body=body, cseq=cseq if cseq is not None else self.cseq
            )
        )


def _summary(msg: SipMessage) -> str:
    if isinstance(msg, SipResponse):
        return f"{msg.status} {msg.reason} ({msg.headers.get('CSeq')})"
    assert isinstance(msg, SipRequest)
    return f"{msg.method} {msg.uri}"
