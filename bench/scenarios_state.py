"""Scenarios about held state (4, 5, 6 and 7): memory per worker, render times, the size of a
poll delta, and start-up from a 1,000,000-worker snapshot.

Render (5) of a 100-worker job is timed through HTTP, as a page gets it: uncached, every
worker's position and string changed by an update before each render so that no picture or
band drawn before can serve, and after one worker's update, the other 99 as in the render
before (the server keeps the bands of a picture that did not change); then the cached answer.
One untimed round goes first, as a server that has been running a while would be: the render
threads have loaded their fonts, shaped the words the strings are made of and made their
surfaces (the first renders of a new server take 20-40 % longer). Apart,
for the drawing alone, `render.render_chart(chart, 800, 1)` in this process (no band cache: the
render module is being rewritten, and that call and `ChartInput` are all this touches of it).

Memory and start-up use the plain `python -m tornado_progress` (no benchmark wrapper): RSS of a
server loaded from a generated snapshot minus RSS of the same server started empty.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bench.fixtures import Client, base_version, job_set, workers_snapshot, write_snapshot
from bench.report import Row, median, median_row
from bench.scenarios_load import Bench
from bench.systems import System
from tornado_progress.config import Settings
from tornado_progress.model import Worker

MEMORY_SIZES = (100_000, 1_000_000)
STARTUP_RUNS = 2
RENDER_UNCACHED = 2
RENDER_WORKERS = 100
RENDER_RUNS = 10  # renders of each kind a round, in process
RENDER_UNCACHED_GOAL_MS = 12.0
RENDER_ONE_CHANGED_GOAL_MS = 4.0
RENDER_CACHED = 50
RENDER_LARGE = 3
RENDER_JOB, LARGE_JOB, POLL_JOB = "render100-0", "render10k-0", "poll1k-0"


def start_timed(bench: Bench, folder: Path, name: str) -> tuple[System, float]:
    """The product started on `folder`: the system and seconds to its first 200 from health."""
    began = time.perf_counter()
    system = bench.fleet.product(folder, name=name)
    return system, time.perf_counter() - began


def memory_and_startup(bench: Bench) -> tuple[list[Row], dict[str, Any]]:
    """Scenarios 4 and 7: RSS per worker at 100,000 and 1,000,000 workers; start-up time."""
    empty, _ = start_timed(bench, bench.work / "memory-empty", "product-empty")
    time.sleep(0.2)
    baseline = empty.rss_bytes()
    bench.fleet.stop(empty)
    raw: dict[str, Any] = {"rss_empty": baseline, "sizes": {}}
    rows = []
    for size in MEMORY_SIZES:
        folder = bench.work / f"memory-{size}"
        snapshot = workers_snapshot(folder, size)
        starts, rss = [], []
        for run in range(STARTUP_RUNS if size == MEMORY_SIZES[-1] else 1):
            system, seconds = start_timed(bench, folder, f"product-{size}-{run}")
            time.sleep(0.2)
            starts.append(seconds)
            rss.append(system.rss_bytes())
            bench.fleet.stop(system)
        per_worker = (median(rss) - baseline) / size
        raw["sizes"][size] = {"rss": rss, "startup_s": starts,
                              "snapshot_bytes": snapshot.stat().st_size}
        rows.append(Row(4, f"RSS per worker at {size:,} workers", per_worker, "B/worker", "<=",
                        400.0, f"RSS {median(rss) / 2**20:.0f} MiB, empty "
                        f"{baseline / 2**20:.0f} MiB"))
        starts_row = Row(7, f"start-up with {size:,} workers to first health 200", max(starts),
                         "s", note=f"slowest of {len(starts)}; snapshot "
                         f"{snapshot.stat().st_size / 2**20:.0f} MiB")
        if size == 1_000_000:
            starts_row.goal_op, starts_row.goal = "<=", 10.0
        rows.append(starts_row)
        snapshot.unlink()
    return rows, raw


def render_fixture(folder: Path) -> None:
    """Jobs of 100 and 10,000 workers to render, and one of 1,000 workers to poll."""
    now, version = time.time(), base_version()
    jobs = (job_set("render100-", 1, 100, now, version)
            + job_set("render10k-", 1, 10_000, now, version + 20_000)
            + job_set("poll1k-", 1, 1_000, now, version + 40_000))
    write_snapshot(folder, jobs)


def server_ms(rows: list[list[Any]], path: str) -> list[float]:
    """Tornado's request times (ms) of the requests to `path`, in order."""
    return [float(ms) for row_path, status, ms in rows if row_path == path and status == 200]


