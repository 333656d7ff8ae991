"""Scenarios under update load (1, 2 and 3): throughput and latency against the framework's
floor and the peers, the same with viewers long-polling, and snapshots of 100,000 workers.

Systems take turns within each round (A B A B ...) and every ratio is computed per round, then
the median of the rounds is reported, because absolute figures drift on a shared machine.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.fixtures import workers_snapshot
from bench.load import UPDATE_PATHS, WrkResult, least_disturbed, measure, run_wrk, write_script
from bench.report import Row, median, median_row, percentile, ratio, spread_of
from bench.systems import Fleet, System, http_status
from bench.viewers import ViewerProcess

PEERS = ("bare", "raw", "progressista", "pushgateway")
# Goals of ours / peer for update throughput, and of peer / ours for update p99 (a peer
# missing here is reported without a goal): "raw" is the raw-delegate floor, a minimal
# HTTPServerConnectionDelegate answering "OK" (bench/bare_server.py --raw).
THROUGHPUT_GOALS = {"bare": 1.6, "progressista": 4.0, "pushgateway": 10.0}
P99_GOALS = {"bare": 1.3}
VIEWERS_GOAL = 1.2  # update throughput with 100 viewers / bare
DELIVERY_GOAL_MS = 100.0
VIEWERS = 96
PROBE_VIEWERS = 4
WARM_UP_S = 1.0


@dataclass
class Bench:
    """Where a scenario works and how long each measurement lasts."""

    fleet: Fleet
    work: Path
    rounds: int
    seconds: float


def start_update_systems(bench: Bench) -> dict[str, System]:
    fleet = bench.fleet
    return {"ours": fleet.ours(bench.work / "snapshots-load"), "bare": fleet.bare(),
            "raw": fleet.raw(), "progressista": fleet.progressista(),
            "pushgateway": fleet.pushgateway()}


def with_viewers(bench: Bench, ours: System, script: Path) -> tuple[WrkResult, dict[str, Any]]:
    """A wrk run against ours while 96 load viewers and 4 probe viewers long-poll."""
    seconds = bench.seconds + 2.0
    load = ViewerProcess(ours.port, seconds, "--viewers", str(VIEWERS))
    probe = ViewerProcess(ours.port, seconds, "--viewers", "0",
                          "--probe-viewers", str(PROBE_VIEWERS))
    try:
        load.wait_ready()
        probe.wait_ready()
        result = run_wrk(ours, UPDATE_PATHS["ours"], script, bench.seconds,
                         helpers=(load.process.pid, probe.process.pid))
        return result, {"load": load.result(), "probe": probe.result()}
    finally:
        load.kill()
        probe.kill()


def update_rounds(bench: Bench) -> tuple[list[Row], dict[str, Any]]:
    """Scenarios 1 and 2: ours, bare, Progressista, Pushgateway and ours-with-viewers in turn."""
    systems = start_update_systems(bench)
    scripts = {name: write_script(bench.work, name) for name in systems}
    for name, system in systems.items():
        run_wrk(system, UPDATE_PATHS[name], scripts[name], WARM_UP_S)
    runs: dict[str, list[WrkResult]] = {name: [] for name in [*systems, "ours+viewers"]}
    viewer_runs: list[dict[str, Any]] = []
    for _ in range(bench.rounds):
        for name, system in systems.items():
            runs[name].append(measure(system, UPDATE_PATHS[name], scripts[name], bench.seconds))
        result, viewers = least_disturbed(
            "ours+viewers", lambda: with_viewers(bench, systems["ours"], scripts["ours"]))
        runs["ours+viewers"].append(result)
        viewer_runs.append(viewers)
    for system in systems.values():
        bench.fleet.stop(system)
    raw = {"wrk": {name: [run.as_dict() for run in results] for name, results in runs.items()},
           "viewers": [{role: {k: v for k, v in figures.items() if k != "delivery_ms"}
                        for role, figures in run.items()} for run in viewer_runs]}
    return update_rows(runs) + viewer_rows(runs, viewer_runs, bench.seconds), raw


def rates(results: list[WrkResult]) -> str:
    return f"{median([r.rps for r in results]):,.0f}"


def update_rows(runs: dict[str, list[WrkResult]]) -> list[Row]:
    """Ours against each peer, round by round: throughput and p99 ratios."""
    rows = []
    ours = runs["ours"]
    for name in PEERS:
        peer = runs[name]
        rows.append(median_row(
            1, f"update throughput ours / {name}",
            [ratio(a.rps, b.rps) for a, b in zip(ours, peer, strict=True)], "x",
            ">=" if name in THROUGHPUT_GOALS else None, THROUGHPUT_GOALS.get(name),
            f"{rates(ours)} vs {rates(peer)} req/s"))
        rows.append(median_row(
            1, f"update p99 {name} / ours (higher is better)",
            [ratio(b.p99_ms, a.p99_ms) for a, b in zip(ours, peer, strict=True)], "x",
            ">=" if name in P99_GOALS else None, P99_GOALS.get(name),
            f"{median([r.p99_ms for r in peer]):.1f} vs {median([r.p99_ms for r in ours]):.1f}"
            " ms"))
    for name, results in runs.items():
        if name == "ours+viewers":
            continue
        rows.append(median_row(1, f"{name}: update p99 latency", [r.p99_ms for r in results],
                               "ms", note=f"{rates(results)} req/s, p50 "
                               f"{median([r.p50_ms for r in results]):.2f} ms, server CPU "
                               f"{median([r.server_cpu for r in results]):.2f}, "
                               f"errors {sum(r.errors for r in results)}"))
    return rows


def viewer_rows(runs: dict[str, list[WrkResult]], viewer_runs: list[dict[str, Any]],
                seconds: float) -> list[Row]:
    with_v, bare = runs["ours+viewers"], runs["bare"]
    delivery = [ms for run in viewer_runs for ms in run["probe"]["delivery_ms"]]
    answers = [run["load"]["answers"] / seconds for run in viewer_runs]
    errors = sum(run[role]["errors"] for run in viewer_runs for role in ("load", "probe"))
    return [
        median_row(2, "update throughput ours+100 viewers / bare",
                   [ratio(a.rps, b.rps) for a, b in zip(with_v, bare, strict=True)], "x",
                   ">=", VIEWERS_GOAL, f"{rates(with_v)} vs {rates(bare)} req/s; p99 "
                   f"{median([r.p99_ms for r in with_v]):.1f} ms"),
        Row(2, "update-to-viewer delivery p99", percentile(delivery, 0.99), "ms", "<=",
            DELIVERY_GOAL_MS, f"{len(delivery)} deliveries of all rounds, p50 "
            f"{percentile(delivery, 0.5) or 0:.1f} ms, max {max(delivery, default=0):.1f} ms",
            spread_of([percentile(run["probe"]["delivery_ms"], 0.99) for run in viewer_runs])),
        median_row(2, "poll answers per second to the 96 load viewers", answers, "/s",
                   note=f"viewer errors {errors}, client CPU "
                   f"{median([run['load']['cpu_s'] for run in viewer_runs]):.2f} s, client lag "
                   f"max {max(run['probe']['client_lag_max_ms'] for run in viewer_runs):.0f}"
                   " ms"),
    ]


def last_snapshot(system: System) -> float | None:
    """`last_snapshot` from health (epoch seconds)."""
    with urllib.request.urlopen(system.base + "/progress/health", timeout=10) as response:
        value: float | None = json.loads(response.read())["last_snapshot"]
        return value


def probed_run(server: System, script: Path, seconds: float,
               settle: bool) -> tuple[WrkResult, Any]:
    """A wrk run with the stall probe on; with `settle`, a second more for a snapshot begun at
    its end to finish before anything else is measured."""
    server.control("probe/start", "period=0.001")
    result = run_wrk(server, UPDATE_PATHS["ours"], script, seconds)
    stall = server.control("probe/stop")
    if settle:
        time.sleep(1.0)
    return result, stall


def snapshot_rounds(bench: Bench) -> tuple[list[Row], dict[str, Any]]:
    """Scenario 3: 100,000 workers, snapshots every second vs never, under update load."""
    source = workers_snapshot(bench.work / "snapshot-100k", 100_000)
    servers: dict[str, System] = {}
    for interval in ("1", "3600"):
        folder = bench.work / f"snapshots-every-{interval}"
        folder.mkdir()
        shutil.copy(source, folder / source.name)
        servers[interval] = bench.fleet.ours(folder, "--snapshot-interval", interval,
                                             name=f"ours-snapshot-{interval}")
    script = write_script(bench.work, "ours")
    for server in servers.values():
        run_wrk(server, UPDATE_PATHS["ours"], script, WARM_UP_S)
    runs: dict[str, list[WrkResult]] = {name: [] for name in servers}
    stalls: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    written = 0
    for _ in range(bench.rounds):
        for name, server in servers.items():
            began = time.time()
            result, stall = least_disturbed(server.name, functools.partial(
                probed_run, server, script, bench.seconds, settle=name == "1"))
            runs[name].append(result)
            stalls[name].append(stall)
            written += name == "1" and (last_snapshot(server) or 0) > began
    for server in servers.values():
        assert http_status(server.base + "/progress/health") == 200
        bench.fleet.stop(server)
    return snapshot_rows(runs, stalls, written, bench.rounds), {
        "wrk": {name: [run.as_dict() for run in results] for name, results in runs.items()},
        "stalls": stalls}


def snapshot_rows(runs: dict[str, list[WrkResult]], stalls: dict[str, list[dict[str, Any]]],
                  written: int, rounds: int) -> list[Row]:
    every, never = runs["1"], runs["3600"]
    # Per run the longest stall; the median over the runs, as for every figure (one run
    # disturbed by another process on the machine shows in the max, given in the note).
    worsts = [stall["worst_ms"] or 0.0 for stall in stalls["1"]]
    worsts_never = [stall["worst_ms"] or 0.0 for stall in stalls["3600"]]
    p99_ratios = [ratio(a.p99_ms, b.p99_ms) for a, b in zip(every, never, strict=True)]
    return [
        median_row(3, "longest event-loop stall, snapshots every 1 s", worsts, "ms", "<=",
            50.0, f"max of {len(worsts)} runs {max(worsts):.1f} ms, probe p99 "
            f"{median([s['p99_ms'] or 0 for s in stalls['1']]):.1f} ms; without snapshots "
            f"{median(worsts_never):.1f} ms (max {max(worsts_never):.1f}); "
            f"runs with a snapshot {written}/{rounds}"),
        median_row(3, "update p99 with snapshots / without", p99_ratios, "x", "<=", 2.0,
            f"{median([r.p99_ms for r in every]):.1f} vs {median([r.p99_ms for r in never]):.1f}"
            f" ms; {median([r.rps for r in every]):,.0f} vs "
            f"{median([r.rps for r in never]):,.0f} req/s"),
    ]
