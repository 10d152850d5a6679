"""The per-call work of the SIP message modules, in process, for before/after comparisons.

What the node does with the datagrams of one SIPp call of ``sip_calls.py``
(``uac_auth.xml`` -> node -> ``uas.xml``) in ``sip/codec``, ``aio``
(``stamp_via``, ``response_destination``), ``validate`` (with one shared
``KnownGood``), ``message`` (transaction-key accessors, a response built and
serialised per request) and ``sdpmap`` (the two SDP bodies): nine datagrams
a call, a new Call-ID, tags and branches for every call, as in the bench.
CPU time (``time.process_time``), the best of ``--rounds`` passes over 2,000
calls, so other processes on the machine barely move it. Compare trees by
running it with each on ``PYTHONPATH``, alternating::

    PYTHONPATH=/tmp/before/src python bench/sip_messages.py
    PYTHONPATH=src python bench/sip_messages.py

The transaction layer, dialogs, legs, call control and the CDR are not in it:
``sip_calls.py`` measures the whole node.
"""

from __future__ import annotations

import argparse
import time

from offhook.sip.aio import response_destination, stamp_via
from offhook.sip.codec import parse_message
from offhook.sip.message import SipRequest, make_response
from offhook.sip.sdpmap import sdp_to_media
from offhook.sip.validate import KnownGood, check_request, check_response

_SDP_HEAD = (
    b"v=0\r\no=sipp 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
)
SDP_A = _SDP_HEAD + b"m=audio 6000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
SDP_B = _SDP_HEAD + b"m=audio 6002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
_AUTH = (
    'Proxy-Authorization: Digest username="benchuac",realm="offhook",'
    'uri="sip:2002@127.0.0.1:5060",nonce="AAAA",response="0123456789abcdef0123456789abcdef",'
    'algorithm=MD5,qop=auth,cnonce="6b8b4567",nc=00000001'
)


def req(method, n, cseq, branch, auth=False, body=b"", to_tag=""):
    h = [
        f"{method} sip:2002@127.0.0.1:5060 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:6001;branch=z9hG4bK-{n}-{branch}",
        f"From: sipp <sip:benchuac@127.0.0.1:6001>;tag={n}SIPpTag00",
        f"To: <sip:2002@127.0.0.1:5060>{to_tag}",
        f"Call-ID: {n}-4242@127.0.0.1",
        f"CSeq: {cseq} {method}",
        "Contact: sip:benchuac@127.0.0.1:6001",
        "Max-Forwards: 70",
        "Subject: Performance Test",
    ]
    if auth:
        h.append(_AUTH)
    if body:
        h.append("Content-Type: application/sdp")
    h.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


def resp(status, reason, n, method, cseq, body=b""):
    h = [
        f"SIP/2.0 {status} {reason}",
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{n:012x}ab;rport=5060",
        f"From: <sip:benchuac@127.0.0.1>;tag=f{n:010x}",
        f"To: <sip:2002@127.0.0.1:6002>;tag={n}SIPpTag01",
        f"Call-ID: {n:016x}@127.0.0.1",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:127.0.0.1:6002;transport=UDP>",
    ]
    if body:
        h.append("Content-Type: application/sdp")
    h.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


def call(n):
    tt = f";tag=t{n}"
    return [
        req("INVITE", n, 1, 1, body=SDP_A),
        req("ACK", n, 1, 1),
        req("INVITE", n, 2, 2, auth=True, body=SDP_A),
        resp(100, "Trying", n, "INVITE", 1),
        resp(180, "Ringing", n, "INVITE", 1),
        resp(200, "OK", n, "INVITE", 1, SDP_B),
        req("ACK", n, 2, 3, to_tag=tt),
        req("BYE", n, 3, 4, to_tag=tt),
        resp(200, "OK", n + 10**9, "BYE", 2),
    ]


SRC = ("127.0.0.1", 6001)


def handle(datagrams, known):
    for data in datagrams:
        msg = parse_message(data)
        if isinstance(msg, SipRequest):
            stamp_via(msg, SRC)
            check_request(msg, known=known)
            _ = msg.branch, msg.top_via, msg.cseq, msg.call_id
            if msg.method != "ACK":
                r = make_response(msg, 100 if msg.method == "INVITE" else 200)
                response_destination(r, SRC)
                r.serialize()
        else:
            check_response(msg, known)
            _ = msg.branch, msg.top_via, msg.cseq, msg.to_tag
        if msg.body:
            sdp_to_media(msg.body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    calls = [call(n) for n in range(2000)]
    best = float("inf")
    for _ in range(args.rounds):
        known = KnownGood()
        t0 = time.process_time()
        for c in calls:
            handle(c, known)
        best = min(best, (time.process_time() - t0) / len(calls) * 1e6)
    print(f"per call: {best:.0f} us")


if __name__ == "__main__":
    main()
