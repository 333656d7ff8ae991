"""Job JSON bodies for `status`, `poll` and the show page, kept in the one AnswerCache.

A body is built once per (job, version, view) and shared by every request that wants it. A
small job's body is built on the event loop; a big job's in a thread, from an immutable copy of
the job, because encoding tens of thousands of workers would hold every other request (workers'
updates first) for tens of milliseconds. One thread: big bodies wait for each other, never for
the loop, and requests wanting the same body wait for the one build.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import views
from .answer_cache import AnswerCache, CacheKey
from .model import Job, JobView

# A kept body is reused for at most this long, because stale flags and `server_time` move
# with the clock even while the job stands still.
BODY_MAX_AGE_S = 1.0
# Jobs with more workers than this have their bodies built in the thread.
INLINE_MAX_WORKERS = 1000
# A poll whose delta would hold more than this share of the job's workers (and more than
# DELTA_ANY_SIZE) gets the whole job instead: one body per version for every such cursor, not
# one per cursor.
DELTA_MAX_SHARE = 0.25
DELTA_ANY_SIZE = 256

Build = Callable[[JobView, float], bytes]


class BodyBuilder:
    """Builds and keeps job bodies: see the module docstring."""

    def __init__(self, answers: AnswerCache, stale_after: float,
                 inline_max_workers: int = INLINE_MAX_WORKERS) -> None:
        self.answers = answers
        self.stale_after = stale_after
        self.inline_max_workers = inline_max_workers
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bodies")
        self._pending: dict[CacheKey, asyncio.Future[bytes]] = {}

    async def full(self, job: Job, now: float) -> bytes:
        """The whole job, workers in natural order."""
        return await self._body((job.key, job.version, "full"), job, now, self._full)

    async def poll(self, job: Job, since: int, now: float) -> bytes:
        """The answer to a poll from version `since`: a delta when one is possible and small."""
        if job.version == since:  # timed out with no change: the current version, no workers
            return views.encode(views.timeout_json(job, now))
        changed = job.changed_since(
            since, max(DELTA_ANY_SIZE, int(DELTA_MAX_SHARE * len(job.workers))))
        if changed is None:
            return await self.full(job, now)
        return await self._body((job.key, job.version, ("delta", since)), job, now,
                                functools.partial(self._delta, changed))

    async def summary(self, job: Job, now: float) -> dict[str, Any]:
        """The job's summary, computed where its body would be."""
        if len(job.workers) <= self.inline_max_workers:
            return views.summary(job.view(), now, self.stale_after)
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, views.summary, job.view(), now, self.stale_after)

    def _full(self, job: JobView, now: float) -> bytes:
        return views.full_body(job, now, self.stale_after)

    def _delta(self, changed: list[Any], job: JobView, now: float) -> bytes:
        return views.delta_body(job, changed, now, self.stale_after)

    async def _body(self, key: CacheKey, job: Job, now: float, build: Build) -> bytes:
        body = self.answers.get(key, now, BODY_MAX_AGE_S)
        if body is not None:
            return body
        if len(job.workers) <= self.inline_max_workers:
            body = build(job.view(), now)
            self.answers.put(key, body, now)
            return body
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().run_in_executor(
                self._executor, build, job.view(), now)
            self._pending[key] = pending
            pending.add_done_callback(functools.partial(self._built, key, now))
        # Shielded: one request going away must not cancel the build that others wait for.
        return await asyncio.shield(pending)

    def _built(self, key: CacheKey, now: float, future: asyncio.Future[bytes]) -> None:
        self._pending.pop(key, None)
        if not future.cancelled() and future.exception() is None:
            self.answers.put(key, future.result(), now)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
