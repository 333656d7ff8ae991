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
        self.calls.append("count")
        return self.frozen

    def get_objects(self, generation: int | None = None) -> list[None]:
        assert generation == 2  # the survivors of a middle collection, about to be frozen
        return [None] * self.young


def promote(fake: FakeCollector, survivors: int) -> None:
    """A middle collection that leaves `survivors` young objects, which the policy freezes."""
    fake.young += survivors
    for callback in fake.callbacks:
        callback("stop", {"generation": 1, "collected": 0, "uncollectable": 0})


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
    assert fake.calls == ["unfreeze", "collect2", "freeze", "count"]
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
    promote(fake, 400_000)
    fake.frozen -= 100_000  # churn that left the heap as it was is not growth
    assert policy.tick() is None
    promote(fake, 1)
    fake.garbage = 250_000
    full = policy.tick()
    assert full is not None and (full.kept, full.unreachable) == (350_001, 250_000)
    assert policy.after_full == 350_001 and policy.full_collections == 2
    promote(fake, 349_999)
    assert policy.tick() is None


def test_a_small_heap_is_never_collected_whole_below_the_floor() -> None:
    fake = FakeCollector()
    policy = CollectionPolicy(fake, growth=2.0, floor=200_000)
    policy.start()
    promote(fake, 399_999)
    assert policy.tick() is None
    promote(fake, 2)
    assert policy.tick() is not None


def test_the_frozen_objects_are_counted_only_when_enough_was_frozen_to_reach_the_limit() -> None:
    """Counting walks every frozen object: a tick after a few survivors were frozen answers
    from what it knows; once the frozen set could have doubled, it counts, and from that count
    on waits for as much again."""
    fake = FakeCollector()
    fake.young = 300_000
    policy = CollectionPolicy(fake, growth=2.0, floor=1_000)
    policy.start()
    fake.calls.clear()
    for _ in range(100):
        promote(fake, 1_000)
        assert policy.tick() is None
    assert "count" not in fake.calls and policy.counts == 0
    promote(fake, 200_001)
    fake.frozen -= 250_000  # most of what was frozen has died since
    assert policy.tick() is None and policy.counts == 1 and policy.counted == 350_001
    fake.calls.clear()
    promote(fake, 249_999)
    assert policy.tick() is None and "count" not in fake.calls
    promote(fake, 1)
    assert policy.tick() is not None and policy.counts == 2


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


def test_the_frozen_objects_counted_as_they_are_frozen_are_never_fewer_than_there_are(
        real_policy: CollectionPolicy) -> None:
    """Against Python's own collector: what the policy adds up at each middle collection,
    survivors of Python's full collections included, covers everything frozen."""
    kept = []
    for round_ in range(5):
        kept.append([[round_, n] for n in range(2_000)])  # tracked objects that live on
        if round_ == 2:
            gc.collect(2)  # Python's own: its survivors wait in the oldest generation
        gc.collect(1)
        assert real_policy.counted + real_policy.added >= gc.get_freeze_count()
    assert real_policy.added >= 5 * 2_000
