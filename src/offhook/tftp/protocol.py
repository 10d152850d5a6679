"""Sans-IO TFTP: packet codec and the read-request server session.

RFC 1350 (the protocol), RFC 2347 (option extension, OACK), RFC 2348
(blksize), RFC 2349 (timeout and tsize). Only read requests are served: a
write request is answered with an ERROR. No asyncio, socket or time here:
time arrives as ``now`` arguments and the I/O lives in ``offhook.tftp.aio``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from offhook.common import ParseError

# RFC 1350 §5: a DATA payload is at most 512 bytes unless blksize says otherwise.
DEFAULT_BLKSIZE = 512
# RFC 2348: the blksize option is 8..65464 octets.
MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464
# RFC 2349 §2: the timeout option is 1..255 seconds.
MIN_TIMEOUT = 1
MAX_TIMEOUT = 255
# Largest datagram the codec accepts (a 65464-byte block plus its 4-byte header).
MAX_DATAGRAM = MAX_BLKSIZE + 4
_MAX_OPTIONS = 16


class Opcode(enum.IntEnum):
    """RFC 1350 §5 and RFC 2347 opcodes."""

    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(enum.IntEnum):
    """RFC 1350 Appendix error codes, plus 8 from RFC 2347."""

    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


@dataclass(frozen=True, slots=True)
class Request:
    """RRQ or WRQ: file name, transfer mode and RFC 2347 options (names lower-cased)."""

    opcode: Opcode
    filename: str
    mode: str
    options: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        parts = [self.filename, self.mode]
        for name, value in self.options:
            parts += [name, value]
        body = b"".join(p.encode("latin-1") + b"\0" for p in parts)
        return struct.pack("!H", self.opcode) + body


@dataclass(frozen=True, slots=True)
class Data:
    block: int
    payload: bytes

    def encode(self) -> bytes:
        return struct.pack("!HH", Opcode.DATA, self.block) + self.payload


@dataclass(frozen=True, slots=True)
class Ack:
    block: int

    def encode(self) -> bytes:
        return struct.pack("!HH", Opcode.ACK, self.block)


@dataclass(frozen=True, slots=True)
class Error:
    code: int
    message: str

    def encode(self) -> bytes:
        text = self.message.encode("latin-1", "replace")
        return struct.pack("!HH", Opcode.ERROR, self.code) + text + b"\0"


@dataclass(frozen=True, slots=True)
class OAck:
    options: tuple[tuple[str, str], ...]

    def encode(self) -> bytes:
        body = b"".join(
            n.encode("latin-1") + b"\0" + v.encode("latin-1") + b"\0" for n, v in self.options
        )
        return struct.pack("!H", Opcode.OACK) + body


Packet = Request | Data | Ack | Error | OAck


def _strings(body: bytes, what: str) -> list[str]:
    """NUL-terminated strings (RFC 1350 §5 netascii strings, decoded as latin-1)."""
    if not body:
        return []
    if not body.endswith(b"\0"):
        raise ParseError(f"{what}: string not NUL-terminated", None)
    return [p.decode("latin-1") for p in body[:-1].split(b"\0")]


def _options(fields: list[str], what: str) -> tuple[tuple[str, str], ...]:
    # RFC 2347: option name/value pairs, names case-insensitive.
    if len(fields) % 2:
        raise ParseError(f"{what}: option without a value", None)
    if len(fields) // 2 > _MAX_OPTIONS:
        raise ParseError(f"{what}: too many options", None)
    pairs: list[tuple[str, str]] = []
    for i in range(0, len(fields), 2):
        if not fields[i]:
            raise ParseError(f"{what}: empty option name", None)
        pairs.append((fields[i].lower(), fields[i + 1]))
    return tuple(pairs)


def parse_packet(datagram: bytes) -> Packet:
    """Decode one TFTP datagram; raise ParseError for anything malformed."""
    if len(datagram) > MAX_DATAGRAM:
        raise ParseError("datagram too long", None)
    if len(datagram) < 2:
        raise ParseError("datagram shorter than an opcode", None)
    (raw_op,) = struct.unpack_from("!H", datagram)
    try:
        op = Opcode(raw_op)
    except ValueError:
        raise ParseError(f"unknown opcode {raw_op}", None) from None
    body = datagram[2:]
    if op in (Opcode.RRQ, Opcode.WRQ):
        fields = _strings(body, op.name)
        if len(fields) < 2:
            raise ParseError(f"{op.name}: missing file name or mode", None)
        if not fields[0]:
            raise ParseError(f"{op.name}: empty file name", None)
        return Request(op, fields[0], fields[1].lower(), _options(fields[2:], op.name))
    if op is Opcode.OACK:
        return OAck(_options(_strings(body, "OACK"), "OACK"))
    if len(body) < 2:
        raise ParseError(f"{op.name}: truncated", None)
    (number,) = struct.unpack_from("!H", body)
    rest = body[2:]
    if op is Opcode.DATA:
        return Data(number, rest)
    if op is Opcode.ACK:
        if rest:
            raise ParseError("ACK: trailing bytes", None)
        return Ack(number)
    # ERROR: the message is a NUL-terminated string; tolerate a missing NUL.
    text = rest[:-1] if rest.endswith(b"\0") else rest
    return Error(number, text.decode("latin-1"))


# --- the read session ---------------------------------------------------------


class SessionState(enum.Enum):
    SENDING = "sending"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Server-side limits for a read session."""

    timeout: float = 2.0  # seconds before a retransmission when the client gave none
    max_retries: int = 5  # retransmissions of one packet before giving up
    max_blksize: int = 1468  # largest blksize granted (fits a 1500-byte Ethernet MTU)
    honour_client_timeout: bool = True  # RFC 2349 timeout option


