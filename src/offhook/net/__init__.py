"""offhook.net: listener defences every adapter uses (allow-list, limits, counters).

No asyncio here: the adapters (``*/aio.py``) call these with ``loop.time()``.
"""

from offhook.net.acl import AllowList, parse_host, parse_network
from offhook.net.counters import Reason, RejectionCounters
from offhook.net.limits import AuthFailureTracker, BoundedLRU, ConnectionLimiter, RateLimiter

__all__ = [
    "AllowList",
    "AuthFailureTracker",
    "BoundedLRU",
    "ConnectionLimiter",
    "RateLimiter",
    "Reason",
    "RejectionCounters",
    "parse_host",
    "parse_network",
]
