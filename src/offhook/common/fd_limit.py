"""The soft open-file limit raised toward what a process's connection caps need.

Every connection and media socket is a file descriptor: the caps a process
is configured with are only reachable when it may open that many. Each
process (the node, the media server) works out its need; ``lift`` raises
the soft limit toward it, no higher than the hard limit, and says where it
ended so that the caller can tell the operator what to change.
"""

from __future__ import annotations

import contextlib

__all__ = ["UNLIMITED", "lift"]

UNLIMITED = -1
"""``RLIM_INFINITY`` as ``lift`` reports it."""


def lift(need: int) -> tuple[int, int] | None:
    """Raise the soft limit to ``need`` if it is lower (up to the hard limit).

    Returns the (soft, hard) limits afterwards, ``UNLIMITED`` for no limit;
    None where the platform has no such limit.
    """
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    infinity = resource.RLIM_INFINITY
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != infinity and soft < need:
        target = need if hard == infinity else min(need, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return (UNLIMITED if soft == infinity else soft, UNLIMITED if hard == infinity else hard)
