"""Job bodies (JSON for `status`, `poll` and the show page; text for `text`), kept in the one
AnswerCache.

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

from . import text_view, views
from .answer_cache import AnswerCache, CacheKey
from .model import Job, JobView, LimitReached

# A kept body is reused for at most this long, because stale flags and `server_time` move
# with the clock even while the job stands still.
BODY_MAX_AGE_S = 1.0
# Jobs with more workers than this have their bodies built in the thread.
INLINE_MAX_WORKERS = 1000
# Builds queued or running at once, all jobs together; past it a request is told to come back.
# Deltas (one per cursor) may take only part of them, so that a poll refused a delta can still
# have the job's one whole body built.
MAX_PENDING = 32
MAX_PENDING_DELTAS = 16
# A poll whose delta would hold more than this share of the job's workers (and more than
# DELTA_ANY_SIZE) gets the whole job instead: one body per version for every such cursor, not
# one per cursor.
DELTA_MAX_SHARE = 0.25
DELTA_ANY_SIZE = 256

Build = Callable[[JobView, float], bytes]
# What a build in the thread runs, and what is done with its result on the loop (if anything).
Start = Callable[[], tuple[Callable[[], Any], Callable[[Any], None] | None]]


class BodyBuilder:
    """Builds and keeps job bodies: see the module docstring."""

    def __init__(self, answers: AnswerCache, stale_after: float,
                 inline_max_workers: int = INLINE_MAX_WORKERS) -> None:
        self.answers = answers
        self.stale_after = stale_after
        self.inline_max_workers = inline_max_workers
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bodies")
        self._pending: dict[tuple[str, Any], asyncio.Future[Any]] = {}

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
        try:
            return await self._body((job.key, job.version, ("delta", since)), job, now,
                                    functools.partial(self._delta, changed),
                                    MAX_PENDING_DELTAS)
        except LimitReached:  # too many builds already: the one whole body, shared, will do
            return await self.full(job, now)

    async def summary(self, job: Job, now: float) -> dict[str, Any]:
        """The job's summary, computed where its body would be."""
        if len(job.workers) <= self.inline_max_workers:
            return views.summary(job.view(), now, self.stale_after)
        summary: dict[str, Any] = await self._off_loop((job.key, "summary"), lambda: (
            functools.partial(views.summary, job.view(), now, self.stale_after), None))
        return summary

    async def text(self, job: Job, now: float, options: text_view.TextOptions) -> bytes:
        """The job as a terminal frame."""
        return await self._body((job.key, job.version, ("text", options)), job, now,
                                functools.partial(self._text, options))

    def _text(self, options: text_view.TextOptions, job: JobView, now: float) -> bytes:
        return text_view.frame(job, now, self.stale_after, options).encode()

    def _full(self, job: JobView, now: float) -> bytes:
        return views.full_body(job, now, self.stale_after)

    def _delta(self, changed: list[Any], job: JobView, now: float) -> bytes:
        return views.delta_body(job, changed, now, self.stale_after)

    async def _body(self, key: CacheKey, job: Job, now: float, build: Build,
                    most: int = MAX_PENDING) -> bytes:
        body = self.answers.get(key, now, BODY_MAX_AGE_S)
        if body is not None:
            return body
        if len(job.workers) <= self.inline_max_workers:
            body = build(job.view(), now)
            self.answers.put(key, body, now)
            return body
        # Keyed without the version: while a job changes faster than its body is built,
        # requests share the build under way (at most one version old) instead of queueing one
        # build, and one copy of the job, each. The body is kept under the version it shows.
        def start() -> tuple[Callable[[], bytes], Callable[[bytes], None]]:
            view = job.view()
            kept_as = (job.key, view.version, key[2])
            return (functools.partial(build, view, now),
                    lambda made: self.answers.put(kept_as, made, now))

        built: bytes = await self._off_loop((job.key, key[2]), start, most)
        return built

    async def _off_loop(self, flight: tuple[str, Any], start: Start,
                        most: int = MAX_PENDING) -> Any:
        """The result of the work in flight under `flight`, or of the work `start()` gives
        (with what to do with its result) run in the thread; the job is copied only then."""
        pending = self._pending.get(flight)
        if pending is None:
            if len(self._pending) >= most:
                raise LimitReached(f"the server is building {len(self._pending)} answers for big "
                                   "jobs already; ask again in a few seconds")
            work, keep = start()
            pending = asyncio.get_running_loop().run_in_executor(self._executor, work)
            self._pending[flight] = pending
            pending.add_done_callback(functools.partial(self._done, flight, keep))
        # Shielded: one request going away must not cancel the build that others wait for.
        return await asyncio.shield(pending)

    def _done(self, flight: tuple[str, Any], keep: Callable[[Any], None] | None,
              future: asyncio.Future[Any]) -> None:
        self._pending.pop(flight, None)
        if keep is not None and not future.cancelled() and future.exception() is None:
            keep(future.result())

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
