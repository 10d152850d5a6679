"""The open-file limit a node needs for its listeners' connection caps (``offhook serve``)."""

from __future__ import annotations

import logging

from offhook.common import fd_limit
from offhook.config import Settings

log = logging.getLogger("offhook")


def raise_fd_limit(settings: Settings) -> None:
    """Lift the soft open-file limit to the hard one when the listeners need more.

    Every connection is a file descriptor: the connection caps of the
    listeners (20000 SCCP phones by default) are only reachable when the
    process may open that many. A limit still below them is logged, so that
    the operator raises it (``LimitNOFILE=`` in a systemd unit).
    """
    need = 256 + settings.sip.max_connections + settings.admin.max_connections
    if settings.web.enabled:  # a web child inherits the limit
        need += settings.web.max_connections
    if settings.sccp.enabled:
        need += settings.sccp.max_connections
    if settings.tftp.enabled:
        need += settings.tftp.max_connections + settings.tftp.max_transfers
    limits = fd_limit.lift(need)
    if limits is None:
        return
    soft, hard = limits
    if soft != fd_limit.UNLIMITED and soft < need:
        log.warning(
            "open-file limit %d is below the %d the listeners' connection caps need: "
            "run `ulimit -n %d` in the shell that starts offhook (as root when the hard "
            "limit %s is lower: `ulimit -Hn %d`), or put `LimitNOFILE=%d` in the [Service] "
            "section of its systemd unit; or lower max_connections",
            soft,
            need,
            need,
            "unlimited" if hard == fd_limit.UNLIMITED else hard,
            need,
            need,
        )
