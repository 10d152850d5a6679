"""media.g711: the ITU-T G.711 tables (both laws) against the Recommendation's values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.media import g711

ALL_CODES = bytes(range(256))
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def _ulaw_output(segment: int, step: int) -> int:
    # G.711 Table 2a, decoder output of a positive code, in the 8159 scale.
    return (2 * step + 33) * (1 << segment) - 33


def _alaw_output(segment: int, step: int) -> int:
    # G.711 Table 1a, decoder output of a positive code, in the 4096 scale.
    if segment == 0:
        return 2 * step + 1
    return (2 * step + 33) * (1 << (segment - 1))


# Segment end points of the decoder outputs, as printed in the Recommendation.
ULAW_SEGMENT_ENDS = [
    (0, 30),
    (33, 93),
    (99, 219),
    (231, 471),
    (495, 975),
    (1023, 1983),
    (2079, 3999),
    (4191, 8031),
]
ALAW_SEGMENT_ENDS = [
    (1, 31),
    (33, 63),
    (66, 126),
    (132, 252),
    (264, 504),
    (528, 1008),
    (1056, 2016),
    (2112, 4032),
]


def test_named_values() -> None:
    u, a = g711.ULAW_DECODE, g711.ALAW_DECODE
    assert (u[0x00], u[0x80], u[0xFF], u[0x7F]) == (-32124, 32124, 0, 0)
    assert (a[0xD5], a[0x55], a[0xAA], a[0x2A]) == (8, -8, 32256, -32256)
    assert g711.PAYLOAD_TYPES == {"PCMU": 0, "PCMA": 8}
    assert g711.decode("PCMU", bytes([g711.SILENCE["PCMU"]])).tolist() == [0]
    assert abs(int(g711.decode("PCMA", bytes([g711.SILENCE["PCMA"]]))[0])) == 8


@pytest.mark.parametrize("segment", range(8))
def test_ulaw_segments(segment: int) -> None:
    first, last = ULAW_SEGMENT_ENDS[segment]
    assert (_ulaw_output(segment, 0), _ulaw_output(segment, 15)) == (first, last)
    for step in range(16):
        # A positive mu-law code is the inverted 1-segment-mantissa byte.
        code = 0xFF ^ ((segment << 4) | step)
        expected = 4 * _ulaw_output(segment, step)
        assert int(g711.ULAW_DECODE[code]) == expected
        assert int(g711.ULAW_DECODE[code & 0x7F]) == -expected


@pytest.mark.parametrize("segment", range(8))
def test_alaw_segments(segment: int) -> None:
    first, last = ALAW_SEGMENT_ENDS[segment]
    assert (_alaw_output(segment, 0), _alaw_output(segment, 15)) == (first, last)
    for step in range(16):
        # A-law: sign bit 1 for positive, even bits inverted (XOR 0x55).
        code = 0x80 | (segment << 4) | step
        expected = 8 * _alaw_output(segment, step)
        assert int(g711.ALAW_DECODE[code ^ 0x55]) == expected
        assert int(g711.ALAW_DECODE[(code & 0x7F) ^ 0x55]) == -expected


@pytest.mark.parametrize(
    ("codec", "samples", "codes"),
    [
        # Zero, full scale both ways, and minus one (the smallest negative step).
        ("PCMU", [0, 32767, -32768, -1], [0xFF, 0x80, 0x00, 0x7E]),
        ("PCMA", [0, 32767, -32768, -1], [0xD5, 0xAA, 0x2A, 0x55]),
        # mu-law decision values at the first segment boundaries (14-bit 30/31, 94/95).
        ("PCMU", [4 * 30, 4 * 31, 4 * 94, 4 * 95], [0xF0, 0xEF, 0xE0, 0xDF]),
        # A-law decision values at the segment 1/2 and 2/3 boundaries (13-bit 63/64, 127/128).
        ("PCMA", [8 * 63, 8 * 64, 8 * 127, 8 * 128], [0xCA, 0xF5, 0xFA, 0xE5]),
    ],
)
def test_encode_boundaries(codec: str, samples: list[int], codes: list[int]) -> None:
    assert g711.encode(codec, np.array(samples, dtype=np.int16)) == bytes(codes)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA", "pcmu", "Pcma"])
def test_round_trip_every_code(codec: str) -> None:
    linear = g711.decode(codec, ALL_CODES)
    assert linear.dtype == np.int16 and linear.shape == (256,)
    again = g711.decode(codec, g711.encode(codec, linear))
    assert np.array_equal(again, linear)
    codes = g711.encode(codec, linear)
    # Every code but mu-law's negative zero comes back as itself.
    differ = [c for c in range(256) if codes[c] != c]
    assert differ == ([0x7F] if codec.upper() == "PCMU" else [])


def test_expansion_is_monotonic() -> None:
    u = g711.ULAW_DECODE.astype(np.int32)
    # mu-law: 0x00..0x7F run from -full scale up to (negative) zero, 0xFF..0x80 up to +full.
    ordered = np.concatenate([u[0x00:0x80], u[0xFF:0x7F:-1]])
    assert np.all(np.diff(ordered) >= 0)
    assert np.count_nonzero(np.diff(ordered) == 0) == 1  # the two zeros
    a = g711.ALAW_DECODE.astype(np.int32)
    positive = a[np.arange(128) ^ 0xD5]
    negative = a[np.arange(128) ^ 0x55]
    assert np.all(np.diff(positive) > 0) and np.all(np.diff(negative) < 0)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_quantiser_is_monotonic_and_close(codec: str) -> None:
    out = g711.decode(codec, g711.encode(codec, ALL_SAMPLES)).astype(np.int32)
    assert np.all(np.diff(out) >= 0)
    error = np.abs(out - ALL_SAMPLES.astype(np.int32))
    # The largest error is the clipped tail beyond the last decoder output (the top
    # segment's half step, 512, is smaller).
    assert int(error.max()) == 32768 - (32124 if codec == "PCMU" else 32256)
    # Near zero the steps are 8 and 16 (16-bit scale): half a step, plus what the
    # encoder's 14-bit (mu-law) or 13-bit (A-law) truncation drops.
    small = np.abs(ALL_SAMPLES.astype(np.int32)) < 256
    assert int(error[small].max()) <= (11 if codec == "PCMU" else 15)


def test_codec_names_and_types() -> None:
    with pytest.raises(ValueError):
        g711.encode("G722", np.zeros(4, dtype=np.int16))
    with pytest.raises(ValueError):
        g711.decode("opus", b"\0")
    with pytest.raises(TypeError):
        g711.encode("PCMU", np.zeros(4, dtype=np.float64))
    wide = np.array([40000, -40000, 5], dtype=np.int32)
    assert g711.encode("PCMU", wide) == g711.encode("PCMU", np.array([32767, -32768, 5], np.int16))  # type: ignore[arg-type]
    assert g711.silence("pcma", 3) == b"\xd5\xd5\xd5"
    assert g711.decode("PCMU", b"").shape == (0,)


def test_decode_returns_a_fresh_array() -> None:
    pcm = g711.ulaw_decode(b"\x00\x80")
    pcm[0] = 1
    assert int(g711.ULAW_DECODE[0]) == -32124


@given(st.binary(max_size=400))
def test_any_bytes_round_trip(data: bytes) -> None:
    for codec in ("PCMU", "PCMA"):
        linear = g711.decode(codec, data)
        assert len(linear) == len(data)
        assert np.array_equal(g711.decode(codec, g711.encode(codec, linear)), linear)
