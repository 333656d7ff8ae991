"""`kill -9` under load: what a crash loses, and whether the server always starts again.

Run: `.venv/bin/python -m bench.stress_crash [--cycles 200] [--quick]`

The server runs with `--snapshot-interval 0.5`. In each cycle a load generator sends updates
for several workers of several jobs (one keep-alive connection per worker, GET and POST in
turn); every worker's `current` only rises, and each answer received is recorded as
acknowledged, with the time it arrived. At a random moment the server gets SIGKILL; it is
started again on the same snapshot folder, and /progress/status of every job must show each
worker at or past every value acknowledged more than one interval plus a margin before the
kill. Prints one JSON line: cycles, kills, starts, failed and hung starts, acknowledged and
checked updates, those lost beyond one interval (goal 0) and those lost within it (expected).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stress import Http, emit, exit_on_sigterm, say
from tests.serverproc import ErrorStatus, ServerProcess, free_port

INTERVAL_S = 0.5
MARGIN_S = 0.5
START_ATTEMPTS = 3
TOTAL = 10**12  # far above any `current`: the workers stay running
UPDATES_PER_WORKER = 100_000  # per cycle: the count bound of the load loop


@dataclass
class Worker:
    jobid: str
    workid: str
    current: int = 0
    acks: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, current)


@dataclass
class Tally:
    cycles: int = 0
    kills: int = 0
    starts: int = 0
    failed_starts: int = 0
    hung_starts: int = 0
    acknowledged: int = 0
    refused: int = 0
    checked: int = 0
    lost_beyond_interval: int = 0
    lost_within_interval: int = 0
    start_s: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    timed_out: bool = False


def start_server(folder: Path, port: int, tally: Tally) -> ServerProcess | None:
    """The server on `folder`, tried up to START_ATTEMPTS times; None if every attempt failed."""
    for _ in range(START_ATTEMPTS):
        server = ServerProcess(folder / "snapshots", port, "--snapshot-interval", str(INTERVAL_S),
                               "--new-jobs-per-minute", "0", "--log-level", "warning")
        tally.starts += 1
        began = time.monotonic()
        try:
            server.start()
            tally.start_s.append(time.monotonic() - began)
            return server
        except RuntimeError as error:
            hung = "did not answer" in str(error)
            tally.hung_starts += hung
            tally.failed_starts += not hung
            tally.problems.append(str(error)[-500:])
            say(f"  start failed: {str(error)[-300:]}")
            if server.process is not None and server.process.poll() is None:
                server.process.kill()
                server.process.wait()
    return None


async def drive(port: int, worker: Worker, stop: asyncio.Event, tally: Tally) -> None:
    """Sends `worker`'s updates one after another until `stop`, recording each acknowledgment."""
    http = Http(port, timeout=5.0)
    try:
        for count in range(UPDATES_PER_WORKER):
            if stop.is_set():
                return
            worker.current += 1
            query = urllib.parse.urlencode({"jobid": worker.jobid, "workid": worker.workid,
                                            "current": worker.current, "total": TOTAL})
            try:
                if count % 2:
                    answer = await http.request("/progress/update", "POST", query.encode())
                else:
                    answer = await http.request(f"/progress/update?{query}")
            except (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                await asyncio.sleep(0.05)
                continue
            if answer.status == 200:
                worker.acks.append((time.monotonic(), worker.current))
                tally.acknowledged += 1
            else:
                tally.refused += 1
    finally:
        http.close()


async def load_then_kill(server: ServerProcess, workers: list[Worker], kill_after: float,
                         tally: Tally) -> float:
    """Runs the load for `kill_after` seconds, then SIGKILLs the server; returns the kill's
    monotonic time."""
    assert server.process is not None
    stop = asyncio.Event()
    tasks = [asyncio.create_task(drive(server.port, worker, stop, tally)) for worker in workers]
    await asyncio.sleep(kill_after)
    killed_at = time.monotonic()
    os.kill(server.process.pid, signal.SIGKILL)
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return killed_at


def restored(server: ServerProcess, jobids: set[str]) -> dict[tuple[str, str], float]:
    """Each worker's `current` as the restarted server has it."""
    found: dict[tuple[str, str], float] = {}
    for jobid in sorted(jobids):
        try:
            job = server.get(f"status?jobid={urllib.parse.quote(jobid)}")
        except ErrorStatus as error:
            if error.code != 404:
                raise
            continue
        for worker in job["workers"]:
            found[(jobid, worker["workid"])] = worker["current"]
    return found


def verify(server: ServerProcess, workers: list[Worker], killed_at: float, tally: Tally) -> None:
    """Counts the acknowledged updates the restarted server lacks, beyond and within the last
    interval before the kill, and forgets the cycle's acknowledgments."""
    have = restored(server, {worker.jobid for worker in workers})
    cutoff = killed_at - INTERVAL_S - MARGIN_S
    for worker in workers:
        current = have.get((worker.jobid, worker.workid), -1)
        for acked_at, value in worker.acks:
            durable = acked_at <= cutoff
            tally.checked += durable
            if value > current:
                if durable:
                    tally.lost_beyond_interval += 1
                else:
                    tally.lost_within_interval += 1
        worker.acks.clear()


def cycle(folder: Path, port: int, workers: list[Worker], killed_at: float | None,
          kill_after: float | None, tally: Tally) -> float | None:
    """Starts the server, checks the previous kill, runs load and kills (unless `kill_after` is
    None); returns the kill's time, or None when the server did not start."""
    server = start_server(folder, port, tally)
    if server is None:
        return None
    try:
        if killed_at is not None:
            verify(server, workers, killed_at, tally)
        if kill_after is None:
            return time.monotonic()
        killed = asyncio.run(load_then_kill(server, workers, kill_after, tally))
        assert server.process is not None
        server.process.wait(timeout=10)
        tally.kills += 1
        return killed
    finally:
        server.stop()


def run(args: argparse.Namespace) -> Tally:
    rng = random.Random(args.seed)
    workers = [Worker(f"crash-{job}", f"w{index}")
               for job in range(args.jobs) for index in range(args.workers)]
    tally = Tally(cycles=args.cycles)
    deadline = time.monotonic() + args.max_minutes * 60
    folder = Path(tempfile.mkdtemp(prefix="tornado-progress-crash-"))
    port = free_port()
    killed_at: float | None = None
    try:
        for number in range(args.cycles + 1):  # the last start only checks the last kill
            if time.monotonic() > deadline:
                tally.timed_out = True
                break
            last = number == args.cycles
            kill_after = None if last else rng.uniform(args.min_seconds, args.max_seconds)
            try:
                killed_at = cycle(folder, port, workers, killed_at, kill_after, tally)
            except (OSError, ErrorStatus, KeyError, subprocess.TimeoutExpired) as error:
                tally.problems.append(f"cycle {number}: {error!r}"[:500])
                break
            if killed_at is None:
                break
            if number % 10 == 0 or last:
                say(f"  cycle {number}: {tally.acknowledged} acknowledged, "
                    f"{tally.lost_beyond_interval} lost beyond the interval")
        tally.problems += [path.name for path in (folder / "snapshots").glob("*unreadable*")]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return tally


def report(tally: Tally, seconds: float) -> dict[str, Any]:
    return {"part": "crash", "cycles": tally.cycles, "kills": tally.kills,
            "starts": tally.starts, "failed_starts": tally.failed_starts,
            "hung_starts": tally.hung_starts, "acknowledged": tally.acknowledged,
            "refused": tally.refused, "checked": tally.checked,
            "lost_beyond_interval": tally.lost_beyond_interval,
            "lost_within_interval": tally.lost_within_interval,
            "start_s_median": round(statistics.median(tally.start_s), 3) if tally.start_s
            else None,
            "start_s_max": round(max(tally.start_s), 3) if tally.start_s else None,
            "interval_s": INTERVAL_S, "margin_s": MARGIN_S, "timed_out": tally.timed_out,
            "problems": tally.problems[:20], "seconds": round(seconds, 1)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stress_crash", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, help="kill -9 cycles (default 200, quick 10)")
    parser.add_argument("--quick", action="store_true", help="10 cycles")
    parser.add_argument("--jobs", type=int, default=4, help="jobs the load updates")
    parser.add_argument("--workers", type=int, default=8, help="workers per job")
    parser.add_argument("--min-seconds", type=float, default=0.3,
                        help="least time of load before the kill")
    parser.add_argument("--max-seconds", type=float, default=3.0,
                        help="most time of load before the kill")
    parser.add_argument("--max-minutes", type=float, default=50.0,
                        help="stop starting new cycles after this long")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.cycles is None:
        args.cycles = 10 if args.quick else 200
    if not (1 <= args.cycles <= 10_000 and 1 <= args.jobs * args.workers <= 1000
            and 0 < args.min_seconds <= args.max_seconds <= 60):
        parser.error("--cycles 1 to 10000, jobs x workers 1 to 1000, 0 < min <= max <= 60 s")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    began = time.monotonic()
    say(f"crash: {args.cycles} kill -9 cycles, {args.jobs} jobs x {args.workers} workers")
    tally = run(args)
    emit(report(tally, time.monotonic() - began))
    return 0 if tally.kills == args.cycles and not tally.lost_beyond_interval else 1


if __name__ == "__main__":
    sys.exit(main())
