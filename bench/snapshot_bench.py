"""How long a snapshot of 100,000 workers stalls the event loop, and how long it takes.

Run: `.venv/bin/python -m bench.snapshot_bench [--workers 100000] [--jobs 10] [--rounds 5]`
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.probe import StallProbe
from tornado_progress.model import Store
from tornado_progress.snapshots import Snapshotter


def fill(store: Store, workers: int, jobs: int) -> None:
    per_job = workers // jobs
    for job in range(jobs):
        for worker in range(per_job):
            store.update(f"job{job}", f"worker{worker}", worker % 50, 50, "calibrating", True)


async def measure(workers: int, jobs: int, rounds: int) -> None:
    store = Store()
    started = time.perf_counter()
    fill(store, workers, jobs)
    print(f"filled {store.worker_count} workers in {len(store.jobs)} jobs "
          f"in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        snapshotter = Snapshotter(store, Path(folder))
        stalls, durations = [], []
        for _ in range(rounds):
            store.update("job0", "worker0", 1, 50, "", True)
            await asyncio.sleep(0.05)
            with StallProbe() as probe:
                began = time.perf_counter()
                await snapshotter.save()
                durations.append(time.perf_counter() - began)
                await asyncio.sleep(0.01)
            stalls.append(probe.worst)
        size = max(path.stat().st_size for path in Path(folder).iterdir())
        loaded = Store()
        began = time.perf_counter()
        Snapshotter(loaded, Path(folder)).load()
        load_s = time.perf_counter() - began
    print(f"snapshot of {store.worker_count} workers: {size / 1e6:.1f} MB, "
          f"write {1000 * statistics.median(durations):.0f} ms (median of {rounds}), "
          f"event-loop stall worst {1000 * max(stalls):.1f} ms, "
          f"median {1000 * statistics.median(stalls):.1f} ms; load {load_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(measure(args.workers, args.jobs, args.rounds))


if __name__ == "__main__":
    main()
