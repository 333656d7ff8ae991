"""The memory attacks of issue 8 at full size, against the real server process: its peak RSS
during each attack and the latency of a worker's update meanwhile.

Run: `.venv/bin/python -m bench.stress_memory [--workers 20000] [--jobs 5] [--polls 310]`

Attacks, in order, on one server:
  a) `--jobs` quiet jobs of `--workers` workers each (filled by pipelined updates), then
     `--polls` concurrent polls, each from a distinct `since`, each answered with its own delta;
  b) one render at width=4000&scale=4 of one of those jobs;
  c) 40 concurrent renders at distinct scales, at width=4000 (the issue's attack) and again at
     width=800 where every scale is within the pixel budget, so that all of them are drawn;
  d) 2,000 unknown-job renders, each a distinct jobid, at scales from 1 to 4.
Each prints one JSON line: peak and final RSS in MB, an update's median and 99th-percentile
latency in ms while the attack ran, and what the attack's requests were answered.

Only 127.0.0.1; every loop is bounded in count and in time, and the server is stopped at the
end, on errors too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.fixtures import Client
from tests.serverproc import ServerProcess, running_server

HOST = "127.0.0.1"
FILL_CONNECTIONS = 4
FILL_BATCH = 200  # requests written before their answers are read
FILL_SECONDS = 180.0
ATTACK_SECONDS = 120.0
PROBE_PERIOD_S = 0.005
# An attack over in milliseconds is still probed this long, so that its line has figures.
PROBE_MIN_S = 1.0
PROBE_MAX = 100_000
RSS_PERIOD_S = 0.005
RSS_LIMIT_MB = 400
Answer = tuple[int, bytes]


# The server's memory ---------------------------------------------------------------------------


def status_kb(pid: int, field: str) -> int:
    """A `Vm...` field of /proc/<pid>/status, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> bool:
    """Resets the process's VmHWM to its current RSS (Linux 4.0 and later); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssWatch:
    """While running, samples the server's VmRSS; the peak is the larger of the samples' and,
    when it could be reset at the start, the kernel's own VmHWM."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._exact = False

    def _run(self) -> None:
        while not self._stop.wait(RSS_PERIOD_S):
            self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmRSS"))

    def __enter__(self) -> RssWatch:
        self._exact = reset_peak(self.pid)
        self.peak_kb = status_kb(self.pid, "VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._exact:
            self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmHWM"))


# A worker's updates, timed from another process ------------------------------------------------


def probe_updates(port: int, ready: Any, stop: Any, results: Connection) -> None:
    """Sends one update every PROBE_PERIOD_S on a keep-alive connection until `stop` is set,
    then sends back every latency in seconds and the count of failed updates; sets `ready`
    once connected. Its own process, so that the attacking client does not delay it."""
    client = Client(port, timeout=30.0)
    latencies: list[float] = []
    failed = 0
    for count in range(PROBE_MAX):
        if stop.is_set():
            break
        try:
            status, _, seconds = client.get(
                f"/progress/update?jobid=probe&workid=w1&current={count}&total={PROBE_MAX}")
        except OSError:
            failed += 1
            client.close()
            client = Client(port, timeout=30.0)
            continue
        latencies.append(seconds)
        failed += status != 200
        ready.set()
        time.sleep(PROBE_PERIOD_S)
    client.close()
    results.send((latencies, failed))


@contextmanager
def probing(port: int) -> Iterator[dict[str, Any]]:
    """Times updates while the block runs; the figures land in the dict it yields."""
    context = multiprocessing.get_context("fork")
    ready, stop = context.Event(), context.Event()
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=probe_updates, args=(port, ready, stop, sending),
                              daemon=True)
    process.start()
    ready.wait(30)
    began = time.monotonic()
    figures: dict[str, Any] = {}
    try:
        yield figures
    finally:
        time.sleep(max(0.0, began + PROBE_MIN_S - time.monotonic()))
        stop.set()
        latencies, failed = receiving.recv() if receiving.poll(60) else ([], -1)
        process.join(10)
        ordered = sorted(latencies) or [float("nan")]
        figures.update(
            update_p50_ms=round(1000 * statistics.median(ordered), 2),
            update_p99_ms=round(1000 * ordered[min(len(ordered) - 1,
                                                   int(0.99 * len(ordered)))], 2),
            update_max_ms=round(1000 * ordered[-1], 2),
            updates=len(latencies), updates_failed=failed)


# A small pipelining HTTP/1.1 client ------------------------------------------------------------


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return int(lines[0].split()[1]), await reader.readexactly(length)


async def get_all(port: int, paths: list[str]) -> list[Answer]:
    """GETs every path on one connection, FILL_BATCH requests written before their answers
    are read."""
    reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 24)
    answers: list[Answer] = []
    try:
        for start in range(0, len(paths), FILL_BATCH):
            batch = paths[start:start + FILL_BATCH]
            writer.write(b"".join(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
                                  for path in batch))
            for _ in batch:
                answers.append(await read_answer(reader))
    finally:
        writer.close()
    return answers


async def spread(port: int, paths: list[str], connections: int) -> list[Answer]:
    """`paths` over `connections` pipelined connections at once."""
    shares = [paths[index::connections] for index in range(connections)]
    results = await asyncio.gather(*(get_all(port, share) for share in shares if share))
    return [answer for result in results for answer in result]


def statuses(answers: list[Answer]) -> dict[str, int]:
    return {str(code): count for code, count in sorted(Counter(c for c, _ in answers).items())}


