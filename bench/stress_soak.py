"""A churn soak: many jobs that come and go for minutes on end, and what the server's memory does.

Run: `.venv/bin/python -m bench.stress_soak [--minutes 10] [--quick]`

Several clients, each on its own keep-alive connection, keep choosing among creates, updates,
deletes, polls with a random `since`, renders at random widths and scales, status and health
calls, and requests with bad parameters; another sends garbage that is not HTTP at all on new
connections. Job ids slide through a window: each create names a new job at the front and
deletes the one a little behind the back, so jobs come and go while their number stays about
the same. The server's RSS is sampled every --sample-seconds (30, quick 5). Prints one JSON
line: requests, answers by status, 5xx answers (goal 0), requests without an answer, the RSS
series, and the growth over the last half of the run (goal: under 10 %). The first minute or
so is warm-up (the answer cache fills towards its --cache-mb, 64 MiB by default), which is why
even the quick run lasts two minutes: the warm-up must fall within the first half.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stress import Http, emit, exit_on_sigterm, raw_exchange, rss_mb, say
from tests.serverproc import ServerProcess

WINDOW = 400  # live job ids at a time
LAG = 20  # how far behind the window a job is deleted: late updates do not bring it back
WORKERS_PER_JOB = 40
MAX_REQUESTS_PER_CLIENT = 5_000_000  # the count bound of each client's loop
GARBAGE = (
    b"\x00\xff\xfe garbage \x80\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nThis is not a header\r\n\r\n",
    b"GET /progress/update?" + b"a=1&" * 1500 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /progress/update HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /progress/update HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nabc",
    b"GET /progress/status?jobid=%ff%fe%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /progress/../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /static/%00.js HTTP/1.1\r\nHost: x\r\n\r\n",
    b"BREW /progress/update HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /progress/health HTTP/9.9\r\n\r\n",
    b"GET /progress/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
)
BAD_TARGETS = (
    "/progress/update?jobid=soak-x&workid=w&current=-1&total=5",
    "/progress/update?jobid=soak-x&workid=w&current=nan&total=inf",
    "/progress/update?jobid=&workid=w&current=1&total=5",
    "/progress/update?jobid=" + "x" * 300 + "&workid=w&current=1&total=5",
    "/progress/render?jobid=soak-x&width=99999",
    "/progress/render?jobid=soak-x&scale=0",
    "/progress/poll?jobid=soak-x&since=abc",
    "/progress/poll?jobid=soak-x&since=1&timeout=-4",
    "/progress/no-such-endpoint",
    "/progress/create?jobid=soak-x&desc=" + "d" * 3000,
    "/progress/status?jobid=%E2%82%AC%F0%9F%98%80",
)


@dataclass
class Soak:
    """What the clients share: the sliding window of job ids and the figures."""

    port: int
    rng: random.Random
    base: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def live_job(self) -> str:
        return f"soak-{self.base + self.rng.randrange(WINDOW)}"


def update_target(soak: Soak) -> str:
    rng = soak.rng
    query = {"jobid": soak.live_job(), "workid": f"w{rng.randrange(WORKERS_PER_JOB)}",
             "current": rng.randrange(1000), "total": 1000}
    if rng.random() < 0.1:
        query["desc"] = "x" * rng.randrange(1, 1500)
    if rng.random() < 0.05:
        query["ok"] = 0
    return "/progress/update?" + urllib.parse.urlencode(query)


def poll_target(soak: Soak) -> str:
    jobid = soak.live_job()
    known = soak.versions.get(jobid, 0)
    since = soak.rng.choice([0, known, max(0, known - soak.rng.randrange(1, 10**7)),
                             known + soak.rng.randrange(1, 10**6)])
    timeout = soak.rng.choice([0, 0, 0.2, 1])
    return f"/progress/poll?jobid={jobid}&since={since}&timeout={timeout}"


def render_target(soak: Soak) -> str:
    rng = soak.rng
    width = rng.randrange(200, 1601) if rng.random() < 0.9 else rng.choice([1, 199, 4001, 8000])
    return (f"/progress/render?jobid={soak.live_job()}&width={width}"
            f"&scale={rng.choice([1, 1, 1.5, 2])}")


def churn_targets(soak: Soak) -> list[str]:
    """A new job at the front of the window, and the deletion of one behind it."""
    front = soak.base + WINDOW
    soak.base += 1
    return [f"/progress/create?jobid=soak-{front}&desc=churn+{front}",
            f"/progress/delete?jobid=soak-{soak.base - 1 - LAG}"]


def next_targets(soak: Soak) -> list[tuple[str, str]]:
    """The next requests of one client, as (method, target) pairs; GET unless POST is said."""
    rng = soak.rng
    kind = rng.choices(["update", "churn", "delete", "poll", "render", "status", "health",
                        "bad", "post"], weights=[45, 6, 3, 12, 5, 12, 2, 5, 10])[0]
    if kind == "update":
        return [("GET", update_target(soak))]
    if kind == "post":
        return [("POST", update_target(soak))]
    if kind == "churn":
        return [("GET", target) for target in churn_targets(soak)]
    if kind == "delete":
        return [("GET", f"/progress/delete?jobid={soak.live_job()}")]
    if kind == "poll":
        return [("GET", poll_target(soak))]
    if kind == "render":
        return [("GET", render_target(soak))]
    if kind == "status":
        return [("GET", f"/progress/status?jobid={soak.live_job()}")]
    if kind == "health":
        return [("GET", "/progress/health")]
    return [("GET", rng.choice(BAD_TARGETS))]


async def client(soak: Soak, deadline: float) -> None:
    """One client's requests until the deadline, on one keep-alive connection."""
    http = Http(soak.port, timeout=10.0)
    try:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                return
            for method, target in next_targets(soak):
                path, _, query = target.partition("?")
                try:
                    if method == "POST":
                        answer = await http.request(path, "POST", query.encode())
                    else:
                        answer = await http.request(target)
                except (OSError, ValueError, asyncio.TimeoutError,
                        asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                    soak.errors[type(error).__name__] += 1
                    continue
                soak.statuses[answer.status] += 1
                if answer.status == 200 and path.endswith("/update"):
                    version = answer.body.split(b'"version":')[1].split(b",")[0]
                    soak.versions[urllib.parse.parse_qs(query)["jobid"][0]] = int(version)
    finally:
        http.close()


async def garbage(soak: Soak, deadline: float) -> None:
    """Bytes that are not a proper request, on new connections, a few a second."""
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if time.monotonic() >= deadline:
            return
        answer = await raw_exchange(soak.port, soak.rng.choice(GARBAGE), timeout=5.0)
        if answer is None:
            soak.statuses[0] += 1  # closed without an answer: acceptable for garbage
        else:
            soak.statuses[answer.status] += 1
        await asyncio.sleep(0.1)


async def sample(server: ServerProcess, began: float, deadline: float, every: float,
                 series: list[tuple[float, float]]) -> None:
    """The server's RSS now and every `every` seconds until the deadline."""
    assert server.process is not None
    for _ in range(100_000):
        mb = rss_mb(server.process.pid)
        if mb is not None:
            series.append((round(time.monotonic() - began, 1), round(mb, 2)))
        if time.monotonic() + every > deadline + 0.5:
            return
        await asyncio.sleep(every)


async def soak_server(server: ServerProcess, args: argparse.Namespace,
                      soak: Soak) -> list[tuple[float, float]]:
    began = time.monotonic()
    deadline = began + args.minutes * 60
    series: list[tuple[float, float]] = []
    tasks = [client(soak, deadline) for _ in range(args.clients)]
    await asyncio.gather(sample(server, began, deadline, args.sample_seconds, series),
                         garbage(soak, deadline), *tasks)
    mb = rss_mb(server.process.pid) if server.process else None
    if mb is not None:
        series.append((round(time.monotonic() - began, 1), round(mb, 2)))
    return series


def growth(series: list[tuple[float, float]]) -> tuple[float | None, float | None, float | None]:
    """RSS at the middle of the run, and the growth from there to the end (MB and %)."""
    if len(series) < 2:
        return None, None, None
    middle = next(mb for at, mb in series if at >= series[-1][0] / 2)
    grown = series[-1][1] - middle
    return middle, round(grown, 2), round(100.0 * grown / middle, 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="tornado-progress-soak-"))
    soak = Soak(0, random.Random(args.seed))
    try:
        server = ServerProcess(folder / "snapshots", None, "--new-jobs-per-minute", "0",
                               "--log-level", "warning", *args.server_arg).start()
        soak.port = server.port
        try:
            began = time.monotonic()
            series = asyncio.run(soak_server(server, args, soak))
            seconds = time.monotonic() - began
            health = server.get("health")
            log_bytes = server.log_path.stat().st_size
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    middle, grown_mb, grown_pct = growth(series)
    requests = sum(soak.statuses.values()) + sum(soak.errors.values())
    return {"part": "soak", "minutes": args.minutes, "clients": args.clients,
            "server_args": args.server_arg,
            "requests": requests, "rate": round(requests / seconds, 1),
            "statuses": dict(sorted(soak.statuses.items())),
            "five_xx": sum(n for status, n in soak.statuses.items() if status >= 500),
            "errors": sum(soak.errors.values()), "error_kinds": dict(soak.errors),
            "rss_series": series, "rss_mid_mb": middle, "rss_end_mb": series[-1][1],
            "peak_rss_mb": max(mb for _, mb in series), "growth_mb": grown_mb,
            "growth_pct": grown_pct, "jobs_at_end": health["jobs"],
            "workers_at_end": health["workers"], "log_bytes": log_bytes,
            "seconds": round(seconds, 1)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stress_soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, help="length of the soak (default 10, quick 2)")
    parser.add_argument("--quick", action="store_true", help="2 minutes, RSS every 5 s")
    parser.add_argument("--sample-seconds", type=float,
                        help="seconds between RSS samples (default 30, quick 5)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server-arg", action="append", default=[], metavar="OPTION",
                        help="an option for the server, e.g. --server-arg=--cache-mb=8 "
                             "(repeatable)")
    args = parser.parse_args(argv)
    if args.minutes is None:
        args.minutes = 2.0 if args.quick else 10.0
    if args.sample_seconds is None:
        args.sample_seconds = 5.0 if args.quick else 30.0
    if not (0 < args.minutes <= 240 and 0.5 <= args.sample_seconds <= 600
            and 1 <= args.clients <= 500):
        parser.error("--minutes 0 to 240, --sample-seconds 0.5 to 600, --clients 1 to 500")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    say(f"soak: {args.minutes:g} min of churn, {args.clients} clients, RSS every "
        f"{args.sample_seconds:g} s")
    record = run(args)
    emit(record)
    return 0 if record["five_xx"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
