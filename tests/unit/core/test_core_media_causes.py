"""Media description helpers, Q.850 causes and fork cause selection."""

from __future__ import annotations

import dataclasses

import pytest

from offhook.core.causes import Cause, cause_text, select_cause
from offhook.core.media import Codec, MediaDescription, MediaStream

PCMU = Codec("PCMU", 8000, 0)


def stream(direction: str = "sendrecv", port: int = 4000, address: str = "10.0.0.1") -> MediaStream:
    return MediaStream("audio", address, port, (PCMU,), direction)


def test_media_is_frozen_and_slotted() -> None:
    s = stream()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]
    assert not hasattr(s, "__dict__")


def test_hold_detection() -> None:
    assert not MediaDescription((stream(),)).is_hold()
    assert MediaDescription((stream("sendonly"),)).is_hold()
    assert MediaDescription((stream("inactive"),)).is_hold()
    assert MediaDescription((stream(address="0.0.0.0"),)).is_hold()  # RFC 2543 style
    assert not MediaDescription((stream("recvonly"),)).is_hold()
    # rejected streams do not count; no active stream is not hold
    assert MediaDescription((stream("sendonly"), stream(port=0))).is_hold()
    assert not MediaDescription((stream(port=0),)).is_hold()
    assert not MediaDescription(()).is_hold()


def test_with_direction_keeps_everything_else_and_rejected_streams() -> None:
    video = MediaStream("video", "10.0.0.1", 0, (Codec("H264", 90000, 96),))
    extra = (("rtcp", "4001"), ("rtcp-mux", None))
    audio = dataclasses.replace(stream(), extra=extra, ptime=20)
    held = MediaDescription((audio, video)).with_direction("sendonly")
    assert held.streams[0] == dataclasses.replace(audio, direction="sendonly")
    assert held.streams[1] == video
    assert held.is_hold()


def test_invalid_direction_or_port_rejected() -> None:
    with pytest.raises(ValueError):
        stream("sideways")
    with pytest.raises(ValueError):
        stream(port=70000)


def test_cause_values_and_text() -> None:
    assert int(Cause.UNALLOCATED_NUMBER) == 1
    assert int(Cause.USER_BUSY) == 17
    assert int(Cause.SUBSCRIBER_ABSENT) == 20
    assert int(Cause.NON_SELECTED_USER_CLEARING) == 26
    assert int(Cause.INTERWORKING) == 127
    assert cause_text(16) == "Normal call clearing"
    assert cause_text(999) == "Cause 999"
    assert all(not cause_text(c).startswith("Cause ") for c in Cause)


@pytest.mark.parametrize(
    ("causes", "best"),
    [
        ([], 31),
        ([19, 17], 17),
        ([20, 19, 41], 19),
        ([41, 20], 20),
        ([38, 41], 41),
        ([99, 41], 41),
        ([99, 98], 99),  # unlisted: first to arrive
        ([17, 21], 21),
        ([18, 19], 19),
    ],
)
def test_select_cause(causes: list[int], best: int) -> None:
    assert select_cause(causes) == best


def test_no_sip_in_core() -> None:
    import offhook.core as core

    assert not [n for n in dir(core) if "sip" in n.lower()]
