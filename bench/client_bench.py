"""What tornado_progress.client costs a worker, and what batches save, measured against a real
server on 127.0.0.1.

Run: `.venv/bin/python -m bench.client_bench [--reporters 1000] [--seconds 6]
[--connections 4] [--throughput-seconds 3] [--json PATH]`

1. CPU per `update()` call: the calling thread's CPU time (`time.thread_time`) over 200,000
   calls, to a live server and to a dead one (a port nobody listens on).
2. Requests per second that 1,000 reporters of one process (10 jobs of 100) produce with the
   default interval (1 s), each updated ten times a second for `--seconds`: counted on the
   server's side (its access log: single updates and batches), with the worker updates the
   server recorded meanwhile (its metrics) and the client process's CPU (sender included);
   then again with the reporters' first states spread over a second (4 s window), as
   independent workers start: the case that batches only when due times are aligned.
3. The slowdown of a worker's loop (items of about 0.2 ms of work) when every item calls
   `update()` on a reporter whose server is dead: the median, over 15 pairs of runs, of the
   ratio of the loop's time with the reporter to the time without.

4. What the server takes in through `POST updates` with batches of 100 lines, against single
   `update` requests: `--connections` kept-alive connections (raw sockets sending prebuilt
   requests, one at a time each, so that the client costs little) for `--throughput-seconds`
   each way (in three turns of each, the median kept), against a server without an access
   log; worker updates recorded per second, and the server's CPU share.

Bounded: about 30 s in all. Prints one line per figure; `--json` also writes them to a file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
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
BATCH_LINES = 100
THROUGHPUT_TRIES = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(folder: Path, access_log: bool = True) -> Iterator[tuple[str, Path, int]]:
    """`python -m tornado_progress` on 127.0.0.1 (with `--access-log` unless told otherwise):
    its URL, log file and process id."""
    port = free_port()
    log_path = folder / f"server-{port}.log"
    logging = ["--access-log", "--log-level", "info"] if access_log else []
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tornado_progress", "--host", "127.0.0.1", "--port",
             str(port), "--snapshot-dir", str(folder / f"snapshots-{port}"), *logging],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
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
        yield url, log_path, process.pid
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


def requests_logged(log_path: Path) -> tuple[int, int]:
    """The single updates and the batches in the server's access log."""
    text = log_path.read_text()
    return text.count("POST /progress/update "), text.count("POST /progress/updates?")


def updates_recorded(url: str) -> int:
    """The worker updates the server has recorded, from its metrics."""
    with urllib.request.urlopen(f"{url}/progress/metrics", timeout=10) as answer:
        found = re.search(rb"^tornado_progress_updates_total (\S+)$", answer.read(), re.M)
    assert found, "no tornado_progress_updates_total in the metrics"
    return int(float(found.group(1)))


def round_gap_s(log_text: str, jobid: str) -> float:
    """The mean time between two rounds of batches of `jobid` in an access log, from the
    lines' times (a round: batches less than half a second apart; NaN with fewer than two
    rounds). With batches the states arrive in rounds, so a window of a few seconds holds a
    whole number of them: this is the rate that does not depend on where the window falls."""
    times = [time.mktime(time.strptime(found.group(1), "%Y-%m-%d %H:%M:%S"))
             + int(found.group(2)) / 1000
             for found in re.finditer(r"^(\S+ \S+),(\d{3}) .*POST /progress/updates\?jobid="
                                      + re.escape(jobid) + " ", log_text, re.M)]
    starts = [t for k, t in enumerate(times) if k == 0 or t - times[k - 1] > 0.5]
    return (starts[-1] - starts[0]) / (len(starts) - 1) if len(starts) > 1 else math.nan


def keep_updating(reporters: list[Reporter], seconds: float, per_s: float = ROUNDS_PER_S,
                  ramp: float = 0.0) -> int:
    """Gives every reporter a new state `per_s` times a second for `seconds`; with `ramp`,
    the reporters start one after the other over that many seconds (each's first state at a
    moment of its own, as independent workers start). Answers the rounds."""
    start, rounds = time.monotonic(), 0
    while (now := time.monotonic() - start) < seconds:
        rounds += 1
        started = len(reporters) if ramp <= 0 else int(len(reporters) * min(1, now / ramp))
        for reporter in reporters[:started]:
            reporter.update(rounds % 100, 100, desc=f"round {rounds}")
        time.sleep(max(0.0, start + rounds / per_s - time.monotonic()))
    return rounds


