"""Overload control (core.overload) on a hand-driven clock and made-up load signals:
entering overload, shedding evenly with Retry-After, hysteresis, recovery, and
properties over arbitrary load sequences (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offhook.core.overload import (
    KINDS,
    MAX_CUT,
    RATIO_FLOOR,
    Mode,
    OverloadControl,
    OverloadPolicy,
    Threshold,
)

WINDOW = 0.5


class Feed:
    """An OverloadControl fed one sample per window, on a clock that moves by windows."""

    def __init__(self, policy: OverloadPolicy | None = None) -> None:
        self.now = 1000.0
        self.control = OverloadControl(policy or OverloadPolicy(window=WINDOW, sustain=1), self.now)

    def window(self, **sample: float) -> OverloadControl:
        self.now += WINDOW
        assert self.control.observe(self.now, sample)
        return self.control


def test_normal_admits_everything_and_counts_nothing() -> None:
    feed = Feed()
    control = feed.window(cpu=0.5, lag=0.001)
    assert control.mode is Mode.NORMAL and not control.overloaded
    assert all(control.admit(kind) for kind in KINDS for _ in range(100))
    assert control.shed == dict.fromkeys(KINDS, 0)
    assert control.reduction() == 0
    assert control.status(feed.now)["state"] == "normal"


def test_samples_within_a_window_are_averaged_before_deciding() -> None:
    control = OverloadControl(OverloadPolicy(window=WINDOW), 0.0)
    assert not control.observe(0.1, {"cpu": 1.0})
    assert not control.observe(0.2, {"cpu": 1.0})
    assert control.observe(0.5, {"cpu": 0.1})  # mean 0.7: not over 0.9
    assert not control.overloaded
    assert control.signals == {"cpu": pytest.approx(0.7)}


def test_cpu_over_its_threshold_enters_overload_and_sheds_with_retry_after() -> None:
    feed = Feed()
    control = feed.window(cpu=1.0)
    assert control.overloaded and control.episodes == 1
    # load 1/0.9: the admitted share falls by at least the decrease step
    assert control.admit_ratio == pytest.approx(0.75)
    verdicts = [control.admit("invite") for _ in range(100)]
    assert verdicts.count(True) == 75  # spread evenly: exactly the admitted share
    assert control.shed["invite"] == 25
    assert control.admitted["invite"] == 75
    assert control.reduction() == 25
    assert 1 <= control.retry_after() <= 8


def test_lag_and_injected_signals_overload_too() -> None:
    assert Feed().window(lag=0.3).overloaded
    assert Feed().window(injected=1.0).overloaded
    assert not Feed().window(lag=0.05, injected=0.9).overloaded


def test_a_large_load_cuts_deeper_than_the_decrease_step_but_at_most_by_half() -> None:
    control = Feed().window(injected=1.6)
    assert control.admit_ratio == pytest.approx(0.625)  # 1/load
    control = Feed().window(injected=40.0)
    assert control.admit_ratio == pytest.approx(0.5)  # MAX_CUT
    assert Feed().window(injected=40.0).admit_ratio == MAX_CUT


def test_full_shedding_refuses_every_new_call_but_exempt_numbers() -> None:
    feed = Feed()
    for _ in range(10):
        feed.window(injected=10.0)
    control = feed.control
    assert control.admit_ratio == 0.0  # below RATIO_FLOOR: min_admit (0)
    assert not any(control.admit("invite", "1002") for _ in range(50))
    assert control.admit("invite", "") is False
    policy = OverloadPolicy(window=WINDOW, exempt=frozenset({"112"}), sustain=1)
    feed = Feed(policy)
    for _ in range(10):
        feed.window(injected=10.0)
    assert feed.control.admit("invite", "112")
    assert not feed.control.admit("invite", "1002")
    assert feed.control.retry_after() == policy.retry_after_max


def test_min_admit_is_a_floor() -> None:
    feed = Feed(OverloadPolicy(window=WINDOW, min_admit=0.2, sustain=1))
    for _ in range(20):
        feed.window(injected=50.0)
    assert feed.control.admit_ratio == pytest.approx(0.2)
    assert [feed.control.admit("sccp") for _ in range(10)].count(True) == 2


def test_hysteresis_between_low_and_high_keeps_overload_and_probes_slowly() -> None:
    feed = Feed()
    for _ in range(4):
        feed.window(cpu=1.0)
    ratio = feed.control.admit_ratio
    for i in range(1, 5):  # 0.8: under cpu_high (0.9) but over cpu_low (0.7)
        control = feed.window(cpu=0.8)
        assert control.overloaded
        assert control.admit_ratio == pytest.approx(ratio + i * 0.025)  # a quarter step
    for _ in range(60):  # admitting everything again, still overloaded until calm
        control = feed.window(cpu=0.8)
    assert control.overloaded and control.admit_ratio == 1.0
    # ... and a calm signal does not make the node calm while another one is not
    control = feed.window(cpu=0.1, lag=0.05)
    assert control.overloaded
    control = feed.window(cpu=0.1, lag=0.01)
    assert not control.overloaded


def test_recovery_when_every_signal_is_calm() -> None:
    feed = Feed()
    for _ in range(12):
        feed.window(cpu=1.0, lag=0.5)
    assert feed.control.admit_ratio == 0.0
    windows = 0
    while feed.control.overloaded:
        control = feed.window(cpu=0.2, lag=0.001)
        windows += 1
        assert windows <= 10  # + increase (0.1) per calm window
    assert control.mode is Mode.NORMAL and control.admit_ratio == 1.0
    assert control.since is None and control.retry_after() == 1  # retry_after_min
    assert all(control.admit("invite") for _ in range(20))
    assert windows == 10
    # a second episode is counted as such
    feed.window(cpu=0.95)
    assert feed.control.episodes == 2


def test_no_sample_in_a_window_counts_as_calm() -> None:
    feed = Feed()
    feed.window(injected=2.0)
    for _ in range(20):
        feed.window()
    assert not feed.control.overloaded


def test_unknown_and_non_finite_signals_are_ignored() -> None:
    feed = Feed()
    control = feed.window(cpu=float("nan"), lag=float("inf"), rainfall=100.0)
    assert not control.overloaded and control.signals == {}


def test_signal_with_zero_high_threshold_is_off() -> None:
    policy = OverloadPolicy(
        thresholds={"cpu": Threshold(0.0, 0.0), "lag": Threshold(0.1, 0.02)},
        window=WINDOW,
        sustain=1,
    )
    feed = Feed(policy)
    assert not feed.window(cpu=1.0, lag=0.0).overloaded
    assert feed.window(lag=0.2).overloaded


def test_a_clock_going_back_restarts_the_window() -> None:
    control = OverloadControl(OverloadPolicy(window=WINDOW, sustain=1), 100.0)
    assert not control.observe(50.0, {"cpu": 1.0})
    assert not control.observe(50.4, {"cpu": 1.0})
    assert control.observe(50.5, {"cpu": 1.0})
    assert control.overloaded


def test_unknown_kinds_count_as_other() -> None:
    feed = Feed()
    for _ in range(10):
        feed.window(injected=10.0)
    assert not feed.control.admit("fax")
    assert feed.control.shed["other"] == 1


def test_policy_and_thresholds_are_checked() -> None:
    with pytest.raises(ValueError):
        Threshold(0.5, 0.9)
    with pytest.raises(ValueError):
        OverloadPolicy(decrease=1.0)
    with pytest.raises(ValueError):
        OverloadPolicy(increase=0.0)
    with pytest.raises(ValueError):
        OverloadPolicy(retry_after_min=9, retry_after_max=8)
    with pytest.raises(ValueError):
        OverloadPolicy(window=0)
    with pytest.raises(ValueError):
        OverloadPolicy(sustain=0)


def test_a_spike_sheds_nothing_sustained_load_does() -> None:
    feed = Feed(OverloadPolicy(window=WINDOW))  # sustain 2 (the default)
    assert not feed.window(cpu=1.0).overloaded  # one window over: a spike
    assert not feed.window(cpu=0.8).overloaded
    assert not feed.window(cpu=1.0).overloaded  # not in a row
    control = feed.window(cpu=1.0)
    assert control.overloaded and control.admit_ratio < 1.0


def test_status_reports_the_episode() -> None:
    feed = Feed()
    feed.window(injected=2.0)
    control = feed.control
    control.admit("register")
    feed.now += 1.25
    status = control.status(feed.now)
    assert status["state"] == "overloaded"
    assert status["overloaded_for"] == pytest.approx(1.25)
    assert status["signals"] == {"injected": 2.0}
    assert status["shed"]["register"] + status["admitted_while_overloaded"]["register"] == 1
    assert status["retry_after"] >= 1


# --- properties ------------------------------------------------------------------

loads = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "cpu": st.floats(0, 1.5, allow_nan=False),
            "lag": st.floats(0, 5, allow_nan=False),
            "injected": st.floats(0, 100, allow_nan=False),
        },
    ),
    max_size=60,
)


@given(loads, st.lists(st.sampled_from(KINDS), max_size=40))
def test_property_admit_ratio_stays_in_bounds_and_normal_admits_all(
    samples: list[dict[str, float]], kinds: list[str]
) -> None:
    feed = Feed()
    for sample in samples:
        control = feed.window(**sample)
        assert 0.0 <= control.admit_ratio <= 1.0
        if control.mode is Mode.NORMAL:
            assert control.admit_ratio == 1.0
            assert all(control.admit(kind) for kind in kinds)
        else:
            before = sum(control.shed.values()) + sum(control.admitted.values())
            for kind in kinds:
                control.admit(kind)
            after = sum(control.shed.values()) + sum(control.admitted.values())
            assert after - before == len(kinds)  # every decision is counted, once
        assert control.admit_ratio == 0.0 or control.admit_ratio >= RATIO_FLOOR
        assert 1 <= control.retry_after() <= 8


@given(loads, st.floats(0, 0.69), st.floats(0, 0.0199))
def test_property_always_recovers_when_the_load_drops(
    samples: list[dict[str, float]], cpu: float, lag: float
) -> None:
    feed = Feed()
    for sample in samples:
        feed.window(**sample)
    # calm: every signal under its low threshold; at most 1 / increase windows to recover
    for _ in range(11):
        feed.window(cpu=cpu, lag=lag, injected=0.0)
    assert feed.control.mode is Mode.NORMAL
    assert feed.control.admit_ratio == 1.0
    assert all(feed.control.admit(kind) for kind in KINDS)


@given(loads)
def test_property_overload_never_outlives_a_calm_stretch_nor_starts_without_load(
    samples: list[dict[str, float]],
) -> None:
    feed = Feed()
    for sample in samples:
        was = feed.control.mode
        control = feed.window(**sample)
        if was is Mode.NORMAL and control.overloaded:
            assert control.load >= 1.0  # only a window at/over a threshold overloads
        if control.mode is Mode.NORMAL:
            assert control.admit_ratio == 1.0


@given(st.floats(0.01, 1.0), st.integers(1, 400))
def test_property_shedding_is_spread_evenly(ratio: float, n: int) -> None:
    feed = Feed(OverloadPolicy(window=WINDOW, min_admit=ratio, sustain=1))
    for _ in range(40):
        feed.window(injected=1000.0)
    control = feed.control
    assert control.admit_ratio == pytest.approx(ratio)
    admitted = [control.admit("invite") for _ in range(n)].count(True)
    assert abs(admitted - ratio * n) <= 1
