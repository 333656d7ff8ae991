"""Render figures of issue 4: PNG render times at 10 to 10,000 workers, uncached and cached, and
how long an uncached 10,000-worker render served over HTTP stalls the event loop.

Run: `.venv/bin/python -m bench.render_bench [--runs 5]`

The real app is served in this process on 127.0.0.1 only, filled through its store; every
loop of requests is bounded in count, and the whole run takes well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bench.probe import StallProbe
from tornado_progress import render
from tornado_progress.app import make_app
from tornado_progress.config import Settings
from tornado_progress.longpoll import Waiters
from tornado_progress.model import Store
from tornado_progress.snapshots import Snapshotter

SIZES = (10, 100, 1_000, 10_000)
STALE_AFTER = Settings().stale_after


def fill(store: Store, jobid: str, workers: int) -> None:
    """Workers at every stage, with strings, one in 97 failed and one in 89 gone quiet."""
    clock = store.clock
    for index in range(workers):
        quiet = index % 89 == 5
        store.clock = (lambda: time.time() - 2 * STALE_AFTER) if quiet else clock
        store.update(jobid, f"w{index}", index % 101, 100, f"calibrating band {index % 7}",
                     index % 97 != 3)
    store.clock = clock


def median_ms(durations: list[float]) -> float:
    return 1000 * statistics.median(durations)


async def timed(client: AsyncHTTPClient, urls: list[str]) -> list[float]:
    """Seconds each GET took, one after the other."""
    durations = []
    for url in urls:
        began = time.perf_counter()
        await client.fetch(url)
        durations.append(time.perf_counter() - began)
    return durations


async def render_times(store: Store, base: str, runs: int) -> None:
    client = AsyncHTTPClient()
    print(f"{'workers':>8} {'render_chart':>13} {'HTTP uncached':>14} {'HTTP cached':>12} "
          f"{'PNG':>8}   (median of {runs}, ms)")
    for workers in SIZES:
        jobid = f"render{workers}"
        fill(store, jobid, workers)
        job = store.get(jobid)
        chart = render.ChartInput(job.jobid, job.desc, tuple(job.workers.values()),
                                  time.time(), STALE_AFTER)
        direct = [0.0] * runs
        for run in range(runs):
            began = time.perf_counter()
            png = render.render_chart(chart, 800, 1)
            direct[run] = time.perf_counter() - began
        url = f"{base}/progress/render?jobid={jobid}"
        # A new width is a new key: never cached.
        uncached = await timed(client, [f"{url}&width={801 + run}" for run in range(runs)])
        await client.fetch(url)
        cached = await timed(client, [url] * (4 * runs))
        print(f"{workers:>8} {median_ms(direct):>13.1f} {median_ms(uncached):>14.1f} "
              f"{median_ms(cached):>12.2f} {len(png) / 1000:>6.0f} kB")


async def stall(store: Store, base: str, runs: int) -> None:
    """The probe's worst lateness while one uncached 10,000-worker chart is served, against
    the same render run on the loop itself, as a handler without the worker thread would."""
    client = AsyncHTTPClient()
    jobid = "render10000"
    with StallProbe() as idle:
        await asyncio.sleep(0.3)
    served, inline = [], []
    for run in range(runs):
        store.update(jobid, "w0", run, 100, "", True)  # a new version: nothing cached
        await asyncio.sleep(0.02)
        with StallProbe() as probe:
            await client.fetch(f"{base}/progress/render?jobid={jobid}")
            await asyncio.sleep(0.01)
        served.append(probe.worst)
        job = store.get(jobid)
        chart = render.ChartInput(job.jobid, job.desc, tuple(job.workers.values()),
                                  time.time(), STALE_AFTER)
        with StallProbe() as probe:
            await asyncio.sleep(0.01)
            render.render_chart(chart, 800, 1)
            await asyncio.sleep(0.01)
        inline.append(probe.worst)
    print(f"event-loop stall, 10,000 workers, uncached, 1 ms probe, {runs} runs: served over "
          f"HTTP (render in a worker thread) worst {1000 * max(served):.1f} ms, median "
          f"{median_ms(served):.1f} ms; the same render on the loop {median_ms(inline):.0f} ms; "
          f"idle loop worst {1000 * idle.worst:.1f} ms")


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(snapshot_dir=Path(folder))
        store = Store(settings.limits)
        app = make_app(store, Waiters(), Snapshotter(store, settings.snapshot_dir), settings)
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        try:
            await render_times(store, base, runs)
            await stall(store, base, runs)
        finally:
            server.stop()
            await server.close_all_connections()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    asyncio.run(main(max(1, min(parser.parse_args().runs, 50))))


if __name__ == "__main__":
    run()
