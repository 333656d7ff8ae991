"""Connection attacks against a server limited to 1,024 descriptors, and what a well-behaved
worker's update costs meanwhile.

Run: `.venv/bin/python -m bench.stress_connections [--quick] [--only half-open,slowloris,flood]`

Three attacks, each against a fresh server started with an open-file limit of 1,024:
- half-open: 1,100 connections that send half a request header and stop (each reconnects a
  second after the server closes it, so the pressure lasts);
- slowloris: 500 connections that send one more header line every few seconds;
- flood: connections opened and closed as fast as 64 tasks can (half of them after sending a
  whole request whose answer they never read).
The attack runs in a child process (this program with --attacker), so that its busy event loop
does not slow the measurement. Meanwhile this process sends an update on a new connection
several times a second for --seconds (20, quick 8) and records each one's latency (a failed
update counts as its time to failure). Prints one JSON line per attack: p50, p99 and max of
the latency (goal: p99 under 2,000 ms), failed updates, the server log's growth in bytes
(goal: under 1 MB), and whether the server still answered health afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from bench.stress import (
    emit,
    exit_on_sigterm,
    latency_figures,
    raise_open_files,
    say,
)
from tests.serverproc import ServerProcess

SERVER_OPEN_FILES = 1024
HALF_REQUEST = b"GET /progress/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
FULL_REQUEST = b"GET /progress/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
# attack -> (connections or tasks, what the table calls it)
ATTACKS = {"half-open": (1100, "half-open x 1,100"), "slowloris": (500, "slowloris x 500"),
           "flood": (64, "connect-and-close flood")}
SLOWLORIS_EVERY_S = 3.0
RECONNECT_AFTER_S = 1.0
MAX_CONNECTS_PER_TASK = 100_000  # the count bound of every attacking loop
UPDATES_PER_SECOND = 5
WARMUP_S = 3.0


async def hold(port: int, deadline: float, drip: bool, tally: Counter[str]) -> None:
    """One attacking connection: half a request header, then (`drip`) a header line every few
    seconds, until the server closes it; then again after a pause, until the deadline."""
    for _ in range(MAX_CONNECTS_PER_TASK):
        if time.monotonic() >= deadline:
            return
        writer: asyncio.StreamWriter | None = None
        try:
            reader, stream = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), 10)
            writer = stream
            tally["connects"] += 1
            stream.write(HALF_REQUEST)
            while time.monotonic() < deadline:
                wait = min(SLOWLORIS_EVERY_S if drip else 0.5, deadline - time.monotonic())
                try:
                    await asyncio.wait_for(reader.read(4096), max(wait, 0.01))
                    tally["closed_by_server"] += 1
                    break  # an answer (the canned 503) or the end: the server closed it
                except asyncio.TimeoutError:
                    if drip:
                        stream.write(b"X-Slow: 1\r\n")
        except (OSError, asyncio.TimeoutError) as error:
            tally[f"error {type(error).__name__}"] += 1
        finally:
            if writer is not None:
                writer.close()
        await asyncio.sleep(RECONNECT_AFTER_S)


async def flood(port: int, deadline: float, tally: Counter[str]) -> None:
    """Connect and close, connect and close; every other time a whole request goes first."""
    for count in range(MAX_CONNECTS_PER_TASK):
        if time.monotonic() >= deadline:
            return
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            tally["connects"] += 1
            if count % 2:
                writer.write(FULL_REQUEST)
            writer.close()
            await asyncio.sleep(0)
        except (OSError, asyncio.TimeoutError) as error:
            tally[f"error {type(error).__name__}"] += 1
            await asyncio.sleep(0.01)


async def attack(kind: str, port: int, seconds: float) -> Counter[str]:
    count = ATTACKS[kind][0]
    deadline = time.monotonic() + seconds
    tally: Counter[str] = Counter()
    if kind == "flood":
        tasks = [flood(port, deadline, tally) for _ in range(count)]
    else:
        tasks = [hold(port, deadline, kind == "slowloris", tally) for _ in range(count)]
    await asyncio.wait_for(asyncio.gather(*tasks), seconds + 30)
    return tally


def timed_update(port: int, index: int) -> tuple[float, bool]:
    """One update on a new connection: its latency in seconds and whether it was answered."""
    url = (f"http://127.0.0.1:{port}/progress/update?jobid=measured&workid=w{index % 10}"
           f"&current={index}&total=1000000")
    began = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            ok = answer.status == 200 and b"version" in answer.read()
    except OSError:
        ok = False
    return time.monotonic() - began, ok


def measure(port: int, seconds: float) -> tuple[list[float], int]:
    """Updates at UPDATES_PER_SECOND for `seconds`: the latencies and the count that failed."""
    latencies: list[float] = []
    failed = 0
    began = time.monotonic()
    for index in range(int(seconds * UPDATES_PER_SECOND) + 1):
        due = began + index / UPDATES_PER_SECOND
        if due > began + seconds:
            break
        time.sleep(max(0.0, due - time.monotonic()))
        latency, ok = timed_update(port, index)
        latencies.append(latency)
        failed += not ok
    return latencies, failed


def start_attacker(kind: str, port: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.stress_connections", "--attacker", kind,
         "--port", str(port), "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)


def finish_attacker(process: subprocess.Popen[str], seconds: float) -> dict[str, Any]:
    """The attacker's tally once it has stopped (terminated if it overruns)."""
    try:
        output = process.communicate(timeout=seconds + 60)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
    lines = [line for line in output.splitlines() if line.startswith("{")]
    tally: dict[str, Any] = json.loads(lines[-1]) if lines else {"error": "no tally"}
    return tally


