"""The node leg's addressing and bus link (``workers.node_leg``) and its ring header."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.clock import FakeClock
from offhook.common.errors import ParseError
from offhook.common.location import Binding
from offhook.core.call import ASKS as CORE_ASKS
from offhook.core.leg import Direction, Leg
from offhook.sip.node_ring import ASKS, NodeRing, format_ring, parse_ring
from offhook.workers.codec import NodeSip, decode
from offhook.workers.node_leg import NodeLegFactory, NodeLink, node_address, node_index

HEAD = "Via: SIP/2.0/NODE 127.0.0.1:5060;branch=z9hG4bKw{via}-b\r\n"


def request(method: str, to_tag: str = "", via: int = 1) -> bytes:
    to = "<sip:1003@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:1003@127.0.0.1:1 SIP/2.0\r\n"
        + HEAD.format(via=via)
        + f"To: {to}\r\nFrom: <sip:1004@127.0.0.1>;tag=w1-f\r\nCall-ID: w1-c\r\n\r\n"
    ).encode()


def response(via: int) -> bytes:
    return (
        "SIP/2.0 200 OK\r\n"
        + HEAD.format(via=via)
        + "To: <sip:1003@127.0.0.1>;tag=w0-t\r\nCall-ID: w1-c\r\n\r\n"
    ).encode()


def test_addresses_name_workers() -> None:
    for index in range(64):
        assert node_index(node_address(index)) == index
    assert node_index(("127.0.0.1", 0)) is None
    assert node_index(("192.0.2.1", 1)) is None


def link(workers: int = 3, me: int = 1) -> tuple[NodeLink, list[tuple[int, bytes]]]:
    sent: list[tuple[int, bytes]] = []

    def send(index: int, data: bytes) -> bool:
        sent.append((index, data))
        return True

    return NodeLink(me, workers, send), sent


def test_a_message_goes_where_its_tags_say_else_where_it_is_addressed() -> None:
    node, sent = link()
    # a new INVITE and its CANCEL name nobody: the address decides
    assert node.send(request("INVITE"), node_address(0), None)
    assert node.send(request("CANCEL"), node_address(2), None)
    # an in-dialog request: its To tag; a response: its top Via's branch
    assert node.send(request("BYE", to_tag="w2-t"), node_address(0), None)
    assert node.send(response(via=0), node_address(2), None)
    assert [index for index, _ in sent] == [0, 2, 2, 0]
    message = decode(sent[0][1])
    assert message == NodeSip(request("INVITE"), 1)
    assert node.sent == 4 and node.failed == 0


def test_nowhere_to_go_is_a_failure_not_a_message() -> None:
    node, sent = link(workers=2, me=1)
    assert not node.send(request("INVITE"), node_address(1), None)  # itself
    assert not node.send(request("INVITE"), node_address(5), None)  # no such worker
    assert not node.send(request("INVITE"), ("192.0.2.1", 5060), None)
    assert not node.send(b"x" * 70_000, node_address(0), None)
    refused = NodeLink(1, 2, lambda index, data: False)  # the worker is not there
    assert not refused.send(request("INVITE"), node_address(0), None)
    assert sent == [] and node.failed == 4 and refused.failed == 1


def test_the_factory_reaches_only_another_workers_devices() -> None:
    factory = NodeLegFactory(None, index=1)  # type: ignore[arg-type]
    leg = Leg("L1", Direction.OUTBOUND, "SEP1", FakeClock())
    for worker in (-1, 1):
        binding = Binding("SEP1", "sccp", "sccp:SEP1", 1e9, worker=worker)
        with pytest.raises(ValueError):
            factory.create(binding, leg)


NAMES = st.text(min_size=1, max_size=30)
RINGS = st.one_of(
    st.builds(
        NodeRing,
        device=NAMES,
        dn=NAMES,
        partition=st.text(max_size=30),
        caller=st.text(max_size=30),
        auto_answer=st.booleans(),
        silent=st.booleans(),
    ),
    st.builds(
        NodeRing,
        device=st.just(""),
        dn=st.just(""),
        caller=NAMES,
        ask=st.just("pickup-group"),
        group=NAMES,
    ),
    st.builds(
        NodeRing,
        device=st.just(""),
        dn=NAMES,
        partition=st.text(max_size=30),
        caller=NAMES,
        ask=st.sampled_from(["pickup-line", "retrieve"]),
    ),
).filter(
    lambda r: (
        not any(
            ord(c) < 0x20 or c == "\x7f"
            for v in (r.device, r.dn, r.partition, r.caller, r.group)
            for c in v
        )
    )
)


@given(RINGS)
def test_a_ring_reads_back_as_written(ring: NodeRing) -> None:
    text = format_ring(ring)
    assert text.isascii()
    assert parse_ring(text) == ring


@given(st.text(max_size=200))
def test_any_text_is_a_ring_or_a_parse_error(text: str) -> None:
    try:
        ring = parse_ring(text)
    except ParseError as exc:
        assert exc.status_hint == 400
        return
    assert ring.device and ring.dn
    assert parse_ring(format_ring(ring)) == ring


@pytest.mark.parametrize(
    "text",
    [
        "",
        "device=SEP1",  # no dn
        "dn=1003",  # no device
        "device=SEP1;dn=1003;device=SEP2",  # twice
        "device=SEP1;dn=1003;color=red",  # unknown
        "device=SEP1;dn=1003;auto=yes",
        "device=SEP1;dn=10%0A03",  # a control character
        "device=SÉP1;dn=1003",  # not ASCII: not what the owner writes
        "device=SEP1;dn=1003;" + "caller=" + "x" * 1100,
        "dn=1003;ask=pickup",  # not an ask
        "dn=1003;ask=pickup-group",  # no group
        "group=sales;ask=pickup-line",  # no dn; a group only with pickup-group
        "device=SEP1;dn=1003;ask=retrieve",  # an ask rings no device
        "device=SEP1;dn=1003;group=sales",
    ],
)
def test_malformed_rings_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_ring(text)


def test_the_asks_on_the_wire_are_core_s() -> None:
    assert set(ASKS) == {"", *CORE_ASKS}
