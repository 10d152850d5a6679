"""media.portpool: RTP/RTCP port pairs, skipping ports held elsewhere, reused last."""

from __future__ import annotations

import socket

import pytest

from offhook.media.endpoint import RtpEndpoint
from offhook.media.portpool import PortPool, PortsExhausted
from offhook.net.listen import BindSpec

SPEC = BindSpec("127.0.0.1", socket.AF_INET)


def endpoint() -> RtpEndpoint:
    return RtpEndpoint(lambda ep, data: None)


def test_pairs_skip_ports_held_elsewhere_and_are_reused_last() -> None:
    pool = PortPool(61001, 61010)  # an odd start rounds up: pairs at 61002 .. 61008
    assert (pool.first, pool.free) == (61002, 4)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", 61005))  # the RTCP port of the second pair
    a, b, c = endpoint(), endpoint(), endpoint()
    try:
        assert pool.take(lambda p: a.bind(SPEC, p)) == 61002
        assert pool.take(lambda p: b.bind(SPEC, p)) == 61006  # 61004/61005 is taken
        assert a.local == ("127.0.0.1", 61002)
        a.close()
        pool.give(61002)
        pool.give(61002)  # twice: ignored
        assert pool.take(lambda p: c.bind(SPEC, p)) == 61008
        d = endpoint()
        assert pool.take(lambda p: d.bind(SPEC, p)) == 61002  # given back: last in line
        d.close()
        with pytest.raises(PortsExhausted):
            pool.take(lambda p: endpoint().bind(SPEC, p))
        assert pool.used == 3
    finally:
        squatter.close()
        for e in (a, b, c):
            e.close()


def test_other_bind_errors_are_raised() -> None:
    pool = PortPool(61100, 61110)

    def fail(port: int) -> None:
        raise PermissionError(1, "not permitted")

    with pytest.raises(PermissionError):
        pool.take(fail)
    assert pool.free == 5 and pool.used == 0
    with pytest.raises(ValueError):
        PortPool(61001, 61002)  # no pair fits
