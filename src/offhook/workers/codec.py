"""The local bus's messages between workers and their byte form (sans-IO).

One message is one Unix datagram: a kind byte, then its body.

- ``F`` :class:`Forward`: a SIP datagram another worker read, with its real
  source address: ``u8 length, host (ASCII), u16 port, datagram``; ``S`` the
  same for a message another worker read from a TCP connection (its
  ``transport`` is ``tcp``: the answers go back over that connection, ``W``);
- ``W`` :class:`StreamWrite`: bytes for the TCP connection to a peer, sent to
  the worker that holds it (the peer's home, ``reuseport.home_of``): ``u8
  sender, u32 ref``, then the same form as ``F`` with the peer's address;
  ``ref`` (0: none) asks for an ``X`` back when they cannot be written;
- ``X`` :class:`StreamFailed`: ``u32 ref``: the bytes of that ``W`` could not
  be written (no connection could be opened to the peer);
- ``N`` :class:`NodeSip`: a SIP message of a call between two workers (the
  node leg, ``workers.node_leg``): ``u8 sender``, the message;
- ``P`` :class:`Put`: a SIP or SCCP binding added or refreshed on the sender,
  as JSON (its expiry as seconds left, ``ttl``: each process has its own
  clock; ``worker``: the worker that holds the device);
- ``D`` :class:`Remove`: a binding (``contact``) or every binding of a
  device (``contact`` null) removed on the sender, as JSON;
- ``T`` :class:`TableRequest`: "send me every binding you hold" from a
  worker that has just started: ``u8 index``;
- ``L`` :class:`LineShare`: the sender's own view of a line's busy-lamp state
  (``core.features.linestate``), as JSON (``worker``, ``dn``, ``partition``,
  ``state``, ``devices``, ``direction``);
- ``E`` :class:`Setting`: forward all, do not disturb, a hunt group login or a
  line's message waiting, changed on the sender, as JSON in the form the
  database stores it (``db.feature_state.setting_of``);
- ``K`` :class:`ParkShare`: a park number taken or freed on the sender, as
  JSON (``worker``, ``number``, ``partition``, ``taken``);
- ``A`` :class:`AccountFailures`: failed logins the sender counted against
  accounts since its last report, as a JSON object ``{account: count}``
  (at most ``MAX_ACCOUNTS`` accounts, names of at most ``MAX_ACCOUNT_KEY``
  characters, counts 1 to ``MAX_PEER_FAILURES``).

:func:`decode` takes any bytes and returns a message or raises
:class:`BusError`; it never raises anything else (fuzz/fuzz_worker_bus.py).
"""

from __future__ import annotations

import ipaddress
import json
import struct
from dataclasses import dataclass

from offhook.common import strict_json
from offhook.common.location import Binding
from offhook.core.features.linestate import DIRECTIONS, STATES, LineView
from offhook.core.records import ParkChanged
from offhook.db.feature_state import FeatureEvent, event_of, setting_of
from offhook.net.authguard import MAX_ACCOUNT_KEY, MAX_PEER_FAILURES

MAX_DATAGRAM = 65535
MAX_JSON = 16384
MAX_LINE_DEVICES = 256  # devices sharing one line's view
MAX_ACCOUNTS = 64  # accounts in one report (64 names of 128 characters fit MAX_JSON)


class BusError(ValueError):
    """Bytes that are not a bus message."""


@dataclass(frozen=True, slots=True)
class Forward:
    data: bytes
    source: tuple[str, int]
    transport: str = "udp"  # or "tcp": read from a connection the sender holds


@dataclass(frozen=True, slots=True)
class StreamWrite:
    data: bytes
    dest: tuple[str, int]
    sender: int = 0
    ref: int = 0  # 0: no failure report wanted


@dataclass(frozen=True, slots=True)
class StreamFailed:
    ref: int


@dataclass(frozen=True, slots=True)
class NodeSip:
    data: bytes
    sender: int


@dataclass(frozen=True, slots=True)
class Put:
    binding: Binding  # its expires_at is the ttl here (seconds left)


@dataclass(frozen=True, slots=True)
class Remove:
    device: str
    contact: str | None


@dataclass(frozen=True, slots=True)
class TableRequest:
    index: int


@dataclass(frozen=True, slots=True)
class AccountFailures:
    counts: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class LineShare:
    worker: int
    dn: str
    partition: str
    view: LineView


@dataclass(frozen=True, slots=True)
class Setting:
    event: FeatureEvent


@dataclass(frozen=True, slots=True)
class ParkShare:
    worker: int
    change: ParkChanged


