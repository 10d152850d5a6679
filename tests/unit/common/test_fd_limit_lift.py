"""common.fd_limit.lift: the soft open-file limit raised toward a need, never past the hard one."""

from __future__ import annotations

import resource

import pytest

from offhook.common import fd_limit

INF = resource.RLIM_INFINITY


@pytest.mark.parametrize(
    ("soft", "hard", "need", "after"),
    [
        (1024, 65536, 5000, (5000, 65536)),  # lifted to the need
        (1024, 2048, 5000, (2048, 2048)),  # no further than the hard limit
        (8192, 65536, 5000, (8192, 65536)),  # enough already: untouched
        (1024, INF, 5000, (5000, fd_limit.UNLIMITED)),
        (INF, INF, 5000, (fd_limit.UNLIMITED, fd_limit.UNLIMITED)),
    ],
)
def test_lift(
    monkeypatch: pytest.MonkeyPatch, soft: int, hard: int, need: int, after: tuple[int, int]
) -> None:
    limits = {"now": (soft, hard)}
    monkeypatch.setattr(resource, "getrlimit", lambda which: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda which, new: limits.update(now=new))
    assert fd_limit.lift(need) == after


def test_a_refused_raise_reports_the_limit_as_it_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(which: int, new: tuple[int, int]) -> None:
        raise ValueError("not allowed")

    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, 65536))
    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert fd_limit.lift(5000) == (1024, 65536)
