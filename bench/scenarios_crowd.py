"""Scenarios with thousands of viewers of one job (10, 11 and 12), clients from bench/crowd.py.

10 and 11: 1,000 and 5,000 viewers long-poll one job of 10 workers while a sender updates it
every 100 ms for a few seconds. Measured: each update's answer time as the sender sees it (p99);
each change's delivery time to each viewer, from the send of the update that made version V to
that viewer's first answer carrying V or later (p99 over every viewer and change); and the share
of changes delivered, a change counting as delivered to a viewer when one of its answers carries
its version or a later one within HORIZON_S (the viewers poll on until they have seen the last
change, HORIZON_S at most, so that every change has that long).

12: 10,000 polls parked on one job, woken by one update: the longest event-loop stall the
probed server's probe sees from the update to the last answer (and, apart, while they park).

Ours runs as bench/probed_server.py with room for the crowd's connections from one address.
Every round has its own job; figures are medians over rounds with their spread.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.crowd import CrowdProcess
from bench.fixtures import Client
from bench.load import CpuSpan, least_disturbed_by
from bench.report import Row, median, median_row, percentile
from bench.scenarios_load import Bench
from bench.systems import System

VIEWER_COUNTS = {10: 1_000, 11: 5_000}  # viewers by scenario
WAKE_POLLS = 10_000  # scenario 12
UPDATE_HZ = 10.0
JOB_WORKERS = 10
HORIZON_S = 10.0
# Goals by scenario: update answer p99 (ms), delivery p99 (ms), share delivered (%, or None).
GOALS: dict[int, tuple[float, float, float | None]] = {10: (50.0, 300.0, None),
                                                       11: (100.0, 1000.0, 100.0)}
WAKE_STALL_GOAL_MS = 50.0
SERIAL = itertools.count()  # a new job for every round
CROWD_OPTIONS = ("--max-connections", "15000", "--max-connections-per-address", "15000",
                 "--new-jobs-per-minute", "0")


def others(run: dict[str, Any]) -> float:
    """The cores other processes took during a round."""
    value: float = run["others_cores"]
    return value


def health(system: System) -> dict[str, Any]:
    with urllib.request.urlopen(system.base + "/progress/health", timeout=10) as response:
        document: dict[str, Any] = json.loads(response.read())
        return document


def wait_waiters(system: System, low: int, high: int, timeout: float = 30.0) -> None:
    """Until the server holds between `low` and `high` parked polls."""
    deadline = time.monotonic() + timeout
    while not low <= (count := health(system)["waiters"]) <= high:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} polls parked after {timeout} s, not {low} to {high}")
        time.sleep(0.05)


def new_job(client: Client, jobid: str) -> int:
    """Job `jobid` with JOB_WORKERS workers; its version."""
    version = 0
    for k in range(JOB_WORKERS):
        answer = client.ok(f"/progress/update?jobid={jobid}&workid=w{k}&current=0"
                           "&total=1000000000")
        version = json.loads(answer)["version"]
    return version


def parked_crowd(system: System, jobid: str, since: int, viewers: int, out: Path,
                 once: bool = False) -> CrowdProcess:
    """A crowd of `viewers` whose polls are all parked on the server."""
    wait_waiters(system, 0, 0)
    crowd = CrowdProcess(system.port, jobid, since, viewers, out, once=once)
    try:
        crowd.expect("ready", 60.0)
        wait_waiters(system, viewers, viewers)
    except BaseException:
        crowd.kill()
        raise
    return crowd


def send_updates(system: System, jobid: str, seconds: float, out: Path) -> list[list[Any]]:
    """The sender's run: [send time, answer ms, version, status] an update."""
    subprocess.run([sys.executable, "-m", "bench.crowd", "send", "--port", str(system.port),
                    "--jobid", jobid, "--hz", f"{UPDATE_HZ:g}", "--seconds", f"{seconds:g}",
                    "--workers", str(JOB_WORKERS), "--out", str(out)],
                   check=True, timeout=seconds + 30, stdin=subprocess.DEVNULL)
    updates: list[list[Any]] = json.loads(out.read_text())["updates"]
    return updates


def deliveries(changes: Sequence[tuple[int, float]], answers: Sequence[Sequence[Sequence[float]]],
               horizon: float = HORIZON_S) -> tuple[list[float], list[float]]:
    """Delivery times (ms) of every change (version, send time) to every viewer whose answers
    ([receive time, version], ...) carried it or a later version within `horizon` seconds, and
    each viewer's share of the changes so delivered."""
    times: list[float] = []
    shares: list[float] = []
    for log in answers:
        seen: list[int] = []  # the highest version seen by each answer
        for _, version in log:
            seen.append(max(int(version), seen[-1] if seen else 0))
        delivered = 0
        for version, sent in changes:
            at = bisect.bisect_left(seen, version)
            if at < len(seen) and log[at][0] - sent <= horizon:
                delivered += 1
                times.append(1000 * (log[at][0] - sent))
        shares.append(delivered / len(changes) if changes else 1.0)
    return times, shares


