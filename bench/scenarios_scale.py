"""Scenario 8: update throughput through nginx with 1, 2 and 3 backends against one backend
direct, all on this machine, in one run.

Each cluster is `python -m tools.cluster` (started by tests/clusterproc.py): N plain
`python -m tornado_progress` backends behind nginx, which sends each request to the backend its
job's key hashes to. "direct" is the one backend of the 1-backend cluster reached on its own
port, so direct and nginx+1 are the same process, the same jobs, and differ only by nginx. The
load is bench/load.py's update script over 300 jobs of 10 workers each, so that the hash
spreads it over the backends.

Systems take turns within each round (direct, nginx+1, nginx+2, nginx+3, then nginx+2 and
nginx+3 with the other count of nginx workers); every ratio is against direct in the same
round, and the median of the rounds is reported with its min-max. The CPU that each part
(backends, nginx, wrk) spends per update is the arithmetic for other machines: on this one
they all share the same cores.
"""

from __future__ import annotations

import functools
import json
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import UPDATE_PATHS, WrkResult, least_disturbed, run_wrk_at, write_script
from bench.report import Row, median, ratio, spread_of
from bench.scenarios_load import Bench
from tests.clusterproc import ClusterProcess

JOBS = 300
WORKERS = 3000  # 10 a job (worker k belongs to job k % JOBS)
BACKEND_COUNTS = (1, 2, 3)
# nginx worker processes of the scenario's clusters; the other count is measured too with 2
# and 3 backends (2 is "auto" on a 2-core machine). On 2 cores 2 workers did no better
# (0.83-0.99 x the throughput of 1, medians of two runs) and spent more nginx CPU per update:
# a second worker only takes a core from the backends (see the rows "2 nginx workers / 1").
NGINX_WORKERS = 1
OTHER_NGINX_WORKERS = 2
# The options the update scenario gives ours (--ours-arg comes on top), and room for one
# client address to make all the jobs.
BACKEND_ARGS = ("--log-level", "warning", "--new-jobs-per-minute", "1000000")
WARM_UP_S = 1.0


@dataclass
class Target:
    """Where wrk sends the load, and the processes that serve it by part."""

    name: str
    url: str
    parts: dict[str, list[int]]
    backend_ports: list[int]
    helpers: list[int]  # every other process of the scenario's clusters


def child_pids(pid: int) -> list[int]:
    """The children of `pid`: the workers of an nginx master."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cluster_name(backends: int, workers: int) -> str:
    return f"nginx+{backends}" + ("" if workers == NGINX_WORKERS else f" w{workers}")


def start_cluster(bench: Bench, stack: ExitStack, backends: int, workers: int) -> Target:
    """One cluster, stopped when `stack` closes (also when its start fails), as a target."""
    cluster = ClusterProcess(bench.work / f"scale-{backends}-w{workers}", backends,
                             *BACKEND_ARGS, *bench.fleet.ours_extra, nginx_workers=workers)
    stack.callback(cluster.stop)
    cluster.start()
    assert cluster.process is not None
    state = cluster.state()
    nginx = int(state["nginx_pid"])
    return Target(cluster_name(backends, workers), cluster.base_url + UPDATE_PATHS["ours"],
                  {"nginx": [nginx, *child_pids(nginx)],
                   "backends": [int(backend["pid"]) for backend in state["backends"]]},
                  cluster.backend_ports(), [cluster.process.pid])


def start_targets(bench: Bench, stack: ExitStack) -> dict[str, Target]:
    """direct, nginx+1..3, then nginx+2 and nginx+3 with the other count of nginx workers."""
    configs = [(backends, NGINX_WORKERS) for backends in BACKEND_COUNTS]
    configs += [(backends, OTHER_NGINX_WORKERS) for backends in BACKEND_COUNTS if backends > 1]
    clusters = [start_cluster(bench, stack, *config) for config in configs]
    one = clusters[0]
    direct = Target("direct", f"http://127.0.0.1:{one.backend_ports[0]}{UPDATE_PATHS['ours']}",
                    {"backends": one.parts["backends"]}, one.backend_ports, [])
    targets = {target.name: target for target in [direct, *clusters]}
    every = [pid for target in clusters for pids in target.parts.values() for pid in pids]
    every += [pid for target in clusters for pid in target.helpers]
    for target in targets.values():
        serving = {pid for pids in target.parts.values() for pid in pids}
        target.helpers = [pid for pid in every if pid not in serving]
    return targets


def backend_jobs(port: int) -> int:
    """The jobs a backend holds (its health answer)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/progress/health",
                                timeout=10) as response:
        jobs: int = json.loads(response.read())["jobs"]
        return jobs


def attempt(target: Target, script: Path, seconds: float) -> tuple[WrkResult, None]:
    return run_wrk_at(target.name, target.url, script, seconds, target.parts,
                      target.helpers), None


