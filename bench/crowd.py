"""Thousands of viewers long-polling one job, in one lean client process, and the sender that
updates that job at a steady rate: what scenarios 10 to 12 measure delivery and wake-ups with.

Run (bench/scenarios_crowd.py does, through `CrowdProcess` and `send`):

    python -m bench.crowd view --port P --jobid J --since V --viewers N --out FILE [--once]
    python -m bench.crowd send --port P --jobid J --hz 10 --seconds S --out FILE

`view` opens N keep-alive connections, each a viewer as the show page is: a first `GET
poll?jobid=J&since=V&timeout=0` answered at once, then `GET poll?jobid=J&since=V&timeout=60`,
asked again at once with the version of each answer (with `--once`, never again). At most
OPENING connections wait for their first answer at a time: a connection is established by the
kernel before the server accepts it, so a client opening them faster than the server accepts
overflows the listen backlog (128), and each dropped SYN costs a second. One asyncio Protocol
a connection, no StreamReader, so that the client's own cost stays small beside the server's.
It prints `ready` once every viewer has had its first answer, then reads commands on stdin:
`stop V` (a viewer whose answer carries version V or later asks no more: it is done), after
which it prints `done` once every viewer is done or GRACE_S have passed; `close` (or the end of
stdin) closes every connection, writes FILE (each viewer's answers but the first as [receive
time, version], errors, the client's own CPU and loop lag) and exits. It raises its open-file
limit to the hard one, and lives at most `--max-seconds`.

`send` updates job J's workers w0..w(workers-1) in turn, `hz` times a second for `seconds` on
one keep-alive connection, and writes FILE: [send time, answer ms, version, status] an update.
It runs ahead of the other benchmark processes (nice -5, as root), so that its readings do not
wait for the viewers' client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_VERSION = re.compile(rb'"version":(\d+)')
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
OPENING = 64  # connections opened and not yet answered, at most
GRACE_S = 10.0  # after `stop V`: how long a viewer may take to see V
POLL_TIMEOUT_S = 60


def raise_open_files() -> int:
    """The soft limit of open files raised to the hard one: the crowd holds thousands."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


class Viewer(asyncio.Protocol):
    """One connection: a poll, its answer, the next poll."""

    def __init__(self, crowd: Crowd) -> None:
        self.crowd = crowd
        self.buffer = bytearray()
        self.since = crowd.since
        self.answers: list[tuple[float, int]] = []
        self.transport: asyncio.Transport | None = None
        self.done = False
        self.greeted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def ask(self, timeout: int = POLL_TIMEOUT_S) -> None:
        assert self.transport is not None
        self.transport.write(self.crowd.request % (self.since, timeout))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = _LENGTH.search(self.buffer, 0, end + 2)
            total = end + 4 + (int(length.group(1)) if length else 0)
            if len(self.buffer) < total:
                return
            status, body = int(self.buffer[9:12]), bytes(self.buffer[end + 4:total])
            del self.buffer[:total]
            self.answered(status, body)

    def answered(self, status: int, body: bytes) -> None:
        now = time.time()
        if status != 200:
            self.crowd.errors += 1
            self.finish()
            return
        match = _VERSION.search(body)
        self.since = max(self.since, int(match.group(1)) if match else 0)
        if not self.greeted.done():  # the first answer: now the long polls
            self.greeted.set_result(None)
            self.ask()
            return
        self.answers.append((now, self.since))
        stop = self.crowd.stop_version
        if stop is not None and self.since >= stop:
            self.finish()
        elif not self.crowd.once:
            self.ask()

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self.crowd.finished()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.greeted.done():
            self.greeted.set_exception(ConnectionError("closed before its first answer"))
        if not self.done and not self.crowd.closing:
            self.crowd.errors += 1
            self.finish()