def crowd_round(system: System, work: Path, viewers: int, seconds: float) -> dict[str, Any]:
    """One round: `viewers` parked on a new job, `seconds` of updates at UPDATE_HZ, until every
    viewer has seen the last change (HORIZON_S at most)."""
    jobid, span = f"crowd{viewers}-{next(SERIAL)}", CpuSpan([system.process.pid])
    client = Client(system.port)
    try:
        since = new_job(client, jobid)
    finally:
        client.close()
    crowd = parked_crowd(system, jobid, since, viewers, work / f"{jobid}-view.json")
    try:
        system.control("probe/start", "period=0.001&sample=1")
        cpu = system.cpu_seconds()
        updates = send_updates(system, jobid, seconds, work / f"{jobid}-send.json")
        changes = [(int(version), sent) for sent, _, version, status in updates
                   if status == 200 and version is not None]
        crowd.stop(max((version for version, _ in changes), default=since))
        cpu = system.cpu_seconds() - cpu
        stall = system.control("probe/stop")
        figures = crowd.close()
    finally:
        crowd.kill()
    times, shares = deliveries(changes, figures["answers"])
    undelivered = len(changes) * viewers - len(times)
    ordered = sorted(times) + [float("inf")] * undelivered  # one not delivered: later than all
    p99 = percentile(ordered, 0.99)
    answer_ms = [row[1] for row in updates]
    return {"viewers": viewers, "changes": len(changes), "update_errors": len(updates)
            - len(changes), "update_p99_ms": percentile(answer_ms, 0.99),
            "update_ms": answer_ms, "delivery_p99_ms": p99 if p99 != float("inf") else None,
            "delivery_p50_ms": percentile(times, 0.5), "delivery_max_ms": max(times, default=0),
            "delivered_pct": 100 * sum(shares) / len(shares) if shares else 0.0,
            "worst_viewer_pct": 100 * min(shares, default=0.0),
            "answers": sum(len(log) for log in figures["answers"]), "errors": figures["errors"],
            "client_lag_max_ms": figures["client_lag_max_ms"],
            "client_cpu_s": figures["cpu_s"], "connect_s": figures["connect_s"],
            "server_cores": cpu / seconds, "stall_worst_ms": stall["worst_ms"],
            "stall_cpu_worst_ms": stall.get("cpu_worst_ms"),
            "collections": stall.get("collections"), "stalled_in": stall.get("stalled_in"),
            "others_cores": span.others()}


def crowd_rounds(bench: Bench, number: int, viewers: int,
                 seconds: float | None = None) -> tuple[list[Row], dict[str, Any]]:
    """Scenario `number` (10 or 11): `viewers` of one job, `bench.rounds` rounds on one server,
    each sending updates for `seconds` (the wrk runs' seconds and 2 more, by default)."""
    send_s = seconds if seconds is not None else bench.seconds + 2.0
    system = bench.fleet.ours(bench.work / f"snapshots-crowd-{viewers}", *CROWD_OPTIONS,
                              name=f"ours-crowd-{viewers}")
    try:
        runs = [least_disturbed_by(system.name, functools.partial(
            crowd_round, system, bench.work, viewers, send_s), others)
                for _ in range(bench.rounds)]
    finally:
        bench.fleet.stop(system)
    return crowd_rows(number, viewers, runs), {
        "rounds": [{k: v for k, v in run.items() if k != "update_ms"} for run in runs],
        "send_s": send_s, "hz": UPDATE_HZ}