Message = (
    Forward
    | StreamWrite
    | StreamFailed
    | NodeSip
    | Put
    | Remove
    | TableRequest
    | AccountFailures
    | LineShare
    | Setting
    | ParkShare
)

_STR_FIELDS = ("device", "protocol", "contact", "transport", "aor", "call_id", "user_agent")
_STR_FIELDS_OPT = ("node", "firmware")


def _addressed(kind: bytes, addr: tuple[str, int], data: bytes) -> bytes:
    host = addr[0].encode("ascii")
    return kind + struct.pack("!B", len(host)) + host + struct.pack("!H", addr[1]) + data


def encode(message: Message) -> bytes:
    if isinstance(message, Forward):
        kind = b"S" if message.transport == "tcp" else b"F"
        return _addressed(kind, message.source, message.data)
    if isinstance(message, StreamWrite):
        head = b"W" + struct.pack("!BI", message.sender, message.ref)
        return _addressed(head, message.dest, message.data)
    if isinstance(message, StreamFailed):
        return b"X" + struct.pack("!I", message.ref)
    if isinstance(message, NodeSip):
        return b"N" + struct.pack("!B", message.sender) + message.data
    if isinstance(message, Put):
        b = message.binding
        body = {
            **{k: getattr(b, k) for k in _STR_FIELDS + _STR_FIELDS_OPT},
            "ttl": b.expires_at,
            "source": [b.source[0], b.source[1]],
            "cseq": b.cseq,
            "registered_at": b.registered_at,
            "worker": b.worker,
        }
        return b"P" + json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    if isinstance(message, Remove):
        return b"D" + json.dumps({"device": message.device, "contact": message.contact}).encode()
    if isinstance(message, AccountFailures):
        return b"A" + json.dumps(dict(message.counts), separators=(",", ":")).encode()
    if isinstance(message, LineShare):
        v = message.view
        body = {
            "worker": message.worker,
            "dn": message.dn,
            "partition": message.partition,
            "state": v.state,
            "devices": list(v.devices),
            "direction": v.direction,
        }
        return b"L" + json.dumps(body, separators=(",", ":")).encode()
    if isinstance(message, ParkShare):
        c = message.change
        body = {"worker": message.worker, "number": c.number, "partition": c.partition}
        return b"K" + json.dumps({**body, "taken": c.taken}, separators=(",", ":")).encode()
    if isinstance(message, Setting):
        what, device, dn, partition, value = setting_of(message.event)
        fields = {"kind": what, "device": device, "dn": dn, "partition": partition}
        return b"E" + json.dumps({**fields, "value": value}, separators=(",", ":")).encode()
    return b"T" + struct.pack("!B", message.index)


def decode(data: bytes) -> Message:
    """The message ``data`` holds; BusError if it holds none."""
    if not data:
        raise BusError("empty")
    kind, body = data[:1], data[1:]
    if kind in (b"F", b"S"):
        data, addr = _addressed_body(body)
        return Forward(data, addr, "tcp" if kind == b"S" else "udp")
    if kind == b"W":
        if len(body) < 5:
            raise BusError("stream write: short")
        sender, ref = struct.unpack_from("!BI", body)
        data, addr = _addressed_body(body[5:])
        return StreamWrite(data, addr, sender, ref)
    if kind == b"X":
        if len(body) != 4:
            raise BusError("stream failed: four bytes")
        return StreamFailed(struct.unpack("!I", body)[0])
    if kind == b"N":
        if len(body) < 2 or len(body) > 1 + MAX_DATAGRAM:
            raise BusError("node message: a sender and 1 to 65535 bytes")
        return NodeSip(body[1:], body[0])
    if kind == b"T":
        if len(body) != 1:
            raise BusError("table request: one byte")
        return TableRequest(body[0])
    if kind not in (b"P", b"D", b"A", b"L", b"E", b"K"):
        raise BusError(f"kind {kind!r}")
    if len(body) > MAX_JSON:
        raise BusError("too long")
    try:
        obj = strict_json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BusError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BusError("not an object")
    if kind == b"A":
        return _accounts(obj)
    if kind == b"L":
        return _line(obj)
    if kind == b"E":
        return _setting(obj)
    if kind == b"K":
        return _park(obj)
    return _put(obj) if kind == b"P" else _remove(obj)