def render_times(client: Client, system: System, jobid: str, uncached: int,
                 cached: int) -> dict[str, Any]:
    """Client and server times of renders right after an update, then of repeated ones."""
    url = f"/progress/render?jobid={jobid}"
    system.control("timing/start")
    client_uncached, client_cached, size = [], [], 0
    for i in range(uncached):
        client.ok(f"/progress/update?jobid={jobid}&workid=w{i % 100}&current={i % 100}"
                  "&total=100&desc=rendering")
        _, body, seconds = client.get(url)
        client_uncached.append(1000 * seconds)
        size = len(body)
    for _ in range(cached):
        client_cached.append(1000 * client.get(url)[2])
    server = server_ms(system.control("timing/stop"), "/progress/render")
    return {"client_uncached_ms": client_uncached, "client_cached_ms": client_cached,
            "server_uncached_ms": server[:uncached], "server_cached_ms": server[uncached:],
            "png_bytes": size}


def http_render_round(client: Client, system: System, step: int,
                      timed: bool = True) -> dict[str, list[float]]:
    """Client and server ms of RENDER_RUNS renders of RENDER_JOB through HTTP after every
    worker changed, then of RENDER_RUNS after one worker changed (not timed by the server
    unless `timed`)."""
    url = f"/progress/render?jobid={RENDER_JOB}"

    def update(k: int, current: int, desc: str) -> None:
        client.ok(f"/progress/update?jobid={RENDER_JOB}&workid=w{k}&current={current}"
                  f"&total=100&desc={urllib.parse.quote(desc)}")

    times: dict[str, list[float]] = {"client_uncached_ms": [], "client_one_changed_ms": []}
    if timed:
        system.control("timing/start")
    for i in range(RENDER_RUNS):
        for k in range(RENDER_WORKERS):
            update(k, (k + step + i) % 101, f"calibrating band {k % 7}, pass {step + i}")
        times["client_uncached_ms"].append(1000 * client.get(url)[2])
    for i in range(RENDER_RUNS):
        k = i * 37 % RENDER_WORKERS
        update(k, (k + step + i) % 101, f"changed {step + i}")
        times["client_one_changed_ms"].append(1000 * client.get(url)[2])
    server = server_ms(system.control("timing/stop"), "/progress/render") if timed else []
    return {**times, "server_uncached_ms": server[:RENDER_RUNS],
            "server_one_changed_ms": server[RENDER_RUNS:]}


def http_render_rows(rounds: list[dict[str, list[float]]]) -> list[Row]:
    """The goal rows of scenario 5: per round the median of RENDER_RUNS renders of each kind."""
    def per_round(key: str) -> list[float]:
        return [median(result[key]) for result in rounds]

    def pooled(key: str) -> list[float]:
        return [ms for result in rounds for ms in result[key]]

    return [
        median_row(5, f"render {RENDER_WORKERS} workers, uncached (HTTP, client round trip)",
                   per_round("client_uncached_ms"), "ms", "<=", RENDER_UNCACHED_GOAL_MS,
                   f"every worker's bar and string new each render; server "
                   f"{median(per_round('server_uncached_ms')):.2f} ms; max "
                   f"{max(pooled('client_uncached_ms')):.1f} ms of "
                   f"{len(pooled('client_uncached_ms'))}"),
        median_row(5, f"render {RENDER_WORKERS} workers after one worker changed (HTTP, client "
                   "round trip)", per_round("client_one_changed_ms"), "ms", "<=",
                   RENDER_ONE_CHANGED_GOAL_MS, f"the other {RENDER_WORKERS - 1} as in the "
                   f"render before; server {median(per_round('server_one_changed_ms')):.2f} "
                   f"ms; max {max(pooled('client_one_changed_ms')):.1f} ms of "
                   f"{len(pooled('client_one_changed_ms'))}"),
    ]


def chart_workers(step: int, now: float) -> list[Worker]:
    """RENDER_WORKERS workers of a running job, every position and string new at each step."""
    return [Worker(f"w{k}", (k + step) % 101, 100, f"calibrating band {k % 7}, pass {step}",
                   k % 97 != 3, now - k % 60, step * RENDER_WORKERS + k, 0.5 + k % 10 / 10)
            for k in range(RENDER_WORKERS)]


