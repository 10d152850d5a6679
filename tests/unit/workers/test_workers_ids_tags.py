"""Worker marks in ids (``common.ids``) and the forward decision (``workers.tags``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.common.ids import MAX_WORKERS, PLAIN, Ids, worker_of, worker_prefix
from offhook.sip.codec import parse_message
from offhook.workers.tags import forward_to, message_forward_to, message_owner, owner

INDEX = st.integers(min_value=0, max_value=MAX_WORKERS - 1)


def response(branch: str, *, compact: bool = False, second_via: str = "") -> bytes:
    via = "v" if compact else "Via"
    extra = f"Via: SIP/2.0/UDP 10.0.0.9;branch={second_via}\r\n" if second_via else ""
    return (
        f"SIP/2.0 180 Ringing\r\n{via}: SIP/2.0/UDP 127.0.0.1:5060;branch={branch};rport\r\n"
        f"{extra}From: <sip:1003@127.0.0.1>;tag=w0-aa\r\nTo: <sip:1004@127.0.0.1>;tag=bb\r\n"
        "Call-ID: w0-cc@127.0.0.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def request(method: str, to_tag: str | None, call_id: str, *, compact: bool = False) -> bytes:
    to = "t" if compact else "To"
    cid = "i" if compact else "Call-ID"
    tag = f";tag={to_tag}" if to_tag is not None else ""
    return (
        f"{method} sip:1003@127.0.0.2:5070 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.3:5062;branch=z9hG4bKw1-peer\r\n"
        f"From: <sip:1004@127.0.0.1>;tag=w1-peer\r\n{to}: <sip:1003@127.0.0.1>{tag}\r\n"
        f"{cid}: {call_id}\r\nCSeq: 2 {method}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@given(INDEX, st.text(max_size=30))
def test_every_id_of_a_worker_names_it(index: int, host: str) -> None:
    ids = Ids.for_worker(index)
    assert worker_of(ids.branch()) == index
    assert worker_of(ids.tag()) == index
    assert worker_of(ids.call_id(host or "h")) == index
    assert ids.branch().startswith("z9hG4bK")


def test_plain_ids_name_no_worker() -> None:
    assert Ids.for_worker(None) == PLAIN
    for ident in (PLAIN.branch(), PLAIN.tag(), PLAIN.call_id("h")):
        assert worker_of(ident) is None


@pytest.mark.parametrize("bad", [-1, MAX_WORKERS, 1000])
def test_worker_prefix_bounds(bad: int) -> None:
    with pytest.raises(ValueError):
        worker_prefix(bad)


@pytest.mark.parametrize(
    "ident", ["w", "w-", "w01-x", "wx-", "w99-a", "w1x", "z9hG4bKw07-a", "w\u0661-a"]
)
def test_worker_of_refuses_other_forms(ident: str) -> None:
    assert worker_of(ident) is None


@given(st.text(max_size=40))
def test_worker_of_never_raises(ident: str) -> None:
    result = worker_of(ident)
    assert result is None or 0 <= result < MAX_WORKERS


@given(INDEX, st.booleans())
def test_a_response_belongs_to_its_top_via(index: int, compact: bool) -> None:
    branch = Ids.for_worker(index).branch()
    assert owner(response(branch, compact=compact)) == index
    # Only the top Via counts: a mark in a lower one names nobody.
    assert owner(response("z9hG4bKpeer", second_via=branch)) is None


@given(INDEX, INDEX, st.booleans())
def test_an_in_dialog_request_belongs_to_its_to_tag_then_call_id(
    by_tag: int, by_call_id: int, compact: bool
) -> None:
    tag = Ids.for_worker(by_tag).tag()
    call_id = Ids.for_worker(by_call_id).call_id("127.0.0.1")
    assert owner(request("BYE", tag, call_id, compact=compact)) == by_tag
    assert owner(request("BYE", "peer-tag", call_id, compact=compact)) == by_call_id


def test_new_requests_and_registers_stay_where_they_arrive() -> None:
    call_id = Ids.for_worker(1).call_id("h")
    assert owner(request("INVITE", None, call_id)) is None  # no To tag: a new request
    assert owner(request("REGISTER", "w1-x", call_id)) is None  # never moves (failed logins)
    assert owner(request("BYE", "peer", "plain@h")) is None


def test_a_mark_in_the_body_is_not_read() -> None:
    data = request("BYE", "peer", "plain@h").replace(
        b"Content-Length: 0\r\n\r\n", b"Content-Length: 25\r\n\r\n\nCall-ID: w1-x@h\r\nx: y\r\n"
    )
    assert owner(data) is None


@given(INDEX, st.integers(min_value=1, max_value=MAX_WORKERS), INDEX)
def test_forward_to_another_worker_of_the_node_only(index: int, workers: int, me: int) -> None:
    data = response(Ids.for_worker(index).branch())
    target = forward_to(data, me, workers)
    if index == me or index >= workers:
        assert target is None
    else:
        assert target == index


@given(
    INDEX,
    INDEX,
    st.booleans(),
    st.sampled_from(["BYE", "INVITE", "REGISTER", "ACK"]),
    st.sampled_from(["tag", "call-id", "none", "plain"]),
)
def test_a_parsed_message_has_the_owner_of_its_bytes(
    index: int, other: int, compact: bool, method: str, marked: str
) -> None:
    """What a TCP stream delivers (parsed) is decided as its bytes would be."""
    ids, stranger = Ids.for_worker(index), Ids.for_worker(other)
    datagrams = [
        response(ids.branch(), compact=compact),
        response("z9hG4bKpeer", second_via=ids.branch()),
        request(
            method,
            {"tag": ids.tag(), "call-id": "peer", "none": None, "plain": "peer"}[marked],
            stranger.call_id("h") if marked != "plain" else "plain@h",
            compact=compact,
        ),
    ]
    for data in datagrams:
        msg = parse_message(data)
        assert message_owner(msg) == owner(data), data
        assert message_forward_to(msg, 0, 2) == forward_to(data, 0, 2), data


@given(st.binary(max_size=600), st.sampled_from([b"", b"SIP/2.0 ", b"BYE ", b"REGISTER "]))
def test_any_datagram_never_crashes(data: bytes, start: bytes) -> None:
    got = owner(start + data)
    assert got is None or 0 <= got < MAX_WORKERS
    target = forward_to(start + data, 0, 2)
    assert target in (None, 1)


def test_a_dialog_the_caller_made_comes_back_to_the_worker_that_answered_it() -> None:
    """A carrier's BYE from another SBC (another source: another worker) names neither our
    Call-ID nor a branch of ours; the To tag of our answer carries the worker."""
    from unit.sip.sip_rig import PHONE, Peer, Rig, answer_in, call_in

    rig = Rig()
    rig.ep.ids = Ids.for_worker(1)
    peer = Peer(PHONE)
    ok = answer_in(rig, peer, call_in(rig, peer))
    assert worker_of(ok.to_tag or "") == 1
    bye = peer.request("BYE")
    assert forward_to(bye, me=0, workers=2) == 1
    assert forward_to(bye, me=1, workers=2) is None
