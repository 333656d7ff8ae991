"""Update load with wrk: the Lua scripts that speak each system's update request, and the
parsing of wrk's `--latency` report.

Every script sends the same load: 1,000 workers across 10 jobs (worker k belongs to job
k % 10), taken round-robin, each request moving its worker's `current` on, so that the state
really changes.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.systems import System, cpu_seconds

WORKERS = 1000
JOBS = 10
CONNECTIONS = 32
# Cores of CPU that processes outside the benchmark may take during a run before it is repeated.
DISTURBED_CORES = 0.25
# Seconds that repeating disturbed runs may add to the whole benchmark; past them a disturbed
# run is kept (and counted), so that a busy machine does not stretch the run without end.
REPEAT_BUDGET_S = 90.0
T = TypeVar("T")
REPEATED: list[str] = []  # the runs measured again, for the summary
KEPT_DISTURBED: list[str] = []  # disturbed runs kept once the budget was spent
_REPEAT_SPENT_S = [0.0]

_LOOP = """\
local i = 0
local workers = {workers}
local jobs = {jobs}
request = function()
  local k = i % workers
  local current = math.floor(i / workers) % 101
  i = i + 1
  return make(k % jobs, k, current)
end
"""

# Each defines make(job, worker, current) -> the request, built by wrk.format.
MAKERS = {
    "ours": """\
make = function(j, k, c)
  return wrk.format("GET", "/progress/update?jobid={prefix}" .. j .. "&workid=w" .. k ..
                    "&current=" .. c .. "&total=100")
end
""",
    "progressista": """\
local headers = {{["Content-Type"] = "application/json"}}
make = function(j, k, c)
  local body = '{{"task_id":"{prefix}' .. j .. '/w' .. k .. '","desc":"{prefix}' .. j ..
               '","total":100,"n":' .. c .. '}}'
  return wrk.format("POST", "/progress", headers, body)
end
""",
    "pushgateway": """\
local headers = {{["Content-Type"] = "text/plain; version=0.0.4"}}
make = function(j, k, c)
  local body = "# TYPE current gauge\\ncurrent " .. c .. "\\n# TYPE total gauge\\ntotal 100\\n" ..
               "# TYPE ok gauge\\nok 1\\n"
  return wrk.format("PUT", "/metrics/job/{prefix}" .. j .. "/instance/w" .. k, headers, body)
end
""",
}
MAKERS["bare"] = MAKERS["raw"] = MAKERS["ours"]

# `POST updates`: `batch` updates a request, one form-encoded line each, the same workers in
# the same order as the single-update script sends them one a request.
_BATCH = """\
local headers = {{["Content-Type"] = "text/plain"}}
local i = 0
local workers = {workers}
local jobs = {jobs}
local lines = {{}}
request = function()
  for n = 1, {batch} do
    local k = i % workers
    local current = math.floor(i / workers) % 101
    i = i + 1
    lines[n] = "jobid={prefix}" .. (k % jobs) .. "&workid=w" .. k .. "&current=" .. current ..
               "&total=100"
  end
  return wrk.format("POST", "/progress/updates", headers, table.concat(lines, "\\n"))
end
"""


def write_script(folder: Path, kind: str, prefix: str = "job", workers: int = WORKERS,
                 jobs: int = JOBS) -> Path:
    """The Lua script for `kind` (ours, bare, raw, progressista, pushgateway)."""
    path = folder / f"{kind}-{prefix}-{workers}.lua"
    path.write_text(MAKERS[kind].format(prefix=prefix)
                    + _LOOP.format(workers=workers, jobs=jobs))
    return path


def write_batch_script(folder: Path, batch: int, prefix: str = "job", workers: int = WORKERS,
                      jobs: int = JOBS) -> Path:
    """The Lua script of `POST updates` with `batch` lines a request (see _BATCH)."""
    path = folder / f"batch{batch}-{prefix}-{workers}.lua"
    path.write_text(_BATCH.format(prefix=prefix, workers=workers, jobs=jobs, batch=batch))
    return path


@dataclass
class WrkResult:
    system: str
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int  # non-2xx answers plus socket errors
    server_cpu: float = 0.0  # CPU seconds of the server per wall second during the run
    # CPU of every other process on the machine (not the server, wrk or the benchmark's own
    # helpers), in cores: another session's work that disturbed this run.
    others_cpu: float = 0.0
    # The server's CPU per wall second by part: {"server": ...} for one process, or e.g.
    # nginx and backends for a server of several.
    parts_cpu: dict[str, float] = field(default_factory=dict)
    client_cpu: float = 0.0  # wrk's CPU seconds per wall second

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([\d.]+)(us|ms|s|m|h)"


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(system: str, text: str, server_cpu: float = 0.0) -> WrkResult:
    """Requests/sec, p50, p99, max and errors from a `wrk --latency` report."""
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, text)
        if match is None:
            raise ValueError(f"wrk output has no {pattern!r}:\n{text}")
        return match

    rps = float(find(r"Requests/sec:\s+([\d.]+)").group(1))
    p50 = find(r"\s50%\s+" + _DURATION)
    p99 = find(r"\s99%\s+" + _DURATION)
    latency_max = find(r"Latency\s+\S+\s+\S+\s+" + _DURATION)
    requests = int(find(r"(\d+) requests in").group(1))
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                        text)
    if sockets:
        errors += sum(int(count) for count in sockets.groups())
    return WrkResult(system, rps, _ms(*p50.groups()), _ms(*p99.groups()),
                     _ms(*latency_max.groups()), requests, errors, server_cpu)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat), the idle and iowait left out."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(system: System, path: str, script: Path, seconds: float,
            helpers: Sequence[int] = (), connections: int = CONNECTIONS) -> WrkResult:
    """One wrk run of `seconds` against `system` at `path`, one thread, keep-alive.
    `helpers` are the process ids of the benchmark's own other processes (viewers)."""
    return run_wrk_at(system.name, system.base + path, script, seconds,
                      {"server": [system.process.pid]}, helpers, connections)


