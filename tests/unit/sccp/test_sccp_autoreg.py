"""Auto-registration: next free DN of the range, stable per phone, bounded."""

from __future__ import annotations

import pytest

from offhook.sccp.autoreg import DEFAULT_MODEL, AutoRegistrar, model_for, parse_range


def test_next_free_dn_skips_the_plan_and_other_phones() -> None:
    plan = {"2000", "2002"}
    auto = AutoRegistrar("2000-2009", taken=plan.__contains__)
    a = auto.profile("SEP000000000001", 7)
    b = auto.profile("SEP000000000002", 8)
    assert a is not None and b is not None
    assert a.lines == (("2001", "Auto 2001"),)
    assert b.lines[0][0] == "2003"
    assert (a.model, b.model) == ("7960", "7940")
    # The same phone gets its DN back.
    again = auto.profile("SEP000000000001", 7)
    assert again is not None and again.lines == a.lines
    assert dict(auto.assigned) == {"SEP000000000001": "2001", "SEP000000000002": "2003"}


def test_a_dn_the_plan_takes_later_is_given_up() -> None:
    plan: set[str] = set()
    auto = AutoRegistrar("0100-0102", taken=plan.__contains__)
    first = auto.profile("SEP000000000001", None)
    assert first is not None and first.lines[0][0] == "0100"  # leading zeros kept
    plan.add("0100")
    moved = auto.profile("SEP000000000001", None)
    assert moved is not None and moved.lines[0][0] == "0101"
    assert auto.profile("SEP000000000002", None) is not None
    assert auto.profile("SEP000000000003", None) is None  # 0100 is the plan's, range full


def test_bounded_and_sep_only() -> None:
    auto = AutoRegistrar("10000000-99999999", taken=lambda dn: False, max_entries=3)
    names = [f"SEP{i:012X}" for i in range(5)]
    got = [auto.profile(n, 30006) for n in names]
    assert [p is not None for p in got] == [True, True, True, False, False]
    assert len(auto.assigned) == 3
    assert auto.profile("ATA000000000001", 7) is None
    assert auto.profile("SEP12345", 7) is None


def test_models_and_ranges() -> None:
    assert model_for(30006) == "7970"
    assert model_for(115) == "7941"
    assert model_for(None) == model_for(99999) == DEFAULT_MODEL
    assert parse_range("2000-2099") == (2000, 2099, 4)
    for bad in ("2000", "2099-2000", "20-2000", "a-b"):
        with pytest.raises(ValueError):
            parse_range(bad)


def test_on_change_reports_new_and_lost_assignments() -> None:
    plan: set[str] = set()
    seen: list[tuple[str, tuple[tuple[str, str], ...] | None, str | None]] = []
    auto = AutoRegistrar(
        "2000-2000",
        taken=plan.__contains__,
        on_change=lambda name, p: seen.append(
            (name, p.lines if p else None, p.model if p else None)
        ),
    )
    auto.profile("SEP000000000001", 8)
    auto.profile("SEP000000000001", 8)  # same profile again: no news
    assert seen == [("SEP000000000001", (("2000", "Auto 2000"),), "7940")]
    auto.profile("SEP000000000001", 7)  # another model
    assert seen[-1] == ("SEP000000000001", (("2000", "Auto 2000"),), "7960")
    plan.add("2000")  # the plan takes the DN; the range has no other
    assert auto.profile("SEP000000000001", 7) is None
    assert seen[2] == ("SEP000000000001", None, None)
    assert len(seen) == 3
    assert auto.profile("SEP000000000001", 7) is None  # still none: no news
    assert len(seen) == 3


def test_restore_keeps_what_still_fits() -> None:
    plan = {"2003"}
    reg = AutoRegistrar("2000-2005", taken=plan.__contains__, max_entries=3)
    kept = reg.restore(
        [
            ("SEP0000000000A1", "2001"),
            ("SEP0000000000A2", "2001"),  # DN held already
            ("SEP0000000000A1", "2002"),  # phone holds one already
            ("SEP0000000000A3", "2003"),  # the plan has it now
            ("SEP0000000000A4", "1999"),  # outside the range
            ("SEP0000000000A5", "20040"),  # not of the range's width
            ("BADNAME", "2004"),
            ("SEP0000000000A6", "2000"),
            ("SEP0000000000A7", "2005"),
            ("SEP0000000000A8", "2004"),  # over the cap of 3
        ]
    )
    assert kept == ["SEP0000000000A1", "SEP0000000000A6", "SEP0000000000A7"]
    assert dict(reg.assigned) == {
        "SEP0000000000A1": "2001",
        "SEP0000000000A6": "2000",
        "SEP0000000000A7": "2005",
    }
    profile = reg.profile("SEP0000000000A1", None)
    assert profile is not None and profile.lines == (("2001", "Auto 2001"),)
    assert reg.profile("SEP0000000000A2", None) is None  # the cap holds after a restore