def many_reporters(url: str, log_path: Path, count: int, seconds: float,
                   staggered: bool = False) -> dict[str, float]:
    """Requests per second from `count` reporters of 10 jobs with the default interval, each
    updated ROUNDS_PER_S times a second; the updates recorded meanwhile; the client's CPU
    share. The reporters start all at once, or `staggered` over a second."""
    reporters = [Reporter(url, f"bench-many-{k % 10}", f"w{k}") for k in range(count)]
    if staggered:
        keep_updating(reporters, 2.0, per_s=100, ramp=1.0)
    else:
        for reporter in reporters:  # first requests, out of the measured window
            reporter.update(0, 100)
        flush_all(timeout=30)
    singles, batches = requests_logged(log_path)
    log_start = len(log_path.read_text())
    recorded, cpu_before = updates_recorded(url), time.process_time()
    start = time.monotonic()
    rounds = keep_updating(reporters, seconds)
    elapsed = time.monotonic() - start
    cpu = time.process_time() - cpu_before
    recorded = updates_recorded(url) - recorded
    singles_after, batches_after = requests_logged(log_path)
    singles, batches = singles_after - singles, batches_after - batches
    gap = round_gap_s(log_path.read_text()[log_start:], "bench-many-0")
    for reporter in reporters:
        reporter.close(timeout=0)
    flush_all(timeout=30)
    return {"requests_per_s": (singles + batches) / elapsed, "batches_per_s": batches / elapsed,
            "updates_delivered_per_s": recorded / elapsed, "round_gap_s": gap,
            "steady_updates_per_s": count / gap,
            "update_calls_per_s": rounds * count / elapsed, "client_cpu_share": cpu / elapsed}


def work() -> int:
    """A small item of a worker's work: about 0.2 ms (tests/test_client.py times loops of it
    too)."""
    return sum(j * j for j in range(6000))


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


# -- the endpoints' throughput: batches against single updates -------------------------------


def prebuilt_requests(port: int, jobid: str, lines: int) -> list[bytes]:
    """Whole HTTP requests for the workers of `jobid`, a few states each: one `update` a
    worker when `lines` is 1, else batches of `lines` workers each."""
    def request(path: str, body: bytes) -> bytes:
        return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def form(workid: int, current: int) -> bytes:
        return (f"jobid={jobid}&workid=w{workid}&current={current}&total=100"
                f"&desc=step+{current}").encode()

    if lines == 1:
        return [request("/progress/update", form(w, current))
                for current in range(4) for w in range(BATCH_LINES)]
    return [request(f"/progress/updates?jobid={jobid}",
                    b"\n".join(form(w, current) for w in range(lines)))
            for current in range(4)]


class Answers:
    """Reads the answers of one kept-alive connection, one after the other."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> None:
        chunk = self.sock.recv(256 * 1024)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def next(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        found = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        length = int(found.group(1)) if found else 0
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(head[9:12]), body


def keep_sending(port: int, requests: list[bytes], lines: int, deadline: float,
                 totals: list[int]) -> None:
    """Sends `requests` in turn over one connection until `deadline`; adds to `totals` the
    requests answered, the updates recorded and the lines or requests refused."""
    answered = recorded = refused = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answers = Answers(sock)
        while time.monotonic() < deadline:
            sock.sendall(requests[answered % len(requests)])
            status, body = answers.next()
            answered += 1
            errors = body.count(b'"error"') if status == 200 else lines
            recorded += lines - errors
            refused += errors
    for index, value in enumerate((answered, recorded, refused)):
        totals[index] += value  # under the GIL: one list, added to by each thread in turn


def cpu_seconds(pid: int) -> float:
    """The CPU time of process `pid` so far (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(url: str, pid: int, lines: int, connections: int,
               seconds: float) -> dict[str, float]:
    """Worker updates recorded per second through `connections` connections at once, and the
    server's CPU share meanwhile."""
    port = int(url.rsplit(":", 1)[1])
    cpu = cpu_seconds(pid)
    totals = [0, 0, 0]
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=keep_sending, args=(
        port, prebuilt_requests(port, f"bench-tp-{lines}-{c}", lines), lines, deadline,
        totals)) for c in range(connections)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.monotonic() - start
    cpu = cpu_seconds(pid) - cpu
    answered, recorded, refused = totals
    assert refused == 0, f"{refused} updates refused"
    return {"requests_per_s": answered / elapsed, "updates_per_s": recorded / elapsed,
            "server_cpu_share": cpu / elapsed}


