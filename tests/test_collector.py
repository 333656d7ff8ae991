"""The garbage-collection policy: decisions against a fake collector, then the real one."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator

import pytest

from tornado_progress.collector import CollectionPolicy, GcCallback


class FakeCollector:
    """Counts frozen objects as the test says, and records what the policy asked."""

    def __init__(self) -> None:
        self.frozen = 0
        self.young = 0
        self.calls: list[str] = []
        self.callbacks: list[GcCallback] = []
        self.garbage = 0

    def collect(self, generation: int = 2) -> int:
        self.calls.append(f"collect{generation}")
        found, self.garbage = self.garbage, 0
        self.young -= found
        return found

    def freeze(self) -> None:
        self.calls.append("freeze")
        self.frozen += self.young
        self.young = 0

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")
        self.young += self.frozen
        self.frozen = 0

    def get_freeze_count(self) -> int:
        return self.frozen


def ticks(clock_step: float = 0.5) -> Callable[[], float]:
    now = [0.0]

    def clock() -> float:
        now[0] += clock_step
        return now[0]
    return clock


def test_start_collects_everything_then_freezes_it() -> None:
    fake = FakeCollector()
    fake.young, fake.garbage = 1_000, 100
    policy = CollectionPolicy(fake, clock=ticks())
    policy.start()
    assert fake.calls == ["unfreeze", "collect2", "freeze"]
    assert (fake.frozen, policy.after_full) == (900, 900)
    assert policy.last_full is not None
    assert (policy.last_full.kept, policy.last_full.unreachable) == (900, 100)
    assert policy.last_full.seconds == pytest.approx(0.5)


def test_survivors_of_middle_collections_are_frozen_as_they_end() -> None:
    fake = FakeCollector()
    policy = CollectionPolicy(fake)
    policy.start()
    fake.calls.clear()
    (callback,) = fake.callbacks
    for generation in (0, 2):
        callback("stop", {"generation": generation, "collected": 0, "uncollectable": 0})
    callback("start", {"generation": 1, "collected": 0, "uncollectable": 0})
    assert fake.calls == []
    callback("stop", {"generation": 1, "collected": 0, "uncollectable": 0})
    assert fake.calls == ["freeze"]
    policy.stop()
    assert fake.callbacks == []


def test_a_full_collection_waits_for_the_heap_to_double() -> None:
    fake = FakeCollector()
    fake.young = 300_000
    policy = CollectionPolicy(fake, growth=2.0, floor=1_000)
    policy.start()
    fake.frozen = 600_000  # churn that left the heap as it was is not growth
    assert policy.tick() is None
    fake.frozen, fake.garbage = 600_001, 250_000
    full = policy.tick()
    assert full is not None and (full.kept, full.unreachable) == (350_001, 250_000)
    assert policy.after_full == 350_001 and policy.full_collections == 2
    fake.frozen = 700_000
    assert policy.tick() is None


def test_a_small_heap_is_never_collected_whole_below_the_floor() -> None:
    fake = FakeCollector()
    policy = CollectionPolicy(fake, growth=2.0, floor=200_000)
    policy.start()
    fake.frozen = 399_999
    assert policy.tick() is None
    fake.frozen = 400_001
    assert policy.tick() is not None


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def real_policy() -> Iterator[CollectionPolicy]:
    policy = CollectionPolicy()
    policy.start()
    try:
        yield policy
    finally:
        policy.stop()
        gc.unfreeze()
        gc.collect()


def test_a_cycle_that_aged_is_out_of_python_s_full_collections_until_ours(
        real_policy: CollectionPolicy) -> None:
    cycle = Cycle()
    gone = weakref.ref(cycle)
    gc.collect(1)  # it survives a middle-generation collection: frozen
    assert gc.get_freeze_count() > 0
    del cycle
    gc.collect()
    assert gone() is not None, "a frozen cycle should wait for the policy's full collection"
    full = real_policy.collect_all()
    assert gone() is None and full.unreachable >= 1


def test_what_dies_by_reference_count_is_freed_though_frozen(
        real_policy: CollectionPolicy) -> None:
    holder = {"payload": [[n] for n in range(100)]}
    gc.collect(1)
    frozen = gc.get_freeze_count()
    del holder
    assert gc.get_freeze_count() <= frozen - 100
