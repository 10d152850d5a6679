"""``support.server.OffhookServer.start`` trusts only its own node.

Two test sessions on one machine can hand out the same ports. A node that
answers SIP OPTIONS and a control endpoint on "our" ports may be another
session's: ``start`` asks the control endpoint for its pid and waits for its
own process, so a node that could not bind its ports fails its start even
when another node answers on them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.server import OffhookServer, ServerError, device, plan_of

PLAN = plan_of([device("alice", "alice-Secret-1", "1001")])


def test_a_node_on_our_ports_does_not_pass_for_ours(tmp_path: Path) -> None:
    with OffhookServer(tmp_path / "first", PLAN) as first:
        taken = {"sip": {"port": first.sip_port}, "admin": {"port": first.admin_port}}
        second = OffhookServer(tmp_path / "second", PLAN, extra_config=taken)
        second.sip_port, second.admin_port = first.sip_port, first.admin_port
        with pytest.raises(ServerError, match="exited"):
            second.start(timeout=60)
        second.stop(show_log=False)
        assert "Address already in use" in second.log()
        assert first.control("status")["pid"] == first.pid
