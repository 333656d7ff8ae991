"""Viewers that long-poll jobs, as the show page does, in one asyncio client process.

Run: `python -m bench.viewers --port P --seconds S --viewers 96 [--probe-viewers 4]`

Each viewer holds one keep-alive connection and loops `GET /progress/poll?jobid=J&since=V
&timeout=25`, asking again at once with the version of each answer, as the show page does.
Load viewers spread over the jobs prefix0..prefix9. With `--probe-viewers`, a probe sender also
updates a dedicated job a few times a second with `desc` = its send time (`time.time()`), and
the probe viewers watching that job note receive time minus send time of every new `desc`:
the update-to-viewer delivery time.

Prints `ready` once every viewer has had its first answer, and at the end one JSON line of
figures. Every loop ends at the deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

_VERSION = re.compile(rb'"version":(\d+)')
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
PROBE_WORKER = "p"


@dataclass
class Stats:
    answers: int = 0
    body_bytes: int = 0
    errors: int = 0
    updates_sent: int = 0
    delivery_ms: list[float] = field(default_factory=list)
    first_answers: int = 0
    client_lag_max_ms: float = 0.0
    cpu_s: float = 0.0


async def http_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   path: str) -> tuple[int, bytes]:
    """One GET on a keep-alive connection; the server answers with a Content-Length."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = _LENGTH.search(head)
    body = await reader.readexactly(int(length.group(1))) if length else b""
    return int(head[9:12]), body


def note_delivery(body: bytes, last: list[str], stats: Stats, record: bool) -> None:
    """Records now minus the send time carried in the probe worker's desc, once per desc."""
    for worker in json.loads(body).get("workers", []):
        if worker.get("workid") != PROBE_WORKER or worker["desc"] == last[0]:
            continue
        if record:
            stats.delivery_ms.append(1000 * (time.time() - float(worker["desc"])))
        last[0] = worker["desc"]


async def viewer(port: int, jobid: str, deadline: float, stats: Stats, probe: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    since, first, last = 0, True, [""]
    try:
        while (left := deadline - time.monotonic()) > 0:
            path = f"/progress/poll?jobid={jobid}&since={since}&timeout=25"
            try:
                status, body = await asyncio.wait_for(http_get(reader, writer, path), left)
            except asyncio.TimeoutError:
                break
            if status != 200:
                stats.errors += 1
                since = 0
                await asyncio.sleep(0.1)
                continue
            stats.answers += 1
            stats.body_bytes += len(body)
            if probe:
                note_delivery(body, last, stats, record=not first)
            match = _VERSION.search(body)
            since = int(match.group(1)) if match else 0
            if first:
                first = False
                stats.first_answers += 1
    finally:
        writer.close()


async def sender(port: int, jobid: str, deadline: float, hz: float, stats: Stats) -> None:
    """Updates the probe job `hz` times a second, with its send time as the worker's desc."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        while time.monotonic() < deadline:
            path = (f"/progress/update?jobid={jobid}&workid={PROBE_WORKER}"
                    f"&current={stats.updates_sent}&total=1000000000&desc={time.time():.6f}")
            status, _ = await http_get(reader, writer, path)
            stats.updates_sent += 1
            stats.errors += status != 200
            next_at = started + stats.updates_sent / hz
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        writer.close()


async def lag_probe(deadline: float, stats: Stats) -> None:
    """How late this client's own loop runs: if it is busy, delivery times include it."""
    while time.monotonic() < deadline:
        expected = time.perf_counter() + 0.01
        await asyncio.sleep(0.01)
        stats.client_lag_max_ms = max(stats.client_lag_max_ms,
                                      1000 * (time.perf_counter() - expected))


async def announce_ready(stats: Stats, viewers: int, deadline: float) -> None:
    while stats.first_answers < viewers and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    print("ready", flush=True)


async def run(args: argparse.Namespace) -> Stats:
    stats = Stats()
    deadline = time.monotonic() + args.seconds
    tasks = [asyncio.create_task(lag_probe(deadline, stats))]
    if args.probe_viewers:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        await http_get(reader, writer, f"/progress/update?jobid={args.probe_job}"
                       f"&workid={PROBE_WORKER}&current=0&total=1000000000&desc=0")
        writer.close()
        tasks.append(asyncio.create_task(
            sender(args.port, args.probe_job, deadline, args.probe_hz, stats)))
    tasks += [asyncio.create_task(viewer(args.port, f"{args.prefix}{i % args.jobs}", deadline,
                                         stats, probe=False)) for i in range(args.viewers)]
    tasks += [asyncio.create_task(viewer(args.port, args.probe_job, deadline, stats, probe=True))
              for _ in range(args.probe_viewers)]
    count = args.viewers + args.probe_viewers
    tasks.append(asyncio.create_task(announce_ready(stats, count, deadline)))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    stats.errors += sum(isinstance(result, BaseException) for result in results)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats.cpu_s = usage.ru_utime + usage.ru_stime
    return stats


class ViewerProcess:
    """The harness's side: starts `python -m bench.viewers`, waits for `ready`, reads figures."""

    def __init__(self, port: int, seconds: float, *options: str) -> None:
        command = [sys.executable, "-m", "bench.viewers", "--port", str(port),
                   "--seconds", f"{seconds:g}", *options]
        self.seconds = seconds
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                        start_new_session=True, stdin=subprocess.DEVNULL)

    def _line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"the viewers said nothing within {timeout} s")
        return self.process.stdout.readline().strip()

    def wait_ready(self, timeout: float = 10.0) -> None:
        line = self._line(timeout)
        if line != "ready":
            raise RuntimeError(f"the viewers did not start: {line!r}")

    def result(self) -> dict[str, Any]:
        line = self._line(self.seconds + 10.0)
        self.process.wait(5)
        document: dict[str, Any] = json.loads(line)
        return document

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--viewers", type=int, default=96)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--prefix", default="job")
    parser.add_argument("--probe-viewers", type=int, default=0)
    parser.add_argument("--probe-job", default="probe")
    parser.add_argument("--probe-hz", type=float, default=10.0)
    args = parser.parse_args()
    if args.probe_viewers:
        # The probe's clock readings must not wait for the benchmark's own load generators on
        # a machine with few cores: it runs ahead of them when it may (as root).
        with contextlib.suppress(OSError):
            os.nice(-5)
    stats = asyncio.run(run(args))
    document: dict[str, Any] = asdict(stats)
    print(json.dumps(document), flush=True)


if __name__ == "__main__":
    main()