def _netascii(data: bytes) -> bytes:
    # RFC 1350 §5 / RFC 764: CR -> CR NUL, LF -> CR LF.
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


class ReadSession:
    """One RRQ served to one client TID.

    Construct it with the parsed request and the file's bytes (``None`` or an
    ``Error`` when the file cannot be served). Then feed it datagrams with
    ``receive``, drain ``datagrams_to_send``, and call ``handle_timer`` once
    ``next_timer`` has passed. ``done`` turns true when the transfer is over.
    """

    def __init__(
        self,
        request: Request,
        content: bytes | Error | None,
        now: float,
        settings: SessionSettings | None = None,
    ) -> None:
        self._settings = settings or SessionSettings()
        self._outbox: list[bytes] = []
        self._last: bytes = b""
        self._deadline: float | None = None
        self._retries = 0
        self.state = SessionState.SENDING
        self.reason = ""
        self.blksize = DEFAULT_BLKSIZE
        self.timeout = self._settings.timeout
        self._data = b""
        self._acked = 0  # highest block index acknowledged (0 = OACK/none)
        self._sent = 0  # index of the block in flight (0 = the OACK)
        self._blocks = 0
        if request.opcode is not Opcode.RRQ:
            self._fail(Error(ErrorCode.ACCESS_VIOLATION, "read-only server"), "write request")
            return
        if request.mode not in ("octet", "netascii"):
            self._fail(Error(ErrorCode.ILLEGAL_OPERATION, "unsupported mode"), "bad mode")
            return
        if content is None:
            self._fail(Error(ErrorCode.FILE_NOT_FOUND, "file not found"), "file not found")
            return
        if isinstance(content, Error):
            self._fail(content, content.message)
            return
        self._data = _netascii(content) if request.mode == "netascii" else content
        accepted = self._negotiate(request.options)
        # A file of exactly n*blksize bytes ends with an empty block (RFC 1350 §6).
        self._blocks = len(self._data) // self.blksize + 1
        if accepted:
            # RFC 2347: answer with OACK and wait for ACK 0.
            self._send(OAck(tuple(accepted)).encode(), now)
        else:
            self._send_block(1, now)

    # -- negotiation

    def _negotiate(self, options: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
        accepted: list[tuple[str, str]] = []
        seen: set[str] = set()
        for name, value in options:
            if name in seen:
                continue
            seen.add(name)
            if name == "blksize":
                # RFC 2348: valid values 8..65464; the server may answer smaller.
                size = _int_or_none(value)
                if size is None or size < MIN_BLKSIZE or size > MAX_BLKSIZE:
                    continue
                self.blksize = min(size, self._settings.max_blksize)
                accepted.append(("blksize", str(self.blksize)))
            elif name == "tsize":
                # RFC 2349 §3: in a read request the client sends 0; answer with the size.
                if _int_or_none(value) is None:
                    continue
                accepted.append(("tsize", str(len(self._data))))
            elif name == "timeout" and self._settings.honour_client_timeout:
                # RFC 2349 §2: 1..255 seconds, echoed back unchanged.
                secs = _int_or_none(value)
                if secs is None or secs < MIN_TIMEOUT or secs > MAX_TIMEOUT:
                    continue
                self.timeout = float(secs)
                accepted.append(("timeout", str(secs)))
            # Unknown options are left out of the OACK (RFC 2347).
        return accepted

    # -- output

    def _send(self, datagram: bytes, now: float) -> None:
        self._last = datagram
        self._retries = 0
        self._outbox.append(datagram)
        self._deadline = now + self.timeout

    def _send_block(self, index: int, now: float) -> None:
        start = (index - 1) * self.blksize
        payload = self._data[start : start + self.blksize]
        self._sent = index
        # Block numbers are 16 bits; they roll over to 0 (common practice).
        self._send(Data(index & 0xFFFF, payload).encode(), now)

    def _fail(self, error: Error | None, reason: str) -> None:
        if error is not None:
            self._outbox.append(error.encode())
        self.state = SessionState.FAILED
        self.reason = reason
        self._deadline = None

    def datagrams_to_send(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out

    # -- input

    @property
    def done(self) -> bool:
        return self.state is not SessionState.SENDING

    @property
    def size(self) -> int:
        return len(self._data)

    def receive(self, datagram: bytes, now: float) -> None:
        """A datagram from the client's TID."""
        if self.done:
            return
        try:
            packet = parse_packet(datagram)
        except ParseError as exc:
            self._fail(Error(ErrorCode.ILLEGAL_OPERATION, "malformed packet"), exc.reason)
            return
        if isinstance(packet, Error):
            # RFC 1350 §7: an ERROR ends the transfer and is not acknowledged
            # (RFC 2347: error 8 is how a client refuses the OACK).
            self._fail(None, f"client error {packet.code}: {packet.message}")
            return
        if not isinstance(packet, Ack):
            self._fail(Error(ErrorCode.ILLEGAL_OPERATION, "expected ACK"), "unexpected packet")
            return
        if packet.block != self._sent & 0xFFFF:
            # A duplicate or stale ACK: ignore it. Answering it with the next
            # block again is the Sorcerer's Apprentice bug (RFC 1123 §4.2.3.1).
            return
        self._acked = self._sent
        if self._acked >= self._blocks:
            self.state = SessionState.COMPLETE
            self._deadline = None
            return
        self._send_block(self._acked + 1, now)

    # -- timers

    def next_timer(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> None:
        """Retransmit the packet in flight, or give up after max_retries."""
        if self._deadline is None or now < self._deadline:
            return
        if self._retries >= self._settings.max_retries:
            self._fail(None, "timed out")
            return
        self._retries += 1
        self._outbox.append(self._last)
        self._deadline = now + self.timeout


def _int_or_none(value: str) -> int | None:
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    return int(value)
