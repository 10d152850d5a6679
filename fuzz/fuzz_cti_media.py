"""atheris fuzz target for an application's media of a CTI port (``cti_answer``/``cti_make_call``).

Parser: ``offhook.core.features.cti_devices.media_from_json`` over JSON text
(what the control endpoint and ``/api/v1/cti`` pass on as ``media``), then
``answer_for`` answering fixed caller offers with what it returned.

Invariants (DESIGN.md "Errors"): any JSON value either gives a description
or raises ValueError; anything else is a crash. Besides: a description is
one audio stream on a unicast address and a port 1-65535, G.711 first;
``media_to_json`` of it parses back equal; an answer to an offer has as many
streams as the offer (RFC 3264 §6), exactly one of them active, on the
application's address, or is refused with ValueError.

The input is JSON text (not JSON: skipped)::

    python fuzz/fuzz_cti_media.py -max_total_time=20 fuzz/corpus/fuzz_cti_media

Seeds in fuzz/corpus/fuzz_cti_media. A crash writes ``crash-<sha1>``; replay
it with ``python fuzz/fuzz_cti_media.py crash-<sha1>``.
"""

from __future__ import annotations

import ipaddress
import json
import sys

import atheris

with atheris.instrument_imports():
    from offhook.core.features.cti_devices import answer_for, media_from_json, media_to_json
    from offhook.core.media import Codec, MediaDescription, MediaStream

PCMU = Codec("PCMU", 8000, 0)
PCMA = Codec("PCMA", 8000, 8)
DTMF = Codec("telephone-event", 8000, 101, fmtp="0-16")
OFFERS = (
    MediaDescription((MediaStream("audio", "10.0.0.1", 4000, (PCMU,)),)),
    MediaDescription((MediaStream("audio", "10.0.0.1", 4000, (PCMA, PCMU, DTMF), "sendonly"),)),
    MediaDescription(
        (
            MediaStream("video", "10.0.0.1", 5000, (Codec("H264", 90000, 99),)),
            MediaStream("audio", "::1", 4002, (PCMA,)),
        )
    ),
    MediaDescription((MediaStream("audio", "10.0.0.1", 0, (PCMU,)),)),
)


def test_one_input(data: bytes) -> None:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return  # not JSON: the control endpoint refuses it before us
    try:
        media = media_from_json(value)
    except ValueError:
        return
    (stream,) = media.streams
    address = ipaddress.ip_address(stream.address)
    if address.is_unspecified or address.is_multicast or not 1 <= stream.port <= 65535:
        raise AssertionError(f"accepted {stream.address}:{stream.port}")
    if stream.kind != "audio" or stream.codecs[0].name not in ("PCMU", "PCMA"):
        raise AssertionError(f"not G.711 audio: {stream}")
    if media_from_json(media_to_json(media)) != media:
        raise AssertionError("media_to_json does not give it back")
    for offer in OFFERS:
        try:
            answer = answer_for(offer, media)
        except ValueError:
            continue
        if len(answer.streams) != len(offer.streams):
            raise AssertionError("the answer has another number of streams")
        active = answer.active_streams()
        if [(s.address, s.port) for s in active] != [(stream.address, stream.port)]:
            raise AssertionError(f"answer not on the application's address: {answer}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
