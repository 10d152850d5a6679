"""Base errors. Every parser raises ParseError and nothing else (the fuzz invariant)."""

from __future__ import annotations


class OffhookError(Exception):
    """Base of every error offhook raises on purpose."""


class ParseError(OffhookError):
    """Bytes from a peer could not be parsed.

    ``reason`` is a short human text; ``status_hint`` is the protocol status a
    boundary may answer with (e.g. SIP 400, 413, 416), or None when the input
    must simply be dropped.
    """

    def __init__(self, reason: str, status_hint: int | None = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint
