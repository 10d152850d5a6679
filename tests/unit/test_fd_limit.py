"""``app.raise_fd_limit``: the soft open-file limit is lifted to what the
listeners' connection caps need, and when the hard limit stops it, the warning
names the exact shell and systemd lines that fix it."""

from __future__ import annotations

import logging
import resource

import pytest

from offhook.app import raise_fd_limit
from offhook.config import Settings


def need_of(settings: Settings) -> int:
    return (
        256
        + settings.sip.max_connections
        + settings.admin.max_connections
        + settings.sccp.max_connections
        + settings.tftp.max_connections
        + settings.tftp.max_transfers
        + (settings.web.max_connections if settings.web.enabled else 0)
    )


def test_lifted_to_the_need_when_the_hard_limit_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    need = need_of(settings)
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda which: (1024, need * 2))
    monkeypatch.setattr(resource, "setrlimit", lambda which, limits: set_to.append(limits))
    raise_fd_limit(settings)
    assert set_to == [(need, need * 2)]


def test_a_low_hard_limit_is_named_with_its_fix(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings()
    need = need_of(settings)
    limits = {"soft": 1024, "hard": 4096}

    def setrlimit(which: int, new: tuple[int, int]) -> None:
        if new[0] > limits["hard"]:
            raise ValueError("not allowed")
        limits["soft"] = new[0]

    monkeypatch.setattr(resource, "getrlimit", lambda which: (limits["soft"], limits["hard"]))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    with caplog.at_level(logging.WARNING, logger="offhook"):
        raise_fd_limit(settings)
    [warning] = [r.getMessage() for r in caplog.records if "open-file limit" in r.getMessage()]
    assert f"open-file limit 4096 is below the {need}" in warning
    assert f"ulimit -n {need}" in warning
    assert f"ulimit -Hn {need}" in warning and "hard limit 4096" in warning
    assert f"LimitNOFILE={need}" in warning