def batch_throughput(folder: Path, connections: int, seconds: float) -> dict[str, float]:
    """Single updates against batches, in THROUGHPUT_TRIES turns of each (so that a noisy
    neighbour spoils both alike), each way's median."""
    runs: dict[int, list[dict[str, float]]] = {1: [], BATCH_LINES: []}
    with server(folder, access_log=False) as (url, _, pid):
        for _ in range(THROUGHPUT_TRIES):
            for lines, found in runs.items():
                found.append(throughput(url, pid, lines, connections,
                                        seconds / THROUGHPUT_TRIES))
    single, batch = (sorted(found, key=lambda run: run["updates_per_s"])[len(found) // 2]
                     for found in runs.values())
    return {"single_updates_per_s": single["updates_per_s"],
            "single_server_cpu_share": single["server_cpu_share"],
            "batch_requests_per_s": batch["requests_per_s"],
            "batch_updates_per_s": batch["updates_per_s"],
            "batch_server_cpu_share": batch["server_cpu_share"],
            "batch_gain": batch["updates_per_s"] / single["updates_per_s"],
            "batch_gain_per_server_cpu": (batch["updates_per_s"] / batch["server_cpu_share"])
            / (single["updates_per_s"] / single["server_cpu_share"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reporters", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--throughput-seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        with server(Path(folder)) as (url, log_path, _):
            figures: dict[str, float] = {"live_update_cpu_us": update_cost_us(url)}
            figures.update(many_reporters(url, log_path, args.reporters, args.seconds))
            staggered = many_reporters(url, log_path, args.reporters, 4.0, staggered=True)
            figures.update({f"staggered_{name}": value for name, value in staggered.items()
                            if name not in ("round_gap_s", "steady_updates_per_s")})
        figures.update(batch_throughput(Path(folder), args.connections,
                                        args.throughput_seconds))
    figures.update(dead_server_slowdown())
    report(args, figures)


def report(args: argparse.Namespace, figures: dict[str, float]) -> None:
    print(f"update() CPU, live server: {figures['live_update_cpu_us']:.2f} µs per call")
    print(f"update() CPU, dead server: {figures['dead_update_cpu_us']:.2f} µs per call")
    print(f"{args.reporters} reporters, interval 1 s, {figures['update_calls_per_s']:,.0f} "
          f"update() calls/s: {figures['requests_per_s']:,.0f} requests/s at the server "
          f"({figures['batches_per_s']:,.0f} of them batches), "
          f"{figures['updates_delivered_per_s']:,.0f} worker updates/s recorded, "
          f"client process CPU {figures['client_cpu_share']:.0%} of a core")
    if math.isfinite(figures["round_gap_s"]):
        print(f"  (in rounds: a job's batches every {figures['round_gap_s']:.3f} s, so "
              f"{figures['steady_updates_per_s']:,.0f} worker updates/s however the window "
              "falls)")
    print(f"the same started over a second: {figures['staggered_requests_per_s']:,.0f} "
          f"requests/s, {figures['staggered_updates_delivered_per_s']:,.0f} worker updates/s "
          "recorded")
    print(f"loop of {figures['loop_item_ms']:.2f} ms items, dead server: "
          f"{figures['loop_slowdown']:+.1%} time")
    print(f"{args.connections} kept-alive connections, {args.throughput_seconds:g} s each way: "
          f"single update requests {figures['single_updates_per_s']:,.0f} updates/s "
          f"(server CPU {figures['single_server_cpu_share']:.0%}); "
          f"batches of {BATCH_LINES} {figures['batch_updates_per_s']:,.0f} updates/s "
          f"({figures['batch_requests_per_s']:,.0f} requests/s, server CPU "
          f"{figures['batch_server_cpu_share']:.0%}): {figures['batch_gain']:.1f}x, "
          f"{figures['batch_gain_per_server_cpu']:.1f}x per second of the server's CPU")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
