"""What tornado_progress.client costs a worker, measured against a real server on 127.0.0.1.

Run: `.venv/bin/python -m bench.client_bench [--reporters 1000] [--seconds 6] [--json PATH]`

1. CPU per `update()` call: the calling thread's CPU time (`time.thread_time`) over 200,000
   calls, to a live server and to a dead one (a port nobody listens on).
2. Requests per second that 1,000 reporters of one process produce with the default interval
   (1 s), each updated ten times a second for `--seconds`: counted on the server's side (its
   access log), with the client process's CPU meanwhile (sender thread included).
3. The slowdown of a worker's loop (items of about 0.2 ms of work) when every item calls
   `update()` on a reporter whose server is dead: the median, over 15 pairs of runs, of the
   ratio of the loop's time with the reporter to the time without.

Bounded: about 15 s in all. Prints one line per figure; `--json` also writes them to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tornado_progress.client import Reporter, flush_all

UPDATE_CALLS = 200_000
ROUNDS_PER_S = 10  # how often each of the many reporters gets a new state
LOOP_ITEMS = 150
LOOP_PAIRS = 15


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(folder: Path) -> Iterator[tuple[str, Path]]:
    """`python -m tornado_progress --access-log` on 127.0.0.1: its URL and log file."""
    port, log_path = free_port(), folder / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tornado_progress", "--host", "127.0.0.1", "--port",
             str(port), "--snapshot-dir", str(folder / "snapshots"), "--access-log",
             "--log-level", "info"], stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/progress/health", timeout=2).close()
                break
            except OSError as error:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the server did not start: {log_path.read_text()}") \
                        from error
                time.sleep(0.05)
        yield url, log_path
    finally:
        process.terminate()
        process.wait(20)


def update_cost_us(url: str) -> float:
    """CPU microseconds per `update()` in the calling thread."""
    reporter = Reporter(url, "bench-cost", "w")
    start = time.thread_time()
    for i in range(UPDATE_CALLS):
        reporter.update(i, UPDATE_CALLS)
    cost = (time.thread_time() - start) / UPDATE_CALLS * 1e6
    reporter.close(timeout=5)
    return cost


def updates_logged(log_path: Path) -> int:
    return log_path.read_text().count("POST /progress/update")


def many_reporters(url: str, log_path: Path, count: int, seconds: float) -> dict[str, float]:
    """Requests per second from `count` reporters with the default interval, each updated
    ROUNDS_PER_S times a second; and the client process's CPU share meanwhile."""
    reporters = [Reporter(url, f"bench-many-{k % 10}", f"w{k}") for k in range(count)]
    for reporter in reporters:  # first requests, out of the measured window
        reporter.update(0, 100)
    flush_all(timeout=30)
    before, cpu_before = updates_logged(log_path), time.process_time()
    start = time.monotonic()
    rounds = 0
    while time.monotonic() - start < seconds:
        rounds += 1
        for reporter in reporters:
            reporter.update(rounds % 100, 100, desc=f"round {rounds}")
        time.sleep(max(0.0, start + rounds / ROUNDS_PER_S - time.monotonic()))
    elapsed = time.monotonic() - start
    cpu = time.process_time() - cpu_before
    sent = updates_logged(log_path) - before
    for reporter in reporters:
        reporter.close(timeout=0)
    flush_all(timeout=30)
    return {"requests_per_s": sent / elapsed, "update_calls_per_s": rounds * count / elapsed,
            "client_cpu_share": cpu / elapsed}


def work() -> int:
    return sum(j * j for j in range(6000))  # about 0.2 ms


def bare_loop(items: int) -> float:
    start = time.perf_counter()
    for _ in range(items):
        work()
    return time.perf_counter() - start


def reporting_loop(items: int, reporter: Reporter) -> float:
    start = time.perf_counter()
    for i in range(items):
        work()
        reporter.update(i + 1, items)
    return time.perf_counter() - start


def dead_server_slowdown() -> dict[str, float]:
    dead = f"http://127.0.0.1:{free_port()}"
    cost = update_cost_us(dead)
    reporter = Reporter(dead, "bench-dead", "w")
    ratios = sorted(reporting_loop(LOOP_ITEMS, reporter) / bare_loop(LOOP_ITEMS)
                    for _ in range(LOOP_PAIRS))
    return {"dead_update_cpu_us": cost, "loop_slowdown": ratios[LOOP_PAIRS // 2] - 1,
            "loop_item_ms": bare_loop(LOOP_ITEMS) / LOOP_ITEMS * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reporters", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, server(Path(folder)) as (url, log_path):
        figures: dict[str, float] = {"live_update_cpu_us": update_cost_us(url)}
        figures.update(many_reporters(url, log_path, args.reporters, args.seconds))
    figures.update(dead_server_slowdown())
    print(f"update() CPU, live server: {figures['live_update_cpu_us']:.2f} µs per call")
    print(f"update() CPU, dead server: {figures['dead_update_cpu_us']:.2f} µs per call")
    print(f"{args.reporters} reporters, interval 1 s, {figures['update_calls_per_s']:,.0f} "
          f"update() calls/s: {figures['requests_per_s']:,.0f} requests/s at the server, "
          f"client process CPU {figures['client_cpu_share']:.0%} of a core")
    print(f"loop of {figures['loop_item_ms']:.2f} ms items, dead server: "
          f"{figures['loop_slowdown']:+.1%} time")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
