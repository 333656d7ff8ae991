"""Scenario 9: worker updates per second through `POST updates`, batches of 100 lines, against
single `update` requests: the same server, the same wrk (-t1 -c32 keep-alive connections), the
same 1,000 workers across 10 jobs in the same order, taking turns within each round.

The figure is worker updates delivered per second: lines per second through `updates` (requests
per second times 100) over requests per second through `update`. Before the rounds one batch is
sent and every line of its answer checked to be a version, not an error: wrk sees only the
status of a batch, not its lines.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from bench.load import UPDATE_PATHS, WrkResult, measure, run_wrk, write_batch_script, write_script
from bench.report import Row, median, median_row, ratio
from bench.scenarios_load import WARM_UP_S, Bench
from bench.systems import System

BATCH = 100
GOAL = 10.0


def check_batch(system: System, batch: int) -> None:
    """One batch of the script's form; every line of the answer must carry a version."""
    lines = [f"jobid=job{k % 10}&workid=w{k}&current=1&total=100" for k in range(batch)]
    connection = http.client.HTTPConnection("127.0.0.1", system.port, timeout=10)
    try:
        connection.request("POST", "/progress/updates", "\n".join(lines).encode(),
                           {"Content-Type": "text/plain"})
        response = connection.getresponse()
        answers = response.read().splitlines()
    finally:
        connection.close()
    bad = [line for line in answers if "version" not in json.loads(line)]
    if response.status != 200 or len(answers) != batch or bad:
        raise RuntimeError(f"updates answered {response.status}, {len(answers)} lines of "
                           f"{batch}, errors {bad[:3]}")


def batch_rounds(bench: Bench, batch: int = BATCH) -> tuple[list[Row], dict[str, Any]]:
    """Scenario 9: single updates and batches of `batch` in turn, `bench.rounds` rounds."""
    system = bench.fleet.ours(bench.work / "snapshots-batch", name="ours-batch")
    try:
        check_batch(system, batch)
        scripts = {"single": (UPDATE_PATHS["ours"], write_script(bench.work, "ours")),
                   "batch": ("/progress/updates", write_batch_script(bench.work, batch))}
        for path, script in scripts.values():
            run_wrk(system, path, script, WARM_UP_S)
        runs: dict[str, list[WrkResult]] = {name: [] for name in scripts}
        for _ in range(bench.rounds):
            for name, (path, script) in scripts.items():
                runs[name].append(measure(system, path, script, bench.seconds))
    finally:
        bench.fleet.stop(system)
    single, batched = runs["single"], runs["batch"]
    lines = [run.rps * batch for run in batched]
    row = median_row(
        9, f"worker updates/s through updates, batches of {batch} / single update",
        [ratio(run.rps * batch, one.rps) for run, one in zip(batched, single, strict=True)],
        "x", ">=", GOAL,
        f"{median(lines):,.0f} lines/s ({median([r.rps for r in batched]):,.0f} batches/s, "
        f"p99 {median([r.p99_ms for r in batched]):.1f} ms) vs "
        f"{median([r.rps for r in single]):,.0f} updates/s (p99 "
        f"{median([r.p99_ms for r in single]):.1f} ms); server CPU "
        f"{median([r.server_cpu for r in batched]):.2f} vs "
        f"{median([r.server_cpu for r in single]):.2f}; errors "
        f"{sum(r.errors for r in batched + single)}")
    return [row], {"batch": batch,
                   "wrk": {name: [run.as_dict() for run in results]
                           for name, results in runs.items()}}
