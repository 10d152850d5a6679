"""Shared primitives: errors, the Clock protocol, ids and addresses. Imports nothing of ours."""

from offhook.common.clock import Clock, FakeClock
from offhook.common.errors import OffhookError, ParseError

__all__ = ["Clock", "FakeClock", "OffhookError", "ParseError"]