def scale_rounds(bench: Bench) -> tuple[list[Row], dict[str, Any]]:
    """Scenario 8: direct and nginx with 1, 2 and 3 backends in turn, `bench.rounds` rounds."""
    script = write_script(bench.work, "ours", "scale", WORKERS, JOBS)
    with ExitStack() as stack:
        targets = start_targets(bench, stack)
        for target in targets.values():
            attempt(target, script, WARM_UP_S)
        jobs = {name: [backend_jobs(port) for port in target.backend_ports]
                for name, target in targets.items()}
        runs: dict[str, list[WrkResult]] = {name: [] for name in targets}
        for _ in range(bench.rounds):
            for name, target in targets.items():
                runs[name].append(least_disturbed(name, functools.partial(
                    attempt, target, script, bench.seconds))[0])
    raw = {"wrk": {name: [run.as_dict() for run in results] for name, results in runs.items()},
           "jobs_per_backend": jobs, "jobs": JOBS, "workers": WORKERS,
           "nginx_workers": NGINX_WORKERS, "other_nginx_workers": OTHER_NGINX_WORKERS,
           "backend_args": [*BACKEND_ARGS, *bench.fleet.ours_extra]}
    return [*ratio_rows(runs, jobs), *worker_rows(runs), *cost_rows(runs)], raw


def spread(values: list[float], digits: int = 2) -> str:
    return f"{min(values):,.{digits}f}-{max(values):,.{digits}f}"


def us_per_update(run: WrkResult, part: str) -> float:
    """CPU microseconds that `part` ("backends", "nginx", "wrk") spent per update."""
    cpu = run.client_cpu if part == "wrk" else run.parts_cpu.get(part, 0.0)
    return cpu / run.rps * 1e6 if run.rps else float("nan")


def cpu_us(runs: list[WrkResult], part: str) -> float:
    """The median over `runs` of `part`'s CPU microseconds per update."""
    return median([us_per_update(run, part) for run in runs])


def cpu_note(runs: list[WrkResult], parts: tuple[str, ...]) -> str:
    return ", ".join(f"{part} {cpu_us(runs, part):.0f}" for part in parts)


def ratio_rows(runs: dict[str, list[WrkResult]], jobs: dict[str, list[int]]) -> list[Row]:
    direct = runs["direct"]
    rows = []
    for backends in BACKEND_COUNTS:
        name = cluster_name(backends, NGINX_WORKERS)
        ratios = [ratio(a.rps, b.rps) for a, b in zip(runs[name], direct, strict=True)]
        rows.append(Row(
            8, f"update throughput nginx+{backends} backend{'s' if backends > 1 else ''} "
            f"/ one direct", median(ratios), "x",
            note=f"{median([r.rps for r in runs[name]]):,.0f} vs "
            f"{median([r.rps for r in direct]):,.0f} req/s; p99 "
            f"{median([r.p99_ms for r in runs[name]]):.1f} ms; CPU us/update "
            f"{cpu_note(runs[name], ('backends', 'nginx', 'wrk'))}; jobs per backend "
            f"{'/'.join(map(str, jobs[name]))}; errors {sum(r.errors for r in runs[name])}",
            spread=spread_of(ratios)))
    return rows


def worker_rows(runs: dict[str, list[WrkResult]]) -> list[Row]:
    """The other count of nginx workers against the scenario's, round by round."""
    direct = runs["direct"]
    rows = []
    for backends in BACKEND_COUNTS[1:]:
        chosen = runs[cluster_name(backends, NGINX_WORKERS)]
        other = runs[cluster_name(backends, OTHER_NGINX_WORKERS)]
        ratios = [ratio(a.rps, b.rps) for a, b in zip(other, chosen, strict=True)]
        vs_direct = [ratio(a.rps, b.rps) for a, b in zip(other, direct, strict=True)]
        rows.append(Row(
            8, f"nginx+{backends}: {OTHER_NGINX_WORKERS} nginx workers / {NGINX_WORKERS}",
            median(ratios), "x",
            note=f"{median([r.rps for r in other]):,.0f} vs "
            f"{median([r.rps for r in chosen]):,.0f} req/s; / direct {median(vs_direct):.2f} "
            f"({spread(vs_direct)}); CPU us/update {cpu_note(other, ('backends', 'nginx'))}; "
            f"errors {sum(r.errors for r in other)}", spread=spread_of(ratios)))
    return rows


def cost_rows(runs: dict[str, list[WrkResult]]) -> list[Row]:
    """One backend's updates per second, and what nginx costs per update."""
    direct, proxied = runs["direct"], runs[cluster_name(1, NGINX_WORKERS)]
    backend = [us_per_update(run, "backends") for run in direct]
    nginx = [us_per_update(run, "nginx") for run in proxied]
    added = [1e6 / a.rps - 1e6 / b.rps for a, b in zip(proxied, direct, strict=True)]
    rates = [run.rps for run in direct]
    return [
        Row(8, "one backend direct: updates per second", median(rates), "req/s",
            note=f"backend CPU {median(backend):.0f} us/update "
            f"({spread(backend, 0)}) = {1e6 / median(backend):,.0f}/s per busy core; p99 "
            f"{median([r.p99_ms for r in direct]):.1f} ms; wrk {cpu_us(direct, 'wrk'):.0f} "
            "us/update", spread=spread_of(rates)),
        Row(8, f"nginx CPU per update (1 backend, nginx workers {NGINX_WORKERS})", median(nginx),
            "us", note=f"from throughput 1/(nginx+1) - 1/direct "
            f"{median(added):.1f} us ({spread(added, 1)}); backend behind nginx "
            f"{cpu_us(proxied, 'backends'):.0f} us/update vs "
            f"{median(backend):.0f} direct", spread=spread_of(nginx)),
    ]
