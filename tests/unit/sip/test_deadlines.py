"""The legs' named one-shot timers (sans-IO)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from offhook.sip.deadlines import Deadlines


def test_set_replace_cancel_due() -> None:
    d = Deadlines()
    fired: list[str] = []
    d.set("a", 10.0, lambda: fired.append("a"))
    d.set("b", 5.0, lambda: fired.append("b"))
    d.set("a", 3.0, lambda: fired.append("a2"))  # replaces a
    assert d.next_timer() == 3.0 and len(d) == 2 and "a" in d and d.when("b") == 5.0
    for action in d.due(4.0):
        action()
    assert fired == ["a2"]
    d.cancel("b")
    assert d.next_timer() is None and d.due(100.0) == []
    assert d.when("b") is None


def test_due_in_deadline_order() -> None:
    d = Deadlines()
    out: list[int] = []
    for i, when in enumerate([3.0, 1.0, 2.0]):
        d.set(i, when, lambda i=i: out.append(i))
    for action in d.due(5.0):
        action()
    assert out == [1, 2, 0]


def test_many_replacements_stay_compact() -> None:
    d = Deadlines()
    for i in range(10_000):
        d.set("same", float(i), lambda: None)
    assert len(d) == 1
    assert len(d._heap) < 200  # stale entries compacted
    assert d.next_timer() == 9999.0


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0, 100), st.booleans()), max_size=60))
def test_matches_a_dict_model(ops: list[tuple[int, float, bool]]) -> None:
    d = Deadlines()
    model: dict[int, float] = {}
    for key, when, cancel in ops:
        if cancel:
            d.cancel(key)
            model.pop(key, None)
        else:
            d.set(key, when, lambda: None)
            model[key] = when
    assert d.next_timer() == (min(model.values()) if model else None)
    assert len(d.due(50.0)) == sum(1 for w in model.values() if w <= 50.0)
    assert len(d) == sum(1 for w in model.values() if w > 50.0)
