"""A supervised child's word that it serves: one line on its standard output.

A port that accepts connections proves nothing about who listens on it:
another program may hold the port the child failed to bind. So a child run
by ``children.ChildSupervisor`` (``--exit-on-stdin-eof``) writes
:data:`READY_LINE` on its standard output once its own sockets listen, and
then points its standard output at ``/dev/null``: the parent reads that one
line and nothing else ever reaches the pipe.
"""

from __future__ import annotations

import contextlib
import os

READY_LINE = b"offhook-ready\n"


def announce_ready() -> None:
    """Tell the supervising parent that this process serves (see the module doc)."""
    with contextlib.suppress(OSError):
        os.write(1, READY_LINE)
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
