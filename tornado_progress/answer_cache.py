"""The one cache of finished answers (JSON bodies, PNGs), bounded in bytes, not entries.

Keys are (job key, job version, view): a change to a job gives its answers new keys, so an
entry is never wrong, only unused, and the least recently used entries make room for new ones.
It belongs to the web layer: the model knows nothing of it. Nothing here knows about Tornado.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import NamedTuple

# What an entry costs besides its body: the key tuple, the entry tuple and the dict slot.
ENTRY_OVERHEAD_BYTES = 256
# An answer bigger than this share of the budget is not kept: one huge body must not push out
# everything else, and it would be evicted before anyone asked for it again.
LARGEST_SHARE = 4

CacheKey = tuple[str, int, Hashable]


class Entry(NamedTuple):
    made: float  # the clock when the body was built
    body: bytes


class AnswerCache:
    """A byte-bounded least-recently-used map of answer bodies."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.bytes_used = 0
        self.evictions = 0
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, now: float = 0.0, max_age: float | None = None) -> bytes | None:
        """The body kept under `key`, if it is there and (with `max_age`) built at most that
        many seconds before `now`."""
        entry = self._entries.get(key)
        if entry is None or (max_age is not None and now - entry.made > max_age):
            return None
        self._entries.move_to_end(key)
        return entry.body

    def put(self, key: CacheKey, body: bytes, now: float = 0.0) -> None:
        cost = len(body) + ENTRY_OVERHEAD_BYTES
        if cost * LARGEST_SHARE > self.budget_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes_used -= len(old.body) + ENTRY_OVERHEAD_BYTES
        while self._entries and self.bytes_used + cost > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes_used -= len(evicted.body) + ENTRY_OVERHEAD_BYTES
            self.evictions += 1
        self._entries[key] = Entry(now, body)
        self.bytes_used += cost
