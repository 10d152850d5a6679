"""The registration index: history per device from bus events, bounded under a flood of names."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from offhook.common.location import Binding
from offhook.core.bus import EventBus
from offhook.core.records import RegistrationChanged, RegistrationRejected
from offhook.ris.index import MAX_NAME, RegistrationIndex


class Wall:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.0  # every event a second later
        return self.now


class Plan:
    """A plan whose device names tests change (its generation moves with them)."""

    def __init__(self, *names: str) -> None:
        self.names = set(names)
        self.generation = object()

    def set(self, *names: str) -> None:
        self.names = set(names)
        self.generation = object()

    def known(self, name: str) -> bool:
        return name in self.names


def index_of(plan: Plan, max_unknown: int = 1000, **kw: object) -> RegistrationIndex:
    return RegistrationIndex(
        plan.known,
        Wall(),
        generation=lambda: plan.generation,
        max_unknown=max_unknown,
        **kw,  # type: ignore[arg-type]
    )


def test_registration_and_unregistration_times_and_the_binding_then() -> None:
    binding = Binding("alice", "sip", "sip:alice@10.0.0.5", 99.0, ("10.0.0.5", 5060))
    index = index_of(Plan("alice"), lookup=lambda name: binding if name == "alice" else None)
    index.on_changed(RegistrationChanged("alice", "sip", True))
    entry = index.get("alice")
    assert entry is not None and entry.registered
    assert entry.last_binding == binding and entry.last_unregistered is None
    registered = entry.last_registered
    index.on_changed(RegistrationChanged("alice", "sip", False))
    assert not entry.registered
    assert entry.last_registered == registered
    assert entry.last_unregistered is not None and entry.last_unregistered > registered
    assert entry.last_binding == binding  # what it looked like when it was last here
    assert "alice" in index.known and not index.unknown


def test_a_refusal_is_the_last_thing_until_a_registration() -> None:
    index = index_of(Plan("alice"))
    index.on_rejected(RegistrationRejected("alice", "sip", "10.0.0.9:5060", "auth-failed"))
    entry = index.get("alice")
    assert entry is not None and entry.rejected_last and entry.rejections == 1
    assert entry.last_rejection is not None
    assert (entry.last_rejection.reason, entry.last_rejection.source) == (
        "auth-failed",
        "10.0.0.9:5060",
    )
    index.on_changed(RegistrationChanged("alice", "sip", True))
    assert not entry.rejected_last  # registered since
    index.on_changed(RegistrationChanged("alice", "sip", False))
    assert not entry.rejected_last  # unregistered since the refusal
    index.on_rejected(RegistrationRejected("alice", "sip", "10.0.0.9:5060", "auth-failed"))
    assert entry.rejected_last and entry.rejections == 2


def test_a_registered_device_refused_elsewhere_is_still_registered() -> None:
    index = index_of(Plan("alice"))
    index.on_changed(RegistrationChanged("alice", "sip", True))
    index.on_rejected(RegistrationRejected("alice", "sip", "192.0.2.1:5060", "auth-failed"))
    entry = index.get("alice")
    assert entry is not None and entry.registered and not entry.rejected_last
    assert entry.rejections == 1


def test_a_flood_of_made_up_names_keeps_the_table_bounded() -> None:
    plan = Plan("alice", "bob")
    index = index_of(plan, max_unknown=100)
    index.on_rejected(RegistrationRejected("alice", "sip", "10.0.0.1:5060", "auth-failed"))
    for n in range(20_000):
        index.on_rejected(RegistrationRejected(f"fake{n}", "sip", "203.0.113.9:5060", "x"))
    assert len(index.unknown) == 100
    assert set(index.known) == {"alice"}  # the plan's device survives the flood
    assert len(index) == 101
    assert list(index.unknown)[-1] == "fake19999"
    assert "fake0" not in index.unknown  # the least recently seen went first


def test_a_name_seen_again_moves_to_the_end_of_the_lru() -> None:
    index = index_of(Plan(), max_unknown=3)
    for name in ("a", "b", "c"):
        index.on_rejected(RegistrationRejected(name, "sccp", "10.0.0.1:2000", "unknown-device"))
    index.on_rejected(RegistrationRejected("a", "sccp", "10.0.0.1:2000", "unknown-device"))
    index.on_rejected(RegistrationRejected("d", "sccp", "10.0.0.1:2000", "unknown-device"))
    assert list(index.unknown) == ["c", "a", "d"]
    entry = index.get("a")
    assert entry is not None and entry.rejections == 2


def test_no_unknown_names_kept_when_the_table_is_off() -> None:
    index = index_of(Plan("alice"), max_unknown=0)
    index.on_rejected(RegistrationRejected("mallory", "sip", "10.0.0.1:5060", "auth-failed"))
    assert len(index) == 0
    index.on_rejected(RegistrationRejected("alice", "sip", "10.0.0.1:5060", "auth-failed"))
    assert len(index) == 1


def test_empty_and_long_names() -> None:
    index = index_of(Plan())
    index.on_rejected(RegistrationRejected("", "sip", "10.0.0.1:5060", "auth-failed"))
    assert len(index) == 0
    index.on_rejected(RegistrationRejected("x" * 10_000, "sip", "s" * 10_000, "r" * 10_000))
    (name, entry), *_ = index.histories()
    assert name == "x" * MAX_NAME
    assert entry.last_rejection is not None
    assert len(entry.last_rejection.source) <= 128 and len(entry.last_rejection.reason) <= 128


def test_plan_changes_move_entries_between_the_tables() -> None:
    plan = Plan("alice")
    index = index_of(plan, max_unknown=10)
    index.on_changed(RegistrationChanged("alice", "sip", True))
    index.on_rejected(RegistrationRejected("bob", "sip", "10.0.0.2:5060", "auth-failed"))
    assert set(index.known) == {"alice"} and set(index.unknown) == {"bob"}
    plan.set("bob")
    names = dict(index.histories())  # reading after the plan moved re-sorts the entries
    assert set(names) == {"alice", "bob"}
    assert set(index.known) == {"bob"} and set(index.unknown) == {"alice"}
    bob = index.get("bob")
    assert bob is not None and bob.rejections == 1  # the history came along


def test_attach_follows_the_bus_until_stopped() -> None:
    bus = EventBus()
    index = index_of(Plan("alice"))
    stop = index.attach(bus)
    bus.publish(RegistrationChanged("alice", "sip", True))
    bus.publish(RegistrationRejected("eve", "sccp", "10.0.0.3:2000", "unknown-device"))
    assert set(dict(index.histories())) == {"alice", "eve"}
    stop()
    assert len(bus) == 0
    bus.publish(RegistrationRejected("mallory", "sccp", "10.0.0.3:2000", "unknown-device"))
    assert index.get("mallory") is None


_names = st.sampled_from(["alice", "bob", "carol"]) | st.text(
    st.characters(codec="utf-8"), max_size=8
)
_events = st.lists(
    st.tuples(
        _names,
        st.sampled_from(["sip", "sccp"]),
        st.sampled_from(["registered", "unregistered", "rejected"]),
    ),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(_events, st.integers(min_value=0, max_value=5), st.booleans())
def test_any_events_keep_the_bounds_and_the_counts(
    events: list[tuple[str, str, str]], max_unknown: int, plan_changes: bool
) -> None:
    plan = Plan("alice", "bob")
    index = index_of(plan, max_unknown=max_unknown)
    refused: dict[str, int] = {}
    for i, (name, protocol, what) in enumerate(events):
        if plan_changes and i == len(events) // 2:
            plan.set("bob", "carol")
            dict(index.histories())
        if what == "rejected":
            index.on_rejected(RegistrationRejected(name, protocol, "10.0.0.1:1", "r"))
            if name:
                refused[name] = refused.get(name, 0) + 1
        else:
            index.on_changed(RegistrationChanged(name, protocol, what == "registered"))
    dict(index.histories())
    assert len(index.unknown) <= max_unknown
    assert all(plan.known(name) for name in index.known)
    assert not any(plan.known(name) for name in index.unknown)
    # bob is in the plan throughout: his history is never lost, whatever the flood
    bob = index.known.get("bob")
    assert (bob.rejections if bob is not None else 0) == refused.get("bob", 0)
