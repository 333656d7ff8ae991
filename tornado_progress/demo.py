"""Simulated workers for `--demo`: they feed the job `demo1` through the real HTTP endpoints,
exactly as a worker's `curl` or `requests.get` would, so a newcomer sees live bars at once, and
within a minute every state a worker can be in: not started, running, done, failed and stale
(the demo server's --stale-after is short, DEMO_STALE_AFTER_S). Then the job starts again."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

log = logging.getLogger("tornado_progress.demo")

JOBID = "demo1"
# Seconds to show a finished job before it starts again.
PAUSE_AFTER_DONE_S = 15.0
# The demo server's stale time, unless --stale-after says otherwise: short enough that the
# worker that goes quiet turns stale within the minute.
DEMO_STALE_AFTER_S = 20.0
# Each pause between two items is this many times the worker's seconds_per_item, at random.
JITTER = (0.5, 1.5)


@dataclass
class SimulatedWorker:
    workid: str
    total: int
    seconds_per_item: float
    fails_at: int | None = None  # reports ok=0 here and stops
    quiet_at: int | None = None  # stops reporting here, to go stale
    desc: str = ""
    starts_after: float = 0.0  # seconds before its first report: "not started" until then


def demo_workers() -> list[SimulatedWorker]:
    return [
        SimulatedWorker("flagger1", 40, 0.4, desc="lots of RFI"),
        SimulatedWorker("flagger2", 40, 0.5, desc="flagging"),
        SimulatedWorker("calibrator1", 22, 1.2, desc="calibrating"),
        SimulatedWorker("calibrator2", 22, 1.0, fails_at=9, desc="calibrating"),
        SimulatedWorker("imager1", 120, 0.15, desc="imaging"),
        SimulatedWorker("imager2", 120, 0.2, quiet_at=47, desc="imaging"),
        SimulatedWorker("imager10", 60, 0.6, desc="imaging <b>not bold</b>"),
        SimulatedWorker("beamformer", 8, 3.0, desc="slow and steady"),
        SimulatedWorker("late-starter", 20, 0.5, desc="waited for data", starts_after=15.0),
    ]


def latest_first_time(worker: SimulatedWorker, stale_after: float) -> dict[str, float]:
    """The latest time after the job starts that `worker` first shows each state it will
    show, with the slowest pauses: what the demo promises a newcomer."""
    slow = worker.seconds_per_item * JITTER[1]
    times = {"running": worker.starts_after}
    if worker.fails_at is not None:
        times["failed"] = worker.starts_after + worker.fails_at * slow
    elif worker.quiet_at is not None:
        times["stale"] = worker.starts_after + worker.quiet_at * slow + stale_after
    else:
        times["done"] = worker.starts_after + worker.total * slow
    return times


async def _call(client: AsyncHTTPClient, url: str, **fields: object) -> None:
    try:
        await client.fetch(url, method="POST", body=urlencode(fields))
    except (HTTPClientError, OSError) as error:
        log.warning("demo request to %s failed: %s", url, error)


async def _run_worker(client: AsyncHTTPClient, base_url: str, worker: SimulatedWorker) -> None:
    url = f"{base_url}/progress/update"
    await asyncio.sleep(worker.starts_after)
    for done in range(worker.total + 1):
        if worker.quiet_at is not None and done > worker.quiet_at:
            return
        ok = worker.fails_at is None or done < worker.fails_at
        desc = worker.desc if ok else "failed: bad calibrator solution"
        await _call(client, url, jobid=JOBID, workid=worker.workid, current=done,
                    total=worker.total, desc=desc, ok=int(ok))
        if not ok:
            return
        await asyncio.sleep(worker.seconds_per_item * random.uniform(*JITTER))


async def run_demo(base_url: str) -> None:
    """Runs the demo job again and again until cancelled."""
    await asyncio.sleep(0.2)  # let the server start listening
    client = AsyncHTTPClient()
    while True:
        workers = demo_workers()
        await _call(client, f"{base_url}/progress/create", jobid=JOBID,
                    desc="Demo: simulated data reduction", workers=len(workers))
        await asyncio.gather(*(_run_worker(client, base_url, worker) for worker in workers))
        await asyncio.sleep(PAUSE_AFTER_DONE_S)
