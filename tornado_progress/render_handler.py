"""The `render` endpoint: the chart as a PNG for embedding in other pages with a plain <img>,
rendered once per (job version, width, scale, stale count), revalidated by ETag, and drawn in
a worker thread so that a chart of 10,000 workers does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import params, render
from .handlers import ApiHandler
from .model import Job, LimitReached

PNG_TYPE = "image/png"

# ("png", version, width, scale, stale workers): the picture changes with each of them.
RenderKey = tuple[str, int, int, float, int]


def stale_count(job: Job, now: float, stale_after: float) -> int:
    """How many running workers are stale at `now`. Workers turn stale while the version stands
    still, so this goes into the picture's key; the running workers' update times are sorted
    once per version, making the count one bisection per request."""
    key = ("png-running-updated", job.version)
    times: list[float] | None = job.cache.get(key)
    if times is None:
        times = sorted(worker.updated for worker in job.workers.values()
                       if worker.running)
        _remember(job, key, times)
    return bisect.bisect_left(times, now - stale_after)


def _remember(job: Job, key: Any, value: Any) -> None:
    """Interim: pictures are kept on the job until they move to the AnswerCache."""
    if len(job.cache) >= 64:
        job.cache.clear()
    job.cache[key] = value


def render_key(job: Job, width: int, scale: float, now: float, stale_after: float) -> RenderKey:
    return ("png", job.version, width, scale, stale_count(job, now, stale_after))


def etag(key: RenderKey) -> str:
    _, version, width, scale, stale = key
    return f'"{version}-{width}-{scale:g}-{stale}"'


class ChartRenderer:
    """Draws charts in worker threads, at most one render per key in flight.

    Two threads: a small chart need not wait behind the largest one the contract allows
    (16,000 x 16,384 device pixels: seconds of CPU and a GiB of surface), and no more than two
    such surfaces exist at once. Past `max_pending` distinct renders queued or running, a
    request is told to come back, so a client asking for many sizes cannot queue unbounded work.
    """

    def __init__(self, threads: int = 2, max_pending: int = 32) -> None:
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="render")
        self._pending: dict[tuple[int, RenderKey], asyncio.Future[bytes]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def png(self, job: Job, key: RenderKey, now: float, stale_after: float) -> bytes:
        """The chart for `key`: from the job's cache, else from the render of that key already
        in flight, else rendered in a worker thread from an immutable copy of the job."""
        cached: bytes | None = job.cache.get(key)
        if cached is not None:
            return cached
        flight = (id(job), key)
        future = self._pending.get(flight)
        if future is None:
            if len(self._pending) >= self.max_pending:
                raise LimitReached(f"the server is drawing {len(self._pending)} charts already; "
                                   "ask for this one again in a few seconds")
            chart = render.ChartInput(job.jobid, job.desc, tuple(job.workers.values()), now,
                                      stale_after)
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, render.render_chart, chart, key[2], key[3])
            self._pending[flight] = future
            future.add_done_callback(functools.partial(self._finished, job, key, flight))
        # Shielded: one request going away must not cancel the render the others wait for.
        return await asyncio.shield(future)

    def _finished(self, job: Job, key: RenderKey, flight: tuple[int, RenderKey],
                  future: asyncio.Future[bytes]) -> None:
        self._pending.pop(flight, None)
        # A job that changed during the render would only keep a picture no request asks for.
        if not future.cancelled() and future.exception() is None and job.version == key[1]:
            _remember(job, key, future.result())

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class RenderHandler(ApiHandler):
    """The chart as a PNG; `Cache-Control: no-cache` so that embedding pages revalidate."""

    async def respond(self) -> None:
        jobid = params.identifier("jobid", self.arg("jobid"))
        width = int(params.bounded("width", self.arg("width"), 800, 200, 4000, integer=True))
        scale = params.bounded("scale", self.arg("scale"), 1, 1, 4)
        self.set_header("Cache-Control", "no-cache")
        job = self.store.find(jobid)
        if job is None:
            self.set_status(404)
            self.write_png(render.render_not_found(jobid, scale))
            return
        # The store's clock, like the workers' update times, so stale colours agree with them.
        now = self.store.clock()
        key = render_key(job, width, scale, now, self.config.stale_after)
        self.set_header("Etag", etag(key))
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        self.write_png(await self.renderer.png(job, key, now, self.config.stale_after))

    def write_png(self, png: bytes) -> None:
        self.set_header("Content-Type", PNG_TYPE)
        self.finish(png)

    def compute_etag(self) -> str | None:
        return None  # set from the key above, never by hashing the body