class Crowd:
    """The viewers of one job, and when they are all done."""

    def __init__(self, jobid: str, since: int, once: bool) -> None:
        self.request = (f"GET /progress/poll?jobid={jobid}&since=%d&timeout=%d "
                        "HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode()
        self.since = since
        self.once = once
        self.viewers: list[Viewer] = []
        self.stop_version: int | None = None
        self.errors = 0
        self.closing = False
        self.left = 0
        self.all_done = asyncio.Event()

    async def connect(self, port: int, count: int) -> None:
        """`count` viewers, each once its first answer came, OPENING at a time."""
        loop, gate = asyncio.get_running_loop(), asyncio.Semaphore(OPENING)
        self.left = count

        async def one() -> None:
            async with gate:
                _, viewer = await loop.create_connection(lambda: Viewer(self), "127.0.0.1",
                                                         port)
                self.viewers.append(viewer)
                viewer.ask(timeout=0)
                await viewer.greeted

        await asyncio.gather(*(one() for _ in range(count)))

    def stop(self, version: int) -> None:
        self.stop_version = version
        for viewer in self.viewers:
            if viewer.since >= version:
                viewer.finish()

    def finished(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.all_done.set()

    def close(self) -> None:
        self.closing = True
        for viewer in self.viewers:
            if viewer.transport is not None:
                viewer.transport.close()


async def lag_probe(lag: list[float]) -> None:
    """The worst lateness of this client's own loop: delivery times include it."""
    while True:
        expected = time.perf_counter() + 0.01
        await asyncio.sleep(0.01)
        lag[0] = max(lag[0], time.perf_counter() - expected)


async def commands() -> asyncio.Queue[str]:
    """Lines of stdin as they come ("" at its end)."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    loop, fd, pending = asyncio.get_running_loop(), sys.stdin.fileno(), [b""]

    def readable() -> None:
        chunk = os.read(fd, 4096)
        if not chunk:
            loop.remove_reader(fd)
            queue.put_nowait("")
            return
        *lines, pending[0] = (pending[0] + chunk).split(b"\n")
        for line in lines:
            queue.put_nowait(line.decode().strip())

    loop.add_reader(fd, readable)
    return queue


async def serve_commands(crowd: Crowd, queue: asyncio.Queue[str]) -> None:
    """`stop V` then `done` when all are done (or after GRACE_S); returns at `close`/EOF."""
    waiting: asyncio.Task[None] | None = None
    while (line := await queue.get()) not in ("", "close"):
        if line.startswith("stop ") and waiting is None:
            crowd.stop(int(line.split()[1]))
            waiting = asyncio.create_task(announce_done(crowd))
    if waiting is not None:
        waiting.cancel()


async def announce_done(crowd: Crowd) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(crowd.all_done.wait(), GRACE_S)
    print("done", flush=True)


async def view(args: argparse.Namespace) -> dict[str, Any]:
    limit = raise_open_files()
    crowd, lag = Crowd(args.jobid, args.since, args.once), [0.0]
    prober = asyncio.create_task(lag_probe(lag))
    queue = await commands()
    began = time.perf_counter()
    await crowd.connect(args.port, args.viewers)
    connect_s = time.perf_counter() - began
    print("ready", flush=True)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(serve_commands(crowd, queue), args.max_seconds)
    crowd.close()
    prober.cancel()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"answers": [viewer.answers for viewer in crowd.viewers], "errors": crowd.errors,
            "unfinished": sum(not viewer.done for viewer in crowd.viewers),
            "connect_s": connect_s, "client_lag_max_ms": 1000 * lag[0],
            "cpu_s": usage.ru_utime + usage.ru_stime, "open_file_limit": limit}


def send(args: argparse.Namespace) -> dict[str, Any]:
    """Updates at a steady rate on one keep-alive connection, each timed."""
    with contextlib.suppress(OSError):
        os.nice(-5)
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
    records: list[tuple[float, float, int | None, int]] = []
    started = time.monotonic()
    for i in range(round(args.hz * args.seconds)):
        time.sleep(max(0.0, started + i / args.hz - time.monotonic()))
        sent, began = time.time(), time.perf_counter()
        connection.request("GET", f"/progress/update?jobid={args.jobid}&workid=w"
                                  f"{i % args.workers}&current={i}&total=1000000000")
        response = connection.getresponse()
        body = response.read()
        answer_ms = 1000 * (time.perf_counter() - began)
        version = json.loads(body)["version"] if response.status == 200 else None
        records.append((sent, answer_ms, version, response.status))
    connection.close()
    return {"updates": records}


class CrowdProcess:
    """The harness's side of `view`: start, `ready`, `stop V`, `done`, `close`, the figures."""

    def __init__(self, port: int, jobid: str, since: int, viewers: int, out: Path,
                 once: bool = False, max_seconds: float = 120.0) -> None:
        self.out = out
        command = [sys.executable, "-m", "bench.crowd", "view", "--port", str(port),
                   "--jobid", jobid, "--since", str(since), "--viewers", str(viewers),
                   "--out", str(out), "--max-seconds", f"{max_seconds:g}",
                   *(["--once"] if once else [])]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, start_new_session=True)

    def expect(self, word: str, timeout: float) -> None:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().strip() if ready else "(nothing)"
        if line != word:
            raise RuntimeError(f"the crowd said {line!r} instead of {word!r} within {timeout} s")

    def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self, version: int) -> None:
        """Tells the version to reach and waits until every viewer has (or GRACE_S passed)."""
        self.tell(f"stop {version}")
        self.expect("done", GRACE_S + 10.0)

    def close(self) -> dict[str, Any]:
        self.tell("close")
        self.process.wait(30)
        figures: dict[str, Any] = json.loads(self.out.read_text())
        return figures

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("view", "send"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jobid", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--since", type=int, default=0)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--once", action="store_true", help="one answer a viewer")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=10)
    args = parser.parse_args()
    figures = asyncio.run(view(args)) if args.mode == "view" else send(args)
    args.out.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
