"""tornado_progress's own `main(settings)`, plus a side channel that measures it from inside.

Run: `python -m bench.probed_server --probe-port Q [any option of python -m tornado_progress]`

The product runs unchanged. Beside it, on the same event loop, a tiny second Tornado app on
127.0.0.1:Q answers the benchmark:

- `POST /probe/start?period=0.001[&sample=1]` starts a stall probe: a periodic callback that
  records how late it wakes (the event-loop lag) and the loop thread's CPU time between two
  wakes (a stall of its own, not a wait for a core that other processes hold); with
  `sample=1`, a thread samples what the loop runs while it is late. `POST /probe/stop` stops
  it and answers its figures (worst, p99, p50 in ms, CPU worst, samples, garbage collections
  by generation, stalled-in stacks). The probe is off unless started, so it costs nothing
  while throughput is measured.
- `POST /timing/start` records Tornado's own request time (from the request's headers being
  parsed to its last byte being handed to the socket) of every request to the product;
  `POST /timing/stop` answers them as `[[path, status, ms], ...]`. This replaces the product's
  `log_function` (make_app lets a caller's Tornado settings win): requests are logged as
  Tornado's default would at warning level (only 4xx and 5xx).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import statistics
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.log import access_log

import tornado_progress.__main__ as product

MAX_SAMPLES = 2_000_000
MAX_TIMINGS = 100_000


class StallSampler:
    """A thread that, while the loop is late by more than `late` seconds, samples what the
    loop's thread is running (its innermost frames), so that a stall can be named."""

    def __init__(self, heartbeat: list[float], late: float = 0.02, every: float = 0.002) -> None:
        self.heartbeat = heartbeat
        self.late = late
        self.every = every
        self.samples: Counter[str] = Counter()
        self.loop_thread = threading.get_ident()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            time.sleep(self.every)
            if time.perf_counter() - self.heartbeat[0] > self.late:
                frame = sys._current_frames().get(self.loop_thread)
                if frame is not None:
                    stack = traceback.extract_stack(frame)[-8:]
                    self.samples[" < ".join(f"{Path(f.filename).stem}:{f.name}:{f.lineno}"
                                            for f in reversed(stack))] += 1

    def stop(self) -> list[tuple[str, int]]:
        self.running = False
        self.thread.join()
        return self.samples.most_common(12)


class Probe:
    """Event-loop lateness of a periodic sleep, as bench/probe.py's StallProbe, startable; and
    while it runs, the garbage collector's passes by generation with the longest of each, so
    that a stall can be told apart from a collection."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.cpu_samples: list[float] = []  # the loop thread's CPU between two ticks
        self.task: asyncio.Task[None] | None = None
        self.collections: dict[int, list[float]] = {}
        self._collection_start = 0.0
        self.heartbeat = [time.perf_counter()]
        self.sampler: StallSampler | None = None

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._collection_start = time.perf_counter()
        else:
            self.collections.setdefault(info["generation"], []).append(
                time.perf_counter() - self._collection_start)

    async def _run(self, period: float) -> None:
        while len(self.samples) < MAX_SAMPLES:
            expected = time.perf_counter() + period
            self.heartbeat[0] = expected
            cpu = time.thread_time()
            await asyncio.sleep(period)
            self.samples.append(time.perf_counter() - expected)
            self.cpu_samples.append(time.thread_time() - cpu)

    def start(self, period: float, sample: bool = False) -> None:
        self.stop()
        self.samples = []
        self.cpu_samples = []
        self.heartbeat[0] = time.perf_counter() + period
        self.sampler = StallSampler(self.heartbeat) if sample else None
        self.collections = {}
        gc.callbacks.append(self._on_collection)
        self.task = asyncio.ensure_future(self._run(period))

    def stop(self) -> dict[str, Any]:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        stalled_in = self.sampler.stop() if self.sampler is not None else []
        self.sampler = None
        collections: dict[str, Any] = {
            f"gen{generation}": {"count": len(times), "worst_ms": 1000 * max(times)}
            for generation, times in sorted(self.collections.items())}
        collections["tracked"] = len(gc.get_objects())
        figures: dict[str, Any] = {"samples": 0, "worst_ms": None, "p99_ms": None,
                                   "p50_ms": None, "collections": collections,
                                   "stalled_in": stalled_in}
        ordered = sorted(self.samples)
        if ordered:
            figures.update(samples=len(ordered), worst_ms=1000 * ordered[-1],
                           p99_ms=1000 * ordered[int(0.99 * (len(ordered) - 1))],
                           p50_ms=1000 * statistics.median(ordered),
                           cpu_worst_ms=1000 * max(self.cpu_samples, default=0.0))
        return figures


class Timings:
    """Request times of the product's requests while recording is on."""

    def __init__(self) -> None:
        self.active = False
        self.rows: list[tuple[str, int, float]] = []

    def log_request(self, handler: web.RequestHandler) -> None:
        status = handler.get_status()
        self.record(handler.request.path, status, handler.request.request_time())
        if status >= 400:  # what Tornado's default logs at warning level
            method = access_log.warning if status < 500 else access_log.error
            method("%d %s %.2fms", status, handler._request_summary(),
                   1000.0 * handler.request.request_time())

    def record(self, path: str, status: int, seconds: float) -> None:
        """A request's time: from the handlers (log_request) or the fast path (its observer)."""
        if self.active and len(self.rows) < MAX_TIMINGS:
            self.rows.append((path, status, 1000.0 * seconds))


class ControlHandler(web.RequestHandler):
    def initialize(self, probe: Probe, timings: Timings) -> None:
        self.probe = probe
        self.timings = timings

    def post(self, what: str, action: str) -> None:
        answer: Any = {}
        if what == "probe" and action == "start":
            self.probe.start(float(self.get_argument("period", "0.001")),
                             self.get_argument("sample", "0") == "1")
        elif what == "probe":
            answer = self.probe.stop()
        elif action == "start":
            self.timings.rows = []
            self.timings.active = True
        else:
            self.timings.active = False
            answer = self.timings.rows
            self.timings.rows = []
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer))


def install_timing_hook(timings: Timings) -> None:
    """Makes `main()` build its app with our `log_function` in place of the product's."""
    namespace = vars(product)  # `main()` looks `make_app` up in its module's globals
    make_app = namespace["make_app"]

    def make_app_timed(*args: Any, **kwargs: Any) -> web.Application:
        app: web.Application = make_app(*args, log_function=timings.log_request, **kwargs)
        fast = app.settings.get("fast_path")
        if fast is not None:  # update, updates and poll answered below the handlers
            fast.observe = timings.record
        return app

    namespace["make_app"] = make_app_timed


async def serve(argv: list[str], probe_port: int) -> None:
    probe, timings = Probe(), Timings()
    install_timing_hook(timings)
    control = web.Application([(r"/(probe|timing)/(start|stop)", ControlHandler,
                                {"probe": probe, "timings": timings})])
    HTTPServer(control).listen(probe_port, "127.0.0.1")
    await product.main(product.settings_from(product.parse_args(argv)))


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probe-port", type=int, required=True)
    ours, rest = parser.parse_known_args()
    args = product.parse_args(rest)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    asyncio.run(serve(rest, ours.probe_port))


if __name__ == "__main__":
    run()