# The attacks -----------------------------------------------------------------------------------


async def fill(port: int, jobs: int, workers: int) -> dict[str, Any]:
    """One update per worker of every job, workers of all jobs in turn, each worker's version
    its own: a poll from any point of a job's history then has a delta of its own size.
    Bounded by FILL_SECONDS."""
    deadline = time.monotonic() + FILL_SECONDS
    paths = [f"/progress/update?jobid=quiet{k % jobs}&workid=w{k // jobs}&current={k % 3}"
             f"&total=3&desc=calibrating+band+{k % 7}" for k in range(jobs * workers)]
    answers: list[Answer] = []
    for start in range(0, len(paths), 20_000):
        if time.monotonic() > deadline:
            break
        answers += await spread(port, paths[start:start + 20_000], FILL_CONNECTIONS)
    return {"fill_updates": statuses(answers)}


def job_versions(server: ServerProcess, jobs: int) -> list[tuple[int, int, int]]:
    """(generation, version, workers) of each quiet job."""
    result = []
    for index in range(jobs):
        job = server.get(f"status?jobid=quiet{index}", timeout=60)
        result.append((job["generation"], job["version"], len(job["workers"])))
    return result


async def distinct_polls(port: int, server: ServerProcess, jobs: int,
                         polls: int) -> dict[str, Any]:
    """`polls` polls at once, from versions spread over each job's history: every one a delta
    of its own size."""
    paths = []
    for index, (generation, version, _) in enumerate(job_versions(server, jobs)):
        share = polls // jobs + (index < polls % jobs)
        step = max(1, (version - generation) // (share + 1))
        paths += [f"/progress/poll?jobid=quiet{index}&since={version - 1 - n * step}&timeout=0"
                  for n in range(share)]
    answers = await spread(port, paths, len(paths))
    return {"polls": statuses(answers), "bytes": sum(len(body) for _, body in answers)}


async def renders(port: int, width: int, scales: list[float], jobid: str = "quiet0",
                  connections: int | None = None) -> dict[str, Any]:
    paths = [f"/progress/render?jobid={jobid}&width={width}&scale={scale:g}" for scale in scales]
    answers = await spread(port, paths, connections or len(paths))
    return {"renders": statuses(answers), "bytes": sum(len(body) for _, body in answers)}


async def unknown_renders(port: int, count: int) -> dict[str, Any]:
    paths = [f"/progress/render?jobid=nobody{index}&scale={1 + (index % 301) / 100:g}"
             for index in range(count)]
    answers = await spread(port, paths, 8)
    return {"renders": statuses(answers), "bytes": sum(len(body) for _, body in answers)}


async def measured(server: ServerProcess, name: str,
                   attack: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Runs `attack` while watching RSS and timing updates; prints and returns its line."""
    assert server.process is not None
    pid = server.process.pid
    began = time.monotonic()
    with probing(server.port) as timing, RssWatch(pid) as rss:
        details = await asyncio.wait_for(attack(), ATTACK_SECONDS)
    line = {"attack": name, "peak_rss_mb": round(rss.peak_kb / 1024, 1),
            "rss_after_mb": round(status_kb(pid, "VmRSS") / 1024, 1), **timing,
            "seconds": round(time.monotonic() - began, 2), **details}
    print(json.dumps(line), flush=True)
    return line


async def attacks(server: ServerProcess, args: argparse.Namespace) -> list[dict[str, Any]]:
    port = server.port
    lines = [await measured(server, "baseline: updates alone", _idle)]
    lines.append(await measured(server, f"a1: fill {args.jobs} jobs of {args.workers} workers",
                                lambda: fill(port, args.jobs, args.workers)))
    lines.append(await measured(server, f"a2: {args.polls} polls from distinct versions",
                                lambda: distinct_polls(port, server, args.jobs, args.polls)))
    lines.append(await measured(server, "b: one render at width=4000&scale=4",
                                lambda: renders(port, 4000, [4.0])))
    lines.append(await measured(server, "c1: 40 concurrent renders, width=4000, distinct scales",
                                lambda: renders(port, 4000, [1 + n * 3 / 39 for n in range(40)])))
    lines.append(await measured(server, "c2: 40 concurrent renders, width=800, distinct scales",
                                lambda: renders(port, 800, [1 + n / 40 for n in range(40)])))
    lines.append(await measured(server, "d: 2000 unknown-job renders",
                                lambda: unknown_renders(port, 2000)))
    return lines


async def _idle() -> dict[str, Any]:
    await asyncio.sleep(1.0)
    return {}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stress_memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=20_000, help="workers per quiet job")
    parser.add_argument("--jobs", type=int, default=5, help="quiet jobs")
    parser.add_argument("--polls", type=int, default=310, help="polls of attack a")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, running_server(
            Path(folder) / "snapshots", "--log-level", "warning",
            "--snapshot-interval", "3600") as server:
        lines = asyncio.run(attacks(server, args))
    worst = max(line["peak_rss_mb"] for line in lines)
    answered = all(line["updates"] > 0 and line["updates_failed"] == 0 for line in lines)
    print(f"peak RSS {worst} MB (target below {RSS_LIMIT_MB} MB); updates answered "
          f"throughout: {answered}", file=sys.stderr)
    return 0 if worst < RSS_LIMIT_MB and answered else 1


if __name__ == "__main__":
    sys.exit(main())