def crowd_rows(number: int, count: int, runs: list[dict[str, Any]]) -> list[Row]:
    answer_goal, delivery_goal, share_goal = GOALS.get(number, (None, None, None))
    pooled = [ms for run in runs for ms in run["update_ms"]]
    seconds = sum(run["changes"] for run in runs) / UPDATE_HZ
    return [
        median_row(number, f"{count:,} viewers of one job updated every 100 ms: update answer "
                   "p99", [run["update_p99_ms"] for run in runs], "ms",
                   "<=" if answer_goal else None, answer_goal,
                   f"{len(pooled)} updates: pooled p99 {percentile(pooled, 0.99) or 0:.1f} ms, "
                   f"p50 {percentile(pooled, 0.5) or 0:.1f}, max {max(pooled, default=0):.1f}; "
                   f"server loop's worst stall "
                   f"{median([r['stall_worst_ms'] or 0 for r in runs]):.0f} ms, server CPU "
                   f"{median([r['server_cores'] for r in runs]):.2f} cores"),
        median_row(number, f"{count:,} viewers: change-to-viewer delivery p99",
                   [run["delivery_p99_ms"] for run in runs], "ms",
                   "<=" if delivery_goal else None, delivery_goal,
                   f"p50 {median([r['delivery_p50_ms'] or 0 for r in runs]):.0f} ms, max "
                   f"{max(r['delivery_max_ms'] for r in runs):.0f} ms; "
                   f"{sum(r['answers'] for r in runs) / count / seconds:.1f} answers per viewer "
                   f"per second; client lag max {max(r['client_lag_max_ms'] for r in runs):.0f}"
                   f" ms, connect {median([r['connect_s'] for r in runs]):.1f} s"),
        median_row(number, f"{count:,} viewers: changes delivered within {HORIZON_S:g} s",
                   [run["delivered_pct"] for run in runs], "%",
                   ">=" if share_goal else None, share_goal,
                   f"worst viewer {min(r['worst_viewer_pct'] for r in runs):.1f} %; "
                   f"{sum(r['changes'] for r in runs)} changes; errors: viewers "
                   f"{sum(r['errors'] for r in runs)}, updates "
                   f"{sum(r['update_errors'] for r in runs)}; other processes took "
                   f"{median([r['others_cores'] for r in runs]):.2f} cores"),
    ]


def wake_round(system: System, work: Path, polls: int) -> dict[str, Any]:
    """One round: `polls` parked on a new job (the probe on meanwhile), then the probe on
    again for one update and every parked poll's answer."""
    jobid, span = f"wake{polls}-{next(SERIAL)}", CpuSpan([system.process.pid])
    client = Client(system.port)
    try:
        since = new_job(client, jobid)
        system.control("probe/start", "period=0.001")
        crowd = parked_crowd(system, jobid, since, polls, work / f"{jobid}-view.json", once=True)
        try:
            parking = system.control("probe/stop")
            system.control("probe/start", "period=0.001")
            sent = time.time()
            _, body, update_s = client.get(f"/progress/update?jobid={jobid}&workid=w0"
                                           "&current=1&total=1000000000")
            version = json.loads(body)["version"]
            crowd.stop(version)
            waking = system.control("probe/stop")
            figures = crowd.close()
        finally:
            crowd.kill()
    finally:
        client.close()
    woken = [log[0][0] for log in figures["answers"] if log and log[0][1] >= version]
    return {"polls": polls, "answered": len(woken), "errors": figures["errors"],
            "update_ms": 1000 * update_s,
            "last_answer_ms": 1000 * (max(woken) - sent) if woken else None,
            "wake_worst_ms": waking["worst_ms"], "wake_p99_ms": waking["p99_ms"],
            "wake_cpu_worst_ms": waking.get("cpu_worst_ms"),
            "parking_worst_ms": parking["worst_ms"], "connect_s": figures["connect_s"],
            "wake_collections": waking.get("collections"),
            "client_lag_max_ms": figures["client_lag_max_ms"], "others_cores": span.others()}


def wake_rounds(bench: Bench, polls: int = WAKE_POLLS) -> tuple[list[Row], dict[str, Any]]:
    """Scenario 12: waking `polls` parked polls with one update, `bench.rounds` times."""
    system = bench.fleet.ours(bench.work / "snapshots-wake", *CROWD_OPTIONS, name="ours-wake")
    try:
        runs = [least_disturbed_by(system.name, functools.partial(
            wake_round, system, bench.work, polls), others) for _ in range(bench.rounds)]
    finally:
        bench.fleet.stop(system)
    last = [run["last_answer_ms"] for run in runs]
    rows = [
        median_row(12, f"waking {polls:,} parked polls of one job: longest loop stall",
                   [run["wake_worst_ms"] for run in runs], "ms", "<=", WAKE_STALL_GOAL_MS,
                   f"probe every 1 ms from the update to the last answer; p99 "
                   f"{median([r['wake_p99_ms'] or 0 for r in runs]):.1f} ms; while the polls "
                   f"parked {median([r['parking_worst_ms'] or 0 for r in runs]):.0f} ms (max "
                   f"{max(r['parking_worst_ms'] or 0 for r in runs):.0f})"),
        median_row(12, f"waking {polls:,} parked polls: update sent to last answer read", last,
                   "ms", note=f"answered {min(r['answered'] for r in runs):,} of {polls:,} at "
                   f"least; the update's own answer {median([r['update_ms'] for r in runs]):.1f}"
                   f" ms; client lag max {max(r['client_lag_max_ms'] for r in runs):.0f} ms; "
                   f"errors {sum(r['errors'] for r in runs)}; other processes took "
                   f"{median([r['others_cores'] for r in runs]):.2f} cores"),
    ]
    return rows, {"rounds": runs}
