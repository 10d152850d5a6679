"""SIP messages as captured on the wire (``support.capture``), for assertions.

``sip_on_wire(capture)`` gives every UDP datagram of a capture that holds a
SIP message as a ``WireMsg``: addresses, ports and the text, with the few
accessors wire checks need (start line, method or status, headers by long
or compact name, body). Captures come from ``Capture`` (tshark on loopback);
parsing here is deliberately simple text work, independent of offhook's
own SIP parser, so that a test never judges offhook's bytes with offhook.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from support.capture import Capture


@dataclass(frozen=True)
class WireMsg:
    """One SIP datagram captured on loopback."""

    src: str
    sport: int
    dst: str
    dport: int
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\r\n", 1)[0]

    @property
    def is_request(self) -> bool:
        return not self.first_line.startswith("SIP/2.0 ")

    @property
    def method(self) -> str:
        """The request's method, or "" for a response."""
        return self.first_line.split(" ", 1)[0] if self.is_request else ""

    @property
    def uri(self) -> str:
        return self.first_line.split(" ")[1]

    @property
    def status(self) -> int:
        return 0 if self.is_request else int(self.first_line.split(" ")[1])

    @property
    def head(self) -> str:
        return self.text.split("\r\n\r\n", 1)[0]

    @property
    def body(self) -> str:
        parts = self.text.split("\r\n\r\n", 1)
        return parts[1] if len(parts) > 1 else ""

    def headers(self, name: str, compact: str = "") -> list[str]:
        """Every value of header ``name`` (or its ``compact`` form), in order."""
        names = {name.lower(), compact.lower()} - {""}
        out = []
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() in names:
                out.append(value.strip())
        return out

    def header(self, name: str, compact: str = "") -> str:
        values = self.headers(name, compact)
        assert values, f"no {name} in\n{self.text}"
        return values[0]

    @property
    def cseq_method(self) -> str:
        return self.header("CSeq").split()[-1]


def _is_sip(text: str) -> bool:
    first = text.split("\r\n", 1)[0]
    return first.startswith("SIP/2.0 ") or first.endswith(" SIP/2.0")


def sip_on_wire(capture: Capture | Path, bpf: str = "udp") -> list[WireMsg]:
    """The SIP datagrams of a capture (a ``Capture`` or a pcap file), in order."""
    cap = capture if isinstance(capture, Capture) else Capture(capture, bpf)
    return [
        WireMsg(src, sport, dst, dport, text)
        for src, sport, dst, dport, payload in cap.udp_datagrams()
        if payload and _is_sip(text := payload.decode("utf-8", "replace"))
    ]


def between(msgs: list[WireMsg], src: tuple[str, int], dst: tuple[str, int]) -> list[WireMsg]:
    return [m for m in msgs if (m.src, m.sport) == src and (m.dst, m.dport) == dst]


def requests(msgs: list[WireMsg], method: str) -> list[WireMsg]:
    return [m for m in msgs if m.method == method]


def responses(msgs: list[WireMsg], method: str) -> list[WireMsg]:
    return [m for m in msgs if not m.is_request and m.cseq_method == method]
