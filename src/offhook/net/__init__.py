"""offhook.net: the defences every listener shares, whatever protocol it carries.

``acl`` is the source allow-list (networks), checked before a byte is parsed;
``limits`` holds the bounded structures (an LRU, per-source connection and
rate limiters, failed-authentication tracking with back-off) so that a
flood of sources or attempts cannot grow memory; ``counters`` counts every
rejection by reason for metrics; ``guard`` puts them together for one
listener (allow-list, caps, rate, the shared rejection reasons). The
modules are synchronous and take the time as an argument: each protocol's
``aio.py`` calls them with ``loop.time()``, so they are tested with plain
numbers.
"""

from offhook.net.acl import AllowList, parse_host, parse_network
from offhook.net.counters import Reason, RejectionCounters
from offhook.net.guard import ListenerGuard, ListenerLimits
from offhook.net.limits import BoundedLRU, ConnectionLimiter, RateLimiter

__all__ = [
    "AllowList",
    "BoundedLRU",
    "ConnectionLimiter",
    "ListenerGuard",
    "ListenerLimits",
    "RateLimiter",
    "Reason",
    "RejectionCounters",
    "parse_host",
    "parse_network",
]