def render_round(step: int, runs: int) -> dict[str, list[float]]:
    """ms of `runs` uncached renders, then of `runs` renders each after one worker changed."""
    from tornado_progress import render  # here: the render module is being rewritten

    now = time.time()

    def timed(workers: list[Worker]) -> float:
        chart = render.ChartInput("render-in-process", "benchmark job", tuple(workers), now,
                                  Settings.stale_after)
        began = time.perf_counter()
        render.render_chart(chart, 800, 1)
        return 1000 * (time.perf_counter() - began)

    uncached = [timed(chart_workers(step + i, now)) for i in range(runs)]
    workers = chart_workers(step + runs, now)
    timed(workers)
    one_changed = []
    for i in range(runs):
        k = i * 37 % RENDER_WORKERS
        old = workers[k]
        workers[k] = old._replace(current=(old.current + 1) % 101, desc=f"changed {step + i}",
                                  version=old.version + RENDER_WORKERS * runs)
        one_changed.append(timed(workers))
    return {"uncached_ms": uncached, "one_changed_ms": one_changed}


def render_in_process(rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """Scenario 5's in-process rows: per round the median of RENDER_RUNS renders of each kind."""
    render_round(0, 2)  # the first renders load fonts
    results = [render_round(1000 * (r + 1), RENDER_RUNS) for r in range(rounds)]
    every = {kind: [ms for result in results for ms in result[kind]] for kind in results[0]}
    rows = [
        median_row(5, "render_chart alone in process (no band cache), uncached",
                   [median(result["uncached_ms"]) for result in results], "ms",
                   note=f"{len(every['uncached_ms'])} renders, max "
                   f"{max(every['uncached_ms']):.1f} ms; 800 px wide, scale 1"),
        median_row(5, "render_chart alone in process (no band cache), one worker changed",
                   [median(result["one_changed_ms"]) for result in results], "ms",
                   note=f"{len(every['one_changed_ms'])} renders, max "
                   f"{max(every['one_changed_ms']):.1f} ms"),
    ]
    return rows, {"rounds": results}


def render_and_poll(bench: Bench) -> tuple[list[Row], dict[str, Any]]:
    """Scenarios 5 and 6: render 100 and 10,000 workers; the poll delta of one change."""
    folder = bench.work / "snapshots-render"
    render_fixture(folder)
    system = bench.fleet.ours(folder, "--snapshot-interval", "3600", name="ours-render")
    client = Client(system.port)
    try:
        http_render_round(client, system, 0, timed=False)  # warm-up: see the docstring
        http_rounds = [http_render_round(client, system, 1000 * (r + 1))
                       for r in range(bench.rounds)]
        small = render_times(client, system, RENDER_JOB, RENDER_UNCACHED, RENDER_CACHED)
        large = render_times(client, system, LARGE_JOB, RENDER_LARGE, RENDER_LARGE)
        payload = poll_payload(client)
    finally:
        client.close()
        bench.fleet.stop(system)
    in_process, raw_in_process = render_in_process(bench.rounds)
    rows = [
        *http_render_rows(http_rounds),
        Row(5, "render 100 workers, cached answer (server time)",
            median(small["server_cached_ms"]), "ms", "<=", 1.0,
            f"client round trip {median(small['client_cached_ms']):.2f} ms; PNG "
            f"{small['png_bytes']:,} B"),
        *in_process,
        Row(5, "render 10,000 workers, uncached (client round trip)",
            median(large["client_uncached_ms"]), "ms",
            note=f"server {median(large['server_uncached_ms']):.1f} ms; "
            f"PNG {large['png_bytes']:,} B; cached {median(large['server_cached_ms']):.2f} ms"),
        Row(6, "poll body, 1 changed worker of 1,000", float(payload["bytes"]), "B", "<=",
            1024.0, f"full={payload['full']}, {payload['workers']} worker(s) in the answer; "
            f"whole job {payload['full_bytes']:,} B"),
    ]
    return rows, {"render_100_http": http_rounds, "render_100": small, "render_10k": large,
                  "poll": payload, "render_in_process": raw_in_process}


def poll_payload(client: Client) -> dict[str, Any]:
    """Bytes of the poll answer after one worker of a 1,000-worker job changed."""
    status_body = client.ok(f"/progress/status?jobid={POLL_JOB}")
    since = json.loads(status_body)["version"]
    client.ok(f"/progress/update?jobid={POLL_JOB}&workid=w500&current=51&total=100"
              "&desc=calibrating")
    body = client.ok(f"/progress/poll?jobid={POLL_JOB}&since={since}&timeout=0")
    answer = json.loads(body)
    return {"bytes": len(body), "full": answer["full"], "workers": len(answer["workers"]),
            "full_bytes": len(status_body), "body": body.decode()}