def _accounts(obj: dict[str, object]) -> AccountFailures:
    if not obj or len(obj) > MAX_ACCOUNTS:
        raise BusError(f"accounts: 1 to {MAX_ACCOUNTS}")
    counts: list[tuple[str, int]] = []
    for name, count in obj.items():
        if not name or len(name) > MAX_ACCOUNT_KEY:
            raise BusError("accounts: a name of 1 to 128 characters")
        if isinstance(count, bool) or not isinstance(count, int):
            raise BusError("accounts: a count is an integer")
        if not 1 <= count <= MAX_PEER_FAILURES:
            raise BusError("accounts: a count out of range")
        counts.append((name, count))
    return AccountFailures(tuple(counts))


def _addressed_body(body: bytes) -> tuple[bytes, tuple[str, int]]:
    if len(body) < 1 or len(body) < 1 + body[0] + 2:
        raise BusError("forward: short")
    n = body[0]
    try:
        host = body[1 : 1 + n].decode("ascii")
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise BusError("forward: not an IP address") from None
    (port,) = struct.unpack_from("!H", body, 1 + n)
    data = body[3 + n :]
    if not data or len(data) > MAX_DATAGRAM:
        raise BusError("forward: no datagram")
    return data, (host, port)


def _line(obj: dict[str, object]) -> LineShare:
    worker = obj.get("worker")
    if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < 256:
        raise BusError("line: worker not an index")
    dn, partition = _str(obj, "dn"), _str(obj, "partition")
    state, direction = _str(obj, "state"), _str(obj, "direction")
    if not dn or state not in STATES or direction not in DIRECTIONS:
        raise BusError("line: dn, state or direction")
    devices = obj.get("devices")
    if (
        not isinstance(devices, list)
        or len(devices) > MAX_LINE_DEVICES
        or not all(isinstance(d, str) and d for d in devices)
    ):
        raise BusError("line: devices not a list of names")
    return LineShare(worker, dn, partition, LineView(state, tuple(devices), direction))


def _park(obj: dict[str, object]) -> ParkShare:
    worker, taken = obj.get("worker"), obj.get("taken")
    if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < 256:
        raise BusError("park: worker not an index")
    number, partition = _str(obj, "number"), _str(obj, "partition")
    if not number or not isinstance(taken, bool):
        raise BusError("park: a number and whether it is taken")
    return ParkShare(worker, ParkChanged(number, partition, taken))


def _setting(obj: dict[str, object]) -> Setting:
    kind, device = _str(obj, "kind"), _str(obj, "device")
    dn, partition = _str(obj, "dn"), _str(obj, "partition")
    value = obj.get("value")
    if value is not None and not isinstance(value, dict):
        raise BusError("setting: value not an object")
    try:
        event = event_of(kind, device, dn, partition, value)
    except ValueError as exc:
        raise BusError(f"setting: {exc}") from None
    if setting_of(event) != (kind, device, dn, partition, value):
        raise BusError("setting: not in its one form")
    return Setting(event)


def _str(obj: dict[str, object], key: str) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise BusError(f"{key}: not a string")
    return value


def _num(obj: dict[str, object], key: str) -> float:
    value = obj.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BusError(f"{key}: not a number")
    return float(value)


def _put(obj: dict[str, object]) -> Put:
    source = obj.get("source")
    if (
        not isinstance(source, list)
        or len(source) != 2
        or not isinstance(source[0], str)
        or isinstance(source[1], bool)
        or not isinstance(source[1], int)
        or not 0 <= source[1] <= 0xFFFF
    ):
        raise BusError("source: not [host, port]")
    cseq = obj.get("cseq", 0)
    if isinstance(cseq, bool) or not isinstance(cseq, int) or not 0 <= cseq < 2**32:
        raise BusError("cseq: not a sequence number")
    fields = {k: _str(obj, k) for k in _STR_FIELDS + _STR_FIELDS_OPT}
    if not fields["device"] or not fields["contact"]:
        raise BusError("binding without device or contact")
    worker = obj.get("worker")
    if isinstance(worker, bool) or not isinstance(worker, int) or not 0 <= worker < 256:
        raise BusError("worker: not the index of the worker that holds the device")
    ttl = _num(obj, "ttl")
    return Put(
        Binding(
            expires_at=ttl,
            source=(source[0], source[1]),
            cseq=cseq,
            registered_at=_num(obj, "registered_at"),
            worker=worker,
            **fields,
        )
    )


def _remove(obj: dict[str, object]) -> Remove:
    device = _str(obj, "device")
    contact = obj.get("contact")
    if not device or (contact is not None and not isinstance(contact, str)):
        raise BusError("remove: device and contact (or null)")
    return Remove(device, contact)