def run_attack(kind: str, folder: Path, seconds: float) -> dict[str, Any]:
    server = ServerProcess(folder / kind, None, open_files=SERVER_OPEN_FILES).start()
    attacker: subprocess.Popen[str] | None = None
    try:
        log_before = server.log_path.stat().st_size
        attack_seconds = WARMUP_S + seconds + 1.0
        attacker = start_attacker(kind, server.port, attack_seconds)
        time.sleep(WARMUP_S)
        latencies, failed = measure(server.port, seconds)
        tally = finish_attacker(attacker, attack_seconds)
        time.sleep(1.0)
        log_bytes = server.log_path.stat().st_size - log_before
        healthy = timed_update(server.port, 10**6)[1]
        log = server.log()
    finally:
        if attacker is not None and attacker.poll() is None:
            attacker.kill()
            attacker.wait()
        server.stop()
    return {"part": "connections", "attack": ATTACKS[kind][1], "kind": kind,
            "server_open_files": SERVER_OPEN_FILES, "attacker": tally,
            "connects": tally.get("connects", 0),
            "updates": len(latencies), "failed": failed, **latency_figures(latencies),
            "log_bytes": log_bytes, "tracebacks": log.count("Traceback"),
            "healthy_after": healthy, "seconds": seconds}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stress_connections",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 s of measurement per attack")
    parser.add_argument("--seconds", type=float,
                        help="seconds of measurement per attack (default 20, quick 8)")
    parser.add_argument("--only", default=",".join(ATTACKS),
                        help="comma-separated attacks (default: all)")
    parser.add_argument("--attacker", choices=sorted(ATTACKS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 8.0 if args.quick else 20.0
    unknown = set(args.only.split(",")) - set(ATTACKS)
    if unknown or not 1 <= args.seconds <= 600:
        parser.error(f"unknown attacks {sorted(unknown)} or --seconds not within 1 to 600")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    limit = raise_open_files()
    if args.attacker:
        emit(dict(asyncio.run(attack(args.attacker, args.port, args.seconds))))
        return 0
    folder = Path(tempfile.mkdtemp(prefix="tornado-progress-connections-"))
    try:
        for kind in args.only.split(","):
            say(f"connections: {ATTACKS[kind][1]} against {SERVER_OPEN_FILES} descriptors "
                f"(this process may hold {limit}), {args.seconds:g} s of updates")
            emit(run_attack(kind, folder, args.seconds))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
