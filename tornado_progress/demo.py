"""Simulated workers for `--demo`: they feed the job `demo1` through the real HTTP endpoints,
exactly as a worker's `curl` or `requests.get` would, so a newcomer sees live bars at once."""

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


@dataclass
class SimulatedWorker:
    workid: str
    total: int
    seconds_per_item: float
    fails_at: int | None = None  # reports ok=0 here and stops
    quiet_at: int | None = None  # stops reporting here, to go stale
    desc: str = ""


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
    ]


async def _call(client: AsyncHTTPClient, url: str, **fields: object) -> None:
    try:
        await client.fetch(url, method="POST", body=urlencode(fields))
    except (HTTPClientError, OSError) as error:
        log.warning("demo request to %s failed: %s", url, error)


async def _run_worker(client: AsyncHTTPClient, base_url: str, worker: SimulatedWorker) -> None:
    url = f"{base_url}/progress/update"
    for done in range(worker.total + 1):
        if worker.quiet_at is not None and done > worker.quiet_at:
            return
        ok = worker.fails_at is None or done < worker.fails_at
        desc = worker.desc if ok else "failed: bad calibrator solution"
        await _call(client, url, jobid=JOBID, workid=worker.workid, current=done,
                    total=worker.total, desc=desc, ok=int(ok))
        if not ok:
            return
        await asyncio.sleep(worker.seconds_per_item * random.uniform(0.5, 1.5))


async def run_demo(base_url: str) -> None:
    """Runs the demo job again and again until cancelled."""
    await asyncio.sleep(0.2)  # let the server start listening
    client = AsyncHTTPClient()
    while True:
        await _call(client, f"{base_url}/progress/create", jobid=JOBID,
                    desc="Demo: simulated data reduction")
        await asyncio.gather(*(_run_worker(client, base_url, worker)
                               for worker in demo_workers()))
        await asyncio.sleep(PAUSE_AFTER_DONE_S)
