"""bench/register.py's logic without SIPp: users, plan, injection files, rates, verdicts.

The benchmark itself needs SIPp and a machine to itself; what it computes
before and after a run is checked here (no timing).
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import pytest

from offhook.db.plan_check import parse_plan

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import register  # noqa: E402


def test_users_are_distinct_with_derived_passwords() -> None:
    users = register.make_users(20_000)
    assert len({u.name for u in users}) == 20_000
    assert len({u.dn for u in users}) == 20_000
    assert users[0].name == "reg00001" and users[-1].name == "reg20000"
    assert all(u.password == register.PASSWORD_PREFIX + u.name for u in users)


def test_plan_is_a_valid_plan_of_sip_devices() -> None:
    users = register.make_users(50)
    plan = parse_plan(register.plan_for(users), "bench", require_passwords=True)
    assert [d.name for d in plan.devices] == [u.name for u in users]
    assert all(d.protocol == "sip" and d.password for d in plan.devices)
    assert [d.lines[0].dn for d in plan.devices] == [u.dn for u in users]


@pytest.mark.parametrize(("count", "parts"), [(10, 3), (2000, 8), (5, 8), (1, 1)])
def test_slices_deal_every_user_once(count: int, parts: int) -> None:
    users = register.make_users(count)
    dealt = register.slices(users, parts)
    assert len(dealt) == min(parts, count)
    assert all(dealt)
    assert sorted(u.name for part in dealt for u in part) == [u.name for u in users]


@pytest.mark.parametrize(("rate", "parts"), [(1000, 8), (250, 8), (7, 3), (5, 8)])
def test_split_rate_sums_to_the_rate(rate: int, parts: int) -> None:
    rates = register.split_rate(rate, parts)
    assert len(rates) == parts and sum(rates) == rate
    assert max(rates) - min(rates) <= 1


def test_injection_file_gives_sipp_the_user_and_its_credentials() -> None:
    users = register.make_users(3)
    text = register.injection_csv(users)
    first, *rows = text.splitlines()
    assert first == "SEQUENTIAL"
    parsed = list(csv.reader(io.StringIO("\n".join(rows)), delimiter=";"))
    assert parsed[0] == ["reg00001", "[authentication username=reg00001 password=pw-reg00001]"]
    assert len(parsed) == 3


def test_write_injection_one_file_per_source(tmp_path: Path) -> None:
    users = register.make_users(20)
    files = register.write_injection(users, 4, tmp_path)
    assert [addr for addr, _ in files] == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    lines = [ln for _, p in files for ln in p.read_text().splitlines()[1:]]
    assert len(lines) == 20


def test_source_addresses_are_loopback() -> None:
    assert register.source_addresses(2) == ["127.0.0.2", "127.0.0.3"]
    with pytest.raises(ValueError):
        register.source_addresses(251)


def test_per_source_limits_fit_the_top_step() -> None:
    limits = register.per_source_limits(6000, 8)
    # 6,000 registrations/s over 8 sources: 750/s each, two datagrams in each, x 1.5
    assert limits["rate_per_source"] == pytest.approx(2250.0)
    assert limits["rate_burst"] >= limits["rate_per_source"]
    low = register.per_source_limits(100, 8)  # never below the node's defaults
    assert low == {"rate_per_source": 200.0, "rate_burst": 400.0}


def test_reregistration_load_of_20000_phones() -> None:
    load = register.rereg_load(1.0)
    assert load["registrations_per_s"] == pytest.approx(33.3)
    assert load["requests_per_s"] == pytest.approx(66.7)
    # 33.3 registrations/s at 1 ms each: 33.3 ms of CPU a second, 3.3 % of a core
    assert load["cpu_ms_per_s"] == pytest.approx(33.33, abs=0.01)
    assert load["core_share_pct"] == pytest.approx(3.33, abs=0.01)


def _step(**kw: object) -> register.Step:
    step = register.Step(rate=100, registrations=1000)
    for k, v in kw.items():
        setattr(step, k, v)
    register.judge(step, 10)
    return step


def test_judge_passes_a_complete_step() -> None:
    step = _step(successful=1000, failed=0, elapsed_s=10.2, cpu_s=2.0)
    assert step.passed and not step.note
    assert step.cpu_ms_per_registration == pytest.approx(2.0)
    assert step.sustained_per_s == pytest.approx(98.0)


def test_judge_fails_too_many_failures_incomplete_or_slow() -> None:
    assert _step(successful=1000, failed=1, elapsed_s=10.0).passed  # 0.1 % is allowed
    failed = _step(successful=998, failed=2, elapsed_s=10.0)
    assert not failed.passed and "failed" in failed.note
    short = _step(successful=900, failed=0, elapsed_s=10.0)
    assert not short.passed and "completed" in short.note
    slow = _step(successful=1000, failed=0, elapsed_s=20.0)
    assert not slow.passed and "not sustained" in slow.note


def test_summary_and_kamailio_config() -> None:
    ok = register.ServerResult("offhook", best_rate=100)
    ok.steps.append(_step(successful=1000, failed=0, elapsed_s=10.0, cpu_s=1.0))
    ref = register.ServerResult("kamailio", best_rate=200)
    ref.steps.append(_step(successful=1000, failed=0, elapsed_s=10.0, cpu_s=0.1))
    summary = register.summarize([ok, ref])
    assert summary["ratio_offhook_over_kamailio"] == 0.5
    assert summary["offhook"]["reregistration_20000_phones"]["core_share_pct"] == pytest.approx(
        3.33, abs=0.01
    )
    cfg = register.KAMAILIO_CFG.format(
        children=2, host="127.0.0.1", port=5060, mpath="/m/", prefix=register.PASSWORD_PREFIX
    )
    assert 'pv_www_authenticate("$td", "pw-$au", "0")' in cfg  # plain password, not an HA1
    assert 'www_challenge("$td", "1")' in cfg  # qop=auth, as offhook offers
