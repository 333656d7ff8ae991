"""When Python's full garbage collections run: after the heap has grown, not after churn.

A full collection walks every object the collector tracks, and a server holding thousands of
open connections tracks hundreds of thousands of them (tens per connection, from Tornado's
streams and futures). Python starts one whenever the objects promoted to its oldest generation
since the last one reach a quarter of those already there. It counts promotions, not net
growth, so viewers coming and going, or ten thousand polls answered and asked again, set one
off while the heap stays the same size, and the event loop stops for it: workers' updates wait.

Almost everything here is freed by its reference count the moment it is dropped (a finished
request, a closed connection); only objects caught in reference cycles need the collector, and
those are rare (chiefly a connection that ended with an error, whose traceback refers back to
its frames). So `CollectionPolicy` moves what survives a middle-generation collection out of
the collector's sight (`gc.freeze`) as that collection ends, and runs the one full collection,
over everything, when the frozen objects have grown to `growth` times what the last full
collection left (and `floor` objects at least), checked every `tick`. Young collections go on
as Python runs them. The cycles that age into the frozen set are reclaimed at that full
collection: memory stays within about `growth` times the live set, whatever clients do.

Counting the frozen objects walks every one of them (`gc.get_freeze_count`): tens of
milliseconds of the event loop for a server of 100,000 workers whose memory has not been
touched for a while, on a virtual machine. So the policy counts what each freeze adds (the
survivors of that collection, a few) and walks the frozen set only once enough has been added
since the last count to reach the limit; objects that die meanwhile only make that count
smaller.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

# How often growth is checked (seconds), how much growth calls for a full collection, and below
# how many frozen objects none is worth its stall.
TICK_S = 5.0
GROWTH = 2.0
FLOOR = 200_000


Phase = Literal["start", "stop"]
GcCallback = Callable[[Phase, dict[str, int]], object]


class Collector(Protocol):
    """The parts of the `gc` module that the policy drives (a fake one in the tests)."""

    def collect(self, generation: int = 2) -> int: ...
    def freeze(self) -> None: ...
    def unfreeze(self) -> None: ...
    def get_freeze_count(self) -> int: ...
    def get_objects(self, generation: int | None = None) -> list[Any]: ...
    @property
    def callbacks(self) -> list[GcCallback]: ...


@dataclass
class FullCollection:
    """What one full collection did: the objects it kept and found unreachable, its seconds."""

    kept: int
    unreachable: int
    seconds: float


class CollectionPolicy:
    def __init__(self, collector: Collector = gc, growth: float = GROWTH, floor: int = FLOOR,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.collector = collector
        self.growth = growth
        self.floor = floor
        self.clock = clock
        self.after_full = 0  # frozen objects that the last full collection left
        self.counted = 0  # frozen objects at the last count
        self.added = 0  # objects frozen since then (some may have died)
        self.counts = 0  # walks of the frozen set
        self.full_collections = 0
        self.last_full: FullCollection | None = None

    def start(self) -> None:
        """At start-up, once the snapshot is loaded: one full collection, everything that
        lives on (modules, the loaded jobs) frozen, and from then on the survivors of every
        young collection frozen as it ends."""
        self.collect_all()
        self.collector.callbacks.append(self._after_collection)

    def stop(self) -> None:
        if self._after_collection in self.collector.callbacks:
            self.collector.callbacks.remove(self._after_collection)

    def _after_collection(self, phase: Phase, info: dict[str, int]) -> None:
        """Survivors of a middle-generation collection join the frozen set at once, so that
        Python's own full collections only ever walk what is younger."""
        if phase == "stop" and info["generation"] == 1:
            # Everything in the oldest generation is about to be frozen: this collection's
            # survivors, and those of Python's own full collections since the last freeze.
            self.added += len(self.collector.get_objects(2))
            self.collector.freeze()

    def tick(self) -> FullCollection | None:
        """A full collection (answered) when the frozen objects have grown past `growth`
        times what the last one left, else None; they are counted only when what was frozen
        since the last count could have taken them past."""
        limit = self.growth * max(self.after_full, self.floor)
        if self.counted + self.added <= limit:
            return None
        self.counted, self.added = self.collector.get_freeze_count(), 0
        self.counts += 1
        if self.counted > limit:
            return self.collect_all()
        return None

    def collect_all(self) -> FullCollection:
        """A full collection over every object, frozen ones included, then a new freeze."""
        started = self.clock()
        self.collector.unfreeze()
        unreachable = self.collector.collect(2)
        self.collector.freeze()
        self.after_full = self.counted = self.collector.get_freeze_count()
        self.added = 0
        self.full_collections += 1
        self.last_full = FullCollection(self.after_full, unreachable, self.clock() - started)
        return self.last_full
