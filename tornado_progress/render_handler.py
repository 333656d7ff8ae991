"""The `render` endpoint: the chart as a PNG (or an SVG, in the light or the dark palette) for
embedding in other pages with a plain <img>, rendered once per (job version, width, scale,
format, theme, stale count), kept in the server's one
byte-bounded AnswerCache, revalidated by ETag, and drawn in a worker thread so that a chart of
10,000 workers does not stall the event loop.

A chart larger than the pixel budget (option --max-render-pixels) is refused before any surface
is made: a picture's memory grows with the square of its scale.
"""

from __future__ import annotations

import array
import asyncio
import bisect
import functools
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from . import palette, params, picture, render, text_draw
from .answer_cache import AnswerCache
from .chart_bands import PieceCache
from .handlers import ApiHandler
from .model import BadParameter, Job, LimitReached

# An SVG opened on its own is a document: it may run nothing and load nothing.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
# Scales the unknown-job picture is drawn at; a request's scale is taken up to the next one, so
# that any number of distinct scales costs at most this many drawings.
NOT_FOUND_SCALES = (1.0, 1.5, 2.0, 3.0, 4.0)
# Running workers' update times kept for stale counts, over all jobs: a job of the largest size
# allowed fits several times over, and the oldest job's times go first.
STALE_TIMES_MAX = 1 << 20
STALE_TIMES_JOBS = 256
# A busy job's times are sorted again at most this often: between two sorts a newer version
# counts with its older version's times. The count only tells pictures of one version apart
# over time (the version is in the key too), so a count a second old draws no wrong picture;
# sorting 100,000 times per request would hold the event loop for tens of milliseconds.
STALE_TIMES_RESORT_S = 1.0


class RenderKey(NamedTuple):
    """What the picture depends on: a change to any of them is a new picture."""

    job: str  # the job's key
    version: int
    width: int
    scale: float
    stale: int  # running workers that are stale
    style: picture.Style = picture.PNG_LIGHT

    @property
    def cache_key(self) -> tuple[str, int, tuple[str, int, float, int, picture.Style]]:
        return self.job, self.version, ("picture", self.width, self.scale, self.stale,
                                        self.style)

    @property
    def etag(self) -> str:
        return (f'"{self.version}-{self.width}-{self.scale:g}-{self.stale}-{self.style.format}'
                f'-{self.style.theme}"')


