"""Render figures of issue 4: PNG render times at 10 to 10,000 workers, uncached and cached, and
how long an uncached 10,000-worker render served over HTTP stalls the event loop; and the sizes
of big pictures (100 and 200 workers, up to width 1200 at scale 2).

Run: `.venv/bin/python -m bench.render_bench [--runs 5] [--text toy]`

`--text toy` draws text with cairo's toy API, as where Pango is missing, for comparison. The
render_chart columns are the first render of a chart (every string shaped anew) and the median
of the later ones (Pango's shaped strings kept per thread).

The real app is served in this process on 127.0.0.1 only, filled through its store; every
loop of requests is bounded in count, and the whole run takes well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import tempfile
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bench.probe import StallProbe
from tornado_progress import render, text_draw
from tornado_progress.app import make_app
from tornado_progress.config import Settings
from tornado_progress.longpoll import Waiters
from tornado_progress.model import Store
from tornado_progress.snapshots import Snapshotter

SIZES = (10, 100, 1_000, 10_000)
BIG = ((100, 800, 1), (200, 800, 1), (100, 1200, 2), (200, 1200, 2))  # workers, width, scale
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


def direct_times(chart: render.ChartInput, runs: int, width: int = 800,
                 scale: float = 1) -> tuple[float, list[float], bytes]:
    """Seconds of the first render_chart of `chart`, of the next `runs`, and the picture."""
    began = time.perf_counter()
    png = render.render_chart(chart, width, scale)
    first = time.perf_counter() - began
    later = [0.0] * runs
    for run in range(runs):
        began = time.perf_counter()
        render.render_chart(chart, width, scale)
        later[run] = time.perf_counter() - began
    return first, later, png


def job_chart(store: Store, jobid: str) -> render.ChartInput:
    job = store.get(jobid)
    return render.ChartInput(job.jobid, job.desc, tuple(job.workers.values()), time.time(),
                             STALE_AFTER)


async def render_times(store: Store, base: str, runs: int) -> None:
    client = AsyncHTTPClient()
    print(f"text engine: {text_draw.engine()}")
    print(f"{'workers':>8} {'first':>7} {'render_chart':>13} {'HTTP uncached':>14} "
          f"{'HTTP cached':>12} {'PNG':>8} {'height':>7}   (median of {runs}, ms)")
    for workers in SIZES:
        jobid = f"render{workers}"
        fill(store, jobid, workers)
        first, direct, png = direct_times(job_chart(store, jobid), runs)
        url = f"{base}/progress/render?jobid={jobid}"
        # A new width is a new key: never cached.
        uncached = await timed(client, [f"{url}&width={801 + run}" for run in range(runs)])
        await client.fetch(url)
        cached = await timed(client, [url] * (4 * runs))
        print(f"{workers:>8} {1000 * first:>7.1f} {median_ms(direct):>13.1f} "
              f"{median_ms(uncached):>14.1f} {median_ms(cached):>12.2f} "
              f"{len(png) / 1000:>6.0f} kB {struct.unpack('>I', png[20:24])[0]:>7}")


def big_pictures(store: Store, runs: int) -> None:
    """Size and time of the pictures of jobs of 100 and 200 workers, up to 1200 x scale 2."""
    print(f"{'workers':>8} {'width':>6} {'scale':>6} {'pixels':>13} {'PNG':>9} "
          f"{'render_chart':>13}   (median of {runs}, ms)")
    for workers, width, scale in BIG:
        jobid = f"render{workers}"
        if store.find(jobid) is None:
            fill(store, jobid, workers)
        _, times, png = direct_times(job_chart(store, jobid), runs, width, scale)
        device_w, device_h = struct.unpack(">II", png[16:24])
        print(f"{workers:>8} {width:>6} {scale:>6} {f'{device_w} x {device_h}':>13} "
              f"{len(png) / 1000:>6.0f} kB {median_ms(times):>13.1f}")


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
        chart = job_chart(store, jobid)
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
            big_pictures(store, runs)
            await stall(store, base, runs)
        finally:
            server.stop()
            await server.close_all_connections()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--text", choices=("best", "toy"), default="best",
                        help="toy: draw text with cairo's toy API, as without Pango")
    args = parser.parse_args()
    if args.text == "toy":
        text_draw.PANGO = None
    asyncio.run(main(max(1, min(args.runs, 50))))


if __name__ == "__main__":
    run()
