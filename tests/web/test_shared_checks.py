"""web.shared_checks: the periodic checks of one key share a lookup; fresh ones never do."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.web.shared_checks import SharedChecks


class Lookups:
    """A lookup that counts its calls and answers what ``answers`` holds now."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.answers: dict[str, str] = {}
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, key: str) -> str:
        self.calls.append(key)
        await self.release.wait()
        answer = self.answers.get(key, "ok")
        if answer == "boom":
            raise OSError("the database is gone")
        return answer


def checks(
    window: float = 2.5, limit: int = 4096
) -> tuple[SharedChecks[str], Lookups, list[float]]:
    now = [100.0]
    lookups = Lookups()
    return SharedChecks(lookups, window, lambda: now[0], limit=limit), lookups, now


async def test_many_periodic_checks_at_once_make_one_lookup() -> None:
    shared, lookups, _ = checks()
    lookups.release.clear()
    waiting = [asyncio.ensure_future(shared.get("tok")) for _ in range(100)]
    await asyncio.sleep(0)
    lookups.release.set()
    assert await asyncio.gather(*waiting) == ["ok"] * 100
    assert lookups.calls == ["tok"] and shared.lookups == 1


async def test_a_revocation_is_seen_at_once_by_a_fresh_check_and_within_the_window_by_others() -> (
    None
):
    shared, lookups, now = checks(window=2.5)
    assert await shared.get("tok") == "ok"
    lookups.answers["tok"] = "revoked"
    now[0] += 1.0
    assert await shared.get("tok") == "ok"  # shared: the answer of 1 s ago
    assert await shared.get("tok", fresh=True) == "revoked"  # a client message: looked up
    assert await shared.get("tok") == "revoked"  # and shared from then on
    lookups.answers["tok"] = "ok again"
    now[0] += 2.5
    assert await shared.get("tok") == "ok again"  # the window is over: looked up
    assert len(lookups.calls) == 3


async def test_keys_are_not_shared_and_a_failure_is_not_remembered() -> None:
    shared, lookups, _ = checks()
    lookups.answers["bad"] = "boom"
    with pytest.raises(OSError):
        await shared.get("bad")
    lookups.answers["bad"] = "fine"
    assert await shared.get("bad") == "fine"
    assert await shared.get("other") == "ok"
    assert lookups.calls == ["bad", "bad", "other"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.booleans(), st.floats(0, 3)), max_size=60))
def test_bounded_and_never_older_than_the_window(steps: list[tuple[int, bool, float]]) -> None:
    async def go() -> None:
        shared, lookups, now = checks(window=2.0, limit=8)
        for key, fresh, advance in steps:
            now[0] += advance
            lookups.answers[str(key)] = f"{key}@{now[0]}"
            got = await shared.get(str(key), fresh=fresh)
            made = float(got.split("@")[1])
            assert now[0] - made < 2.0 or (fresh and made == now[0])
            if fresh:
                assert made == now[0]
            assert len(shared) <= 8

    asyncio.run(go())
