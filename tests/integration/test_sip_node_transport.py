"""SIP transport on a whole in-process node (``sip_node_rig``): OPTIONS answered
statelessly (retransmissions included) and 405/501/489 for other methods, 400 for
a broken header line, silence for garbage, 513 for an oversize datagram, and TCP
framing (a message byte by byte, two in one segment), bad or huge Content-Length
closing only that connection, CRLF keep-alive pongs and half-closed connections.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sip_node_rig import (
    Ctx,
    options,
    options_ok,
    run_node,
)
from sipclient import header_param

from offhook.sip.message import SipResponse

# --------------------------------------------------------------------------
# transport: OPTIONS, malformed input, TCP framing and connection hygiene


def test_options_and_malformed_udp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        ua = await ctx.ua("probe")
        ok = await options_ok(ua)
        allow = {m.strip() for m in (ok.headers.get("Allow") or "").split(",")}
        assert {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER"} <= allow
        assert ok.to_tag  # RFC 3261 §8.2.6.2

        # Answered without a transaction (RFC 3261 §8.2.7): nothing kept, and a
        # retransmission gets the same answer, To tag included.
        again = options(ua, "opt-retransmitted@test")
        answers = []
        for _ in range(3):
            ua.send_bytes(again)
            answers.append(await ua.recv(lambda m: m.call_id == "opt-retransmitted@test", 2.0))
        assert {getattr(a, "to_tag", None) for a in answers} == {answers[0].to_tag}
        for method, status in (("MESSAGE", 405), ("FOO", 501), ("SUBSCRIBE", 489)):
            ua.send_bytes(
                ua.build(
                    method,
                    ua.server_uri,
                    from_=ua.from_value(),
                    to=f"<{ua.server_uri}>",
                    call_id=f"{method}@test",
                    cseq=1,
                )
            )
            got = await ua.recv(lambda m, c=f"{method}@test": m.call_id == c, 2.0)
            assert isinstance(got, SipResponse) and got.status == status, got
        counters = (await ctx.status())["counters"]
        assert counters["transactions"] == 0, counters
        assert counters["sip"]["stateless_answers"] >= 6, counters

        # Unparseable header line, but Via/Call-ID/CSeq readable: 400 back.
        bad = options(ua, "bad-1@test").replace(
            b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nthis line has no colon\r\n"
        )
        ua.send_bytes(bad)
        resp = await ua.recv(lambda m: m.call_id == "bad-1@test", 2.0)
        assert isinstance(resp, SipResponse) and resp.status == 400
        assert resp.cseq == (1, "OPTIONS")
        assert header_param(resp.top_via, "branch") == header_param(
            bad.decode().split("Via: ", 1)[1].split("\r\n", 1)[0], "branch"
        )

        # Garbage: no answer at all, and the node still serves afterwards.
        ua.send_bytes(b"\x00\xff garbage \x16\x03\x01 not sip at all\r\n\r\n")
        ua.send_bytes(b"INVITE\r\n\r\n")
        assert await ua.expect_nothing(wait=0.5) == []
        await options_ok(ua)

    run_node(tmp_path, monkeypatch, scenario)


def test_oversize_datagram_answered_513(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(ctx: Ctx) -> None:
        ua = await ctx.ua("probe")
        big = options(ua, "big@test").replace(
            b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nX-Pad: " + b"a" * 5000 + b"\r\n"
        )
        assert len(big) > 4096
        ua.send_bytes(big)
        # RFC 3261 §21.5.14: 513 Message Too Large, nothing else.
        got = await ua.expect_nothing(wait=0.5)
        assert [getattr(m, "status", None) for m in got] == [513], got
        await options_ok(ua)
        status = await ctx.status()
        assert status["counters"]["rejections"], status["counters"]

    run_node(tmp_path, monkeypatch, scenario, max_message=4096)


def test_tcp_framing_and_connection_hygiene(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(ctx: Ctx) -> None:
        # One message split byte by byte.
        slow = await ctx.ua("slow", transport="tcp")
        data = options(slow, "bytewise@test")
        for i in range(len(data)):
            slow.send_bytes(data[i : i + 1])
            await asyncio.sleep(0.001)
        resp = await slow.recv(lambda m: m.call_id == "bytewise@test", 3.0)
        assert isinstance(resp, SipResponse) and resp.status == 200

        # Two messages in one segment: two answers, in order.
        pair = await ctx.ua("pair", transport="tcp")
        pair.send_bytes(options(pair, "first@test") + options(pair, "second@test"))
        first = await pair.recv(lambda m: m.call_id == "first@test", 2.0)
        second = await pair.recv(lambda m: m.call_id == "second@test", 2.0)
        assert isinstance(first, SipResponse) and first.status == 200
        assert isinstance(second, SipResponse) and second.status == 200

        # A bad Content-Length closes that connection only.
        bystander = await ctx.ua("bystander", transport="tcp")
        await options_ok(bystander)
        broken = await ctx.ua("broken", transport="tcp")
        broken.send_bytes(
            options(broken, "badlen@test").replace(b"Content-Length: 0", b"Content-Length: abc")
        )
        assert await broken.wait_closed(3.0), "connection with a bad Content-Length kept open"
        huge = await ctx.ua("huge", transport="tcp")
        huge.send_bytes(
            options(huge, "hugelen@test").replace(
                b"Content-Length: 0", b"Content-Length: 99999999999"
            )
        )
        assert await huge.wait_closed(3.0), "connection with a huge Content-Length kept open"
        await options_ok(bystander)
        await options_ok(pair)

        # RFC 5626 §4.4.1: a CRLFCRLF ping gets a CRLF pong, the connection stays.
        bystander.send_bytes(b"\r\n\r\n")
        for _ in range(20):
            if bystander.pongs:
                break
            await asyncio.sleep(0.05)
        assert bystander.pongs == 1
        await options_ok(bystander)

        # A half-closed connection is closed by the server.
        half = await ctx.ua("half", transport="tcp")
        await options_ok(half)
        half.half_close()
        assert await half.wait_closed(3.0), "half-closed connection kept open"
        await options_ok(bystander)

    run_node(tmp_path, monkeypatch, scenario)
