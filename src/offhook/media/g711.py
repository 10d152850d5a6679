"""G.711 mu-law and A-law (ITU-T G.711) with numpy lookup tables.

Decoding maps each of the 256 codes to its 16-bit linear value (the usual
expansion of the 14-bit mu-law and 13-bit A-law decoder outputs: mu-law
0x80 -> 32124, A-law 0xAA -> 32256). Encoding indexes a 65,536-entry table
with the uint16 view of each int16 sample. Both tables are built once at
import, with array arithmetic; a 20 ms frame costs one fancy-indexing
operation each way.

RTP static payload types (RFC 3551 §6): PCMU is 0, PCMA is 8.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
CODECS = {pt: name for name, pt in PAYLOAD_TYPES.items()}
# The code of a zero sample: what a silent frame is made of.
SILENCE = {"PCMU": 0xFF, "PCMA": 0xD5}

# mu-law: 14-bit magnitude, bias 33, clip at 8159 (G.711 Table 2a).
_U_BIAS = 33
_U_CLIP = 8159
_U_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
# A-law: 13-bit magnitude (G.711 Table 1a).
_A_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _ulaw_decode_table() -> NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + (_U_BIAS << 2)) << exponent) - (_U_BIAS << 2)
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    step = (mantissa << 4) + np.where(segment == 0, 8, 0x108)
    magnitude: NDArray[np.int32] = step << np.maximum(segment - 1, 0)
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _all_samples() -> NDArray[np.int32]:
    # Index i of an encode table is the uint16 view of the int16 sample.
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _ulaw_encode_table() -> NDArray[np.uint8]:
    pcm = _all_samples() >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(pcm), _U_CLIP) + _U_BIAS
    segment = np.searchsorted(_U_SEG_END, value, side="left")
    code = (segment << 4) | ((value >> (segment + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _alaw_encode_table() -> NDArray[np.uint8]:
    pcm = _all_samples() >> 3
    mask = np.where(pcm < 0, 0x55, 0xD5)
    value = np.where(pcm < 0, -pcm - 1, pcm)
    segment = np.searchsorted(_A_SEG_END, value, side="left")
    shift = np.where(segment < 2, 1, segment)
    code = (segment << 4) | ((value >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


ULAW_DECODE = _ulaw_decode_table()
ALAW_DECODE = _alaw_decode_table()
ULAW_ENCODE = _ulaw_encode_table()
ALAW_ENCODE = _alaw_encode_table()
for _table in (ULAW_DECODE, ALAW_DECODE, ULAW_ENCODE, ALAW_ENCODE):
    _table.flags.writeable = False


def _as_int16(pcm: NDArray[Any]) -> NDArray[np.int16]:
    array: NDArray[Any] = np.asarray(pcm)
    if array.dtype == np.int16:
        return array.astype(np.int16, copy=False)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"G.711 encodes integer samples, not {array.dtype}")
    clipped: NDArray[Any] = np.clip(array, -32768, 32767)
    return clipped.astype(np.int16)


def ulaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """16-bit linear samples -> mu-law bytes (one byte a sample)."""
    return ULAW_ENCODE[_as_int16(pcm).view(np.uint16)].tobytes()


def alaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """16-bit linear samples -> A-law bytes (one byte a sample)."""
    return ALAW_ENCODE[_as_int16(pcm).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes) -> NDArray[np.int16]:
    """mu-law bytes -> 16-bit linear samples (a new array)."""
    return ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> NDArray[np.int16]:
    """A-law bytes -> 16-bit linear samples (a new array)."""
    return ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def _name(codec: str) -> str:
    name = codec.upper()
    if name not in PAYLOAD_TYPES:
        raise ValueError(f"not a G.711 codec: {codec!r} (PCMU or PCMA)")
    return name


def encode(codec: str, pcm: NDArray[np.int16]) -> bytes:
    """Encode with ``codec`` ("PCMU" or "PCMA", any case); ValueError otherwise."""
    return ulaw_encode(pcm) if _name(codec) == "PCMU" else alaw_encode(pcm)


def decode(codec: str, data: bytes) -> NDArray[np.int16]:
    """Decode with ``codec`` ("PCMU" or "PCMA", any case); ValueError otherwise."""
    return ulaw_decode(data) if _name(codec) == "PCMU" else alaw_decode(data)


def silence(codec: str, samples: int = 160) -> bytes:
    """``samples`` codes of silence for ``codec``."""
    return bytes([SILENCE[_name(codec)]]) * samples
