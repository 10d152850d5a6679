"""``ws_guard.text_frames`` read back by the ``websockets`` library's own frame parser."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Opcode

from offhook.web.ws_guard import text_frames
from support.ws_frames import parsed


def test_lengths_at_each_header_size() -> None:
    texts = ["", "x" * 125, "y" * 126, "z" * 65535, "w" * 65536, "é" * 70]
    frames = parsed(text_frames(texts))
    assert [f.data.decode() for f in frames] == texts
    assert all(f.opcode is Opcode.TEXT and f.fin and not f.rsv1 for f in frames)


@given(st.lists(st.text(max_size=300), max_size=20))
def test_any_texts_read_back(texts: list[str]) -> None:
    frames = parsed(text_frames(texts))
    assert [f.data.decode() for f in frames] == texts
    assert all(f.opcode is Opcode.TEXT and f.fin for f in frames)