class StaleTimes:
    """The sorted update times of each job's running workers at its current version. Workers
    turn stale while the version stands still, so their count goes into a picture's key; sorted
    once per version, the count is one bisection per request. Bounded in jobs and in times, the
    least recently asked-for job going first."""

    def __init__(self, max_times: int = STALE_TIMES_MAX, max_jobs: int = STALE_TIMES_JOBS) -> None:
        self.max_times = max_times
        self.max_jobs = max_jobs
        self.size = 0
        # job key -> (version, when sorted, sorted times)
        self._jobs: OrderedDict[str, tuple[int, float, array.array[float]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._jobs)

    def count(self, job: Job, now: float, stale_after: float) -> int:
        """How many running workers of `job` are stale at `now`; a count from an older
        version's times (see STALE_TIMES_RESORT_S) is told apart as -1 - count, so that it
        never names the same picture as an exact one."""
        kept = self._jobs.get(job.key)
        if kept is not None and (kept[0] == job.version
                                 or 0 <= now - kept[1] < STALE_TIMES_RESORT_S):
            self._jobs.move_to_end(job.key)
            count = bisect.bisect_left(kept[2], now - stale_after)
            return count if kept[0] == job.version else -1 - count
        times = array.array("d", sorted(
            worker.updated for worker in job.workers.values() if worker.running))
        self._keep(job.key, job.version, now, times)
        return bisect.bisect_left(times, now - stale_after)

    def _keep(self, key: str, version: int, now: float, times: array.array[float]) -> None:
        old = self._jobs.pop(key, None)
        if old is not None:
            self.size -= len(old[2])
        if len(times) > self.max_times:
            return  # recounted on every request rather than pushing out every other job
        while self._jobs and (self.size + len(times) > self.max_times
                              or len(self._jobs) >= self.max_jobs):
            _, (_, _, evicted) = self._jobs.popitem(last=False)
            self.size -= len(evicted)
        self._jobs[key] = (version, now, times)
        self.size += len(times)


def not_found_scale(scale: float) -> float:
    """The scale the unknown-job picture is drawn at for a request at `scale`: the next step up,
    so that it is never blurrier than asked for."""
    return next((step for step in NOT_FOUND_SCALES if step >= scale), NOT_FOUND_SCALES[-1])


def too_many_pixels(width: int, height: int, scale: float, budget: int) -> str | None:
    """The sentence refusing a chart of `width` x `height` px at `scale`, or None if its device
    pixels are within `budget`."""
    device_w, device_h = picture.device_size(width, height, scale)
    if device_w * device_h <= budget:
        return None
    return (f"the chart would be {device_w} x {device_h} device pixels ({device_w * device_h}),"
            f" more than the budget of {budget} (option --max-render-pixels); ask for a smaller "
            "width or scale")


def chart_refusal(chart: render.ChartInput, width: int, scale: float, budget: int) -> str | None:
    """The sentence refusing `chart` at `width` and `scale`, or None; measured only where the
    tallest picture of all would be past the budget (measuring the header takes a while)."""
    if too_many_pixels(width, render.MAX_HEIGHT, scale, budget) is None:
        return None
    return too_many_pixels(width, render.picture_height(chart, width), scale, budget)


# Bytes of compressed picture bands kept (a quarter of --cache-mb when the server starts).
PIECE_BYTES = 16 * 1024 * 1024


class ChartRenderer:
    """Draws charts in worker threads, at most one render per key in flight.

    Two threads: a small chart need not wait behind the largest one the pixel budget allows,
    and no more than two such surfaces exist at once. Past `max_pending` distinct renders queued
    or running, a request is told to come back, so a client asking for many sizes cannot queue
    unbounded work. Finished pictures go to the AnswerCache each call is given.
    """

    def __init__(self, threads: int = 2, max_pending: int = 32,
                 piece_bytes: int = PIECE_BYTES) -> None:
        text_draw.announce()  # once per process: which engine draws text, fonts loaded
        self.max_pending = max_pending
        # The compressed bands of PNGs, by what they show (chart_bands.py).
        self.pieces = PieceCache(piece_bytes)
        self.stale_times = StaleTimes()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="render")
        self._pending: dict[RenderKey, asyncio.Future[bytes]] = {}
        self._not_found: dict[tuple[picture.Style, float], bytes] = {}
        # Charts drawn and the seconds their drawing took, for `metrics` (two threads add).
        self.drawn = 0
        self.drawing_s = 0.0
        self._counting = threading.Lock()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def key(self, job: Job, width: int, scale: float, now: float, stale_after: float,
            style: picture.Style = picture.PNG_LIGHT) -> RenderKey:
        return RenderKey(job.key, job.version, width, scale,
                         self.stale_times.count(job, now, stale_after), style)

    def not_found(self, scale: float, style: picture.Style = picture.PNG_LIGHT) -> bytes:
        """The unknown-job picture at (about) `scale`, drawn once per step and style: small
        enough to draw on the event loop that one time."""
        step = not_found_scale(scale)
        drawn = self._not_found.get((style, step))
        if drawn is None:
            drawn = self._not_found[(style, step)] = render.render_not_found(step, style)
        return drawn

    async def picture(self, job: Job, key: RenderKey, chart: render.ChartInput,
                      answers: AnswerCache) -> bytes:
        """The chart for `key`, which `answers` does not hold (the handler looked): from the
        render of that key already in flight, else rendered in a worker thread from `chart`, an
        immutable copy of the job, and then kept in `answers`."""
        future = self._pending.get(key)
        if future is None:
            if len(self._pending) >= self.max_pending:
                raise LimitReached(f"the server is drawing {len(self._pending)} charts already; "
                                   "ask for this one again in a few seconds")
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, self._draw, chart, key)
            self._pending[key] = future
            future.add_done_callback(
                functools.partial(self._finished, job, key, answers, chart.now))
        # Shielded: one request going away must not cancel the render the others wait for.
        return await asyncio.shield(future)

    def _draw(self, chart: render.ChartInput, key: RenderKey) -> bytes:
        started = time.perf_counter()
        drawn = render.render_chart(chart, key.width, key.scale, key.style, self.pieces)
        with self._counting:
            self.drawn += 1
            self.drawing_s += time.perf_counter() - started
        return drawn

    def _finished(self, job: Job, key: RenderKey, answers: AnswerCache, now: float,
                  future: asyncio.Future[bytes]) -> None:
        self._pending.pop(key, None)
        # A job that changed during the render would only keep a picture no request asks for.
        if not future.cancelled() and future.exception() is None and job.version == key.version:
            answers.put(key.cache_key, future.result(), now)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class RenderHandler(ApiHandler):
    """The chart as a picture; `Cache-Control: no-cache` so that embedding pages revalidate."""

    async def respond(self) -> None:
        jobid = params.identifier("jobid", self.arg("jobid"))
        width = int(params.bounded("width", self.arg("width"), 800, 200, 4000, integer=True))
        style = picture.Style(params.choice("format", self.arg("format"), picture.FORMATS),
                              params.choice("theme", self.arg("theme"), tuple(palette.THEMES)))
        # A vector picture has no pixels to multiply: every scale is the same SVG.
        scale = 1.0 if style.format == "svg" else params.bounded(
            "scale", self.arg("scale"), 1, 1, 4)
        self.set_header("Cache-Control", "no-cache")
        if style.format == "svg":
            self.set_header("Content-Security-Policy", SVG_POLICY)
        job = self.store.find(jobid)
        if job is None:
            self.set_status(404)
            self.write_picture(self.renderer.not_found(scale, style), style)
            return
        # The store's clock, like the workers' update times, so stale colours agree with them.
        now = self.store.clock()
        key = self.renderer.key(job, width, scale, now, self.config.stale_after, style)
        self.set_header("Etag", key.etag)
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        drawn = self.answers.get(key.cache_key)
        if drawn is None:
            chart = render.ChartInput(job.jobid, job.desc, tuple(job.workers.values()), now,
                                      self.config.stale_after, job.expected)
            refusal = chart_refusal(chart, width, scale, self.config.max_render_pixels)
            if refusal is not None:  # before any surface is made
                raise BadParameter(refusal)
            drawn = await self.renderer.picture(job, key, chart, self.answers)
        self.write_picture(drawn, style)

    def write_picture(self, drawn: bytes, style: picture.Style) -> None:
        self.set_header("Content-Type", picture.CONTENT_TYPES[style.format])
        self.finish(drawn)

    def compute_etag(self) -> str | None:
        return None  # set from the key above, never by hashing the body