def run_wrk_at(name: str, url: str, script: Path, seconds: float,
               parts: Mapping[str, Sequence[int]], helpers: Sequence[int] = (),
               connections: int = CONNECTIONS) -> WrkResult:
    """One wrk run of `seconds` at `url` served by the processes of `parts` (process ids by
    part, e.g. nginx and backends: together the server, whose CPU is measured); `helpers` are
    the benchmark's own other processes, left out of the CPU of others."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s",
               "--latency", "-s", str(script), url]
    watched = [*(pid for pids in parts.values() for pid in pids), *helpers]
    before = {pid: cpu_seconds(pid) for pid in watched}
    busy, children, began = machine_busy_seconds(), children_cpu_seconds(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 20,
                          check=False)
    wall = time.perf_counter() - began
    used = {pid: cpu_seconds(pid) - start for pid, start in before.items()}
    client = children_cpu_seconds() - children
    others = (machine_busy_seconds() - busy - sum(used.values()) - client) / wall
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed against {name}: {done.stderr}{done.stdout}")
    by_part = {part: sum(used[pid] for pid in set(pids)) / seconds
               for part, pids in parts.items()}
    result = parse_wrk(name, done.stdout, sum(by_part.values()))
    result.others_cpu = max(0.0, others)
    result.parts_cpu = by_part
    result.client_cpu = client / seconds
    return result


def least_disturbed_by(name: str, attempt: Callable[[], T], others: Callable[[T], float]) -> T:
    """`attempt()`, made once more if other processes took more than DISTURBED_CORES meanwhile
    (`others` of its outcome), keeping the less disturbed of the two, while REPEAT_BUDGET_S
    lasts: on a shared machine another session's burst would decide a figure."""
    first = attempt()
    if others(first) <= DISTURBED_CORES:
        return first
    if _REPEAT_SPENT_S[0] >= REPEAT_BUDGET_S:
        KEPT_DISTURBED.append(name)
        print(f"  {name}: other processes took {others(first):.2f} cores; kept (the repeat "
              "budget is spent)", file=sys.stderr, flush=True)
        return first
    REPEATED.append(name)
    print(f"  {name}: other processes took {others(first):.2f} cores; measuring again",
          file=sys.stderr, flush=True)
    began = time.perf_counter()
    second = attempt()
    _REPEAT_SPENT_S[0] += time.perf_counter() - began
    return min(first, second, key=others)


def least_disturbed(name: str, attempt: Callable[[], tuple[WrkResult, T]]) -> tuple[WrkResult, T]:
    """`least_disturbed_by` for a wrk run (and what came with it)."""
    return least_disturbed_by(name, attempt, lambda outcome: outcome[0].others_cpu)


class CpuSpan:
    """From its making to `others()`: the cores that processes other than `watched`, this one
    and its reaped children took on average (see WrkResult.others_cpu)."""

    def __init__(self, watched: Sequence[int]) -> None:
        self.watched = {pid: cpu_seconds(pid) for pid in watched}
        self.busy, self.children = machine_busy_seconds(), children_cpu_seconds()
        self.own, self.began = time.process_time(), time.perf_counter()

    def used(self) -> float:
        """CPU seconds of the watched processes since the span began."""
        return sum(cpu_seconds(pid) - start for pid, start in self.watched.items())

    def others(self) -> float:
        mine = (self.used() + children_cpu_seconds() - self.children
                + time.process_time() - self.own)
        return max(0.0, (machine_busy_seconds() - self.busy - mine)
                   / (time.perf_counter() - self.began))


def measure(system: System, path: str, script: Path, seconds: float) -> WrkResult:
    """`run_wrk`, repeated once if disturbed (see `least_disturbed`)."""
    return least_disturbed(system.name,
                           lambda: (run_wrk(system, path, script, seconds), None))[0]


UPDATE_PATHS = {"ours": "/progress/update", "bare": "/progress/update",
                "raw": "/progress/update", "progressista": "/progress", "pushgateway": "/metrics"}
