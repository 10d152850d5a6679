"""WebSocket frames read back by the ``websockets`` library's own parser (not ours)."""

from __future__ import annotations

from collections.abc import Generator

from websockets.frames import Frame
from websockets.streams import StreamReader


def parsed(data: bytes) -> list[Frame]:
    """Every frame in ``data``, as a server's client reads them (unmasked); AssertionError
    when the last one is cut short."""
    reader = StreamReader()
    reader.feed_data(data)
    frames = []
    while reader.buffer:
        parser: Generator[None, None, Frame] = Frame.parse(
            reader.read_exact, mask=False, max_size=None
        )
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
            continue
        raise AssertionError("a frame was cut short")
    return frames
