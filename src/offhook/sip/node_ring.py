"""What a node leg's INVITE asks of the worker it goes to: the ``X-Offhook-Ring`` header.

A call between two worker processes of one node (``offhook.workers.node_leg``)
is a SIP dialog over their local bus (transport ``node``). The worker that
owns the call has already analysed the number and chosen what to do, so the
INVITE says exactly what it asks of the other:

- ring a device (``device``), on its line ``dn`` (and ``partition``), for
  the calling device ``caller``, and how (``auto``-answer, ``silent``): the
  far worker rings that device and nothing else
  (``CallEngine.ring_device``);
- or act for its caller, a phone the owner serves, on a call the far worker
  owns (``ask``, ``CallEngine.act_for``): pick up a call ringing in pickup
  group ``group`` (``pickup-group``) or ringing ``dn`` in ``partition``
  (``pickup-line``, a directed pickup), or retrieve the party parked on
  ``dn`` in ``partition`` (``retrieve``).

The header's form: ASCII, ``;``-separated ``key=value`` items, every value
percent-encoded (``urllib.parse.quote``, nothing safe; bytes that are not
UTF-8 travel as lone surrogates, as the SIP parser keeps them), keys in any
order, each at most once. :func:`parse_ring` raises ``ParseError`` and nothing else
(``fuzz/fuzz_node_ring.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from offhook.common.errors import ParseError

NODE = "node"
"""The transport of a call between two worker processes of this node (the node
leg): only ever between them, over their local bus, never on a network."""
RING_HEADER = "X-Offhook-Ring"
MAX_RING = 1024  # characters of the header
_KEYS = frozenset({"device", "dn", "partition", "caller", "auto", "silent", "ask", "group"})
ASKS = ("", "pickup-group", "pickup-line", "retrieve")  # "": ring the device


@dataclass(frozen=True, slots=True)
class NodeRing:
    device: str
    dn: str
    partition: str = ""
    caller: str = ""  # the calling device on the owner ("" none, a trunk's name)
    auto_answer: bool = False
    silent: bool = False
    ask: str = ""  # one of ASKS: "" rings ``device``
    group: str = ""  # the pickup group of ``pickup-group``


def format_ring(ring: NodeRing) -> str:
    items = [
        ("device", ring.device),
        ("dn", ring.dn),
        ("partition", ring.partition),
        ("caller", ring.caller),
        *((("ask", ring.ask), ("group", ring.group)) if ring.ask else ()),
    ]
    text = ";".join(
        f"{key}={quote(value, safe='', errors='surrogateescape')}" for key, value in items
    )
    flags = [name for name, on in (("auto", ring.auto_answer), ("silent", ring.silent)) if on]
    return text + "".join(f";{name}=1" for name in flags)


def parse_ring(value: str) -> NodeRing:
    """The ring a header value asks for; ParseError(400) when it is not one."""
    if len(value) > MAX_RING:
        raise ParseError("ring: too long", 400)
    if not value.isascii():
        raise ParseError("ring: not percent-encoded", 400)
    fields: dict[str, str] = {}
    for item in value.split(";"):
        key, sep, raw = item.strip().partition("=")
        if not sep or key not in _KEYS or key in fields:
            raise ParseError(f"ring: bad item {item[:40]!r}", 400)
        # Bytes that are not UTF-8 stay lone surrogates, as the SIP parser keeps them.
        text = unquote(raw, errors="surrogateescape") if "%" in raw else raw
        if any(ord(c) < 0x20 or c == "\x7f" for c in text):
            raise ParseError("ring: control character", 400)
        fields[key] = text
    device, dn = fields.get("device", ""), fields.get("dn", "")
    ask, group = fields.get("ask", ""), fields.get("group", "")
    if ask not in ASKS:
        raise ParseError("ring: ask is pickup-group, pickup-line or retrieve", 400)
    complete = bool(group) if ask == "pickup-group" else bool(dn and (device or ask))
    if not complete or (ask and device) or (ask != "pickup-group" and group):
        raise ParseError("ring: a device and a dn, or what to ask and of what", 400)
    flags = {name: fields.get(name, "0") for name in ("auto", "silent")}
    if any(flag not in ("0", "1") for flag in flags.values()):
        raise ParseError("ring: a flag is 0 or 1", 400)
    return NodeRing(
        device=device,
        dn=dn,
        partition=fields.get("partition", ""),
        caller=fields.get("caller", ""),
        auto_answer=flags["auto"] == "1",
        silent=flags["silent"] == "1",
        ask=ask,
        group=group,
    )
