"""``core.overload.CallMemory``'s look-ahead entries (``sip.shed_peek``), hand-driven clock.

A call admitted before its full parse (``admitted_ahead``) is followed by the
parsed path without being counted as a later request of an admitted call;
after that it is an ordinary admitted call. ``known`` asks without counting.
"""

from __future__ import annotations

from offhook.core.overload import CallMemory


def test_a_call_admitted_ahead_is_followed_once_uncounted_then_as_usual() -> None:
    memory = CallMemory(ttl=10.0)
    assert not memory.known("c1", 0.0)
    memory.admitted_ahead("c1", 0.0)
    assert memory.known("c1", 1.0) and memory.answer("c1", 1.0) is None
    assert memory.followed == 0
    assert memory.follows("c1", 1.0)  # the parsed path, same request: not counted
    assert memory.followed == 0
    assert memory.follows("c1", 2.0)  # its next INVITE (the digest answer): counted
    assert memory.followed == 1
    assert memory.known("c1", 3.0) and memory.followed == 1


def test_look_ahead_entries_expire_like_the_others() -> None:
    memory = CallMemory(ttl=1.0)
    memory.admitted_ahead("c1", 0.0)
    assert not memory.known("c1", 1.0)
    assert not memory.follows("c1", 1.0)
    assert memory.status() == {"remembered": 0, "followed": 0, "resent": 0, "absorbed": 0}
